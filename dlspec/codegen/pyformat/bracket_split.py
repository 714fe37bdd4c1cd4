"""The right-hand cut and the optional parentheses: a cut at invisible parentheses (around an
assigned value, a return value, a condition) is made without them where black prefers."""

from __future__ import annotations

from typing import AbstractSet, Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.bracket_pairs import Cut, last_pair_cut, make_visible
from dlspec.codegen.pyformat.delimiters import COMMA_PRIORITY, DOT_PRIORITY
from dlspec.codegen.pyformat.fits import (
    FORCE_PARENTHESES,
    LINE_LENGTH,
    CannotSplit,
    Features,
    can_be_split,
    is_line_short_enough,
)
from dlspec.codegen.pyformat.lines import Line, is_multiline_string
from dlspec.codegen.pyformat.tree import Leaf


def right_hand_split(
    line: Line, features: Features, omit: AbstractSet[int] = frozenset()
) -> Iterator[Line]:
    """The line cut at its last bracket pair not omitted (`last_pair_cut`), through
    `_without_optional_parentheses`."""
    yield from _without_optional_parentheses(last_pair_cut(line, omit), line, features, omit)


def _without_optional_parentheses(
    cut: Cut, line: Line, features: Features, omit: AbstractSet[int]
) -> Iterator[Line]:
    """The cut's lines; where it is at invisible parentheses that `_may_leave_out` allows
    leaving out, the cut at the pair before them instead, if `_prefer_without` says so (and
    so on, leftwards). Where there is no pair before them the parentheses are used, but for a
    body that no cut could make fit, or a multiline string in the head or the tail
    (CannotSplit)."""
    if (
        _at_invisible_parentheses(cut)
        and FORCE_PARENTHESES not in features
        and not line.is_import
        and _may_leave_out(cut)
    ):
        omit = frozenset((id(cut.closing_bracket), *omit))
        try:
            without = last_pair_cut(line, omit)
            if _prefer_without(without, cut):
                yield from _without_optional_parentheses(without, line, features, omit)
                return
        except CannotSplit as error:
            if line.is_chained_assignment:
                pass
            elif not can_be_split(cut.body) and not is_line_short_enough(cut.body):
                raise CannotSplit("the body is still too long and cannot be split") from error
            elif cut.head.has_multiline_strings() or cut.tail.has_multiline_strings():
                raise CannotSplit("multiline strings in the head or tail") from error
    make_visible(cut.opening_bracket)
    make_visible(cut.closing_bracket)
    yield from (part for part in (cut.head, cut.body, cut.tail) if part)


def _at_invisible_parentheses(cut: Cut) -> bool:
    opening, closing = cut.opening_bracket, cut.closing_bracket
    return (
        opening.type == t.LPAR
        and not opening.value
        and closing.type == t.RPAR
        and not closing.value
    )


def _prefer_without(without: Cut, cut: Cut) -> bool:
    """Whether the cut without the optional parentheses is the better one. It is, but for an
    assignment (`= (` ends the head) whose target holds brackets, whose head fits with a
    column to spare and has no magic trailing comma. There it is only where its own head has
    fewer `=` than a chained assignment's, and either ends in a closing bracket after its last
    `=` (the cut is inside the value) or holds an `=` and fits."""
    head = cut.head.leaves
    if len(head) < 2 or head[-2].type != t.EQUAL:
        return True
    if not any(leaf.type in t.BRACKETS for leaf in head[:-1]):
        return True
    if not is_line_short_enough(cut.head, LINE_LENGTH - 1) or cut.head.magic_comma is not None:
        return True
    equals = sum(1 for leaf in head if leaf.type == t.EQUAL)
    equals_without = sum(1 for leaf in without.head.leaves if leaf.type == t.EQUAL)
    if equals > 1 and equals > equals_without:
        return False
    return _bracket_after_last_equal(without.head.leaves) or (
        equals_without > 0 and is_line_short_enough(without.head)
    )


def _bracket_after_last_equal(leaves: list[Leaf]) -> bool:
    """Whether a closing bracket comes after the last `=` (or there is no `=` before it)."""
    for leaf in reversed(leaves):
        if leaf.type == t.EQUAL:
            return False
        if leaf.type in t.CLOSING_BRACKETS:
            return True
    return False


def _may_leave_out(cut: Cut) -> bool:
    """Whether the invisible parentheses of the cut may be left out, black's cautious test:
    no comment right after them nor a standalone comment outside the body's visible pairs,
    and at most one delimiter of the body's loosest kind (none at a with statement's comma).
    Then yes for no delimiter or one dot, and otherwise only where the body starts or ends
    with a bracket pair whose other side fits (`_rest_fits_after`, `_start_fits_before`)."""
    body = cut.body
    if cut.head.comments.get(cut.opening_bracket) or _loose_standalone_comment(body):
        return False
    priorities = list(body.brackets.delimiters.values())
    if not priorities:
        return True
    loosest = max(priorities)
    count = priorities.count(loosest)
    if count > 1 or (loosest == COMMA_PRIORITY and cut.head.is_with_stmt):
        return False
    if loosest == DOT_PRIORITY:
        return True
    first, second = body.leaves[0], body.leaves[1]
    opens = first.type in t.OPENING_BRACKETS and second.type not in t.CLOSING_BRACKETS
    if opens and _rest_fits_after(body, first):
        return True
    penultimate, last = body.leaves[-2], body.leaves[-1]
    closes = last.type in (t.RPAR, t.RBRACE) or (
        last.type == t.RSQB and last.parent is not None and last.parent.type != t.trailer
    )
    if not closes or penultimate.type in t.OPENING_BRACKETS:
        return False
    return is_multiline_string(first) or _start_fits_before(body, last)


def _loose_standalone_comment(body: Line) -> bool:
    """Whether a standalone comment of the body lies outside its visible bracket pairs."""
    inside: Optional[Leaf] = None  # the opening bracket of the visible pair being crossed
    for leaf in reversed(body.leaves):
        if inside is not None and leaf is inside:
            inside = None
        if leaf.type == t.STANDALONE_COMMENT and inside is None:
            return True
        if inside is None and leaf.type in t.CLOSING_BRACKETS and leaf.value:
            inside = leaf.opening_bracket
    return False


def _rest_fits_after(body: Line, first: Leaf) -> bool:
    """Whether the part of the body from the bracket closing `first` up to the next opening
    bracket (or the end) fits on a line, the body holding no multiline string."""
    if any("\n" in leaf.value for leaf in body.leaves):
        return False
    length, counting = 4 * body.depth, False
    for _index, leaf, leaf_length in body.measured():
        if leaf.type in t.CLOSING_BRACKETS and leaf.opening_bracket is first:
            counting = True
        if counting:
            length += leaf_length
            if length > LINE_LENGTH:
                return False
            if leaf.type in t.OPENING_BRACKETS:
                counting = False
    return True


def _start_fits_before(body: Line, last: Leaf) -> bool:
    """Whether the body up to the bracket opening `last` fits on a line, or another opening
    bracket comes before it (where no multiline string does)."""
    length, other_brackets = 4 * body.depth, False
    for _index, leaf, leaf_length in body.measured():
        length += leaf_length
        if leaf is last.opening_bracket:
            return other_brackets or length <= LINE_LENGTH
        if leaf.type in t.OPENING_BRACKETS:
            other_brackets = True
    return False
