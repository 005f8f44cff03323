"""Compile an exported model for the host with gcc and run it on images: the C side of parity."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pbkit.paths import FIRMWARE_DIR

from .build import model_build_inputs


class HostBuildError(RuntimeError):
    pass


@dataclass
class HostResult:
    classes: np.ndarray  # int64 [N]
    logits: np.ndarray  # int64 [N, classes]


def build_host(model_dir: Path, out: Path | None = None, cc: str = "gcc", flags: tuple[str, ...] = ("-O2",)) -> Path:
    """Build firmware/host/pb_host_runner.c + the kernels + the exported model into an executable."""
    model_dir = Path(model_dir)
    if shutil.which(cc) is None:
        raise HostBuildError(f"{cc} not found: a host C compiler is needed to check the export")
    out = Path(out) if out else model_dir / "build" / "host" / "pb_host_runner"
    out.parent.mkdir(parents=True, exist_ok=True)
    sources, includes = model_build_inputs(model_dir, kernels=True)
    cmd = [cc, *flags, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIRMWARE_DIR / 'include'}",
           *(f"-I{d}" for d in includes), str(FIRMWARE_DIR / "host" / "pb_host_runner.c"), *map(str, sources),
           "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise HostBuildError(f"host build failed:\n{' '.join(cmd)}\n{result.stderr}")
    return out


def run_host(executable: Path, images: np.ndarray, num_classes: int) -> HostResult:
    """Run the host build on uint8 images N x C x H x W."""
    data = np.ascontiguousarray(images, dtype=np.uint8).tobytes()
    result = subprocess.run([str(executable)], input=data, capture_output=True)
    if result.returncode != 0:
        raise HostBuildError(f"{executable} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    rows = np.frombuffer(result.stdout, dtype="<i4").reshape(len(images), 1 + num_classes)
    return HostResult(classes=rows[:, 0].astype(np.int64), logits=rows[:, 1:].astype(np.int64))
