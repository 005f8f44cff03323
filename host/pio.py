"""PlatformIO without its registry: `pio run` on the local platform (firmware/pio-platform).

PlatformIO runs every build through SCons from its `tool-scons` package, which it downloads
from its registry on first use. Offline, :func:`offline_core` lays SCons from PyPI (the
`scons` wheel the `platformio` extra installs) out as that package in a PlatformIO core
folder: ``packages/tool-scons/`` with PlatformIO's package manifest (package.json), its
install record (.piopm, owner platformio), the SCons package under ``scons-local-X.Y.Z/``
and the ``scons.py`` launcher PlatformIO starts. The local platform builds with the
arm-none-eabi-gcc on PATH, so nothing else is downloaded. The builds go to a workspace outside the
project (DEFAULT_WORKSPACE_DIR: build/pio), so `pio run` on an installed pbkit writes nothing into it.

    python -m pbkit.host.pio run -e nucleo_h743zi       # any pio arguments
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from pbkit.paths import BUILD_DIR, FIRMWARE_DIR

OFFLINE_CONF = FIRMWARE_DIR / "pio-platform" / "platformio-offline.ini"
DEFAULT_CORE_DIR = BUILD_DIR / "pio-core"
#: PlatformIO's workspace (its build folders, .sconsign, the QEMU pid file of an upload) for the firmware
#: project: never the project's own .pio, which for an installed pbkit is inside site-packages. It is build/pio
#: of the checkout, or of the working folder for an installed pbkit (beside build/pio-core).
DEFAULT_WORKSPACE_DIR = BUILD_DIR / "pio"

_SCONS_LAUNCHER = '''"""SCons launcher of a pbkit-made tool-scons package: SCons {version} from PyPI."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scons-local-{version}"))
from SCons.Script.Main import main  # noqa: E402

if __name__ == "__main__":
    main()
'''


class PioError(RuntimeError):
    """PlatformIO or SCons is missing or does not match; the message says what to install."""


def _require(module: str) -> ModuleType:
    try:
        return __import__(module)
    except ImportError:
        raise PioError(f"{module} is not installed: pip install -e '.[platformio]' (`make venv` does)") from None


def tool_scons_version(scons_version: str) -> str:
    """PlatformIO's name for an SCons release: 4.11.1 -> 4.41101.0."""
    major, minor, patch = (int(p) for p in scons_version.split(".")[:3])
    return f"{major}.{major * 10000 + minor * 100 + patch}.0"


def required_tool_scons() -> str:
    """The tool-scons requirement of the installed PlatformIO (e.g. ~4.41101.0)."""
    _require("platformio")
    from platformio.dependencies import get_core_dependencies

    return get_core_dependencies()["tool-scons"]


def offline_core(core_dir: Path = DEFAULT_CORE_DIR) -> Path:
    """Makes ``core_dir`` a PlatformIO core folder whose tool-scons is PyPI's SCons; returns it."""
    import semantic_version

    scons = _require("SCons")
    from SCons import __version__ as scons_version

    version = tool_scons_version(scons_version)
    required = required_tool_scons()
    if semantic_version.Version(version) not in semantic_version.SimpleSpec(required):
        raise PioError(f"PlatformIO needs tool-scons {required}, but SCons {scons_version} (tool-scons {version}) "
                       "is installed: pip install the scons release PlatformIO pins (pyproject.toml, [platformio])")
    package = Path(core_dir) / "packages" / "tool-scons"
    manifest = {"name": "tool-scons", "version": version, "description": f"SCons {scons_version} from PyPI",
                "keywords": ["build tools"], "license": "MIT"}
    if not package.is_dir() or json.loads((package / "package.json").read_text()) != manifest:
        shutil.rmtree(package, ignore_errors=True)
        shutil.copytree(Path(scons.__file__).parent, package / f"scons-local-{scons_version}" / "SCons",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (package / "scons.py").write_text(_SCONS_LAUNCHER.format(version=scons_version))
        (package / ".piopm").write_text(json.dumps({
            "type": "tool", "name": "tool-scons", "version": version,
            "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": required, "uri": None},
        }))
        (package / "package.json").write_text(json.dumps(manifest))
    return Path(core_dir)


def pio_environ(core_dir: Path, model_dir: Path | None = None, base: dict | None = None,
                workspace_dir: Path = DEFAULT_WORKSPACE_DIR) -> dict[str, str]:
    """Environment for an offline `pio`: the core folder, the workspace (where the builds go: outside the
    firmware project, which may be an installed package), no telemetry or update checks. A build folder the
    caller's environment names (PLATFORMIO_BUILD_DIR) is kept."""
    environ = dict(os.environ if base is None else base)
    environ.update({
        "PLATFORMIO_CORE_DIR": str(core_dir),
        "PLATFORMIO_WORKSPACE_DIR": str(Path(workspace_dir).absolute()),
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
        "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650",
        "PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD": "0",
        "PLATFORMIO_NO_ANSI": "true",
    })
    if model_dir is not None:
        environ["PBKIT_MODEL_DIR"] = str(Path(model_dir).resolve())
    return environ


def pio_command(args: list[str], offline: bool = True) -> list[str]:
    """`pio ARGS`; `pio run` in firmware/, with the offline configuration. (`pio project
    metadata` has no -c: offline, run what it runs, `pio run -t __idedata -e ENV`.)"""
    cmd = [sys.executable, "-m", "platformio", *args]
    if args[:1] == ["run"]:
        cmd += ["-d", str(FIRMWARE_DIR)]
        if offline:
            cmd += ["-c", str(OFFLINE_CONF)]
    return cmd


def run_pio(args: list[str], *, core_dir: Path = DEFAULT_CORE_DIR, model_dir: Path | None = None,
            workspace_dir: Path = DEFAULT_WORKSPACE_DIR, timeout: float | None = None,
            capture: bool = True) -> subprocess.CompletedProcess:
    """Runs `pio ARGS` offline (local platform) with ``core_dir`` laid out first; the builds go to
    ``workspace_dir``/build/ENV."""
    offline_core(core_dir)
    return subprocess.run(pio_command(args), env=pio_environ(core_dir, model_dir, workspace_dir=workspace_dir),
                          capture_output=capture, text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    try:
        return run_pio(args, capture=False).returncode
    except PioError as exc:
        print(f"pbkit pio: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
