"""Training is an application on top of the library: imports point one way.

Nothing under ``mmsearch/train`` imports ``mmsearch.cli``, and the import graph inside
``mmsearch/train`` (every ``import`` statement, including those inside functions) has
no cycle. Training runs on its own as ``python -m mmsearch.train`` (torchrun's entry),
and the older ``python -m mmsearch.train.trainer`` still works.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mmsearch.train

TRAIN_DIR = Path(mmsearch.train.__file__).parent
PACKAGE = "mmsearch.train"


def _module_name(path: Path) -> str:
    rel = path.relative_to(TRAIN_DIR).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from pkg import name`` counts ``pkg.name`` too)."""
    this = _module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _train_modules() -> dict[str, Path]:
    modules = {_module_name(p): p for p in sorted(TRAIN_DIR.rglob("*.py"))}
    assert len(modules) > 10, modules  # the scan found the package
    return modules


def _graph() -> dict[str, set[str]]:
    modules = _train_modules()
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_relative_and_from_imports_are_resolved() -> None:
    assert f"{PACKAGE}.loop" in _imports(TRAIN_DIR / "trainer.py")
    assert f"{PACKAGE}.config" in _imports(TRAIN_DIR / "towers.py")


def test_no_training_module_imports_the_cli() -> None:
    offenders = {
        name: sorted(
            m for m in _imports(path) if m == "mmsearch.cli" or m.startswith("mmsearch.cli.")
        )
        for name, path in _train_modules().items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_training_imports_have_no_cycle() -> None:
    graph = _graph()
    assert sum(len(edges) for edges in graph.values()) > 20  # the graph was really read
    assert _cycle(graph) is None


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


def test_python_m_mmsearch_train_help() -> None:
    proc = _run("-m", "mmsearch.train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--data" in proc.stdout and "--base" in proc.stdout and "torchrun" in proc.stdout


def test_python_m_mmsearch_train_trainer_still_works() -> None:
    proc = _run("-m", "mmsearch.train.trainer", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--data" in proc.stdout and "--base" in proc.stdout


def test_python_m_mmsearch_train_bad_settings_are_one_line(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"media": "a.png", "caption": "a"}\n')
    proc = _run("-m", "mmsearch.train", "--data", str(pairs), "--base", "scratch:tiny",
                "--method", "lora", "--out", str(tmp_path / "m"))  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("mmsearch: error:") and "from scratch" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
