"""`pip install .` gives a pbkit that works away from the checkout.

The wheel is built from a copy of the repository's files (offline: no build isolation, no
index), installed into a fresh venv that borrows this venv's third-party packages (torch, numpy,
...) through a .pth file instead of downloading them, and its `pbkit` runs demo, export, build,
emulate, bench and eval from a folder outside the checkout, and `python -m pbkit.host.pio run` builds
the packaged firmware into that folder, writing nothing into the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import zipfile
from pathlib import Path

import pytest
from fw_support import tree_snapshot

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[1]
#: Seconds for one command under a loaded machine (a QEMU reply may take minutes beside training).
COMMAND_TIMEOUT = 900
REPLY_TIMEOUT = "600"


def _repository_files() -> list[str]:
    """What `pip install .` of a clean checkout sees: tracked files and untracked ones git does not ignore."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and os.path.lexists(ROOT / name)]


def _copy_tree(names: list[str], dest: Path) -> None:
    for name in names:
        src, dst = ROOT / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def _run(args: list, cwd: Path, env: dict, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n" \
                                   f"{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git not found: the wheel is built from the files git lists")
    work = tmp_path_factory.mktemp("wheel")
    _copy_tree(_repository_files(), work / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(work / "dist"), str(work / "src")], check=True, capture_output=True, timeout=600)
    (built,) = (work / "dist").glob("pbkit-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict]:
    """A fresh venv with the wheel installed; (its bin folder, the environment to run it in)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    purelib = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()"
                                   "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    # This venv's packages, after the fresh venv's own (the .pth lines of that folder, such as an editable
    # pbkit's finder, are not run: only those of the site folder itself are).
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "borrowed_from_test_venv.pth").write_text("".join(f"{p}\n" for p in sorted(borrowed)))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv / "bin", env


def test_the_wheel_holds_every_file_a_command_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = [n for n in _repository_files() if not (ROOT / n).is_symlink()]
    packaged = {n for n in tracked if n.split("/")[0] in ("firmware", "trainer", "codegen", "host")}
    packaged |= {n for n in tracked if n.startswith(("pbkit/data/", "pbkit/pretrained/")) or
                 (n.startswith("pbkit/") and n.endswith(".py"))}
    expected = {n if n.startswith("pbkit/") else f"pbkit/{n}" for n in packaged}
    assert expected - names == set()
    assert not any("__pycache__" in n or "/.pio/" in n for n in names)


def test_the_installed_pbkit_runs_from_outside_the_checkout(installed, tmp_path):
    bin_dir, env = installed
    pbkit = bin_dir / "pbkit"
    where = _run([bin_dir / "python", "-c", "import json, pbkit, pbkit.paths as p, pbkit.zoo as z; print(json.dumps("
                  "[pbkit.__file__, str(p.CHECKOUT), str(z.default_model().checkpoint)]))"], tmp_path, env)
    module, checkout, checkpoint = json.loads(where.stdout)
    assert Path(module).is_relative_to(bin_dir.parent) and checkout == "None"
    assert not Path(checkpoint).is_relative_to(ROOT) and Path(checkpoint).is_file()

    out = json.loads(_run([pbkit, "export", checkpoint, "--out", "model", "--vectors", "2", "--json"], tmp_path,
                          env).stdout)
    assert out["model_sha256"]
    built = json.loads(_run([pbkit, "build", "model", "--json"], tmp_path, env).stdout)
    elf = Path(tmp_path, built["elf"])
    assert elf.is_file()

    # PlatformIO on the packaged firmware builds into the working folder's build/, not into site-packages.
    package = Path(module).parent
    before = tree_snapshot(package)
    _run([bin_dir / "python", "-m", "pbkit.host.pio", "run", "-e", "nucleo_f446re"], tmp_path,
         {**env, "PBKIT_MODEL_DIR": "model", "PWD": str(tmp_path)})
    assert (tmp_path / "build" / "pio" / "build" / "nucleo_f446re" / "firmware.elf").is_file()
    assert tree_snapshot(package) == before

    emulate = subprocess.Popen([str(pbkit), "emulate", str(elf)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(emulate.stdout.readline()), daemon=True)
        reader.start()
        reader.join(COMMAND_TIMEOUT)
        url = first[0].strip() if first else ""
        assert url.startswith("socket://"), f"pbkit emulate printed {first}: {emulate.stderr.read() if not url else ''}"
        bench = json.loads(_run([pbkit, "bench", "--port", url, "--checkpoint", checkpoint, "--limit", "2",
                                 "--timeout", REPLY_TIMEOUT, "--report", "bench.json", "--json"], tmp_path,
                                env).stdout)
    finally:
        emulate.terminate()
        emulate.wait(60)
    assert bench["images"] == 2 and bench["agreement"] == 1.0

    result = json.loads(_run([pbkit, "eval", checkpoint, "--data", "sample", "--limit", "8", "--json"], tmp_path,
                             env).stdout)
    assert result["images"] == 8 and result["float_integer_disagreement"] == 0.0

    _run([pbkit, "demo", "--limit", "2", "--instances", "1", "--timeout", REPLY_TIMEOUT], tmp_path, env)
    demo = json.loads((tmp_path / "report.json").read_text())
    assert demo["images"] == 2 and demo["agreement"] == 1.0
    assert not any(ROOT in p.parents for p in map(Path, [module, checkpoint]))
