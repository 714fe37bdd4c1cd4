"""The fast formatter on code it was not written for: every top-level statement of five pinned
pure-Python packages in the venv (black itself, jinja2, lark, rich, pytest), formatted as a
file of its own, is black's bytes wherever the formatter does not refuse it, with and without a
memo; so are black's own statements made harder (tools/format_corpus.py's variants: unparsed
to long lines and nested, or given magic commas, joined lines and comments)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from dlspec.codegen import pyformat
from dlspec.codegen.render import PY2_FORMAT, PY3_FORMAT, FormatMode, format_with_black

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from format_corpus import Statement, statements  # noqa: E402

# pinned in requirements-dev.txt, so every machine formats the same statements
PACKAGES = ("black", "jinja2", "lark", "rich", "_pytest")
PARTS = 8


def _files(package: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, package
    return sorted(Path(spec.origin).parent.rglob("*.py"))


def _corpus(packages: tuple[str, ...], variant: str) -> list[Statement]:
    return [
        statement
        for package in packages
        for path in _files(package)
        for statement in statements(path, variant)
    ]


CORPUS = _corpus(PACKAGES, "plain")
HARDER = _corpus(("black",), "unparsed") + _corpus(("black",), "mutated")


def _check(corpus: list[Statement], mode: FormatMode) -> int:
    """Assert each statement the formatter takes is black's; the number taken."""
    memo: pyformat.ItemMemo = {}
    taken = 0
    for name, text in corpus:
        try:
            ours = pyformat.format_python(text, mode.py2)
        except pyformat.Unsupported:
            continue
        taken += 1
        assert ours == format_with_black(text, mode), name
        assert pyformat.format_python(text, mode.py2, memo) == ours, name
    return taken


def test_the_corpora_are_large() -> None:
    assert len(CORPUS) > 5000
    assert len(HARDER) > 1000


@pytest.mark.parametrize("part", range(PARTS))
def test_statements_of_pinned_packages_are_black(part: int) -> None:
    """The formatter takes over half of them (it is exercised, not just refusing), and in the
    cntk target's mode too, on a sample."""
    corpus = CORPUS[part::PARTS]
    assert _check(corpus, PY3_FORMAT) > len(corpus) // 2
    sample = corpus[::8]
    assert _check(sample, PY2_FORMAT) > len(sample) // 2


@pytest.mark.parametrize("part", range(PARTS // 2))
def test_harder_statements_are_black(part: int) -> None:
    """black's code is annotated throughout, which the formatter leaves to black: a third."""
    corpus = HARDER[part :: PARTS // 2]
    assert _check(corpus, PY3_FORMAT) > len(corpus) // 3
