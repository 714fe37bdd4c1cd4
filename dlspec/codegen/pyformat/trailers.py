"""The right-hand split's attempts: which trailers (calls, subscripts and what follows them at
the end of a line) may stay after the cut, tried fewest first."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.bracket_split import right_hand_split
from dlspec.codegen.pyformat.fits import (
    LINE_LENGTH,
    Features,
    is_line_short_enough,
    over_length_only_due_to_subscript_comment,
)
from dlspec.codegen.pyformat.lines import Line, holds_one_item
from dlspec.codegen.pyformat.tree import Leaf


def rhs(line: Line, features: Features) -> Iterator[Line]:
    """The line cut at a bracket pair near its end: the first attempt (`trailer_omits`) whose
    head fits, else the attempt that leaves nothing out (where it was tried), else a cut at
    the very last pair. An attempt whose pair opens past the line length is not tried."""
    columns = _columns(line)
    plain: Optional[list[Line]] = None
    for omit in trailer_omits(line):
        if omit and columns.get(_cut_opening(line, omit), 0) > LINE_LENGTH:
            continue
        lines = list(right_hand_split(line, features, omit))
        if not omit and plain is None:
            plain = lines
        if is_line_short_enough(lines[0]) or (
            omit and over_length_only_due_to_subscript_comment(lines[0])
        ):
            yield from lines
            return
    yield from plain if plain is not None else right_hand_split(line, features)


def _columns(line: Line) -> dict[Leaf, int]:
    """Where each leaf's prefix starts on the line, comments not counted."""
    columns: dict[Leaf, int] = {}
    column = 4 * line.depth
    for leaf in line.leaves:
        columns[leaf] = column
        column += len(leaf.prefix) + len(leaf.value)
    return columns


def _cut_opening(line: Line, omit: frozenset[int]) -> Optional[Leaf]:
    """The visible opening bracket of the last closing bracket not in omit (an empty pair
    counts), where there is one."""
    for leaf in reversed(line.leaves):
        if leaf.type in t.CLOSING_BRACKETS and id(leaf) not in omit:
            opening = leaf.opening_bracket
            return opening if opening is not None and opening.value else None
    return None


def trailer_omits(line: Line) -> Iterator[frozenset[int]]:
    """The closing brackets (ids) a right-hand split may leave after its cut, fewest first:
    none (not for a line with a magic trailing comma), then the last visible trailer with the
    brackets crossed to reach it, then the last two, and so on. The walk back from the end
    stops where the trailers left out would no longer fit on a line, at a comment, a multiline
    string, or a bracket pair with a magic trailing comma."""
    if not line.magic_comma:
        yield frozenset()
    omit: set[int] = set()
    crossed: set[int] = set()  # closing brackets passed since the last trailer was counted
    inside: Optional[Leaf] = None  # the opening bracket of the trailer being crossed
    last: Optional[Leaf] = None  # the closing bracket of the last trailer crossed
    length = 4 * line.depth
    for index, leaf, leaf_length in line.measured(reverse=True):
        length += leaf_length
        commented = leaf_length > len(leaf.prefix) + len(leaf.value)
        if length > LINE_LENGTH or commented or leaf.type == t.STANDALONE_COMMENT:
            return
        if inside is not None:
            if leaf is inside:
                inside = None
            elif leaf.type in t.CLOSING_BRACKETS:
                if _magic_comma_before(line, index):
                    return
                crossed.add(id(leaf))
            continue
        if leaf.type not in t.CLOSING_BRACKETS:
            continue
        if index > 0 and line.leaves[index - 1].type in t.OPENING_BRACKETS:
            crossed.add(id(leaf))  # an empty pair, `()`: crossed, never a trailer
            continue
        if last is not None:
            omit.update(crossed, (id(last),))
            crossed.clear()
            yield frozenset(omit)
        if _magic_comma_before(line, index):
            return
        if leaf.value:
            inside, last = leaf.opening_bracket, leaf


def _magic_comma_before(line: Line, index: int) -> bool:
    """Whether the closing bracket at index follows a comma that is a magic trailing comma
    (not the comma of a one-item tuple)."""
    closing = line.leaves[index]
    opening = closing.opening_bracket
    return (
        index > 0
        and line.leaves[index - 1].type == t.COMMA
        and opening is not None
        and not holds_one_item(opening, closing, line.leaves)
    )
