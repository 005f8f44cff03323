"""Shared fixtures: the stub firmware is built once per emulated board, and one QEMU per board
serves the session (pytest runs the tests of one board before starting the next board's QEMU).

Nothing here is skipped: without arm-none-eabi-gcc or qemu-system-arm the fixtures fail
with the build/emulator error, whose message says to run `make toolchain`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fw_support import EMULATED_BOARD, EMULATED_BOARDS, STUB_MODEL

from pbkit.host.build import BuildResult, build_firmware
from pbkit.host.emulator import Emulator
from pbkit.host.link import BoardLink


@pytest.fixture(scope="session", params=EMULATED_BOARDS)
def emulated_board(request: pytest.FixtureRequest) -> str:
    """Each emulated board in turn: every test that uses the stub firmware runs on all of them."""
    return request.param


@pytest.fixture(scope="session")
def stub_firmware(emulated_board: str, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build_firmware(STUB_MODEL, emulated_board, tmp_path_factory.mktemp(f"stub_fw_{emulated_board}"))


@pytest.fixture(scope="session")
def emulator(stub_firmware: BuildResult) -> Iterator[Emulator]:
    with Emulator(stub_firmware.elf, stub_firmware.board) as emu:
        yield emu


@pytest.fixture(scope="session")
def link(emulator: Emulator) -> Iterator[BoardLink]:
    with BoardLink(emulator.url, timeout=5.0) as lk:
        yield lk


def _export(root: Path, model, kernel: str = "fast") -> tuple[Path, Path]:
    """Checkpoint and C export of ``model``: (checkpoint path, export folder). The C does not depend
    on the board (only the exporter's fit check does), so one export serves every board."""
    from pbkit.boards import get_board
    from pbkit.codegen.export import export_files, write_files
    from pbkit.codegen.kernel import Kernel
    from pbkit.trainer.checkpoint import save_checkpoint
    from pbkit.trainer.fold import fold_model

    checkpoint = root / "model.safetensors"
    save_checkpoint(model, checkpoint)
    files = export_files(fold_model(model), get_board(EMULATED_BOARD), Kernel.parse(kernel), source="test")
    write_files(files, root / "export")
    return checkpoint, root / "export"


@pytest.fixture(scope="session")
def model_exports(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], tuple[Path, Path]]:
    """``get(mode, kernel)`` -> (checkpoint, export folder) of the random 8-channel model of that mode
    ("ternary": PopBin with three branch levels; "multfree": the same with the bit-plane stem and the shift
    head), exported with that popcount kernel; each is made once,
    on first use, and shared by every board."""
    from tests.support import random_model

    made: dict[tuple[str, str], tuple[Path, Path]] = {}

    def get(mode: str, kernel: str) -> tuple[Path, Path]:
        if (mode, kernel) not in made:
            root = tmp_path_factory.mktemp(f"{mode}_{kernel}_model")
            if mode == "multfree":  # --stem bitplanes --head shift, ternary blocks: no multiply anywhere
                model = random_model(8, seed=11, branch_levels=3, stem="bitplanes", head="shift")
            else:
                model = (random_model(8, seed=11, branch_levels=3) if mode == "ternary"
                         else random_model(8, seed=11, mode=mode))
            made[(mode, kernel)] = _export(root, model, kernel)
        return made[(mode, kernel)]

    return get


@pytest.fixture(scope="session")
def model_firmware(model_exports, tmp_path_factory: pytest.TempPathFactory):
    """``get(mode, kernel, board)`` -> (checkpoint, BuildResult): model_exports built for a board,
    once per session."""
    built: dict[tuple[str, str, str], tuple[Path, BuildResult]] = {}

    def get(mode: str, kernel: str, board: str) -> tuple[Path, BuildResult]:
        if (mode, kernel, board) not in built:
            checkpoint, export = model_exports(mode, kernel)
            out = tmp_path_factory.mktemp(f"{mode}_{kernel}_{board}_fw")
            built[(mode, kernel, board)] = checkpoint, build_firmware(export, board, out)
        return built[(mode, kernel, board)]

    return get


@pytest.fixture(scope="session")
def real_model_firmware(model_firmware):
    """A random 8-channel PopBin model: checkpoint and firmware (fast kernel) for the emulated board."""
    return model_firmware("popbin", "fast", EMULATED_BOARD)


@pytest.fixture(scope="session")
def real_model_emulator(real_model_firmware) -> Iterator[Emulator]:
    with Emulator(real_model_firmware[1].elf, EMULATED_BOARD) as emu:
        yield emu


@pytest.fixture(scope="session")
def baseline_model_firmware(model_firmware):
    """A random 8-channel baseline model (requant blocks: multiply + shift) built for the emulated board."""
    return model_firmware("baseline", "fast", EMULATED_BOARD)
