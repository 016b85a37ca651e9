"""The import graph is layered as docs/ARCHITECTURE.md says: imports point only downward.

Every import counts, the lazy ones inside functions too: a lazy import that runs up a layer is
still a dependency on it, only a hidden one. The ranks below are the architecture document's
table; a module that fits no row fails the test, so a new folder has to be placed on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: layer of every unit (a sub-package of cottoncandy, or a top-level module), lowest first
RANKS = {
    # leaf modules: shared by every layer, import nothing of the project
    "config": 0, "errors": 0, "names": 0, "printable": 0, "progress": 0, "messages": 0, "singleflight": 0,
    "fastpaths": 0, "changes": 0, "waits": 0, "mounttable": 0,
    # the core
    "storage": 1, "formats": 2, "namespace": 3, "cache": 4,
    # services over the core
    "files": 5, "arrays": 6, "refs": 6, "writes": 6,
    # the library's face (0.4.0's API) and the test rig
    "api_arrays": 7, "api_files": 7, "api_host": 7, "browser": 7, "interface": 7, "mounted": 7,
    "options": 7, "utils": 7,
    "__init__": 8, "testing": 8,
    # the daemon and CLI's face
    "ccfs": 9,
}
#: third-party modules only a face may import
FACE_ONLY = {"mfusepy", "fuse", "click"}


def unit_of(module: str) -> str:
    """``cottoncandy.storage.s3`` -> ``storage``; ``cottoncandy.interface`` -> ``interface``; ``ccfs.x`` -> ``ccfs``."""
    parts = module.split(".")
    if parts[0] == "ccfs":
        return "ccfs"
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, relative ones resolved, lazy ones included."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from .. import fastpaths`` imports the module ``fastpaths``, not the package above it
            modules = [f"{target}.{alias.name}" for alias in node.names
                       if (root / f"{target}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
                       or (root / f"{target}.{alias.name}".replace(".", "/")).is_dir()]
            names_only = len(modules) < len(node.names)
            found += [(node.lineno, m) for m in modules] + ([(node.lineno, target)] if names_only else [])
    return found


SOURCES = sorted([*ROOT.joinpath("cottoncandy").rglob("*.py"), *ROOT.joinpath("ccfs").rglob("*.py")])


def test_every_unit_has_a_rank() -> None:
    units = {unit_of(module_name(p)) for p in SOURCES}
    assert units <= RANKS.keys(), f"place these in RANKS and docs/ARCHITECTURE.md: {sorted(units - RANKS.keys())}"


def upward_imports(path: Path, root: Path = ROOT) -> list[str]:
    here = unit_of(module_name(path, root))
    upward = []
    for line, target in imports_of(path, root):
        top = target.split(".")[0]
        if top in ("cottoncandy", "ccfs"):
            there = unit_of(target)
            if there in RANKS and RANKS[there] > RANKS[here]:
                upward.append(f"line {line}: {here} (rank {RANKS[here]}) imports {target} (rank {RANKS[there]})")
        elif top in FACE_ONLY and here != "ccfs":
            upward.append(f"line {line}: the core imports {target}, which only ccfs/ may")
    return upward


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    upward = upward_imports(path)
    assert not upward, "\n".join(upward)


def test_the_checker_sees_upward_imports(tmp_path: Path) -> None:
    """The test above can fail: a lazy import of the interface from storage, and click in the core, are caught."""
    probe = tmp_path / "cottoncandy" / "storage" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import click\n\n"
                     "def f():\n    from ..interface import CloudInterface\n    return CloudInterface\n")
    found = upward_imports(probe, tmp_path)
    assert found == ["line 1: the core imports click, which only ccfs/ may",
                     "line 4: storage (rank 1) imports cottoncandy.interface (rank 7)"]
