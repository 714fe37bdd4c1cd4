"""The splitters' shared vocabulary: the transformer type, its refusals, and whether a line fits."""

from __future__ import annotations

from typing import Callable, Iterator

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.lines import Line

LINE_LENGTH = 100
# the features that let a split add a trailing comma after *args / **kwargs (call, def)
CALL_COMMAS, DEF_COMMAS = "trailing_comma_in_call", "trailing_comma_in_def"
FORCE_PARENTHESES = "force_optional_parentheses"  # a right-hand split's second try
Features = frozenset[str]
Transformer = Callable[[Line, Features], Iterator[Line]]


class CannotTransform(Exception):
    """A transformer that does not apply to a line; the caller tries its next one."""


class CannotSplit(CannotTransform):
    """No split of the kind asked for exists, or none would help."""


def is_line_short_enough(line: Line, line_length: int = LINE_LENGTH, line_str: str = "") -> bool:
    """Whether the line (rendered as line_str when given) needs no split: no comment of its
    own inside it, and every physical line within line_length. Only a lone string may span
    lines (a docstring, as the fast path lets through); its middle lines do not count."""
    text = line_str or line.render()
    if line.has_standalone_comments():
        return False
    rows = text.split("\n")
    if len(rows[0]) > line_length or len(rows[-1]) > line_length:
        return False
    if len(rows) > 1 and len(line.leaves) != 1:
        raise t.Unsupported("a multiline string inside a longer line")
    return True


def can_be_split(line: Line) -> bool:
    """False where no split can shorten the line: fewer than two leaves, or a line that starts
    with a string's method or attribute (`"...".join(x)`), which black keeps whole."""
    leaves = line.leaves
    if len(leaves) < 2:
        return False
    return not (leaves[0].type == t.STRING and leaves[1].type == t.DOT)


def over_length_only_due_to_subscript_comment(line: Line) -> bool:
    """Whether the line would fit but for comments, each of them after one of its `[`."""
    leaves = line.leaves
    if not leaves:
        return False
    for leaf, comments in line.comments.items():
        if comments and (leaf.type != t.LSQB or leaf not in leaves):
            return False
    first, *rest = leaves
    code = first.prefix + "    " * line.depth + first.value + "".join(map(str, rest))
    return len(code) <= LINE_LENGTH
