"""The package's layers, read from its source: no import cycle (imports inside functions
count, those under ``if TYPE_CHECKING:`` do not), a single run that does not import the
stacked model, one module that exits the process, and a thin entrypoint."""

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "logreg_exp"
# the command-line tools whose ``if __name__ == "__main__":`` block may exit, besides cli
COMMANDS = ("logreg_exp.evaluate", "logreg_exp.predict", "logreg_exp.summary")
CLI_MAX_LINES = 160


def module_files() -> dict[str, Path]:
    """Each module of the package by its dotted name."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


@functools.cache
def source_tree(name: str) -> ast.Module:
    """Module ``name``'s syntax tree, parsed once for all the tests here (read only)."""
    return ast.parse(MODULES[name].read_text(encoding="utf-8"))


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(sub) for sub in ast.walk(node))
    return inside


def imported_modules(name: str) -> set[str]:
    """The package's modules that module ``name`` imports, anywhere in its code (``from a
    import b`` counts as importing the module ``a.b`` where there is one, else ``a``)."""
    path = MODULES[name]
    tree = source_tree(name)
    skipped = type_checking_nodes(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package[: len(package) - node.level + 1]
                base = ".".join([*above, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


IMPORTS = {name: imported_modules(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in IMPORTS[todo.pop()] - seen:
            seen.add(w)
            todo.append(w)
    return seen


def test_the_graph_is_read_as_python_imports_it():
    assert "logreg_exp.cli" in MODULES and "logreg_exp.sweeps" in MODULES
    assert {"logreg_exp.outcomes", "logreg_exp.single_run"} <= IMPORTS["logreg_exp.cli"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_the_package_modules():
    assert cycles(IMPORTS) == []


def test_a_single_run_does_not_import_the_stacked_model():
    assert "logreg_exp.training.stacked" in IMPORTS  # the name this test looks for exists
    assert "logreg_exp.training.stacked" not in reachable("logreg_exp.single_run")


def is_main_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "__name__ == '__main__'",
        '__name__ == "__main__"',
    )


def exit_calls(tree: ast.AST) -> list[int]:
    """The lines of ``sys.exit(...)`` (or a bare ``exit``/``quit`` call) in ``tree``; a
    forked child's ``os._exit`` ends that child, not the process a user started."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called in ("sys.exit", "exit", "quit"):
                lines.append(node.lineno)
    return lines


def test_only_the_entrypoint_and_the_commands_main_blocks_exit_the_process():
    exits = {}
    for name in MODULES:
        tree = source_tree(name)
        if name == "logreg_exp.cli":
            continue
        allowed = set()
        if name in COMMANDS:
            for node in tree.body:
                if is_main_block(node):
                    allowed.update(exit_calls(node))
        calls = set(exit_calls(tree)) - allowed
        if calls:
            exits[name] = sorted(calls)
    assert exits == {}
    for name in COMMANDS:
        assert exit_calls(source_tree(name))


def test_the_entrypoint_stays_thin():
    text = MODULES["logreg_exp.cli"].read_text(encoding="utf-8")
    assert sum(1 for line in text.splitlines() if line.strip()) <= CLI_MAX_LINES


@pytest.mark.parametrize("helper", ["flatten", "one_line", "without_hydra", "path_safe"])
def test_a_shared_helper_is_defined_in_one_module(helper):
    defined_in = [
        name
        for name in MODULES
        for node in ast.walk(source_tree(name))
        if isinstance(node, ast.FunctionDef) and node.name == helper
    ]
    assert len(defined_in) == 1, defined_in
