"""The Pygments lexer: every example and regression spec highlighted without an Error token."""

from __future__ import annotations

import configparser
import importlib
from pathlib import Path

import pytest

pytest.importorskip("pygments")
from pygments.token import Error, Keyword, Name, Number, Operator  # noqa: E402

from dlspec.lexer import DlspecLexer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "examples").glob("*.dl")) + sorted((ROOT / "tests" / "specs").glob("*.dl"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_no_error_tokens(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tokens = list(DlspecLexer().get_tokens(text))
    assert [v for t, v in tokens if t in Error] == []
    assert "".join(v for _, v in tokens) == text


def test_token_kinds() -> None:
    tokens = [
        (t, v) for t, v in DlspecLexer().get_tokens("model m { a: conv2d(8, k=1e-3) -> relu }")
    ]
    assert (Keyword, "model") in tokens
    assert (Name.Builtin, "conv2d") in tokens and (Name.Builtin, "relu") in tokens
    assert (Operator, "->") in tokens and (Number.Float, "1e-3") in tokens


def test_entry_point_is_declared() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    line = config["options.entry_points"]["pygments.lexers"].strip()
    name, target = (part.strip() for part in line.split("="))
    module, attribute = target.split(":")
    lexer = getattr(importlib.import_module(module), attribute)
    assert name == "dlspec" and lexer is DlspecLexer
    assert "dlspec" in lexer.aliases and "*.dl" in lexer.filenames
