"""The right-hand split: which closing bracket to cut at (the trailers that fit stay on the
head's line), and whether a pair of optional parentheses is used or left out."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.bracket_pairs import Cut, last_pair_cut, make_visible
from dlspec.codegen.pyformat.fits import (
    LINE_LENGTH,
    CannotSplit,
    Features,
    can_be_split,
    is_line_short_enough,
)
from dlspec.codegen.pyformat.lines import (
    COMMA_PRIORITY,
    DOT_PRIORITY,
    Line,
    is_multiline_string,
)
from dlspec.codegen.pyformat.tree import Leaf


def should_split_funcdef_with_rhs(line: Line) -> bool:
    """A def whose return annotation has a magic trailing comma splits with rhs."""
    return_type: list[Leaf] = []
    in_return_type = False
    for leaf in line.leaves:
        if leaf.type == t.COLON:
            in_return_type = False
        if in_return_type:
            return_type.append(leaf)
        if leaf.type == t.RARROW:
            in_return_type = True
    if return_type:
        raise t.Unsupported("a too long def with a return annotation")
    return False


def right_hand_split(
    line: Line, features: Features, omit: frozenset[int] | set[int] = frozenset()
) -> Iterator[Line]:
    result = last_pair_cut(line, omit)
    yield from _maybe_split_omitting_optional_parens(result, line, features, omit)


def _maybe_split_omitting_optional_parens(
    split: Cut, line: Line, features: Features, omit: frozenset[int] | set[int]
) -> Iterator[Line]:
    if (
        "force_optional_parentheses" not in features
        and split.opening_bracket.type == t.LPAR
        and not split.opening_bracket.value
        and split.closing_bracket.type == t.RPAR
        and not split.closing_bracket.value
        and not line.is_import
        and can_omit_invisible_parens(split, LINE_LENGTH)
    ):
        omit = {id(split.closing_bracket), *omit}
        try:
            split_oop = last_pair_cut(line, omit)
            if _prefer_split_rhs_oop_over_rhs(split_oop, split):
                yield from _maybe_split_omitting_optional_parens(split_oop, line, features, omit)
                return
        except CannotSplit as error:
            if line.is_chained_assignment:
                pass
            elif not can_be_split(split.body) and not is_line_short_enough(split.body):
                raise CannotSplit("the body is still too long and cannot be split") from error
            elif split.head.contains_multiline_strings() or split.tail.contains_multiline_strings():
                raise CannotSplit("multiline strings in the head or tail") from error
    make_visible(split.opening_bracket)
    make_visible(split.closing_bracket)
    for result in (split.head, split.body, split.tail):
        if result:
            yield result


def _prefer_split_rhs_oop_over_rhs(split_oop: Cut, split: Cut) -> bool:
    """Is the split that leaves out the optional parentheses the better one?"""
    head = split.head.leaves
    if not (len(head) >= 2 and head[-2].type == t.EQUAL):
        return True
    if not any(leaf.type in t.BRACKETS for leaf in head[:-1]):
        return True
    if not is_line_short_enough(split.head, LINE_LENGTH - 1):
        return True
    if split.head.magic_trailing_comma is not None:
        return True
    equals = sum(1 for leaf in head if leaf.type == t.EQUAL)
    equals_oop = sum(1 for leaf in split_oop.head.leaves if leaf.type == t.EQUAL)
    if equals > 1 and equals > equals_oop:
        return False
    has_closing_bracket_after_assign = False
    for leaf in reversed(split_oop.head.leaves):
        if leaf.type == t.EQUAL:
            break
        if leaf.type in t.CLOSING_BRACKETS:
            has_closing_bracket_after_assign = True
            break
    return has_closing_bracket_after_assign or (
        any(leaf.type == t.EQUAL for leaf in split_oop.head.leaves)
        and is_line_short_enough(split_oop.head)
    )


def can_omit_invisible_parens(split: Cut, line_length: int) -> bool:
    """May the body go without its optional parentheses (black's conservative test)?"""
    line = split.body
    if split.head.comments.get(split.opening_bracket):
        return False
    closing: Optional[Leaf] = None
    for leaf in reversed(line.leaves):
        if closing is not None and leaf is closing.opening_bracket:
            closing = None
        if leaf.type == t.STANDALONE_COMMENT and closing is None:
            return False
        if (
            closing is None
            and leaf.type in t.CLOSING_BRACKETS
            and _has_equal_leaf(line.leaves, leaf.opening_bracket)
            and leaf.value
        ):
            closing = leaf
    tracker = line.bracket_tracker
    if not tracker.delimiters:
        return True
    max_priority = tracker.max_delimiter_priority()
    delimiter_count = tracker.delimiter_count_with_priority(max_priority)
    if delimiter_count > 1:
        return False
    if delimiter_count == 1 and max_priority == COMMA_PRIORITY and split.head.is_with_stmt:
        return False
    if max_priority == DOT_PRIORITY:
        return True
    first, second = line.leaves[0], line.leaves[1]
    if first.type in t.OPENING_BRACKETS and second.type not in t.CLOSING_BRACKETS:
        if _can_omit_opening_paren(line, first, line_length):
            return True
    penultimate, last = line.leaves[-2], line.leaves[-1]
    if (
        last.type == t.RPAR
        or last.type == t.RBRACE
        or (last.type == t.RSQB and last.parent is not None and last.parent.type != t.trailer)
    ):
        if penultimate.type in t.OPENING_BRACKETS:
            return False
        if is_multiline_string(first):
            return True
        if _can_omit_closing_paren(line, last, line_length):
            return True
    return False


def _has_equal_leaf(leaves: list[Leaf], wanted: Optional[Leaf]) -> bool:
    """black's `wanted in leaves`: its leaves compare equal by type and value."""
    if wanted is None:
        return False
    return any(x.type == wanted.type and x.value == wanted.value for x in leaves)


def _can_omit_opening_paren(line: Line, first: Leaf, line_length: int) -> bool:
    """True when what follows the bracket matching `first` fits (all of the line seen)."""
    remainder = False
    length = 4 * line.depth
    seen = 0
    for _index, leaf, leaf_length in line.enumerate_with_length():
        seen += 1
        if leaf.type in t.CLOSING_BRACKETS and leaf.opening_bracket is first:
            remainder = True
        if remainder:
            length += leaf_length
            if length > line_length:
                return False
            if leaf.type in t.OPENING_BRACKETS:
                remainder = False
    return len(line.leaves) == seen


def _can_omit_closing_paren(line: Line, last: Leaf, line_length: int) -> bool:
    length = 4 * line.depth
    seen_other_brackets = False
    for _index, leaf, leaf_length in line.enumerate_with_length():
        length += leaf_length
        if leaf is last.opening_bracket:
            if seen_other_brackets or length <= line_length:
                return True
        elif leaf.type in t.OPENING_BRACKETS:
            seen_other_brackets = True
    return False
