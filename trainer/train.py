"""The training loop: Adam + one-cycle, random crop + flip, atomic checkpoints every epoch, --resume."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import data as cifar
from .checkpoint import load_checkpoint, load_train_state, save_checkpoint, save_train_state
from .model import ModelConfig, build_model

METRICS_FIELDS = ["epoch", "lr", "train_loss", "train_top1", "test_top1_qat", "images_per_s", "seconds"]


@dataclass
class TrainOptions:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    seed: int = 0
    schedule: str = "onecycle"  # or "cosine": one epoch of linear warm-up, then cosine decay
    device: str = "auto"  # "cpu", "cuda" or "auto" (cuda when available)
    precision: str = "fp32"  # "bf16" autocasts training steps only (slower on some CPUs); eval is exact
    threads: int | None = None
    limit_train: int | None = None  # use the first N training images (smoke runs)
    resume: bool = False
    compile: bool = False  # torch.compile the training graph (slower than channels_last on a 2-core AVX-512 CPU)
    channels_last: bool = True  # NHWC activations: 1.56x faster steps on CPU (bench/train_speed.py), same maths
    stop_after: int | None = None  # end after this many epochs, as an interruption would (tests)
    two_step: bool = False  # first ceil(epochs/2) epochs with real weights (binary activations), then binary
    teacher: str | None = None  # checkpoint of a distillation teacher (any pbkit model; mode 'real' is the usual)
    kd_weight: float = 1.0  # loss = kd_weight * KL(teacher || student) + (1 - kd_weight) * cross-entropy
    kd_temperature: float = 1.0
    init_from: str | None = None  # start from this checkpoint's weights (same model and width, any mode)


def _evaluate_float(model, split: cifar.Split, batch: int = 1000) -> float:
    """QAT-graph top-1 with BN running stats (fast; the exact integer eval comes at the end)."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(split), batch):
            images = torch.from_numpy(split.images[i:i + batch]).to(model.fc.weight.device)
            logits = model.float_forward(images).cpu()
            correct += int((logits.argmax(1).numpy() == split.labels[i:i + batch]).sum())
    model.train(was_training)
    return correct / max(1, len(split))


def binary_weight_epochs(opts: TrainOptions) -> int:
    """The epoch from which weights are binary: 0, or the second half under two-step training."""
    return (opts.epochs + 1) // 2 if opts.two_step else 0


def load_teacher(path: str, device: torch.device):
    """The distillation teacher in eval mode (float logits, frozen); CheckpointError when it does not load."""
    from .checkpoint import CheckpointError

    try:
        teacher, _ = load_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(f"teacher: {exc}") from None
    teacher.to(device).eval()
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher


def init_weights_from(model, path: str) -> None:
    """Copy every tensor a checkpoint shares with this model (same model and width; the mode may differ)."""
    from .checkpoint import CheckpointError

    source, _ = load_checkpoint(path)
    mine, theirs = model.config, source.config
    if (mine.model, mine.width, mine.num_classes) != (theirs.model, theirs.width, theirs.num_classes):
        raise CheckpointError(f"{path}: a {theirs.model} width {theirs.width} checkpoint cannot start a "
                              f"{mine.model} width {mine.width} run")
    state = model.state_dict()
    shared = {k: v for k, v in source.state_dict().items() if k in state and state[k].shape == v.shape}
    state.update(shared)
    model.load_state_dict(state)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, opts: TrainOptions):
    """KL(teacher || student) at temperature T (scaled by T^2), mixed with cross-entropy by kd_weight."""
    t = opts.kd_temperature
    kl = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="batchmean",
                  log_target=True) * t * t
    return opts.kd_weight * kl + (1 - opts.kd_weight) * F.cross_entropy(student, target)


def _scheduler(optimizer: torch.optim.Optimizer, opts: TrainOptions, steps_per_epoch: int):
    total = opts.epochs * steps_per_epoch
    if opts.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=opts.lr, total_steps=total, pct_start=0.15)
    if opts.schedule == "cosine":
        warmup = min(steps_per_epoch, total - 1)
        return torch.optim.lr_scheduler.SequentialLR(optimizer, [
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup),
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup)),
        ], milestones=[warmup])
    raise ValueError(f"unknown schedule {opts.schedule!r}; choose onecycle or cosine")


