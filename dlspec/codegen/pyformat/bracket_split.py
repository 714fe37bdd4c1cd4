"""Bracket splits, black's left- and right-hand splits: head, bracketed body and tail."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.fits import (
    LINE_LENGTH,
    CannotSplit,
    Features,
    can_be_split,
    is_line_short_enough,
    over_length_only_due_to_subscript_comment,
)
from dlspec.codegen.pyformat.lines import (
    COMMA_PRIORITY,
    DOT_PRIORITY,
    Line,
    is_multiline_string,
    is_one_sequence_between,
)
from dlspec.codegen.pyformat.tree import Leaf

# ---- bracket splits ----------------------------------------------------------------------

HEAD, BODY, TAIL = 0, 1, 2


class RHSResult:
    """The three lines of a split at one bracket pair."""

    __slots__ = ("head", "body", "tail", "opening_bracket", "closing_bracket")

    def __init__(self, head: Line, body: Line, tail: Line, opening: Leaf, closing: Leaf) -> None:
        self.head, self.body, self.tail = head, body, tail
        self.opening_bracket, self.closing_bracket = opening, closing


def left_hand_split(line: Line, features: Features) -> Iterator[Line]:
    """Split a `def` at its first bracket pair (its parameters)."""
    matching: Optional[Leaf] = None
    tail_leaves: list[Leaf] = []
    body_leaves: list[Leaf] = []
    head_leaves: list[Leaf] = []
    for leaf_type in (t.LPAR, t.LSQB):
        tail_leaves, body_leaves, head_leaves = [], [], []
        current = head_leaves
        matching = None
        for leaf in line.leaves:
            if (
                current is body_leaves
                and leaf.type in t.CLOSING_BRACKETS
                and leaf.opening_bracket is matching
                and matching is not None
            ):
                _ensure_visible(leaf)
                _ensure_visible(matching)
                current = tail_leaves if body_leaves else head_leaves
            current.append(leaf)
            if current is head_leaves and leaf.type == leaf_type:
                matching = leaf
                current = body_leaves
        if matching is not None and tail_leaves:
            break
    if matching is None or not tail_leaves:
        raise CannotSplit("no brackets found")
    head = bracket_split_build_line(head_leaves, line, matching, HEAD)
    body = bracket_split_build_line(body_leaves, line, matching, BODY)
    tail = bracket_split_build_line(tail_leaves, line, matching, TAIL)
    bracket_split_succeeded_or_raise(head, body, tail)
    for result in (head, body, tail):
        if result:
            yield result


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


def _ensure_visible(leaf: Leaf) -> None:
    if leaf.type == t.LPAR:
        leaf.value = "("
    elif leaf.type == t.RPAR:
        leaf.value = ")"


def rhs(line: Line, features: Features) -> Iterator[Line]:
    """black's right_hand_split_with_omits: split at the last bracket pair, gluing trailers
    that fit onto the head's line."""
    prefix_lengths: dict[Leaf, int] = {}
    length = 4 * line.depth
    for leaf in line.leaves:
        prefix_lengths[leaf] = length
        length += len(leaf.prefix) + len(leaf.value)
    first_lines: Optional[list[Line]] = None
    for omit in generate_trailers_to_omit(line, LINE_LENGTH):
        if omit:
            target: Optional[Leaf] = None
            for leaf in reversed(line.leaves):
                if leaf.type in t.CLOSING_BRACKETS and id(leaf) not in omit:
                    target = leaf.opening_bracket
                    break
            if target is not None and target.value and prefix_lengths.get(target, 0) > LINE_LENGTH:
                continue
        lines = list(right_hand_split(line, features, omit))
        if first_lines is None and not omit:
            first_lines = lines
        if is_line_short_enough(lines[0]) or (
            omit and over_length_only_due_to_subscript_comment(lines[0])
        ):
            yield from lines
            return
    if first_lines is not None:
        yield from first_lines
    else:
        yield from right_hand_split(line, features)


