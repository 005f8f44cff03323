"""PlatformIO extra script (pre): builds the pbkit firmware exactly as `pbkit build` does.

host/build.py is the one description of the firmware: which sources (firmware_sources, the
model and the kernels: model_build_inputs), which compiler and linker flags (COMMON_FLAGS)
and which board facts (board_defines, from pbkit/boards.py). This script compiles those
sources, in that order, with those flags alone (plus the project's `build_flags`) in place
of the environment's, so what a platform adds to its own (ststm32's -Os, its float ABI) does
not reach them; platformio.ini sets
`build_src_filter = -<*>` so PlatformIO compiles nothing else.

It runs inside PlatformIO's Python, so host/build.py is loaded by path, from the repository or
from the installed pbkit whose firmware this is, rather than imported.

The model folder: $PBKIT_MODEL_DIR (a relative path is taken from the directory pio was
started in, $PWD), else `custom_model_dir` (relative to this folder). Only its top-level
*.c are compiled (a stray old/model.c below it is not). `pio project metadata` and `pio run
-t clean` work without a model: they only need the include paths and defines.
"""

import importlib.util
import os
import sys
from pathlib import Path

Import("env")  # noqa: F821 - provided by PlatformIO/SCons

project_dir = Path(env.subst("$PROJECT_DIR"))  # noqa: F821
# firmware/ of a checkout (beside host/ and pbkit/), or pbkit/firmware of an installed pbkit (beside pbkit/host).
repo_root = project_dir.parent
import_root = repo_root if (repo_root / "pbkit" / "__init__.py").is_file() else repo_root.parent
if str(import_root) not in sys.path:
    sys.path.insert(0, str(import_root))

_spec = importlib.util.spec_from_file_location("pbkit_firmware_build", repo_root / "host" / "build.py")
_build = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _build  # dataclasses look their module up there
_spec.loader.exec_module(_build)

from pbkit.boards import get_board  # noqa: E402

board = get_board(env.subst("$PIOENV"))  # noqa: F821 - env names are pbkit board names
protocol = env.GetProjectOption("custom_pbkit_protocol", _build.DEFAULT_PROTOCOL)  # noqa: F821


def model_dir_from(environ, project: Path, option: str) -> Path:
    """$PBKIT_MODEL_DIR (relative to the caller's $PWD) or custom_model_dir (relative to the project)."""
    given = environ.get("PBKIT_MODEL_DIR")
    if given:
        return (Path(environ.get("PWD") or os.getcwd()) / given).resolve()
    return (project / option).resolve()


def _cppdefine(flag):
    """'-DNAME=VALUE' -> SCons CPPDEFINES entry; strings are stringified so the quotes
    survive the shell."""
    name, _, value = flag[2:].partition("=")
    if value.startswith('"'):
        return (name, env.StringifyMacro(value.strip('"')))  # noqa: F821
    return (name, value)


def _object_name(source: Path, model_dir: Path) -> str:
    """Where a source's object goes under $BUILD_DIR/pbkit (one folder per origin)."""
    if source.is_relative_to(repo_root):
        return str(source.relative_to(repo_root).with_suffix(".o"))
    return str(Path("model") / source.relative_to(model_dir).with_suffix(".o"))


model_dir = model_dir_from(os.environ, project_dir, env.GetProjectOption("custom_model_dir"))  # noqa: F821
only_configuring = env.IsIntegrationDump() or env.IsCleanTarget()  # noqa: F821
try:
    model_sources, model_includes = _build.model_build_inputs(model_dir)
except _build.FirmwareBuildError as e:
    if not only_configuring:
        sys.stderr.write(f"pbkit: {e}; run `pbkit export` or set PBKIT_MODEL_DIR / custom_model_dir\n")
        env.Exit(1)  # noqa: F821
    model_sources, model_includes = [], [model_dir, _build.KERNELS_DIR]

flags = [f"-mcpu={board.cpu}", *_build.COMMON_FLAGS]
defines = [_cppdefine(f) for f in _build.board_defines(board)]
includes = [str(project_dir / "include"), *map(str, model_includes)]
env.Append(  # noqa: F821 - what the link and `pio project metadata` see
    CCFLAGS=flags,
    CPPDEFINES=defines,
    CPPPATH=includes,
    LIBPATH=[str(project_dir / "ld")],
    LINKFLAGS=[*flags, "-Wl,-Map=$BUILD_DIR/firmware.map"],
)
env.Replace(LDSCRIPT_PATH=str(_build.linker_script(board)))  # noqa: F821

# Overrides on the main environment: the tools (CC) are the platform's, set after this
# script runs, while the flags, defines and include paths are only pbkit's and the project's
# build_flags (a platform appends its own to the main environment, which these replace).
user = env.ParseFlagsExtended(env.get("BUILD_FLAGS") or [""])  # noqa: F821
overrides = dict(
    CCFLAGS=[*flags, *user.get("CCFLAGS", [])],
    CFLAGS=user.get("CFLAGS", []),
    CPPFLAGS=user.get("CPPFLAGS", []),
    CPPDEFINES=[*defines, *user.get("CPPDEFINES", [])],
    CPPPATH=[*includes, *user.get("CPPPATH", [])],
)
objects = [
    env.Object(target=f"$BUILD_DIR/pbkit/{_object_name(source, model_dir)}", source=str(source), **overrides)  # noqa: F821
    for source in [*_build.firmware_sources(board, protocol), *model_sources]
]
env.Append(PIOBUILDFILES=objects)  # noqa: F821 - linked in this order, as pbkit build lists them

if board.emulated:
    env.AddCustomTarget(  # noqa: F821
        name="qemu_stop",
        dependencies=None,
        actions=['"$PYTHONEXE" -m pbkit.host.qemu_upload --stop --pidfile "$BUILD_DIR/qemu.pid"'],
        title="Stop QEMU",
        description="stop the QEMU that `-t upload` started for this environment",
    )
