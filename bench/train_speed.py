"""Benchmark (not a test): training images/s of one configuration, measured on real CIFAR-10 batches.

Times full training steps (augmentation, forward, loss, backward, Adam, schedule) after a warm-up,
with the same code path as `pbkit train`. One configuration per process, so that thread pools and
compile caches of one do not leak into the next:

    .venv/bin/python bench/train_speed.py --data ../shared/cifar10/cifar-10-batches-py --steps 40
    .venv/bin/python bench/train_speed.py --data ... --channels-last --compile --batch-size 256

Prints one JSON line: the options and `images_per_s` (median over --repeats windows of --steps).

`--compare` runs the before/after table of the training-speed work in one command, each row in its
own process, rows interleaved over --rounds so that a change in machine load hits every row alike:

    .venv/bin/python bench/train_speed.py --data ../shared/cifar10/cifar-10-batches-py --compare

"before" is the code as it was (the sign as `where(x >= 0, 1, -1)`, its gradient by `masked_fill`,
NCHW activations), restored in the process by `--legacy-ste`; the other rows are today's code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer import data as cifar  # noqa: E402
from trainer.model import ModelConfig, build_model  # noqa: E402
from trainer.train import make_step_forward  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="cifar-10-batches-py folder")
    ap.add_argument("--model", default="reactnet18")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--mode", default="popbin")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per window")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile happens here)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--legacy-ste", action="store_true", help="the sign STE as it was before the speed work")
    ap.add_argument("--compare", action="store_true", help="the before/after table (see above)")
    ap.add_argument("--rounds", type=int, default=2, help="with --compare: interleaved rounds per row")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(args)
    if args.legacy_ste:
        use_legacy_ste()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    split = cifar.load_split(args.data, "train")
    images, labels = torch.from_numpy(split.images), torch.from_numpy(split.labels)
    model = build_model(ModelConfig(model=args.model, width=args.width, mode=args.mode))
    model.train()
    forward = make_step_forward(model, channels_last=args.channels_last, compile=args.compile)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(labels), generator=gen)
    cursor = [0]

    def step() -> None:
        start = cursor[0] % (len(labels) - args.batch_size)
        cursor[0] += args.batch_size
        idx = order[start:start + args.batch_size]
        batch = cifar.augment(images[idx], gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = F.cross_entropy(forward(batch).float(), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t0 = time.time()
    for _ in range(args.warmup):
        step()
    warmup_s = time.time() - t0
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        rates.append(args.steps * args.batch_size / (time.perf_counter() - t0))
    print(json.dumps({**{k: v for k, v in vars(args).items() if k != "data"}, "warmup_s": round(warmup_s, 1),
                      "images_per_s": round(statistics.median(rates), 1),
                      "windows": [round(r, 1) for r in rates]}))
    return 0


def use_legacy_ste() -> None:
    """The quantizers as they were: sign by torch.where, clipped gradient by masked_fill (same values)."""
    from trainer import quantizers

    quantizers.binary_sign = lambda x: torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.masked_fill(x.abs() > 1, 0.0)

    quantizers._SignSTE.backward = staticmethod(backward)


COMPARE_ROWS = [
    ("before: where/masked_fill STE, NCHW", ["--legacy-ste"]),
    ("fused STE, NCHW", []),
    ("fused STE, NHWC (the default)", ["--channels-last"]),
    ("fused STE, NHWC, torch.compile", ["--channels-last", "--compile", "--warmup", "8"]),
    ("fused STE, NHWC, batch 256", ["--channels-last", "--batch-size", "256"]),
    ("fused STE, NHWC, bf16 autocast", ["--channels-last", "--precision", "bf16"]),
]


def compare(args) -> int:
    rates: dict[str, list[float]] = {label: [] for label, _ in COMPARE_ROWS}
    for _ in range(args.rounds):
        for label, extra in COMPARE_ROWS:
            cmd = [sys.executable, __file__, "--data", args.data, "--width", str(args.width), "--mode", args.mode,
                   "--threads", str(args.threads), "--steps", str(args.steps), "--repeats", "1", *extra]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rates[label].append(json.loads(out.strip().splitlines()[-1])["images_per_s"])
    base = statistics.median(rates[COMPARE_ROWS[0][0]])
    print(f"| configuration (width {args.width}, {args.mode}, {args.threads} threads) | images/s | vs before |")
    print("|---|---:|---:|")
    for label, _ in COMPARE_ROWS:
        rate = statistics.median(rates[label])
        print(f"| {label} | {rate:.1f} | {rate / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
