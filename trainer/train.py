"""The training loop: Adam, a step-wise schedule, random crop + flip, one atomic state file, --resume.

A run folder holds `train_state.pt` (everything a resume needs: weights, optimizer, schedule,
the data-order generator, the epoch in progress and every finished epoch's metrics; rewritten
atomically at each epoch end and when the run is stopped), `checkpoint.safetensors` (the model
for eval and export), `metrics.csv`, `config.json` and `curves.png`.

SIGINT or SIGTERM stops a run cleanly after the current step: the state is saved mid-epoch and
`--resume` continues bit for bit as if nothing had happened. `--resume --epochs N` may lengthen
a run (trainer/schedule.py says how the schedule stretches); any other option that changes the
result must match the run's, and a mismatch is refused by name.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from pbkit.files import atomic_write_bytes

from . import data as cifar
from .checkpoint import CheckpointError, load_checkpoint, load_train_state, save_checkpoint, save_train_state
from .model import ModelConfig, PopBinNet18, build_model
from .schedule import Schedule

METRICS_FIELDS = ["epoch", "lr", "train_loss", "train_top1", "test_top1_qat", "images_per_s", "seconds"]
STATE_FORMAT = "pbkit-train-state-2"
EXIT_STOPPED = 130  # the CLI's exit code for a run stopped by a signal (state saved, resumable)


@dataclass
class TrainOptions:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    seed: int = 0
    schedule: str = "onecycle"  # onecycle, cosine or linear (trainer/schedule.py)
    device: str = "auto"  # "cpu", "cuda" or "auto" (cuda when available)
    precision: str = "fp32"  # "bf16" autocasts training steps only; eval is exact
    threads: int | None = None
    limit_train: int | None = None  # use the first N training images (smoke runs)
    resume: bool = False
    compile: bool = False  # torch.compile the training graph (slower than channels_last on a 2-core AVX-512 CPU)
    channels_last: bool = True  # NHWC activations: 1.56x faster steps on CPU (bench/train_speed.py), same maths
    stop_after: int | None = None  # end after this many epochs, as an interruption would (tests)
    stop_after_steps: int | None = None  # stop as a signal would, after this many steps of the run (tests)
    two_step: bool = False  # first ceil(epochs/2) epochs with real weights (binary activations), then binary
    teacher: str | None = None  # checkpoint of a distillation teacher (any pbkit model; mode 'real' is the usual)
    kd_weight: float = 1.0  # loss = kd_weight * KL(teacher || student) + (1 - kd_weight) * cross-entropy
    kd_temperature: float = 1.0
    label_smoothing: float = 0.0  # on the cross-entropy term
    init_from: str | None = None  # start from this checkpoint's weights (same model and width, any mode)


# Options that change what a run computes: a resume must use the run's own values (epochs may grow).
RESULT_OPTIONS = ("batch_size", "lr", "weight_decay", "seed", "schedule", "precision", "limit_train", "two_step",
                  "teacher", "kd_weight", "kd_temperature", "label_smoothing", "init_from")


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
    ce = F.cross_entropy(student, target, label_smoothing=opts.label_smoothing)
    return opts.kd_weight * kl + (1 - opts.kd_weight) * ce


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


def _pick_device(opts: TrainOptions) -> torch.device:
    if opts.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(opts.device)


def _make_optimizer(model: PopBinNet18, opts: TrainOptions) -> torch.optim.Adam:
    """Adam; weight decay on real-valued parameters only (decay pulls latent binary weights to random flips)."""
    binary = [p for n, p in model.named_parameters()
              if n.endswith(".weight") and p.dim() == 4 and ("blocks" in n or n == "stem.weight")]
    others = [p for p in model.parameters() if all(p is not b for b in binary)]
    return torch.optim.Adam([{"params": binary, "weight_decay": 0.0},
                             {"params": others, "weight_decay": opts.weight_decay}], lr=opts.lr)


def _check_resume_options(saved: dict, opts: TrainOptions, config: ModelConfig, out: Path) -> None:
    """Refuse a resume whose model or result-changing options differ from the run's, naming the first one."""
    if saved["config"] != config.to_dict():
        diff = [k for k in config.to_dict() if saved["config"].get(k) != config.to_dict()[k]]
        raise ValueError(f"{out}: the run is {diff[0]}={saved['config'].get(diff[0])!r}, not the requested "
                         f"{config.to_dict()[diff[0]]!r} (resume with the run's own model options)")
    for name in RESULT_OPTIONS:
        theirs, mine = saved["options"].get(name), getattr(opts, name)
        if theirs != mine:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{out}: the run was started with {flag} {theirs!r}, not {mine!r}; resume with the "
                             f"run's own {flag} (or start a new run in another --out)")
    if opts.epochs < saved["options"]["epochs"]:
        raise ValueError(f"{out}: the run is planned for {saved['options']['epochs']} epochs; --epochs "
                         f"{opts.epochs} would shorten it (--resume may only keep or raise --epochs)")


