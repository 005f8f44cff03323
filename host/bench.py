"""`pbkit bench`: stream test images to one or more boards, compare with PyTorch eval, report.

Each result is appended to `<report>.images.jsonl` as it arrives and the summary report is
rewritten atomically every few seconds, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import json
import queue
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pbkit.boards import ticks_to_counter
from pbkit.files import atomic_write_bytes
from pbkit.ir import IntegerModel
from pbkit.trainer.data import Split

from .link import BoardInfo, BoardLink, LinkError


class ModelMismatchError(RuntimeError):
    """The board runs another model than the checkpoint the results are compared with."""


@dataclass
class Expected:
    """What PyTorch eval says for each image: the reference the boards are held to."""

    model_sha256: str
    classes: np.ndarray
    logits: np.ndarray


def expected_from_checkpoint(checkpoint: Path, images: np.ndarray) -> Expected:
    from pbkit.trainer.checkpoint import load_checkpoint
    from pbkit.trainer.fold import fold_model

    model, _ = load_checkpoint(checkpoint)
    return expected_from_ir(fold_model(model), images)  # what model.eval() computes, folded once


def expected_from_ir(ir: IntegerModel, images: np.ndarray) -> Expected:
    import torch

    from pbkit.trainer.integer_graph import integer_logits

    logits = integer_logits(ir, torch.from_numpy(np.ascontiguousarray(images))).numpy()
    return Expected(model_sha256=ir.sha256(), classes=np.argmax(logits, axis=1), logits=logits)


def counter_value(info: BoardInfo, ticks: int) -> float:
    """Ticks -> instructions or cycles, with the clock and shift the board itself reported."""
    return ticks_to_counter(ticks, info.counter, info.clock_hz, info.icount_shift)


def check_board(info: BoardInfo, expected: Expected, input_shape: tuple[int, int, int], url: str) -> None:
    if info.model_sha256.hex() != expected.model_sha256:
        raise ModelMismatchError(
            f"{url}: board {info.board} runs model {info.model_sha256.hex()[:16]}..., but the checkpoint is "
            f"{expected.model_sha256[:16]}...: flash the firmware exported from this checkpoint")
    if info.input_shape != input_shape:
        raise ModelMismatchError(f"{url}: board expects input {info.input_shape}, the data is {input_shape}")


def summarize(results: dict[int, dict], infos: list[BoardInfo], expected: Expected, total: int,
              complete: bool) -> dict:
    done = sorted(results)
    per_image = [results[i]["counter"] for i in done]
    boards = sorted({info.board for info in infos})
    counters = sorted({info.counter for info in infos})
    n = len(done)
    return {
        "images": n,
        "images_requested": total,
        "complete": complete and n == total,
        "top1": sum(results[i]["correct"] for i in done) / n if n else None,
        "agreement": sum(results[i]["agrees"] for i in done) / n if n else None,
        "logits_identical": sum(results[i]["logits_identical"] for i in done) / n if n else None,
        "counter": counters[0] if len(counters) == 1 else counters,
        "per_image_median": statistics.median(per_image) if per_image else None,
        "per_image_mean": statistics.fmean(per_image) if per_image else None,
        "per_image_min": min(per_image) if per_image else None,
        "per_image_max": max(per_image) if per_image else None,
        "board": boards[0] if len(boards) == 1 else boards,
        "clock_hz": infos[0].clock_hz if infos else None,
        "boards": len(infos),
        "model_sha256": expected.model_sha256,
    }


def run_bench(urls: list[str], checkpoint: Path, split: Split, report: Path | None = None,
              timeout: float = 30.0, progress: bool | None = None) -> dict:
    """Run `split` on the boards at `urls` (images shared among them); returns the summary."""
    if not urls:
        raise ValueError("give at least one --port")
    return bench_expected(urls, expected_from_checkpoint(checkpoint, split.images), split, report, timeout, progress)


def bench_expected(urls: list[str], expected: Expected, split: Split, report: Path | None = None,
                   timeout: float = 30.0, progress: bool | None = None) -> dict:
    """:func:`run_bench` against given answers (another reference than a pbkit checkpoint, such as
    the int8 yardstick's LiteRT interpreter)."""
    input_shape = tuple(split.images.shape[1:])
    links, infos = [], []
    try:
        for url in urls:
            link = BoardLink(url, timeout=timeout)
            links.append(link)
            info = link.wait_ready(timeout=timeout)
            check_board(info, expected, input_shape, url)
            infos.append(info)
        return _stream(links, infos, split, expected, report, progress)
    finally:
        for link in links:
            link.close()


def _stream(links: list[BoardLink], infos: list[BoardInfo], split: Split, expected: Expected,
            report: Path | None, progress: bool | None) -> dict:
    total = len(split)
    todo: queue.Queue[int] = queue.Queue()
    for i in range(total):
        todo.put(i)
    results: dict[int, dict] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    stop = threading.Event()
    jsonl = open(report.with_suffix(".images.jsonl"), "w") if report else None  # noqa: SIM115

    def worker(link: BoardLink, info: BoardInfo) -> None:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                out = link.infer(split.images[i].tobytes())
            except (LinkError, OSError) as exc:
                errors.append(exc)
                stop.set()
                return
            row = {"index": i, "label": int(split.labels[i]), "class": out.class_index,
                   "expected_class": int(expected.classes[i]),
                   "correct": out.class_index == int(split.labels[i]),
                   "agrees": out.class_index == int(expected.classes[i]),
                   "logits_identical": list(out.logits) == expected.logits[i].tolist(),
                   "ticks": out.ticks, "counter": counter_value(info, out.ticks), "board": info.board,
                   "port": link.url}
            with lock:
                results[i] = row
                if jsonl:
                    jsonl.write(json.dumps(row) + "\n")
                    jsonl.flush()

    def write_summary(complete: bool) -> dict:
        with lock:
            summary = summarize(dict(results), infos, expected, total, complete)
        if report:
            atomic_write_bytes(report, (json.dumps(summary, indent=2) + "\n").encode())
        return summary

    threads = [threading.Thread(target=worker, args=pair, daemon=True)
               for pair in zip(links, infos, strict=True)]
    for t in threads:
        t.start()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, disable=not show, desc="bench", unit="img", file=sys.stderr)
    last_write = time.monotonic()
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            with lock:
                n = len(results)
            bar.update(n - bar.n)
            if report and time.monotonic() - last_write > 2.0:
                write_summary(False)
                last_write = time.monotonic()
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join(timeout=max(link.timeout for link in links))
        write_summary(False)
        raise
    finally:
        bar.close()
        if jsonl:
            jsonl.close()
    summary = write_summary(not errors)
    if errors:
        raise LinkError(f"{errors[0]} (after {summary['images']} of {total} images; partial report kept)")
    return summary
