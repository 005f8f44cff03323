"""Learning-rate (and Adam beta1) schedules as pure functions of the step, so that a run can be extended.

A schedule is planned over `planned_steps`. Its shape is a function of a *virtual* step v in
[0, planned_steps]; the real step s maps to v piecewise linearly, one piece per extension:

- a fresh run: v = s;
- `--resume --epochs` raising the total from T to T' at step s0 adds a piece that maps the new
  remaining steps [s0, T'] onto the rest of the planned schedule [v(s0), planned_steps]. An
  interrupted run therefore continues from the learning rate it had, and the decay that was left
  is stretched over the longer remainder. A finished run (v(s0) = planned_steps, nothing left)
  re-enters the planned schedule where a run planned for T' epochs from the start would be at
  step s0: v(s0) = s0 * planned_steps / T'.

Shapes (`lr_at`):
- onecycle: torch's OneCycleLR (pct_start 0.15, cos annealing, div 25, final div 1e4, beta1 cycled
  0.95 -> 0.85 -> 0.95), the same formula at every integer step of an unextended run;
- cosine: linear warm-up from 1 % over the first `warmup_steps`, then cosine decay to 0;
- linear: the same warm-up, then linear decay to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SCHEDULES = ("onecycle", "cosine", "linear")
_PCT_START, _DIV, _FINAL_DIV, _BETA_MAX, _BETA_MIN = 0.15, 25.0, 1e4, 0.95, 0.85


def _cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def lr_at(kind: str, v: float, planned_steps: int, peak_lr: float, warmup_steps: int) -> tuple[float, float | None]:
    """(learning rate, Adam beta1 or None to leave it) at virtual step v of a schedule planned over planned_steps."""
    if kind == "onecycle":
        up_end, down_end = _PCT_START * planned_steps - 1, planned_steps - 1
        initial, floor = peak_lr / _DIV, peak_lr / _DIV / _FINAL_DIV
        if v <= up_end:
            pct = v / up_end
            return _cos_anneal(initial, peak_lr, pct), _cos_anneal(_BETA_MAX, _BETA_MIN, pct)
        pct = min(1.0, (v - up_end) / (down_end - up_end))
        return _cos_anneal(peak_lr, floor, pct), _cos_anneal(_BETA_MIN, _BETA_MAX, pct)
    if kind not in ("cosine", "linear"):
        raise ValueError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
    if v < warmup_steps:
        return peak_lr * (0.01 + 0.99 * v / warmup_steps), None
    pct = min(1.0, (v - warmup_steps) / max(1, planned_steps - warmup_steps))
    return peak_lr * ((1 + math.cos(math.pi * pct)) / 2 if kind == "cosine" else 1 - pct), None


@dataclass
class Schedule:
    """The plan, its extensions, and the step count; `state()` round-trips through the training state."""

    kind: str
    peak_lr: float
    planned_steps: int
    warmup_steps: int
    step: int = 0
    # (real start step, real end step, virtual start step): one piece per extension.
    pieces: list[tuple[int, int, float]] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return self.pieces[-1][1] if self.pieces else self.planned_steps

    def virtual_step(self, s: int) -> float:
        for start, end, v_start in reversed(self.pieces):
            if s >= start:
                return v_start + (s - start) * (self.planned_steps - v_start) / max(1, end - start)
        return float(s)

    def values(self, s: int | None = None) -> tuple[float, float | None]:
        return lr_at(self.kind, self.virtual_step(self.step if s is None else s), self.planned_steps,
                     self.peak_lr, self.warmup_steps)

    def extend(self, total_steps: int) -> None:
        """Lengthen the run to `total_steps` from the current step (see the module docstring)."""
        if total_steps < self.total_steps:
            raise ValueError(f"cannot shorten a run planned for {self.total_steps} steps to {total_steps}")
        if total_steps == self.total_steps:
            return
        v0 = self.virtual_step(self.step)
        if v0 >= self.planned_steps:  # finished: where a run planned this long would be now
            v0 = self.step * self.planned_steps / total_steps
        self.pieces.append((self.step, total_steps, v0))

    def apply(self, optimizer) -> None:
        """Set every parameter group's learning rate (and beta1 for one-cycle) for the current step."""
        lr, beta1 = self.values()
        for group in optimizer.param_groups:
            group["lr"] = lr
            if beta1 is not None and "betas" in group:
                group["betas"] = (beta1, group["betas"][1])

    def state(self) -> dict:
        return {"kind": self.kind, "peak_lr": self.peak_lr, "planned_steps": self.planned_steps,
                "warmup_steps": self.warmup_steps, "step": self.step, "pieces": [list(p) for p in self.pieces]}

    @classmethod
    def from_state(cls, state: dict) -> Schedule:
        return cls(kind=state["kind"], peak_lr=float(state["peak_lr"]), planned_steps=int(state["planned_steps"]),
                   warmup_steps=int(state["warmup_steps"]), step=int(state["step"]),
                   pieces=[(int(a), int(b), float(c)) for a, b, c in state["pieces"]])
