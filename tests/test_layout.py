"""The layout the README promises: no import circles, and no SQL in ``intake/``.

Both are read from the source with :mod:`ast`, so a new circle or a query written in
the wrong place fails here, naming the modules or the lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("intake", "parsers", "store")

# The statement builders of SQLAlchemy Core; a module that needs one is a store module.
SQL_BUILDERS = frozenset(
    {"select", "insert", "update", "delete", "text", "func", "and_", "or_", "case", "exists"}
)
# Methods that run SQL: a session or connection in intake/ asks a store function instead.
SQL_RUNNERS = frozenset({"execute", "scalar", "scalars", "query"})


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of our packages: its dotted name -> (file, whether it is a package)."""
    found: dict[str, tuple[Path, bool]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = (path, is_package)
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that runs when the module is loaded or a function of it is called
    (imports under ``if TYPE_CHECKING:`` never run, so they cannot make a circle)."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _type_checking(node):
                pending += node.body + node.orelse
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending += [n for n in getattr(node, field, []) if isinstance(n, ast.stmt)]
            for handler in getattr(node, "handlers", []):
                pending += handler.body


def import_graph() -> dict[str, set[str]]:
    """Which of our modules each of our modules imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = node.module or ""
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return found


def sql_in(path: Path) -> list[str]:
    """Lines of ``path`` that build or run SQL themselves."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            built = sorted(alias.name for alias in node.names if alias.name in SQL_BUILDERS)
            if built:
                found.append(f"{path.name}:{node.lineno} imports {', '.join(built)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_RUNNERS
            and not _is_lsh(node.func.value)
        ):
            found.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
    return found


def _is_lsh(value: ast.expr) -> bool:
    # analysis/campaigns.py asks its MinHash index (datasketch's LSH) for candidates.
    return isinstance(value, ast.Name) and value.id == "lsh"


class TestImports:
    def test_no_module_imports_itself_in_a_circle(self) -> None:
        """No group of our modules imports one another round in a circle."""
        assert import_cycles(import_graph()) == []

    def test_a_circle_is_found(self) -> None:
        """The check itself sees a circle of three modules, and a self-contained tree."""
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        assert import_cycles(graph) == [["a", "b", "c"]]
        assert import_cycles({"a": {"b"}, "b": set()}) == []

    def test_parsers_and_store_never_import_intake(self) -> None:
        """The layers depend one way: parsers/ and store/ know nothing of intake/."""
        wrong = {
            name: sorted(t for t in targets if t.startswith("intake"))
            for name, targets in import_graph().items()
            if name.startswith(("parsers", "store"))
        }
        assert {name: targets for name, targets in wrong.items() if targets} == {}

    def test_mail_never_imports_stages_or_staff(self) -> None:
        """intake/mail/ is the edge to the outside: it knows no stage and no staff action."""
        wrong = {
            name: sorted(t for t in targets if t.startswith(("intake.stages", "intake.staff")))
            for name, targets in import_graph().items()
            if name.startswith("intake.mail")
        }
        assert {name: targets for name, targets in wrong.items() if targets} == {}


class TestSqlLivesInStore:
    @pytest.mark.parametrize(
        "path",
        sorted((ROOT / "intake").rglob("*.py")),
        ids=lambda path: str(path.relative_to(ROOT)),
    )
    def test_intake_calls_store_functions(self, path: Path) -> None:
        """No module of intake/ builds or runs SQL: it calls a function of store/."""
        assert sql_in(path) == []

    def test_sql_is_found(self, tmp_path: Path) -> None:
        """The check itself sees a query built and run outside store/."""
        sample = tmp_path / "sample.py"
        sample.write_text(
            "from sqlalchemy import select\n"
            "def rows(session, model):\n"
            "    return session.execute(select(model))\n"
        )
        assert sql_in(sample) == ["sample.py:1 imports select", "sample.py:3 calls .execute()"]
