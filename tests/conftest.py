"""Shared fixtures: the stub firmware is built once and one QEMU serves the session.

Nothing here is skipped: without arm-none-eabi-gcc or qemu-system-arm the fixtures fail
with the build/emulator error, whose message says to run `make toolchain`.
"""

from __future__ import annotations

from collections.abc import Iterator

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
