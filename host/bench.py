"""`pbkit bench`: stream test images to one or more boards, compare with PyTorch eval, report.

Nothing measured is lost. Each result is appended to `<report>.images.jsonl` as it arrives (after
a first line that says which model, images and options the run is for) and the summary report is
rewritten atomically every few seconds. A report that exists is never overwritten: `resume=True`
(`--resume`) checks that it belongs to the same model and images and measures only what it lacks.

Several boards share the images. A board that fails mid-run (it dies, resets, or its link
garbles a frame) gives its image back to the others, and its link is reopened and greeted
again: it carries on if its new HELLO is the one it gave before, and is dropped otherwise, or
after repeated failures. A board whose replies break its HELLO (BoardContractError) is dropped at
once. The summary says which board measured what.
"""

from __future__ import annotations

import collections
import hashlib
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from pbkit.boards import ticks_to_counter
from pbkit.files import atomic_write_bytes

from .link import (
    ERR_BAD_COBS,
    ERR_BAD_CRC,
    ERR_FRAME_TOO_LONG,
    ERR_FRAME_TOO_SHORT,
    BoardContractError,
    BoardError,
    BoardInfo,
    BoardLink,
    LinkError,
)

#: First line of every `.images.jsonl`: what the run measures.
REPORT_FORMAT = "pbkit-bench-1"
#: Failures in a row (no image measured in between) after which a board is dropped.
MAX_FAILURES_IN_A_ROW = 5
#: ERROR replies that say the line garbled a request: the request may simply be sent again.
LINE_ERRORS = (ERR_BAD_CRC, ERR_BAD_COBS, ERR_FRAME_TOO_SHORT, ERR_FRAME_TOO_LONG)


class ModelMismatchError(RuntimeError):
    """The board runs another model than the checkpoint the results are compared with."""


class ReportError(RuntimeError):
    """A report that exists and may not be overwritten, or that belongs to another run."""


class Split(Protocol):
    """The images a run measures: uint8 N x C x H x W and their labels (as pbkit.trainer.data.Split)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int: ...


@dataclass
class Expected:
    """What the boards are held to for each image: PyTorch eval's answers for a pbkit checkpoint
    (pbkit.expected computes them), or another reference's (the int8 yardstick's LiteRT)."""

    model_sha256: str
    classes: np.ndarray
    logits: np.ndarray

    @classmethod
    def from_logits(cls, model_sha256: str, logits: np.ndarray) -> Expected:
        """The classes are the logits' argmax, ties to the lowest index (as the board's)."""
        return cls(model_sha256=model_sha256, classes=np.argmax(logits, axis=1), logits=logits)


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
    if info.num_classes != expected.logits.shape[1]:
        raise ModelMismatchError(f"{url}: board has {info.num_classes} classes, the checkpoint "
                                 f"{expected.logits.shape[1]}")


# ---- the report on disk ------------------------------------------------------------------


def images_path(report: Path) -> Path:
    """Where the per-image rows of `report` go."""
    return report.with_suffix(".images.jsonl")


def data_sha256(split: Split) -> str:
    """Identifies the images (and labels) a run measures."""
    h = hashlib.sha256(np.ascontiguousarray(split.images).tobytes())
    h.update(np.asarray(split.labels, dtype="<i8").tobytes())
    return h.hexdigest()


def run_header(expected: Expected, split: Split) -> dict:
    return {"format": REPORT_FORMAT, "model_sha256": expected.model_sha256, "data_sha256": data_sha256(split),
            "images_requested": len(split)}


def move_aside(report: Path) -> list[tuple[Path, Path]]:
    """Renames an existing report and its rows to REPORT.N.json / REPORT.N.images.jsonl (the first free
    N); returns each (old, new) path it moved: none when there was nothing to move."""
    rows = images_path(report)
    if not report.exists() and not rows.exists():
        return []
    n = 1
    while True:
        target = report.with_suffix(f".{n}{report.suffix}")
        if not target.exists() and not images_path(target).exists():
            break
        n += 1
    moved = [(old, new) for old, new in ((rows, images_path(target)), (report, target)) if old.exists()]
    for old, new in moved:
        old.rename(new)
    return moved


def _read_rows(path: Path, header: dict, expected: Expected) -> dict[int, dict]:
    """The rows of an earlier run of the same model on the same images; ReportError otherwise. A
    line cut short by a killed run is removed, so that appending continues on a line of its own."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with path.open("r+b") as f:
            f.truncate(len(data))
    lines = data.decode(errors="replace").splitlines()
    if not lines:
        return {}
    try:
        theirs = json.loads(lines[0])
    except ValueError:
        theirs = None
    if not isinstance(theirs, dict) or theirs.get("format") != REPORT_FORMAT:
        raise ReportError(f"{path}: no {REPORT_FORMAT} header (written by an older pbkit?): cannot be continued; "
                          "move it away or choose another --report")
    if theirs.get("model_sha256") != header["model_sha256"]:
        raise ReportError(f"{path}: measured model {str(theirs.get('model_sha256'))[:16]}..., the checkpoint is "
                          f"{header['model_sha256'][:16]}...: it belongs to another run; choose another --report")
    if theirs.get("images_requested") != header["images_requested"]:
        raise ReportError(f"{path}: was a run of {theirs.get('images_requested')} images, this one asks for "
                          f"{header['images_requested']} (--limit differs); choose another --report")
    if theirs.get("data_sha256") != header["data_sha256"]:
        raise ReportError(f"{path}: measured other images than --data gives now; choose another --report")
    rows: dict[int, dict] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            row = json.loads(line)
            i = int(row["index"])
        except (ValueError, KeyError, TypeError):
            raise ReportError(f"{path}: line {number} is not a result row; cannot continue it") from None
        if not 0 <= i < header["images_requested"] or row.get("expected_class") != int(expected.classes[i]):
            raise ReportError(f"{path}: line {number} does not belong to this model and data")
        rows.setdefault(i, row)
    return rows


