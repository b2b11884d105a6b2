"""The house rules of src/attnlab, checked over every module by reading its source (AST, no import).

* Floors: each package imports only from floors strictly below it; the floors, the forbidden edges and
  the third-party promises are the tables of docs/ARCHITECTURE.md, read here (one source of truth).
  Imports inside functions count. A package without a floor fails, asking for one.
* No function longer than 60 lines (docstring aside).
* No ``_private`` name or module imported from another package of attnlab.
* One module calls ``os.replace`` (the atomic writes).
* No benchmark runner (``benchmark.py``) inside the floors it measures.
* README.md and docs/ARCHITECTURE.md link only to files of the repository.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import attnlab

SRC = Path(attnlab.__file__).parent
DOC = Path(__file__).parent.parent / "docs" / "ARCHITECTURE.md"
ROOT = "__init__"  # the package root (src/attnlab/__init__.py), a unit of its own in the floor table
ROOT_CONSTANTS = {"__version__"}  # names of the root that any floor may import: defined before its imports
MAX_FUNCTION_LINES = 60

# ---------------------------------------------------------------------------------------------------------
# Reading the tables of docs/ARCHITECTURE.md


def _table(heading: str) -> list[list[str]]:
    """The body rows (cells stripped) of the first Markdown table under ``## <heading>``."""
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"{DOC}: no '## {heading}' section"
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in match.group(1).splitlines() if line.startswith("|")]
    assert len(rows) > 2, f"{DOC}: no table under '## {heading}'"
    return rows[2:]  # past the header and the |---| line


def _unit(cell: str) -> str:
    """``"`attention/`"`` -> ``"attention"``, ``"`cli.py`"`` -> ``"cli"``, ``"`*`"`` -> ``"*"``."""
    match = re.fullmatch(r"`([\w*]+)(/|\.py)?`", cell)
    assert match, f"{DOC}: {cell!r} is not a `package/` or `module.py` cell"
    return match.group(1)


def _units(cell: str) -> set[str]:
    return {_unit(c.strip()) for c in cell.split(",") if c.strip().startswith("`")}


@cache
def floors() -> dict[str, int]:
    """Package or top-level module of attnlab -> floor, from the doc's floor table."""
    table: dict[str, int] = {}
    for floor, unit, *_ in _table("Floors"):
        name = _unit(unit)
        assert name not in table, f"{DOC}: {name!r} has two floors"
        table[name] = int(floor)
    return table


@cache
def never() -> dict[str, set[str]]:
    """Package -> packages it must never import (``"*"``: every package), from the doc."""
    return {_unit(pkg): _units(targets) for pkg, targets, *_ in _table("Never")}


@cache
def third_party() -> dict[str, set[str]]:
    """Package -> the only third-party top-level modules it may import, from the doc."""
    return {_unit(pkg): {m.strip("`") for m in re.findall(r"`[\w.]+`", mods)} for pkg, mods, *_ in
            _table("Third-party imports")}


# ---------------------------------------------------------------------------------------------------------
# Reading the source


@dataclass(frozen=True)
class Module:
    """One source file of attnlab: ``name`` is dotted (``attnlab.models.resnet``), ``unit`` its package."""

    name: str
    path: Path
    tree: ast.Module

    @property
    def unit(self) -> str:
        return unit_of(self.name)

    @property
    def package(self) -> str:
        """The dotted package that relative imports start from."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    """One imported thing: ``target`` the dotted module, ``name`` what was taken from it (or None)."""

    target: str
    name: str | None
    line: int


def unit_of(dotted: str) -> str:
    """``attnlab.models.resnet`` -> ``models``; ``attnlab.cli`` -> ``cli``; ``attnlab`` -> the root."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def module_from_source(name: str, source: str, path: Path | None = None) -> Module:
    return Module(name, path or Path(name.replace(".", "/") + ".py"), ast.parse(source))


@cache
def modules() -> tuple[Module, ...]:
    """Every module under src/attnlab."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = ("attnlab", *path.relative_to(SRC).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append(Module(name, path, ast.parse(path.read_text(), str(path))))
    return tuple(found)


def _submodule_exists(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (SRC / rel).is_dir() or (SRC / rel).with_suffix(".py").is_file()


def imports(module: Module) -> Iterator[Import]:
    """Every import of attnlab code in ``module``, wherever it sits (top, function, ``if``), resolved.

    ``from .x import y`` yields target ``<package>.x`` and name ``y``, or target ``<package>.x.y`` with no
    name when ``y`` is a submodule. ``importlib.import_module("attnlab...")`` with a literal counts too.
    """
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            yield from (Import(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "attnlab")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "attnlab":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield Import(sub, None, node.lineno) if _submodule_exists(sub) else \
                    Import(target, alias.name, node.lineno)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and node.args[0].value.startswith("attnlab")
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            yield Import(node.args[0].value, None, node.lineno)


def third_party_imports(module: Module) -> Iterator[tuple[str, int]]:
    """(top-level module, line) of every non-standard-library, non-attnlab import in ``module``."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top != "attnlab" and top not in sys.stdlib_module_names:
                yield top, node.lineno


