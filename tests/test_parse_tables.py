"""The stored LALR tables (dlspec/frontend/lalr_tables.py) are lark's own parser, and current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lark import Lark, Tree
from lark.exceptions import UnexpectedInput

from dlspec.frontend import lalr_tables
from dlspec.frontend.parse import PARSER_OPTIONS, _stored_parser, tables_key
from dlspec.resources import grammar_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(
    {
        p
        for pattern in ("examples/*.dl", "tests/specs*/*.dl", "tests/fixtures/**/*.dl")
        for p in ROOT.glob(pattern)
    }
)


def test_the_stored_tables_are_current() -> None:
    assert lalr_tables.KEY == tables_key(grammar_text()), (
        "grammar/dlspec.lark (or lark) changed: regenerate the stored parser with\n"
        "  python tools/build_parser_tables.py"
    )


def test_the_tool_writes_the_same_file_under_any_hash_seed() -> None:
    """lark numbers states in an order that varies between runs; the tool fixes one order, so
    regenerating an unchanged grammar changes nothing (here under two other hash seeds)."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'tools')!r}); import build_parser_tables\n"
        "sys.stdout.write(build_parser_tables.tables_source())"
    )
    stored = (ROOT / "dlspec" / "frontend" / "lalr_tables.py").read_text(encoding="utf-8")
    for seed in ("1", "2"):
        run = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert run.stdout == stored, f"hash seed {seed}"


def _outcome(parser: Lark, text: str) -> Any:
    """The tree with every node's position, or the error: its type, position, token and what
    was expected (a set, in no particular order: dlspec sorts it)."""
    try:
        tree = parser.parse(text)
    except UnexpectedInput as err:
        expected = sorted(getattr(err, "expected", None) or getattr(err, "allowed", None) or ())
        return type(err).__name__, err.line, err.column, str(getattr(err, "token", "")), expected
    spans = [
        (t.data, t.meta.line, t.meta.column, t.meta.end_line, t.meta.end_column)
        for t in tree.iter_subtrees()
        if isinstance(t, Tree) and not t.meta.empty
    ]
    return tree, spans


@pytest.fixture(scope="module")
def parsers() -> tuple[Lark, Lark]:
    stored = _stored_parser(grammar_text())
    assert stored is not None
    return stored, Lark(grammar_text(), **PARSER_OPTIONS)


def test_the_stored_parser_is_the_one_lark_builds(parsers: tuple[Lark, Lark]) -> None:
    stored, built = parsers
    assert len(SPECS) > 30
    for path in SPECS:
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert _outcome(stored, text) == _outcome(built, text), path.name
        mangled = text.replace("(", "", 1)  # an error too
        assert _outcome(stored, mangled) == _outcome(built, mangled), path.name


def test_stale_or_missing_tables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lalr_tables, "KEY", "0" * 64)
    assert _stored_parser(grammar_text()) is None
    monkeypatch.setattr(lalr_tables, "KEY", tables_key(grammar_text()))
    monkeypatch.setattr(lalr_tables, "TABLES", "not base64 of a pickle")
    assert _stored_parser(grammar_text()) is None
