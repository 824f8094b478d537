"""The layers of ``docs/architecture.md``, checked on the source: no import cycle
(imports inside functions count; only imports under ``TYPE_CHECKING`` do not), the
client never reaches the models, and the protocol does no I/O."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "cloudflare_durable"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in (SRC / PACKAGE).rglob("*.py")}


def _imports(nodes: list[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _imports(list(node.orelse))  # only what runs outside type checking
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(list(ast.iter_child_nodes(node)))


def imported(name: str) -> set[str]:
    """The modules of this package that module ``name`` imports, anywhere in it."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports([ast.parse(path.read_text())]):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        found.update(target for target in targets if target in MODULES and target != PACKAGE)
    return found


GRAPH = {name: imported(name) for name in MODULES}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_graph_sees_imports_at_every_depth() -> None:
    assert f"{PACKAGE}._client" in GRAPH[f"{PACKAGE}._handles"]  # at module level
    assert f"{PACKAGE}.host.asgi" in GRAPH[f"{PACKAGE}._cli._serve"]  # inside a function
    assert f"{PACKAGE}.host" not in GRAPH[f"{PACKAGE}._client"]  # only under TYPE_CHECKING


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_part_of_an_import_cycle(name: str) -> None:
    assert name not in reachable(name), f"{name} imports itself through {sorted(reachable(name))}"


def test_the_client_never_reaches_the_models() -> None:
    for client_side in ("_client", "_transports.network", "_subscription"):
        reached = reachable(f"{PACKAGE}.{client_side}")
        assert not reached & {f"{PACKAGE}._models", f"{PACKAGE}._handles"}, client_side


def test_the_protocol_is_sans_io() -> None:
    assert reachable(f"{PACKAGE}._protocol") == {f"{PACKAGE}._exceptions"}