def _where(module: Module, line: int) -> str:
    return f"{module.path.relative_to(SRC.parent) if module.path.is_absolute() else module.path}:{line}"


# ---------------------------------------------------------------------------------------------------------
# The floors


def floor_violations(module: Module) -> list[str]:
    """Why each attnlab import of ``module`` breaks the floor table or the doc's 'Never' table."""
    table, forbidden = floors(), never()
    bad = []
    for imp in imports(module):
        target = unit_of(imp.target)
        if target == module.unit or (target == ROOT and imp.name in ROOT_CONSTANTS):
            continue
        what = f"{_where(module, imp.line)}: {module.unit} imports {imp.target}"
        if target not in table:
            bad.append(f"{what}: {target!r} has no floor")
        elif table[target] >= table[module.unit]:
            bad.append(f"{what}: floor {table[module.unit]} may not import floor {table[target]}")
        if target in forbidden.get(module.unit, set()) | forbidden.get("*", set()):
            bad.append(f"{what}: forbidden in {DOC.name} ('Never')")
    return bad


def test_the_doc_tables_name_the_known_floors():
    table = floors()
    assert table["names"] == 0 and table["cli"] == max(table.values())
    assert table["fileio"] == 0 and table["benchmarks"] == 6  # accepted before they exist
    assert table["attention"] < table["models"] < table["train"] < table["study"]
    assert {"models", "cam", "train"} <= never()["attention"] and "cli" in never()["*"]
    assert third_party()["data"] == {"torch", "numpy", "PIL"}


def test_every_package_has_a_floor():
    units = {m.unit for m in modules()}
    missing = sorted(units - set(floors()))
    assert not missing, (f"{missing}: give each a floor in the table of {DOC} (the lowest floor whose "
                         f"imports it needs)")


def test_every_module_imports_only_from_floors_below_it():
    bad = [b for m in modules() if m.unit in floors() for b in floor_violations(m)]
    assert not bad, "\n".join(bad)


def test_the_floor_check_sees_what_it_must():
    """Relative, absolute, lazy and importlib imports are all seen; same-package ones are free."""
    source = '''
from ..train import fit
from . import _gates
import attnlab.cli

def later():
    from ..models.resnet import ResNet
    import importlib
    return importlib.import_module("attnlab.cam")
'''
    bad = floor_violations(module_from_source("attnlab.attention.fake", source))
    assert [b.split(": ", 1)[1] for b in bad] == [
        "attention imports attnlab.train: floor 2 may not import floor 4",
        "attention imports attnlab.train: forbidden in ARCHITECTURE.md ('Never')",
        "attention imports attnlab.cli: floor 2 may not import floor 7",
        "attention imports attnlab.cli: forbidden in ARCHITECTURE.md ('Never')",
        "attention imports attnlab.models.resnet: floor 2 may not import floor 3",
        "attention imports attnlab.models.resnet: forbidden in ARCHITECTURE.md ('Never')",
        "attention imports attnlab.cam: floor 2 may not import floor 4",
        "attention imports attnlab.cam: forbidden in ARCHITECTURE.md ('Never')",
    ]
    cam_on_data = floor_violations(module_from_source("attnlab.cam.fake", "from ..data import create_dataset"))
    assert cam_on_data == ["attnlab/cam/fake.py:1: cam imports attnlab.data: forbidden in ARCHITECTURE.md ('Never')"]
    assert floor_violations(module_from_source("attnlab.study.fake", "from .. import __version__")) == []
    assert floor_violations(module_from_source("attnlab.models.fake", "from .. import create_model")) == [
        "attnlab/models/fake.py:1: models imports attnlab: floor 3 may not import floor 5"]
    assert floor_violations(module_from_source("attnlab.models.fake", "from ..newpkg import x")) == [
        "attnlab/models/fake.py:1: models imports attnlab.newpkg: 'newpkg' has no floor"]


def test_third_party_imports_stay_within_each_promise():
    promises = third_party()
    bad = [f"{_where(m, line)}: {m.unit} imports {top}" for m in modules() if m.unit in promises
           for top, line in third_party_imports(m) if top not in promises[m.unit]]
    assert not bad, "\n".join(bad) + f"\n(see 'Third-party imports' in {DOC})"


# ---------------------------------------------------------------------------------------------------------
# No long functions

