"""The shape of the house: rules of the code base that a reviewer would otherwise check by eye.

Each test reads the source tree (or the parser) and names the offending place when it fails.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import rewardlab
from rewardlab.cli import COMMANDS, build_parser
from rewardlab.config import field_docs

SRC = Path(rewardlab.__file__).parent
MAX_FUNCTION_LINES = 60
RUN_FILE_NAMES = {"run.json", "stages.json", "strength.parquet", "strength.jsonl", "summary.json",
                  "groups.json", "compare.json", "metrics.json", "report.html", ".partial"}


def _modules() -> Iterator[tuple[str, ast.Module, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), ast.parse(path.read_text(encoding="utf-8")), path


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.Module, module: str, names: set[str]) -> set[str]:
    """rewardlab modules imported anywhere in ``tree`` (functions too; not TYPE_CHECKING)."""
    found: set[str] = set()
    skip = {id(n) for node in ast.walk(tree) if _is_type_checking(node) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rewardlab"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("rewardlab"):
                continue
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in names else node.module)
    found.discard(module)
    return found


def test_no_import_cycle() -> None:
    modules = {name: tree for name, tree, _ in _modules()}
    graph = {name: _imports(tree, name, set(modules)) & set(modules)
             for name, tree in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_function_over_60_lines() -> None:
    long = []
    for module, tree, _ in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_run_file_names_live_only_in_the_layout_module() -> None:
    found = []
    for module, tree, _ in _modules():
        if module == "rewardlab.layout":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in RUN_FILE_NAMES:
                found.append(f"{module}:{node.lineno}: {node.value!r}")
    assert not found, "run-file names spelled outside rewardlab.layout:\n" + "\n".join(found)


def test_every_flag_help_is_a_config_docstring() -> None:
    _, subs = build_parser()
    for name, parser in subs.items():
        classes = {s.cls.__name__: s.cls for s in COMMANDS[name].sections}
        for action in parser._actions:
            if action.dest in ("help",):
                continue
            cls_name, _, field_name = action.dest.partition(".")
            cls = classes.get(cls_name) or _nested(classes, cls_name)
            assert cls is not None, f"{name} {action.option_strings}: not from a config class"
            doc = field_docs(cls)[field_name]
            assert action.help.replace("%%", "%").startswith(doc), (name, action.dest)


def _nested(classes: dict[str, type], name: str) -> type | None:
    for cls in classes.values():
        for f in dataclasses.fields(cls):
            tp = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            if dataclasses.is_dataclass(tp) and type(tp).__name__ == name:
                return type(tp)
    return None


def test_help_shows_only_what_a_command_uses() -> None:
    _, subs = build_parser()
    synthetic = {s for a in subs["synthetic"]._actions for s in a.option_strings}
    assert "--pooling" in synthetic and "--lora-r" not in synthetic and "--members" not in synthetic
    train = {s for a in subs["train"]._actions for s in a.option_strings}
    assert {"--lora-r", "--proj-dim", "--strength-file"} <= train and "--scheme" not in train
