"""host/pio.py, firmware/platformio.ini, firmware/pbkit_env.py and the local platform: `pio run`
builds every environment offline into the same ELF as `pbkit build`, the emulated board's
upload boots QEMU for `pbkit bench`, and the model folder is found the way the README says.

PlatformIO runs for real (the `platformio` extra), with the local platform in
firmware/pio-platform and tool-scons laid out from PyPI's SCons: no registry, no network.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from fw_support import STUB_MODEL, tree_snapshot

from pbkit.boards import BOARDS, get_board
from pbkit.host import pio
from pbkit.host.build import FIRMWARE_DIR, build_firmware, linker_script

EMULATED_ENV = "netduinoplus2"


def _ini() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(FIRMWARE_DIR / "platformio.ini")
    return ini


ENVS = sorted(s.removeprefix("env:") for s in _ini().sections() if s.startswith("env:"))


@pytest.fixture(scope="module")
def pio_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An offline PlatformIO core and a workspace (its build folders) outside the source tree."""
    root = tmp_path_factory.mktemp("pio")
    workspace = root / "workspace"
    return {"core": pio.offline_core(root / "core"), "workspace": workspace, "build": workspace / "build"}


def _pio(pio_dirs, args: list[str], model_dir: Path | None, cwd: Path | None = None,
         extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = pio.pio_environ(pio_dirs["core"], model_dir, workspace_dir=pio_dirs["workspace"])
    env.update(extra_env or {})
    return subprocess.run(pio.pio_command(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def _elf_facts(elf: Path) -> tuple[dict[str, int], set[tuple]]:
    """Sizes of the sections that occupy the target, and every symbol (name, address, size, type)
    but the per-file ones, whose names carry the build folders."""
    with open(elf, "rb") as f:
        e = ELFFile(f)
        sections = {s.name: s["sh_size"] for s in e.iter_sections() if s["sh_flags"] & 0x2}  # SHF_ALLOC
        symtab = e.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        symbols = {(s.name, s["st_value"], s["st_size"], s["st_info"]["type"])
                   for s in symtab.iter_symbols()
                   if s.name and s["st_info"]["type"] != "STT_FILE"}
    return sections, symbols


def test_platformio_pins_platform_and_a_gcc12_toolchain() -> None:
    common = _ini()["env"]
    assert re.fullmatch(r"platformio/ststm32@\d+\.\d+\.\d+", common["platform"])
    # ststm32's toolchain-gccarmnoneeabi versions are 1.MMmmpp.0: GCC 12.3.1 is 1.120301.
    assert re.fullmatch(r"platformio/toolchain-gccarmnoneeabi@~1\.12\d{4}\.0", common["platform_packages"])
    text = (FIRMWARE_DIR / "platformio.ini").read_text()
    assert "GCC 7.2" in text and "__sadd16" in text  # the reason stands beside the pin


def test_envs_are_the_boards_with_their_linker_scripts() -> None:
    ini = _ini()
    assert set(ENVS) == {n for n, b in BOARDS.items() if not b.emulated} | {EMULATED_ENV}
    boards_dir = FIRMWARE_DIR / "pio-platform" / "boards"
    for name in ENVS:
        section, board = ini[f"env:{name}"], get_board(name)
        assert FIRMWARE_DIR / section["board_build.ldscript"] == linker_script(board)
        # The local platform's board manifest tells PlatformIO the same facts as pbkit/boards.py.
        manifest = json.loads((boards_dir / f"{section['board']}.json").read_text())
        assert manifest["build"]["cpu"] == board.cpu
        assert (manifest["upload"]["maximum_size"], manifest["upload"]["maximum_ram_size"]) == (
            board.flash_bytes, board.ram_bytes)
    assert "pbkit.host.qemu_upload" in ini[f"env:{EMULATED_ENV}"]["upload_command"]


def test_tool_scons_is_pypi_scons_laid_out_for_platformio(pio_dirs) -> None:
    assert pio.tool_scons_version("4.11.1") == "4.41101.0"
    package = pio_dirs["core"] / "packages" / "tool-scons"
    meta = json.loads((package / ".piopm").read_text())
    assert meta["spec"]["owner"] == "platformio" and meta["name"] == "tool-scons"
    run = subprocess.run([sys.executable, str(package / "scons.py"), "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and "SCons" in run.stdout


def test_pio_run_offline_builds_every_env_as_pbkit_build_does(pio_dirs, model_exports, tmp_path: Path) -> None:
    _, export = model_exports("popbin", "fast")
    run = _pio(pio_dirs, ["run", *(a for env in ENVS for a in ("-e", env))], export)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for env in ENVS:
        pbkit_elf = build_firmware(export, env, tmp_path / env).elf
        pio_sections, pio_symbols = _elf_facts(pio_dirs["build"] / env / "firmware.elf")
        sections, symbols = _elf_facts(pbkit_elf)
        assert pio_sections == sections, env
        assert pio_symbols == symbols, (env, sorted(pio_symbols ^ symbols)[:10])
        assert "pb_binconv3x3_popbin" in {s[0] for s in symbols}  # the kernels are in


def test_upload_boots_qemu_and_pbkit_bench_agrees(pio_dirs, model_exports) -> None:
    """The README's path: pio run -e netduinoplus2 -t upload, then pbkit bench on the URL it prints."""
    checkpoint, export = model_exports("popbin", "fast")
    upload = _pio(pio_dirs, ["run", "-e", EMULATED_ENV, "-t", "upload"], export)
    try:
        assert upload.returncode == 0, upload.stdout[-3000:] + upload.stderr[-2000:]
        url = re.search(r"^(socket://127\.0\.0\.1:\d+)$", upload.stdout, re.M).group(1)
        bench = subprocess.run([sys.executable, "-m", "pbkit", "bench", "--port", url, "--checkpoint", str(checkpoint),
                                "--limit", "8", "--json"], capture_output=True, text=True, timeout=300)
        assert bench.returncode == 0, bench.stderr
        summary = json.loads(bench.stdout)
        assert (summary["images"], summary["agreement"], summary["board"]) == (8, 1.0, EMULATED_ENV)
    finally:
        stop = _pio(pio_dirs, ["run", "-e", EMULATED_ENV, "-t", "qemu_stop"], export)
    assert stop.returncode == 0 and "QEMU stopped" in stop.stdout, stop.stdout[-2000:]


def test_relative_model_dir_is_taken_from_the_caller_and_not_recursively(pio_dirs, tmp_path: Path) -> None:
    """... and the build writes nothing into the firmware project (for an installed pbkit: site-packages)."""
    model = tmp_path / "models" / "stub"
    shutil.copytree(STUB_MODEL, model)
    (model / "old").mkdir()
    (model / "old" / "model.c").write_text("this is an old copy, not C\n")  # must not be compiled
    before = tree_snapshot(FIRMWARE_DIR)
    run = _pio(pio_dirs, ["run", "-e", "nucleo_f446re"], None, cwd=tmp_path / "models",
               extra_env={"PBKIT_MODEL_DIR": "stub", "PWD": str(tmp_path / "models")})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "old/model" not in run.stdout
    assert (pio_dirs["build"] / "nucleo_f446re" / "firmware.elf").is_file()
    assert tree_snapshot(FIRMWARE_DIR) == before


def test_builds_go_to_a_workspace_outside_the_firmware_project() -> None:
    env = pio.pio_environ(Path("core"), base={})
    workspace = Path(env["PLATFORMIO_WORKSPACE_DIR"])
    assert workspace == pio.DEFAULT_WORKSPACE_DIR.absolute() and not workspace.is_relative_to(FIRMWARE_DIR)


def test_project_metadata_needs_no_model(pio_dirs, tmp_path: Path) -> None:
    """`pio project metadata` runs `pio run -t __idedata`; with no model folder it still reports
    the include paths and the board's defines."""
    run = _pio(pio_dirs, ["run", "-e", "nucleo_h743zi", "-t", "__idedata"], None,
               extra_env={"PBKIT_MODEL_DIR": str(tmp_path / "no-model-here")})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    data = json.loads(next(line for line in run.stdout.splitlines() if line.startswith('{"build_type"')))
    assert str(FIRMWARE_DIR / "include") in data["includes"]["build"]
    assert 'PB_BOARD_NAME="nucleo_h743zi"' in data["defines"] and "-mcpu=cortex-m7" in data["cc_flags"]


def test_missing_model_fails_the_build_with_the_reason(pio_dirs, tmp_path: Path) -> None:
    run = _pio(pio_dirs, ["run", "-e", "nucleo_f446re"], tmp_path)
    assert run.returncode != 0
    assert "no model sources" in run.stdout + run.stderr


def test_qemu_stop_without_a_running_qemu_is_harmless(tmp_path: Path) -> None:
    from pbkit.host import qemu_upload

    assert qemu_upload.stop(tmp_path / "none.pid") is False
    (tmp_path / "stale.pid").write_text(f"{2**22 + 12345}\n")  # no such process
    assert qemu_upload.stop(tmp_path / "stale.pid") is False and not (tmp_path / "stale.pid").exists()