def _tensorboard(out: Path):
    """A SummaryWriter in RUN_DIR/tensorboard when TensorBoard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size). Under torchrun (WORLD_SIZE > 1) joins the process group: NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def params_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer: equal on every rank when data-parallel training stays in sync."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def make_step_forward(model: torch.nn.Module, channels_last: bool = False, compile: bool = False):
    """The training forward (uint8 images -> logits) with the chosen CPU speed-ups; the maths is unchanged.

    channels_last stores activations NHWC, which oneDNN's convolutions prefer on x86; compile hands
    the QAT graph to torch.compile (the first steps then take minutes).
    """
    if channels_last:
        model.to(memory_format=torch.channels_last)

        def forward(images: torch.Tensor) -> torch.Tensor:
            return model.float_forward(images.contiguous(memory_format=torch.channels_last))
    else:
        forward = model.float_forward
    return torch.compile(forward) if compile else forward


def train(config: ModelConfig, opts: TrainOptions, data_dir: str, out_dir: str | Path,
          progress: bool = True) -> dict:
    """Train; returns the last epoch's metrics (and `params_sha256`). Rank 0 alone writes files."""
    out = Path(out_dir)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    train_split = cifar.load_split(data_dir, "train").head(opts.limit_train)
    test_split = cifar.load_split(data_dir, "test")
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if opts.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if opts.device == "auto" else opts.device))
    rank, world = _distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    lead = rank == 0
    progress = progress and lead
    torch.manual_seed(opts.seed)
    model = build_model(config)
    if opts.init_from and not opts.resume:
        init_weights_from(model, opts.init_from)
    model = model.to(device)
    teacher = load_teacher(opts.teacher, device) if opts.teacher else None
    binary = [p for n, p in model.named_parameters() if n.endswith(".weight") and p.dim() == 4 and "blocks" in n]
    others = [p for p in model.parameters() if all(p is not b for b in binary)]
    optimizer = torch.optim.Adam([{"params": binary, "weight_decay": 0.0},
                                  {"params": others, "weight_decay": opts.weight_decay}], lr=opts.lr)
    steps_per_epoch = math.ceil(len(train_split) / opts.batch_size)
    scheduler = _scheduler(optimizer, opts, steps_per_epoch)
    ckpt_path, state_path, metrics_path = out / "checkpoint.safetensors", out / "train_state.pt", out / "metrics.csv"
    start_epoch = 0
    if opts.resume and state_path.exists():
        resumed, resumed_extra = load_checkpoint(ckpt_path)
        if resumed.config != config:
            raise ValueError(f"{ckpt_path}: config {resumed.config} differs from the requested {config}")
        model.load_state_dict(resumed.state_dict())
        state = load_train_state(state_path)
        if int(resumed_extra.get("epoch", -1)) != int(state["epoch"]):
            raise ValueError(f"{out}: the checkpoint is from epoch {resumed_extra.get('epoch')} but the training "
                             f"state from epoch {int(state['epoch'])} (interrupted between the two writes)")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"])
    elif metrics_path.exists() and not opts.resume:
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if world > 1:
        torch.distributed.barrier()  # every rank has checked the run folder before rank 0 writes to it
    if lead and start_epoch == 0:
        with metrics_path.open("w", newline="") as f:  # a fresh run: metrics start over
            csv.writer(f).writerow(METRICS_FIELDS)
    if lead:
        (out / "config.json").write_text(json.dumps({"model": config.to_dict(), "train": opts.__dict__,
                                                     "world_size": world}, indent=2))

    # On a GPU the whole training set (150 MB as uint8) lives there and is augmented there.
    images = torch.from_numpy(train_split.images).to(device)
    labels = torch.from_numpy(train_split.labels).to(device)
    use_bf16 = opts.precision == "bf16"
    writer = _tensorboard(out) if lead else None
    if world > 1:
        # DDP all-reduces gradients and broadcasts rank 0's BN statistics every step.
        forward = torch.nn.parallel.DistributedDataParallel(model)
    else:
        forward = make_step_forward(model, channels_last=opts.channels_last, compile=opts.compile)
    best = {}
    for epoch in range(start_epoch, opts.epochs):
        model.set_binary_weights(epoch >= binary_weight_epochs(opts))
        # Per-epoch generator: a resumed run draws the same batches as an uninterrupted one.
        gen = torch.Generator().manual_seed(opts.seed * 1000 + epoch)
        order = torch.randperm(len(labels), generator=gen)
        model.train()
        t0, seen, loss_sum, correct = time.time(), 0, 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{opts.epochs}", disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        for step in bar:
            idx = order[step * opts.batch_size:(step + 1) * opts.batch_size].to(device)
            # Every rank draws the same augmentation for the global batch, then keeps its share.
            batch = cifar.augment(images[idx], gen)[rank::world].to(device, non_blocking=True)
            target = labels[idx][rank::world].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = forward(batch)
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher.float_forward(batch).float()
                    loss = distillation_loss(logits.float(), teacher_logits, target, opts)
                else:
                    loss = F.cross_entropy(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(target)
            loss_sum += float(loss.detach()) * len(target)
            correct += int((logits.argmax(1) == target).sum())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                                img_s=f"{seen / (time.time() - t0):.0f}")
        bar.close()
        seconds = time.time() - t0
        if world > 1:
            # BN running statistics move with each rank's own shard after the last forward; rank 0's
            # are the ones DDP broadcasts, so make them everyone's before evaluating and saving.
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)
            totals = torch.tensor([loss_sum, correct, seen], dtype=torch.float64)
            torch.distributed.all_reduce(totals)
            loss_sum, correct, seen = float(totals[0]), int(totals[1]), int(totals[2])
        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0], "train_loss": loss_sum / seen,
               "train_top1": correct / seen, "test_top1_qat": None, "images_per_s": seen / seconds,
               "seconds": seconds}
        if lead:  # rank 0 alone evaluates and writes; the others wait at the barrier
            row["test_top1_qat"] = _evaluate_float(model, test_split)
            with metrics_path.open("a", newline="") as f:
                csv.writer(f).writerow([row[k] for k in METRICS_FIELDS])
            save_checkpoint(model, ckpt_path, extra={"epoch": epoch + 1, "test_top1_qat": row["test_top1_qat"]})
            save_train_state({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                              "epoch": epoch + 1}, state_path)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if writer:
                for key in ("lr", "train_loss", "train_top1", "test_top1_qat", "images_per_s"):
                    writer.add_scalar(key, row[key], epoch + 1)
                writer.flush()
        best = row
        if world > 1:
            torch.distributed.barrier()
        if opts.stop_after is not None and epoch + 1 >= opts.stop_after:
            break
    best = {**best, "params_sha256": params_fingerprint(model), "rank": rank, "world_size": world}
    if not lead:
        return best
    try:
        from .plots import plot_training_curves

        plot_training_curves(metrics_path, out / "curves.png")
    except Exception as exc:  # a plot must never cost the run
        print(f"warning: training curves not plotted: {exc}", file=sys.stderr)
    return best