def right_hand_split(
    line: Line, features: Features, omit: frozenset[int] | set[int] = frozenset()
) -> Iterator[Line]:
    result = _first_right_hand_split(line, omit)
    yield from _maybe_split_omitting_optional_parens(result, line, features, omit)


def _first_right_hand_split(line: Line, omit: frozenset[int] | set[int] = frozenset()) -> RHSResult:
    tail_leaves: list[Leaf] = []
    body_leaves: list[Leaf] = []
    head_leaves: list[Leaf] = []
    current = tail_leaves
    opening: Optional[Leaf] = None
    closing: Optional[Leaf] = None
    for leaf in reversed(line.leaves):
        if current is body_leaves and leaf is opening:
            current = head_leaves if body_leaves else tail_leaves
        current.append(leaf)
        if current is tail_leaves:
            if leaf.type in t.CLOSING_BRACKETS and id(leaf) not in omit:
                opening = leaf.opening_bracket
                closing = leaf
                current = body_leaves
    if opening is None or closing is None or not head_leaves:
        raise CannotSplit("no brackets found")
    tail_leaves.reverse()
    body_leaves.reverse()
    head_leaves.reverse()
    head = bracket_split_build_line(head_leaves, line, opening, HEAD)
    body = bracket_split_build_line(body_leaves, line, opening, BODY)
    tail = bracket_split_build_line(tail_leaves, line, opening, TAIL)
    bracket_split_succeeded_or_raise(head, body, tail)
    return RHSResult(head, body, tail, opening, closing)