@dataclass
class _Progress:
    """Where the run is: the epoch in progress, its step, and that epoch's running totals."""

    epoch: int = 0
    step: int = 0
    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seconds: float = 0.0


class _StopSignal:
    """SIGINT/SIGTERM set a flag that the loop reads after each step; a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this step; the state is saved for --resume",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _Run:
    """One training run: its folder, model, optimizer, schedule and progress; saves and restores all of it."""

    def __init__(self, config: ModelConfig, opts: TrainOptions, data_dir: str, out: Path) -> None:
        self.config, self.opts, self.out = config, opts, out
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.train_split = cifar.load_split(data_dir, "train").head(opts.limit_train)
        self.test_split = cifar.load_split(data_dir, "test")
        self.device = _pick_device(opts)
        self.rank, self.world = _distributed(self.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        self.lead = self.rank == 0
        self.state_path, self.metrics_path = out / "train_state.pt", out / "metrics.csv"
        self.ckpt_path = out / "checkpoint.safetensors"
        self.steps_per_epoch = math.ceil(len(self.train_split) / opts.batch_size)
        torch.manual_seed(opts.seed)
        self.model = build_model(config)
        self.teacher = load_teacher(opts.teacher, self.device) if opts.teacher else None
        self.rows: list[dict] = []
        self.progress = _Progress()
        self.generator_state: torch.Tensor | None = None
        if opts.resume and self.state_path.exists():
            self._restore()
        else:
            self._start()
        self.model.to(self.device)
        self.optimizer = _make_optimizer(self.model, opts)
        if self._optimizer_state is not None:
            self.optimizer.load_state_dict(self._optimizer_state)

    def _start(self) -> None:
        if self.state_path.exists() or (self.metrics_path.exists() and self.metrics_path.read_text().count("\n") > 1):
            raise FileExistsError(f"{self.out} already holds a run; pass --resume to continue it or choose another "
                                  f"--out")
        if self.opts.init_from:
            init_weights_from(self.model, self.opts.init_from)
        warmup = min(self.steps_per_epoch, self.opts.epochs * self.steps_per_epoch - 1)
        self.schedule = Schedule(self.opts.schedule, self.opts.lr, self.opts.epochs * self.steps_per_epoch, warmup)
        self._optimizer_state = None
        self._saved_options = asdict(self.opts)

    def _restore(self) -> None:
        state = load_train_state(self.state_path)
        if state.get("format") != STATE_FORMAT:
            raise CheckpointError(f"{self.state_path}: a training state from an older pbkit (format "
                                  f"{state.get('format', 'pbkit-train-state-1')!r}); it cannot be resumed")
        _check_resume_options(state, self.opts, self.config, self.out)
        self.model.load_state_dict(state["model"])
        self._optimizer_state = state["optimizer"]
        self.schedule = Schedule.from_state(state["schedule"])
        self.schedule.extend(self.opts.epochs * self.steps_per_epoch)
        self.progress = _Progress(**state["progress"])
        self.generator_state = state["generator"]
        self.rows = list(state["rows"])
        self._saved_options = {**state["options"], "epochs": self.opts.epochs}

    def save_state(self) -> None:
        """The whole run in one file, atomically; then the metrics table it holds."""
        state = {"format": STATE_FORMAT, "config": self.config.to_dict(), "options": self._saved_options,
                 "model": {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()},
                 "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state(),
                 "progress": asdict(self.progress), "generator": self.generator_state, "rows": self.rows}
        save_train_state(state, self.state_path)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(METRICS_FIELDS)
        for row in self.rows:
            writer.writerow([row[k] for k in METRICS_FIELDS])
        atomic_write_bytes(self.metrics_path, buf.getvalue().encode())

    def write_config(self) -> None:
        (self.out / "config.json").write_text(json.dumps({"model": self.config.to_dict(), "train": self._saved_options,
                                                          "world_size": self.world}, indent=2))


def _epoch_order(run: _Run, epoch: int) -> tuple[torch.Tensor, torch.Generator]:
    """This epoch's data order and the generator its augmentation draws from (restored mid-epoch on resume)."""
    gen = torch.Generator().manual_seed(run.opts.seed * 1000 + epoch)
    order = torch.randperm(len(run.train_split), generator=gen)
    if run.generator_state is not None and run.progress.step > 0:
        gen.set_state(run.generator_state)
    return order, gen


