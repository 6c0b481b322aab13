"""The package's layering rules, checked by reading its source with ``ast``.

- no import cycles among the package's modules;
- only ``plugin/`` imports pytest (the library works without it);
- only ``llm`` (a module or a package) imports openai;
- only ``storage/`` imports vcrpy, yaml and diskcache;
- no module is longer than 600 lines.

Imports inside functions count (a lazy import is still a dependency). Imports under
``if TYPE_CHECKING:`` count when looking for cycles (a cycle of annotations is still a knot
a reader has to untie) but not for the third-party rules (they never run). The benchmark
scripts under ``benchmarks/`` must have no import cycle either.

The test suite reads as a map: no file under ``tests/`` (test files, their helpers and the
fake server) is longer than 800 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import pytest_synthdata

PACKAGE = Path(pytest_synthdata.__file__).parent
ROOT = PACKAGE.name
MAX_LINES = 600

# Known breaches, as (rule, file relative to the package's parent folder). Each entry is
# work still to do: remove it once the module complies; the test fails if an entry no
# longer breaks its rule, so this list only ever shrinks.
KNOWN_BREACHES: frozenset[tuple[str, str]] = frozenset({})

# Which top-level distributions may be imported where (by path prefix, package-relative).
THIRD_PARTY_HOMES = {
    "pytest": ("plugin/",),
    "_pytest": ("plugin/",),
    "openai": ("llm.py", "llm/"),
    "vcr": ("storage/",),
    "yaml": ("storage/",),
    "diskcache": ("storage/",),
}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(node: ast.AST, *, typing_only: bool = False) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth; with ``typing_only``, those under
    ``if TYPE_CHECKING`` too."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    elif isinstance(node, ast.If) and is_type_checking(node.test) and not typing_only:
        for child in node.orelse:
            yield from imports(child)
    else:
        for child in ast.iter_child_nodes(node):
            yield from imports(child, typing_only=typing_only)


class Module:
    def __init__(self, path: Path, top: Path = PACKAGE.parent) -> None:
        self.path = path
        parts = list(path.relative_to(top).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        self.name = ".".join(parts)
        self.is_package = path.name == "__init__.py"
        self.text = path.read_text(encoding="utf-8")
        self.lines = len(self.text.splitlines())
        self.where = path.relative_to(top).as_posix()
        self.inside = "/".join(path.relative_to(top).parts[1:])  # e.g. "storage/cache.py"
        tree = ast.parse(self.text, filename=str(path))
        self.statements = list(imports(tree))
        self.all_statements = list(imports(tree, typing_only=True))

    def absolute(self, node: ast.ImportFrom) -> str:
        """The module a ``from ... import`` reads from, relative imports resolved."""
        if not node.level:
            return node.module or ""
        base = self.name.split(".")
        if not self.is_package:
            base.pop()
        if node.level > 1:
            base = base[: -(node.level - 1)]
        return ".".join([*base, *([node.module] if node.module else [])])

    def targets(self, *, typing_only: bool = False, modules: Iterable[str] = ()) -> Iterator[str]:
        """Every module name this one imports (a ``from m import x`` yields ``m.x`` too);
        with ``typing_only``, the imports under ``if TYPE_CHECKING`` too. ``from m import x``
        where ``x`` is one of ``modules`` depends on ``m.x`` only (its package ``m`` is
        loaded before any module in it anyway)."""
        known = set(modules)
        for node in self.all_statements if typing_only else self.statements:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name
            else:
                source = self.absolute(node)
                names = [f"{source}.{alias.name}" for alias in node.names]
                if not all(name in known for name in names):
                    yield source
                yield from names


MODULES = {m.name: m for m in map(Module, sorted(PACKAGE.rglob("*.py")))}
BENCHMARKS = PACKAGE.parent / "benchmarks"


def dependencies(
    module: Module, among: dict[str, Module] = MODULES, *, typing_only: bool = False
) -> set[str]:
    """The modules of ``among`` that ``module`` imports."""
    found = module.targets(typing_only=typing_only, modules=among)
    return {t for t in found if t in among and t != module.name}


def find_cycles(among: dict[str, Module] = MODULES) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm), counting
    every import: inside functions and under ``if TYPE_CHECKING`` alike."""
    graph = {
        name: sorted(dependencies(module, among, typing_only=True))
        for name, module in among.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for other in graph[name]:
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in on_stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return groups


def breaches() -> set[tuple[str, str, str]]:
    """Every rule broken today, as (rule, file, what)."""
    found: set[tuple[str, str, str]] = set()
    for module in MODULES.values():
        if module.lines > MAX_LINES:
            found.add(("size", module.where, f"{module.lines} lines (at most {MAX_LINES})"))
        for target in module.targets():
            top = target.split(".")[0]
            homes = THIRD_PARTY_HOMES.get(top)
            if homes is not None and not module.inside.startswith(homes):
                found.add(("imports", module.where, f"imports {top} (only {', '.join(homes)})"))
        for target in dependencies(module):
            if module.name.split(".")[:2] != [ROOT, "plugin"] and target.startswith(
                f"{ROOT}.plugin"
            ):
                found.add(("imports", module.where, f"imports {target} (the core never does)"))
    for group in find_cycles():
        for name in group:
            found.add(("cycle", MODULES[name].where, "import cycle among " + ", ".join(group)))
    return found


def test_the_package_is_read() -> None:
    """The checks below look at real modules (guards against a broken path or parser)."""
    assert f"{ROOT}.plugin" in MODULES
    assert f"{ROOT}.plugin.state" in MODULES
    assert f"{ROOT}.storage.cache" in MODULES
    assert f"{ROOT}.api" in dependencies(MODULES[f"{ROOT}.plugin.state"])
    plugin = MODULES[f"{ROOT}.plugin"]
    assert "pytest" in set(plugin.targets())


def test_layering_rules() -> None:
    broken = sorted(
        (rule, where, what)
        for rule, where, what in breaches()
        if (rule, where) not in KNOWN_BREACHES
    )
    assert not broken, "layering rules broken:\n" + "\n".join(
        f"  {where}: {what}" for _, where, what in broken
    )


def test_known_breaches_are_still_breaches() -> None:
    """An entry of KNOWN_BREACHES that now complies is removed from the list."""
    current = {(rule, where) for rule, where, _ in breaches()}
    fixed = sorted(KNOWN_BREACHES - current)
    assert not fixed, f"these comply now; remove them from KNOWN_BREACHES: {fixed}"


TESTS = PACKAGE.parent / "tests"
TEST_MAX_LINES = 800
# Files under tests/ that are longer today, each with the reason it is not split yet.
KNOWN_LONG_TEST_FILES: dict[str, str] = {}


def long_test_files() -> dict[str, int]:
    """Every file under tests/ longer than TEST_MAX_LINES, with its length."""
    lengths = {
        path.relative_to(TESTS).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in TESTS.rglob("*.py")
    }
    assert "test_layout.py" in lengths and "fakellm/test_server.py" in lengths
    return {where: lines for where, lines in lengths.items() if lines > TEST_MAX_LINES}


def test_no_test_file_or_helper_is_over_800_lines() -> None:
    too_long = {
        where: lines
        for where, lines in long_test_files().items()
        if where not in KNOWN_LONG_TEST_FILES
    }
    assert not too_long, (
        f"split these by topic (at most {TEST_MAX_LINES} lines each, under tests/): {too_long}"
    )


def test_known_long_test_files_are_still_long() -> None:
    """An entry of KNOWN_LONG_TEST_FILES that is short enough now is removed from it."""
    fixed = sorted(set(KNOWN_LONG_TEST_FILES) - set(long_test_files()))
    assert not fixed, f"these are short enough now; remove them from KNOWN_LONG_TEST_FILES: {fixed}"


def test_the_benchmarks_have_no_import_cycle() -> None:
    scripts = {m.name: m for m in (Module(p, BENCHMARKS) for p in BENCHMARKS.rglob("*.py"))}
    assert "run" in scripts
    assert not find_cycles(scripts), f"import cycles in benchmarks/: {find_cycles(scripts)}"


def test_a_cycle_through_type_checking_imports_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b\n"
    )
    (tmp_path / "b.py").write_text("def f():\n    import a\n")
    (tmp_path / "c.py").write_text("import a\n")
    found = {m.name: m for m in (Module(p, tmp_path) for p in tmp_path.glob("*.py"))}
    assert find_cycles(found) == [["a", "b"]]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import pytest\n", {"pytest"}),
        ("def f():\n    import openai\n", {"openai"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import vcr\n", {"typing"}),
        (
            "import typing\nif typing.TYPE_CHECKING:\n    import vcr\nelse:\n    import yaml\n",
            {"typing", "yaml"},
        ),
    ],
)
def test_imports_are_found_at_any_depth_but_not_for_type_checking(
    source: str, expected: set[str]
) -> None:
    found = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in imports(ast.parse(source))
        for alias in node.names
    }
    assert found == expected
