"""Locate the grammar and template files shipped beside the package (installed or in a checkout)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def grammar_text() -> str:
    """The text of grammar/dlspec.lark."""
    return resources.files("dlspec.grammar").joinpath("dlspec.lark").read_text(encoding="utf-8")


def templates_dir() -> Path:
    """The templates/ folder as a file-system path (Jinja's loader needs one)."""
    return Path(str(resources.files("dlspec.templates")))
