"""What black's splitters share: the transformer type, its exceptions and the line-length tests."""

from __future__ import annotations

from typing import Callable, Iterator

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.lines import (
    Line,
)

LINE_LENGTH = 100
CALL_COMMAS, DEF_COMMAS = "trailing_comma_in_call", "trailing_comma_in_def"
Features = frozenset[str]
Transformer = Callable[[Line, Features], Iterator[Line]]


class CannotTransform(Exception):
    """This transformer does not apply to the line (black tries the next one)."""


class CannotSplit(CannotTransform):
    """No split of this kind is possible or worth it."""


# ---- lengths -----------------------------------------------------------------------------


def is_line_short_enough(line: Line, line_length: int = LINE_LENGTH, line_str: str = "") -> bool:
    """Does the line fit? (A multiline string fits when its first and last lines do: the
    fast path only lets docstrings, alone on their line, be multiline.)"""
    if not line_str:
        line_str = line.render()
    if line.contains_standalone_comments():
        return False
    if "\n" not in line_str:
        return len(line_str) <= line_length
    first, *_, last = line_str.split("\n")
    if len(first) > line_length or len(last) > line_length:
        return False
    if len(line.leaves) != 1:
        raise t.Unsupported("a multiline string inside a longer line")
    return True


def can_be_split(line: Line) -> bool:
    """False when the line surely cannot be split (a string with a chain of attributes)."""
    leaves = line.leaves
    if len(leaves) < 2:
        return False
    if leaves[0].type == t.STRING and leaves[1].type == t.DOT:
        call_count = dot_count = 0
        following = leaves[-1]
        for leaf in leaves[-2::-1]:
            if leaf.type in t.OPENING_BRACKETS:
                if following.type not in t.CLOSING_BRACKETS:
                    return False
                call_count += 1
            elif leaf.type == t.DOT:
                dot_count += 1
            elif leaf.type == t.NAME:
                if not (following.type == t.DOT or following.type in t.OPENING_BRACKETS):
                    return False
            elif leaf.type not in t.CLOSING_BRACKETS:
                return False
            if dot_count > 1 and call_count > 1:
                return False
            following = leaf
    return True


def over_length_only_due_to_subscript_comment(line: Line) -> bool:
    """Over the length only because of a comment after a `[` that opens the line's split."""
    if not line.leaves:
        return False
    indent = "    " * line.depth
    first = line.leaves[0]
    text = f"{first.prefix}{indent}{first.value}" + "".join(str(x) for x in line.leaves[1:])
    if len(text) > LINE_LENGTH:
        return False
    for leaf, comments in line.comments.items():
        if comments and (leaf not in line.leaves or leaf.type != t.LSQB):
            return False
    return True
