"""PlatformIO extra script (pre): pbkit board facts, the model sources, and our linking.

Runs inside PlatformIO's own Python, so pbkit is loaded from the repository by path
rather than imported from an installed package.
"""

import importlib.util
import os
import sys
from pathlib import Path

Import("env")  # noqa: F821 - provided by PlatformIO/SCons

project_dir = Path(env.subst("$PROJECT_DIR"))  # noqa: F821
repo_root = project_dir.parent
if str(repo_root) not in sys.path:
    sys.path.insert(0, str(repo_root))

_spec = importlib.util.spec_from_file_location("pbkit_firmware_build", repo_root / "host" / "build.py")
_build = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _build  # dataclasses look their module up there
_spec.loader.exec_module(_build)

from pbkit.boards import get_board  # noqa: E402

board = get_board(env.subst("$PIOENV"))  # noqa: F821 - env names are pbkit board names
model_dir = Path(os.environ.get("PBKIT_MODEL_DIR") or project_dir / env.GetProjectOption("custom_model_dir"))  # noqa: F821
model_dir = model_dir.resolve()
try:
    model_sources, model_includes = _build.model_build_inputs(model_dir)
except _build.FirmwareBuildError as e:
    sys.stderr.write(f"pbkit: {e}; run the code generator or set custom_model_dir\n")
    env.Exit(1)  # noqa: F821


def _cppdefine(flag):
    """'-DNAME=VALUE' -> SCons CPPDEFINES entry; strings are stringified so the quotes
    survive the shell."""
    name, _, value = flag[2:].partition("=")
    if value.startswith('"'):
        return (name, env.StringifyMacro(value.strip('"')))  # noqa: F821
    return (name, value)


env.Append(  # noqa: F821
    CPPDEFINES=[_cppdefine(f) for f in _build.board_defines(board)],
    CPPPATH=[str(project_dir / "include"), *map(str, model_includes)],
    LIBPATH=[str(project_dir / "ld")],
    LINKFLAGS=["-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", "-mfloat-abi=soft"],
)
for _dir in sorted({s.parent for s in model_sources}):
    env.BuildSources(f"$BUILD_DIR/pbkit_{_dir.name}", str(_dir))  # noqa: F821
