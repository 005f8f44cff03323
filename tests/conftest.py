"""Shared fixtures: the stub firmware is built once and one QEMU serves the session.

Nothing here is skipped: without arm-none-eabi-gcc or qemu-system-arm the fixtures fail
with the build/emulator error, whose message says to run `make toolchain`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fw_support import EMULATED_BOARD, STUB_MODEL

from pbkit.host.build import BuildResult, build_firmware
from pbkit.host.emulator import Emulator
from pbkit.host.link import BoardLink


@pytest.fixture(scope="session")
def stub_firmware(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build_firmware(STUB_MODEL, EMULATED_BOARD, tmp_path_factory.mktemp("stub_fw"))


@pytest.fixture(scope="session")
def emulator(stub_firmware: BuildResult) -> Iterator[Emulator]:
    with Emulator(stub_firmware.elf, EMULATED_BOARD) as emu:
        yield emu


@pytest.fixture(scope="session")
def link(emulator: Emulator) -> Iterator[BoardLink]:
    with BoardLink(emulator.url, timeout=5.0) as lk:
        yield lk


def _model_firmware(root: Path, model) -> tuple[Path, BuildResult]:
    """Checkpoint, export and firmware for the emulated board: (checkpoint path, BuildResult)."""
    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.trainer.checkpoint import save_checkpoint
    from pbkit.trainer.fold import fold_model

    checkpoint = root / "model.safetensors"
    save_checkpoint(model, checkpoint)
    write_files(export_files(fold_model(model), get_board(EMULATED_BOARD), "fast", source="test"), root / "export")
    return checkpoint, build_firmware(root / "export", EMULATED_BOARD, root / "build")


@pytest.fixture(scope="session")
def real_model_firmware(tmp_path_factory: pytest.TempPathFactory):
    """A random 8-channel PopBin model: checkpoint, export, firmware for the emulated board."""
    from tests.support import random_model

    return _model_firmware(tmp_path_factory.mktemp("real_model"), random_model(8, seed=11))


@pytest.fixture(scope="session")
def real_model_emulator(real_model_firmware) -> Iterator[Emulator]:
    with Emulator(real_model_firmware[1].elf, EMULATED_BOARD) as emu:
        yield emu


@pytest.fixture(scope="session")
def baseline_model_firmware(tmp_path_factory: pytest.TempPathFactory):
    """A random 8-channel baseline model (requant blocks: multiply + shift) built for the emulated board."""
    from tests.support import random_model

    return _model_firmware(tmp_path_factory.mktemp("baseline_model"), random_model(8, seed=11, mode="baseline"))
