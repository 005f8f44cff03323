"""Where pbkit's non-Python parts live: the one resolver of packaged files.

Every file pbkit reads at run time besides its Python modules (the firmware sources, the
shipped model and test sample, the code generator's templates) is package data, found here
through :mod:`importlib.resources`, so a source checkout, an editable install and an
installed wheel give the same answers. (The design card's top-level folders, trainer/,
codegen/, host/ and firmware/, are the subpackages pbkit.trainer, ... through symlinks in
pbkit/: the wheel holds them as pbkit/trainer/, ..., pbkit/firmware/.)

Third-party material (CIFAR-10, CMSIS-NN, the MLPerf Tiny runner) is never packaged: its
default place is ``SHARED``, the ``shared/`` folder beside a source checkout (``../shared``
of the working folder when pbkit is installed), and each user of it takes an option or an
environment variable first.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _package_dir() -> Path:
    root = files("pbkit")
    if not isinstance(root, Path):  # a zip import: C compilers and QEMU need real files
        raise ImportError(f"pbkit must be installed as files on disk, not from {root}: pip install it")
    return root.resolve()


#: The installed (or checked-out) pbkit package folder.
PACKAGE_DIR = _package_dir()


def _in_package(*parts: str) -> Path:
    """A packaged file or folder, symlinks resolved: in a checkout pbkit/firmware is firmware/, the
    folder that tools changing into it (PlatformIO, make) see."""
    return PACKAGE_DIR.joinpath(*parts).resolve()


#: The firmware and kernel sources, linker scripts and PlatformIO project (firmware/ in the repo).
FIRMWARE_DIR = _in_package("firmware")
#: The shipped pretrained model and its card.
PRETRAINED = _in_package("pretrained")
#: The first 1,000 CIFAR-10 test images (`--data sample`).
SAMPLE_DATA = _in_package("data", "cifar10_test_first1000.npz")
#: Jinja templates of the C code generators (one per generated file).
TEMPLATES = _in_package("codegen", "templates")
INT8_TEMPLATES = _in_package("codegen", "int8", "templates")


def _checkout(package_dir: Path) -> Path | None:
    """The source checkout pbkit runs from, or None for an installed wheel."""
    root = package_dir.parent
    return root if (root / "pyproject.toml").is_file() and (root / "tests").is_dir() else None


#: The source checkout (None when pbkit runs from an installed wheel).
CHECKOUT = _checkout(PACKAGE_DIR)
#: Where pbkit keeps its own work files by default (PlatformIO's offline core): the checkout's build/,
#: else build/ of the working folder, as for `pbkit demo --workdir`.
BUILD_DIR = CHECKOUT / "build" if CHECKOUT else Path("build").absolute()
#: Default place of the third-party material (the project keeps it in ../shared).
SHARED = (CHECKOUT.parent if CHECKOUT else Path.cwd().parent) / "shared"


def packaged(path: Path, what: str) -> Path:
    """``path`` when it exists, else a clear error: the installation lacks ``what``."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} is missing from this pbkit installation (reinstall pbkit; "
                                "a source checkout has it in the repository)")
    return path
