"""The import graph runs one way: trainer -> ir <- codegen <- host <- cli.

Every ``pbkit`` module's imports (``TYPE_CHECKING`` and function-local ones included) are read
with :mod:`ast` and each is checked against the layer of the module that makes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The repository folders of pbkit's packages (pbkit/trainer etc. are symlinks to them).
PACKAGES = {"pbkit": ROOT / "pbkit", "pbkit.trainer": ROOT / "trainer", "pbkit.codegen": ROOT / "codegen",
            "pbkit.host": ROOT / "host"}
#: Shared by every layer: the integer IR and the small modules with no pipeline in them.
BASE = {"pbkit", "pbkit.ir", "pbkit.boards", "pbkit.files", "pbkit.paths"}
#: What each layer may import besides the base and itself.
ALLOWED = {"base": set(), "trainer": set(), "codegen": set(), "host": {"codegen"},
           "cli": {"trainer", "codegen", "host"}}


def layer(module: str) -> str:
    """The layer of a module, or of a name imported from one (pbkit.ir.check_ranges: base)."""
    if module == "pbkit" or any(module.startswith(f"{base}.") for base in BASE - {"pbkit"}) or module in BASE:
        return "base"
    for name in ("trainer", "codegen", "host"):
        if module == f"pbkit.{name}" or module.startswith(f"pbkit.{name}."):
            return name
    return "cli"  # pbkit.cli, pbkit.__main__, pbkit.expected: the command line, which joins the others


def pbkit_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "pbkit" and parts[0] in ("trainer", "codegen", "host", "firmware"):
                continue  # the symlinks: read once, from their own folders
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported pbkit module) for every import in ``source``; relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pbkit.codegen import reference` imports pbkit.codegen.reference
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            found.append((node.lineno, target))
    top = {"pbkit", "trainer", "codegen", "host"}
    return [(line, name) for line, name in found if name.split(".")[0] in top]


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    mine = layer(module)
    out: dict[int, str] = {}  # one line each
    for line, name in imports(module, source, is_package):
        if name.split(".")[0] != "pbkit":
            out.setdefault(line, f"{module}:{line} imports {name}: import it as pbkit.{name}")
            continue
        theirs = layer(name)
        if theirs not in ("base", mine) and theirs not in ALLOWED[mine]:
            out.setdefault(line, f"{module}:{line} ({mine}) imports {name} ({theirs})")
    return list(out.values())


def test_imports_run_one_way():
    modules = pbkit_modules()
    assert {"pbkit.cli", "pbkit.ir", "pbkit.trainer.fold", "pbkit.codegen.export", "pbkit.host.bench"} <= set(modules)
    found = [v for name, path in modules.items() for v in violations(name, path.read_text(), path.stem == "__init__")]
    assert found == []


@pytest.mark.parametrize(("module", "source"), [
    ("pbkit.host.bench", "from pbkit.trainer.data import Split\n"),
    ("pbkit.codegen.export", "def f():\n    from pbkit.trainer.fold import fold_model\n"),
    ("pbkit.codegen.host_c", "from pbkit.host.build import model_build_inputs\n"),
    ("pbkit.trainer.fold", "from ..codegen import plan\n"),
    ("pbkit.ir", "from pbkit.trainer import fold\n"),
    ("pbkit.host.profile", "from pbkit import expected\n"),
    ("pbkit.host.link", "import trainer.data\n"),
])
def test_a_wrong_way_import_is_found(module, source):
    assert len(violations(module, source)) >= 1


def test_allowed_imports_pass():
    host = "from pbkit.codegen.ops import model_layers\nfrom .bench import check_board\n"
    assert violations("pbkit.host.profile", host) == []
    assert violations("pbkit.trainer.fold", "from pbkit.ir import check_ranges\nfrom .quantizers import q\n") == []
    assert violations("pbkit.expected", "from pbkit.host.bench import Expected\nfrom pbkit.trainer import fold\n") == []
