"""The fast formatter on code it was not written for: every top-level statement of five pinned
pure-Python packages in the venv (black itself, jinja2, lark, rich, pytest), formatted as a file of its
own, is black's bytes wherever the formatter does not refuse it, with and without a memo."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from dlspec.codegen import pyformat
from dlspec.codegen.render import PY2_FORMAT, PY3_FORMAT, FormatMode, format_with_black

# pinned in requirements-dev.txt, so every machine formats the same statements
PACKAGES = ("black", "jinja2", "lark", "rich", "_pytest")
PARTS = 8


def _statements(path: Path) -> list[tuple[str, str]]:
    """(file:line, source) for each top-level statement of a module, with its decorators and
    the comment lines right above it."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    statements, previous_end = [], 0
    for node in ast.parse(source).body:
        decorators = getattr(node, "decorator_list", [])
        start = min([node.lineno, *(decorator.lineno for decorator in decorators)])
        while start - 2 >= previous_end and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        previous_end = node.end_lineno or node.lineno
        statements.append((f"{path.name}:{start}", "".join(lines[start - 1 : previous_end])))
    return statements


def _corpus() -> list[tuple[str, str]]:
    corpus = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None, package
        for path in sorted(Path(spec.origin).parent.rglob("*.py")):
            corpus.extend((f"{package}/{name}", text) for name, text in _statements(path))
    return corpus


CORPUS = _corpus()


def _check(statements: list[tuple[str, str]], mode: FormatMode) -> int:
    """Assert each statement the formatter takes is black's; the number taken."""
    memo: pyformat.ItemMemo = {}
    taken = 0
    for name, text in statements:
        try:
            ours = pyformat.format_python(text, mode.py2)
        except pyformat.Unsupported:
            continue
        taken += 1
        assert ours == format_with_black(text, mode), name
        assert pyformat.format_python(text, mode.py2, memo) == ours, name
    return taken


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) > 2500


@pytest.mark.parametrize("part", range(PARTS))
def test_statements_of_pinned_packages_are_black(part: int) -> None:
    """The formatter takes over half of them (it is exercised, not just refusing), and in the cntk
    target's mode too, on a sample."""
    statements = CORPUS[part::PARTS]
    assert _check(statements, PY3_FORMAT) > len(statements) // 2
    sample = statements[::8]
    assert _check(sample, PY2_FORMAT) > len(sample) // 2