def _measured_nothing(report: Path) -> bool:
    """True for the files of a run that ended before its first result: a rows file with at most its
    header line, and a summary (if any) of 0 images."""
    rows_path = images_path(report)
    if not rows_path.exists():
        return False
    if rows_path.read_bytes().count(b"\n") > 1:
        return False
    if report.exists():
        try:
            return json.loads(report.read_text()).get("images") == 0
        except (ValueError, AttributeError):
            return False
    return True


def open_report(report: Path, header: dict, expected: Expected, resume: bool):
    """The rows measured before (resume) and the `.images.jsonl` opened for appending. Without
    resume, an existing report is refused: it is never truncated."""
    rows_path = images_path(report)
    if not resume and _measured_nothing(report):
        for existing in (report, rows_path):  # a run that stopped before its first image: nothing to lose
            existing.unlink(missing_ok=True)
    if not resume:
        for existing in (report, rows_path):
            if existing.exists():
                raise ReportError(f"{existing} already exists: pass --resume to continue that run, or choose "
                                  "another --report (it is never overwritten)")
    elif report.exists() and not rows_path.exists():
        raise ReportError(f"{report} has no {rows_path.name} to continue from; choose another --report")
    rows = _read_rows(rows_path, header, expected) if rows_path.exists() else {}
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    out = rows_path.open("a", encoding="utf-8")
    if out.tell() == 0:
        out.write(json.dumps(header) + "\n")
        out.flush()
    return rows, out


# ---- the summary ---------------------------------------------------------------------------


@dataclass
class BoardRun:
    """One --port during this run: its link, what it said, what happened to it."""

    url: str
    link: BoardLink
    info: BoardInfo
    measured: int = 0
    reconnects: int = 0
    dropped: str | None = None
    broke_contract: bool = False
    events: list[str] = field(default_factory=list)


def per_port(results: dict[int, dict], boards: list[BoardRun]) -> dict[str, dict]:
    """Which port measured how many images (earlier runs included), with this run's events."""
    counts = collections.Counter(row["port"] for row in results.values())
    names = {row["port"]: row["board"] for row in results.values()}
    out: dict[str, dict] = {}
    for url in sorted(counts):
        out[url] = {"board": names[url], "images": counts[url], "status": "earlier run"}
    for b in boards:
        out[b.url] = {"board": b.info.board, "images": counts.get(b.url, 0), "measured_now": b.measured,
                      "reconnects": b.reconnects, "status": "dropped" if b.dropped else "ok",
                      "dropped": b.dropped, "events": list(b.events)}
    return out