def function_lengths(module: Module) -> Iterator[tuple[str, int]]:
    """(qualified name, lines from ``def`` to its end, docstring aside) of every function in ``module``."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = child.end_lineno - child.lineno + 1
                doc = child.body[0]
                if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value,
                                                                                                     str):
                    lines -= doc.end_lineno - doc.lineno + 1
                yield f"{prefix}.{child.name}", lines
                yield from visit(child, f"{prefix}.{child.name}")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}.{child.name}")
            else:
                yield from visit(child, prefix)

    yield from visit(module.tree, module.name)


def test_no_function_is_longer_than_60_lines():
    long = {name: n for m in modules() for name, n in function_lengths(m) if n > MAX_FUNCTION_LINES}
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"


def test_function_length_leaves_the_docstring_aside():
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    source = f'class A:\n    def f(self):\n        """Doc\n\n        more."""\n{body.replace("    ", "        ")}\n'
    assert dict(function_lengths(module_from_source("attnlab.fake", source))) == {"attnlab.fake.A.f": 60}


# ---------------------------------------------------------------------------------------------------------
# No private imports across packages

def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_imports(module: Module) -> Iterator[str]:
    """``"importer: imported"`` for each private module or name ``module`` takes from another package."""
    for imp in imports(module):
        if unit_of(imp.target) == module.unit:
            continue
        path = [*imp.target.split("."), *([imp.name] if imp.name else [])]
        if any(_private(p) for p in path[1:]):
            yield f"{module.name}: {'.'.join(path)}"


def test_no_private_name_is_imported_from_another_package():
    found = sorted(entry for m in modules() for entry in private_imports(m))
    assert not found, f"private names imported across packages (make what is shared public): {found}"


def test_private_import_check_spares_one_package():
    source = "from ._gates import f\nfrom ..models._attn import MARK\nfrom ..data import _convert\n" \
             "import attnlab.bench.timing\nfrom .. import __version__\n"
    assert list(private_imports(module_from_source("attnlab.attention.fake", source))) == [
        "attnlab.attention.fake: attnlab.models._attn.MARK", "attnlab.attention.fake: attnlab.data._convert"]


# ---------------------------------------------------------------------------------------------------------
# One module writes files atomically

ATOMIC_WRITER = "attnlab.fileio.atomic"


def calls_os_replace(module: Module) -> bool:
    """Whether ``module`` calls ``os.replace`` (or ``os.rename``), by attribute or after ``from os import``."""
    renames = {"replace", "rename"}
    imported = {a.asname or a.name for node in ast.walk(module.tree) if isinstance(node, ast.ImportFrom)
                and node.module == "os" for a in node.names if a.name in renames}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr in renames and isinstance(f.value, ast.Name)
                    and f.value.id == "os") or (isinstance(f, ast.Name) and f.id in imported):
                return True
    return False


def test_one_module_writes_files_atomically():
    writers = sorted(m.name for m in modules() if calls_os_replace(m))
    assert writers == [ATOMIC_WRITER], f"only {ATOMIC_WRITER} calls os.replace (write through it): {writers}"


@pytest.mark.parametrize("source,calls", [
    ("import os\nos.replace(a, b)", True),
    ("from os import replace as mv\ndef f():\n    mv(a, b)", True),
    ("text.replace('a', 'b')\npath.replace(other)", False),
])
def test_the_atomic_write_check_sees_os_replace(source, calls):
    assert calls_os_replace(module_from_source("attnlab.fake", source)) is calls


# ---------------------------------------------------------------------------------------------------------
# The benchmark runners live on their own floor

def test_no_benchmark_runner_inside_the_floors_it_measures():
    runners = sorted(m.name for m in modules() if m.name.rpartition(".")[2] in ("benchmark", "benchmarks")
                     and m.unit != "benchmarks")
    assert not runners, f"benchmark runners belong in attnlab/benchmarks/: {runners}"


# ---------------------------------------------------------------------------------------------------------
# The documents point only inside the repository

REPO = DOC.parent.parent


@pytest.mark.parametrize("doc", ["README.md", "docs/ARCHITECTURE.md"])
def test_every_relative_link_of_the_docs_is_a_file_of_the_repository(doc):
    text = (REPO / doc).read_text()
    links = [t for t in re.findall(r"\]\(([^)\s#]+)", text) if not re.match(r"[a-z]+:", t)]
    outside = [t for t in links if not (REPO / doc).parent.joinpath(t).resolve().is_relative_to(REPO.resolve())]
    missing = [t for t in links if not (REPO / doc).parent.joinpath(t).exists()]
    assert links, f"no relative link found in {doc}: is the pattern still right?"
    assert not outside, f"{doc} links outside the repository: {outside}"
    assert not missing, f"{doc} links to missing files: {missing}"
    assert "../" not in re.sub(r"\]\([^)]*\)", "", text), f"{doc} names a path outside the repository"