def _loss(run: _Run, logits: torch.Tensor, batch: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if run.teacher is None:
        return F.cross_entropy(logits.float(), target, label_smoothing=run.opts.label_smoothing)
    with torch.no_grad():
        teacher_logits = run.teacher.float_forward(batch).float()
    return distillation_loss(logits.float(), teacher_logits, target, run.opts)


def _stop_requested(run: _Run, stop: _StopSignal) -> bool:
    """A signal, or the test hook; under torchrun every rank stops at the same step."""
    requested = stop.signum is not None or (run.opts.stop_after_steps is not None and
                                            run.schedule.step >= run.opts.stop_after_steps)
    if run.world > 1:
        flag = torch.tensor([int(requested)])
        torch.distributed.all_reduce(flag)
        requested = bool(flag.item())
    return requested


def _train_epoch(run: _Run, forward, images: torch.Tensor, labels: torch.Tensor, stop: _StopSignal,
                 show_progress: bool) -> bool:
    """Steps through the rest of the epoch in `run.progress`; False when stopped before its end."""
    opts, prog, epoch = run.opts, run.progress, run.progress.epoch
    order, gen = _epoch_order(run, epoch)
    use_bf16 = opts.precision == "bf16"
    t0 = time.time() - prog.seconds
    bar = tqdm(range(prog.step, run.steps_per_epoch), desc=f"epoch {epoch + 1}/{opts.epochs}",
               disable=not show_progress, file=sys.stderr, dynamic_ncols=True, initial=prog.step,
               total=run.steps_per_epoch)
    for step in bar:
        idx = order[step * opts.batch_size:(step + 1) * opts.batch_size].to(run.device)
        # Every rank draws the same augmentation for the global batch, then keeps its share.
        batch = cifar.augment(images[idx], gen)[run.rank::run.world].to(run.device, non_blocking=True)
        target = labels[idx][run.rank::run.world].to(run.device, non_blocking=True)
        run.schedule.apply(run.optimizer)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = forward(batch)
            loss = _loss(run, logits, batch, target)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.schedule.step += 1
        prog.step, prog.seen = step + 1, prog.seen + len(target)
        prog.loss_sum += float(loss.detach()) * len(target)
        prog.correct += int((logits.argmax(1) == target).sum())
        prog.seconds = time.time() - t0
        if step % 20 == 0:
            bar.set_postfix(loss=f"{prog.loss_sum / prog.seen:.3f}", acc=f"{prog.correct / prog.seen:.3f}",
                            img_s=f"{prog.seen / max(prog.seconds, 1e-9):.0f}")
        if step + 1 < run.steps_per_epoch and _stop_requested(run, stop):
            run.generator_state = gen.get_state()
            bar.close()
            return False
    bar.close()
    return True


def _finish_epoch(run: _Run, writer) -> dict:
    """Metrics of the epoch just done (rank 0 evaluates), saved with the state; the next epoch starts at 0."""
    prog = run.progress
    seen, loss_sum, correct = prog.seen, prog.loss_sum, prog.correct
    if run.world > 1:
        # BN running statistics move with each rank's own shard after the last forward; rank 0's
        # are the ones DDP broadcasts, so make them everyone's before evaluating and saving.
        for buffer in run.model.buffers():
            torch.distributed.broadcast(buffer, src=0)
        totals = torch.tensor([loss_sum, correct, seen], dtype=torch.float64)
        torch.distributed.all_reduce(totals)
        loss_sum, correct, seen = float(totals[0]), int(totals[1]), int(totals[2])
    row = {"epoch": prog.epoch + 1, "lr": run.schedule.values()[0], "train_loss": loss_sum / seen,
           "train_top1": correct / seen, "test_top1_qat": None, "images_per_s": seen / max(prog.seconds, 1e-9),
           "seconds": prog.seconds}
    run.progress, run.generator_state = _Progress(epoch=prog.epoch + 1), None
    if run.lead:  # rank 0 alone evaluates and writes; the others wait at the barrier
        row["test_top1_qat"] = _evaluate_float(run.model, run.test_split)
        run.rows.append(row)
        run.save_state()
        save_checkpoint(run.model, run.ckpt_path, extra={"epoch": row["epoch"], "test_top1_qat": row["test_top1_qat"]})
        print(json.dumps(row), file=sys.stderr, flush=True)
        if writer:
            for key in ("lr", "train_loss", "train_top1", "test_top1_qat", "images_per_s"):
                writer.add_scalar(key, row[key], row["epoch"])
            writer.flush()
    if run.world > 1:
        torch.distributed.barrier()
    return row


def train(config: ModelConfig, opts: TrainOptions, data_dir: str, out_dir: str | Path,
          progress: bool = True) -> dict:
    """Train (or resume); returns the last epoch's metrics, `params_sha256`, and `stopped` (with its epoch and
    step) when a signal or `stop_after_steps` ended it early. Rank 0 alone writes files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(config, opts, data_dir, out)
    if run.world > 1:
        torch.distributed.barrier()  # every rank has checked the run folder before rank 0 writes to it
    if run.lead:
        run.write_config()
    # On a GPU the whole training set (150 MB as uint8) lives there and is augmented there.
    images = torch.from_numpy(run.train_split.images).to(run.device)
    labels = torch.from_numpy(run.train_split.labels).to(run.device)
    writer = _tensorboard(out) if run.lead else None
    if run.world > 1:
        # DDP all-reduces gradients and broadcasts rank 0's BN statistics every step.
        forward = torch.nn.parallel.DistributedDataParallel(run.model)
    else:
        forward = make_step_forward(run.model, channels_last=opts.channels_last, compile=opts.compile)
    last: dict = run.rows[-1] if run.rows else {}
    stopped = False
    with _StopSignal() as stop:
        while run.progress.epoch < opts.epochs:
            run.model.set_binary_weights(run.progress.epoch >= binary_weight_epochs(opts))
            run.model.train()
            if not _train_epoch(run, forward, images, labels, stop, progress and run.lead):
                stopped = True
                if run.lead:
                    run.save_state()
                break
            last = _finish_epoch(run, writer)
            if opts.stop_after is not None and run.progress.epoch >= opts.stop_after:
                break
            if _stop_requested(run, stop):
                stopped = run.progress.epoch < opts.epochs
                break
    result = {**last, "params_sha256": params_fingerprint(run.model), "rank": run.rank, "world_size": run.world}
    if stopped:
        result["stopped"] = {"epoch": run.progress.epoch, "step": run.progress.step,
                             "signal": signal.Signals(stop.signum).name if stop.signum else None}
    if run.lead and run.rows:
        with contextlib.suppress(Exception):  # a plot must never cost the run
            from .plots import plot_training_curves

            plot_training_curves(run.metrics_path, out / "curves.png")
    return result