def summarize(results: dict[int, dict], boards: list[BoardRun], expected: Expected, total: int,
              complete: bool) -> dict:
    done = sorted(results)
    per_image = [results[i]["counter"] for i in done]
    infos = [b.info for b in boards]
    names = sorted({results[i]["board"] for i in done} | {info.board for info in infos})
    counters = sorted({results[i]["counter_kind"] for i in done} | {info.counter for info in infos})
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
        "board": names[0] if len(names) == 1 else names,
        "clock_hz": infos[0].clock_hz if infos else None,
        "boards": len(boards),
        "ports": per_port(results, boards),
        "model_sha256": expected.model_sha256,
    }


# ---- the run -------------------------------------------------------------------------------


def run_bench(urls: list[str], expected: Expected, split: Split, report: Path | None = None,
              timeout: float = 30.0, progress: bool | None = None, resume: bool = False,
              reconnect_timeout: float | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run `split` on the boards at `urls` (images shared among them), each answer held to `expected`
    (one row per image of `split`); returns the summary.

    ``timeout`` bounds each reply; ``reconnect_timeout`` (default: ``timeout``, at most 10 s) how long
    a failed board may take to answer HELLO again; ``log`` gets a line for each board event.
    """
    if not urls:
        raise ValueError("give at least one --port")
    twice = sorted({u for u in urls if urls.count(u) > 1})
    if twice:
        raise ValueError(f"--port {twice[0]} is given twice: a board serves one connection")
    if len(split) == 0:
        raise ValueError("no images to measure")
    if len(expected.classes) != len(split):
        raise ValueError(f"{len(expected.classes)} expected answers for {len(split)} images")
    input_shape = tuple(split.images.shape[1:])
    results: dict[int, dict] = {}
    jsonl = None
    if report is not None:
        results, jsonl = open_report(report, run_header(expected, split), expected, resume)
    links: list[BoardLink] = []
    boards: list[BoardRun] = []
    try:
        for url in urls:
            link = BoardLink(url, timeout=timeout)
            links.append(link)
            info = link.wait_ready(timeout=timeout)
            check_board(info, expected, input_shape, url)
            boards.append(BoardRun(url, link, info))
        stream = _Stream(boards, split, expected, results, report, jsonl,
                         min(timeout, 10.0) if reconnect_timeout is None else reconnect_timeout, log)
        return stream.run(progress)
    finally:
        if jsonl is not None:
            jsonl.close()
        for link in links + [b.link for b in boards]:  # a board that reconnected has a new link
            link.close()


class _Stream:
    """The images of one run, handed out to one worker thread per board."""

    def __init__(self, boards: list[BoardRun], split: Split, expected: Expected, results: dict[int, dict],
                 report: Path | None, jsonl, reconnect_timeout: float, log: Callable[[str], None] | None):
        self.boards, self.split, self.expected, self.results = boards, split, expected, results
        self.report, self.jsonl, self.reconnect_timeout = report, jsonl, reconnect_timeout
        self.log = log or (lambda line: None)
        self.total = len(split)
        self.todo = collections.deque(i for i in range(self.total) if i not in results)
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.closed = False
        self.fatal: list[BaseException] = []

    # -- bookkeeping (under self.cond) --
    def _take(self) -> int | None:
        """The next image to measure; None when every image is measured (or the run stops)."""
        with self.cond:
            while not self.stop.is_set():
                if self.todo:
                    return self.todo.popleft()
                if len(self.results) == self.total:
                    return None
                self.cond.wait(timeout=0.2)  # images in flight elsewhere may come back
            return None

    def _give_back(self, i: int) -> None:
        with self.cond:
            self.todo.appendleft(i)
            self.cond.notify_all()

    def _record(self, i: int, out, board: BoardRun) -> None:
        label, expected_class = int(self.split.labels[i]), int(self.expected.classes[i])
        row = {"index": i, "label": label, "class": out.class_index, "expected_class": expected_class,
               "correct": out.class_index == label, "agrees": out.class_index == expected_class,
               "logits_identical": list(out.logits) == self.expected.logits[i].tolist(),
               "ticks": out.ticks, "counter": counter_value(board.info, out.ticks),
               "counter_kind": board.info.counter, "board": board.info.board, "port": board.url}
        with self.cond:
            # A second result cannot happen (an image is out at one board at a time): never count it. After
            # the run closed (interrupted), a late result is not written: the summary is already out.
            if i in self.results or self.closed:
                return
            self.results[i] = row
            board.measured += 1
            if self.jsonl:
                self.jsonl.write(json.dumps(row) + "\n")
                self.jsonl.flush()
            self.cond.notify_all()

    def _event(self, board: BoardRun, text: str) -> None:
        board.events.append(text)
        self.log(f"{board.url}: {text}")

    def _done(self) -> bool:
        with self.cond:
            return len(self.results) == self.total

    # -- one board --
    def _worker(self, board: BoardRun) -> None:
        failures = 0
        while (i := self._take()) is not None:
            try:
                out = board.link.infer(self.split.images[i].tobytes())
            except BoardContractError as exc:
                self._give_back(i)
                board.broke_contract = True
                self._drop(board, str(exc))
                return
            except BoardError as exc:
                self._give_back(i)
                if exc.code not in LINE_ERRORS:  # the board itself fails this image: no other board will do better
                    self.fatal.append(exc)
                    self.stop.set()
                    return
                failure: Exception = exc
            except (LinkError, OSError) as exc:
                self._give_back(i)
                failure = exc
            else:
                failures = 0
                self._record(i, out, board)
                continue
            failures += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                self._drop(board, f"{failures} failures in a row, the last: {failure}")
                return
            self._event(board, f"failed ({failure}); reconnecting")
            if not self._reconnect(board):
                return

    def _drop(self, board: BoardRun, reason: str) -> None:
        board.dropped = reason
        self._event(board, f"dropped after {board.measured} images: {reason}")
        with self.cond:
            self.cond.notify_all()

    def _reconnect(self, board: BoardRun) -> bool:
        """Reopens the board's link and greets it; True when it is the board it was."""
        board.link.close()
        deadline = time.monotonic() + self.reconnect_timeout
        last: Exception | None = None
        while time.monotonic() < deadline and not self.stop.is_set() and not self._done():
            try:
                link = BoardLink(board.url, timeout=board.link.timeout)
            except LinkError as exc:  # a board that died, or a port that is not back yet
                last = exc
                time.sleep(0.2)
                continue
            try:
                info = link.wait_ready(timeout=max(0.5, deadline - time.monotonic()))
            except LinkError as exc:
                link.close()
                last = exc
                continue
            board.link = link
            if info != board.info:
                self._drop(board, f"came back with another HELLO ({info.board}, model "
                                  f"{info.model_sha256.hex()[:16]}...)")
                return False
            board.reconnects += 1
            self._event(board, "reconnected (same HELLO)")
            return True
        if last is not None:
            self._drop(board, f"did not come back within {self.reconnect_timeout:g} s ({last})")
        return False

    # -- the whole run --
    def _summary(self, complete: bool) -> dict:
        with self.cond:
            summary = summarize(dict(self.results), self.boards, self.expected, self.total, complete)
        if self.report:
            atomic_write_bytes(self.report, (json.dumps(summary, indent=2) + "\n").encode())
        return summary

    def run(self, progress: bool | None) -> dict:
        threads = [threading.Thread(target=self._worker, args=(b,), daemon=True) for b in self.boards]
        for t in threads:
            t.start()
        show = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=self.total, initial=len(self.results), disable=not show, desc="bench", unit="img",
                   file=sys.stderr)
        last_write = time.monotonic()
        try:
            while any(t.is_alive() for t in threads):
                time.sleep(0.2)
                with self.cond:
                    n = len(self.results)
                bar.update(n - bar.n)
                if self.report and time.monotonic() - last_write > 2.0:
                    self._summary(False)
                    last_write = time.monotonic()
        except BaseException:  # KeyboardInterrupt, or SIGTERM through the CLI: keep what was measured
            self.stop.set()
            for t in threads:
                t.join(timeout=2.0)  # a reply in flight may still come; do not wait a whole --timeout for it
            with self.cond:
                self.closed = True
            self._summary(False)
            raise
        finally:
            bar.close()
        summary = self._summary(True)
        if self.fatal:
            raise LinkError(f"{self.fatal[0]} (after {summary['images']} of {self.total} images; partial report "
                            "kept: --resume continues it)")
        if not summary["complete"]:
            reasons = "; ".join(f"{b.url}: {b.dropped}" for b in self.boards if b.dropped)
            error = BoardContractError if any(b.broke_contract for b in self.boards) else LinkError
            raise error(f"every board failed ({reasons}); {summary['images']} of {self.total} images measured, "
                        "partial report kept: --resume continues it")
        return summary