def _maybe_split_omitting_optional_parens(
    split: RHSResult, line: Line, features: Features, omit: frozenset[int] | set[int]
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
            split_oop = _first_right_hand_split(line, omit)
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
    _ensure_visible(split.opening_bracket)
    _ensure_visible(split.closing_bracket)
    for result in (split.head, split.body, split.tail):
        if result:
            yield result


def _prefer_split_rhs_oop_over_rhs(split_oop: RHSResult, split: RHSResult) -> bool:
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


def can_omit_invisible_parens(split: RHSResult, line_length: int) -> bool:
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


def bracket_split_succeeded_or_raise(head: Line, body: Line, tail: Line) -> None:
    tail_length = len(str(tail).strip())
    if not body:
        if tail_length == 0:
            raise CannotSplit("splitting brackets produced the same line")
        if tail_length < 3:
            raise CannotSplit(f"splitting brackets on an empty body saves only {tail_length}")


def _ensure_trailing_comma(leaves: list[Leaf], original: Line, opening: Leaf) -> bool:
    if not leaves:
        return False
    if original.is_import:
        return True
    if not original.is_def or opening.value != "(":
        return False
    if any(leaf.type == t.COMMA for leaf in leaves):
        if any(_in_annotation(leaf) for leaf in leaves if leaf.type == t.COMMA):
            raise t.Unsupported("a comma inside an annotation")
        return False
    with_parent = next((leaf for leaf in leaves if leaf.parent is not None), None)
    if with_parent is None:
        return True
    if _in_annotation(with_parent):
        raise t.Unsupported("an annotation in a split def")
    parent = with_parent.parent
    following = parent.next_sibling if parent is not None else None
    return not (following is not None and following.type == t.VBAR)


def _in_annotation(leaf: Leaf) -> bool:
    ancestor = leaf.parent
    while ancestor is not None:
        before = ancestor.prev_sibling
        if before is not None and before.type == t.RARROW:
            return True
        if ancestor.parent is not None and ancestor.parent.type == t.tname:
            return True
        ancestor = ancestor.parent
    return False


def get_leaves_inside_matching_brackets(leaves: list[Leaf]) -> set[int]:
    """ids of the leaves between (and of) matching bracket pairs within `leaves`."""
    try:
        start = next(i for i, leaf in enumerate(leaves) if leaf.type in t.OPENING_BRACKETS)
    except StopIteration:
        return set()
    ids: set[int] = set()
    stack: list[tuple[int, list[int]]] = []
    for leaf in leaves[start:]:
        if leaf.type in t.OPENING_BRACKETS:
            stack.append((t.BRACKET[leaf.type], [id(leaf)]))
        elif leaf.type in t.CLOSING_BRACKETS:
            if stack and leaf.type == stack[-1][0]:
                _, level = stack.pop()
                level.append(id(leaf))
                ids.update(level)
            else:
                break
        elif stack:
            stack[-1][1].append(id(leaf))
    return ids


def bracket_split_build_line(
    leaves: list[Leaf], original: Line, opening: Leaf, component: int
) -> Line:
    """A head, body or tail line of a bracket split (the body one level deeper, with a
    trailing comma where black adds one)."""
    result = Line(original.depth)
    if component == BODY:
        result.inside_brackets = True
        result.depth += 1
        if _ensure_trailing_comma(leaves, original, opening):
            for i in range(len(leaves) - 1, -1, -1):
                if leaves[i].type == t.STANDALONE_COMMENT:
                    continue
                if leaves[i].type != t.COMMA:
                    leaves.insert(i + 1, Leaf(t.COMMA, ","))
                break
    to_track = get_leaves_inside_matching_brackets(leaves) if component == HEAD else set()
    for leaf in leaves:
        result.append(leaf, preformatted=True, track_bracket=id(leaf) in to_track)
        for comment in original.comments_after(leaf):
            result.append(comment, preformatted=True)
    if component == BODY and should_split_line(result, opening):
        result.should_split_rhs = True
    return result


def should_split_line(line: Line, opening: Leaf) -> bool:
    """Should the body of a split explode one item per line (commas, and a magic comma or a
    collection literal)?"""
    if not (opening.parent is not None and opening.value in "[{("):
        return False
    trailing_comma = False
    exclude: Optional[Leaf] = None
    try:
        last = line.leaves[-1]
        if last.type == t.COMMA:
            trailing_comma = True
            exclude = last
        max_priority = line.bracket_tracker.max_delimiter_priority(exclude)
    except (IndexError, ValueError):
        return False
    return max_priority == COMMA_PRIORITY and (
        trailing_comma or opening.parent.type in (t.atom, t.import_from)
    )


def _closes_after_magic_comma(line: Line, index: int, leaf: Leaf) -> bool:
    """Whether the closing bracket at `index` follows a comma that makes its brackets a magic
    trailing comma's (not a one-item tuple's)."""
    prev = line.leaves[index - 1] if index > 0 else None
    return (
        prev is not None
        and prev.type == t.COMMA
        and leaf.opening_bracket is not None
        and not is_one_sequence_between(leaf.opening_bracket, leaf, line.leaves)
    )


def generate_trailers_to_omit(line: Line, line_length: int) -> Iterator[set[int]]:
    """Growing sets of closing brackets (ids) the right hand split may glue to the head."""
    omit: set[int] = set()
    if not line.magic_trailing_comma:
        yield omit
    length = 4 * line.depth
    opening: Optional[Leaf] = None
    closing: Optional[Leaf] = None
    inner_brackets: set[int] = set()
    for index, leaf, leaf_length in line.enumerate_with_length(reverse=True):
        length += leaf_length
        if length > line_length:
            break
        has_inline_comment = leaf_length > len(leaf.value) + len(leaf.prefix)
        if leaf.type == t.STANDALONE_COMMENT or has_inline_comment:
            break
        if opening is not None:
            if leaf is opening:
                opening = None
            elif leaf.type in t.CLOSING_BRACKETS:
                if _closes_after_magic_comma(line, index, leaf):
                    break
                inner_brackets.add(id(leaf))
        elif leaf.type in t.CLOSING_BRACKETS:
            prev = line.leaves[index - 1] if index > 0 else None
            if prev is not None and prev.type in t.OPENING_BRACKETS:
                inner_brackets.add(id(leaf))
                continue
            if closing is not None:
                omit.add(id(closing))
                omit.update(inner_brackets)
                inner_brackets.clear()
                yield omit
            if _closes_after_magic_comma(line, index, leaf):
                break
            if leaf.value:
                opening = leaf.opening_bracket
                closing = leaf
