"""Split a logical line that does not fit: which splits it gets, in black's order, and the lines
they make; and the power-operator hugging."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.fits import (
    FORCE_PARENTHESES,
    CannotTransform,
    Features,
    Transformer,
    is_line_short_enough,
    over_length_only_due_to_subscript_comment,
)
from dlspec.codegen.pyformat.items import delimiter_split, standalone_comment_split
from dlspec.codegen.pyformat.lines import Line
from dlspec.codegen.pyformat.trailers import rhs
from dlspec.codegen.pyformat.tree import Leaf

# ---- the driver --------------------------------------------------------------------------


def transform_line(line: Line, features: Features) -> Iterator[Line]:
    """The physical lines black makes of one logical line: the first of its splits
    (`_splits_for`, then the power-operator hugging) that changes it, each line it makes split
    in turn. A line nothing changes stays as it is, unless it holds a standalone comment
    (black places those by rules not restated here)."""
    if line.is_comment:
        yield line
        return
    text = line.render()
    for split in [*_splits_for(line, features, text), hug_power_op]:
        try:
            lines = _transformed(line, split, features, text)
        except CannotTransform:
            continue
        yield from lines
        return
    if line.has_standalone_comments():
        raise t.Unsupported("a standalone comment black cannot place")
    yield line


def _splits_for(line: Line, features: Features, text: str) -> list[Transformer]:
    """None for a line that stays whole: it fits (its powers hugged; a standalone comment
    never fits), nothing asks for it to be exploded (a magic trailing comma, a body black
    explodes), and it holds no implicitly joined multiline string with comments. Else, inside
    brackets, the delimiter split, the standalone-comment split and the right-hand split, in
    that order; else the right-hand split. (Black cuts a def at its first bracket, and the
    right-hand split at its last: on a def line here both are the parameters' parentheses,
    since the tokenizer hands a return annotation to black.)"""
    hugged = _hugged_string(line, features) or text
    if (
        not line.exploded
        and not line.magic_comma
        and is_line_short_enough(line, line_str=hugged)
        and not line.has_commented_string_concatenation()
    ):
        return []
    if line.inside_brackets:
        return [delimiter_split, standalone_comment_split, rhs]
    return [rhs]


def _hugged_string(line: Line, features: Features) -> Optional[str]:
    """The line as it renders with its power operators hugged (None: it has none)."""
    try:
        return next(hug_power_op(line, features)).render()
    except CannotTransform:
        return None


def _transformed(line: Line, split: Transformer, features: Features, text: str) -> list[Line]:
    """The lines `split` makes of the line, each transformed in turn (CannotTransform where
    one of them is the whole line again). A right-hand split whose first line is still too
    long after leaving optional parentheses out (`_may_force_parentheses`) is made again with
    them forced, on a fresh copy of the line, and that is taken where all its lines fit."""
    optional = [bracket for bracket in line.brackets.invisible if bracket.bracket_depth == 0]
    lines: list[Line] = []
    for piece in split(line, features):
        if piece.render() == text:
            raise CannotTransform("the split returned the line unchanged")
        lines.extend(transform_line(piece, features))
    if split is not rhs or not _may_force_parentheses(line, lines, features, optional):
        return lines
    forced = _transformed(_fresh_copy(line), split, features | {FORCE_PARENTHESES}, text)
    return forced if all(is_line_short_enough(part) for part in forced) else lines


def _may_force_parentheses(
    line: Line, lines: list[Line], features: Features, optional: list[Leaf]
) -> bool:
    """Whether a right-hand split is worth making again with its optional parentheses: not
    forced already, the line has invisible parentheses and those outside all brackets all
    stayed invisible, it holds no multiline string, its first line does not fit (not only
    for a comment after a `[`), and its leaves are all in the syntax tree."""
    return not (
        FORCE_PARENTHESES in features
        or not line.brackets.invisible
        or any(bracket.value for bracket in optional)
        or line.has_multiline_strings()
        or is_line_short_enough(lines[0])
        or over_length_only_due_to_subscript_comment(lines[0])
        or any(leaf.parent is None for leaf in line.leaves)
    )


def _fresh_copy(line: Line) -> Line:
    """A copy of the line made of new leaves, spaced anew, each replacing its original in the
    syntax tree."""
    copy = line.clone()
    for old in line.leaves:
        new = Leaf(old.type, old.value, "", old.origin)
        t.replace_node(old, new)
        copy.append(new, preformatted=False)
        for comment in line.comments_after(old):
            copy.append(comment, preformatted=True)
    return copy


# ---- power operators ---------------------------------------------------------------------


def hug_power_op(line: Line, features: Features) -> Iterator[Line]:
    """The line with no spaces around each `**` whose operands are both simple (_simple_left,
    _simple_right): `x**2`, `a.b**-c`, but `f(x) ** 2`. Refused for a line without `**`."""
    leaves = line.leaves
    powers = [index for index, leaf in enumerate(leaves) if leaf.type == t.DOUBLESTAR]
    if not powers:
        raise CannotTransform("no power operator")
    hugged = [i for i in powers if 0 < i < len(leaves) - 1]
    hugged = [i for i in hugged if _simple_left(leaves, i - 1) and _simple_right(leaves, i + 1)]
    tight = {*hugged, *(index + 1 for index in hugged)}  # the operator and the leaf after it
    new_line = line.clone()
    for index, leaf in enumerate(leaves):
        kept = Leaf(leaf.type, leaf.value, "", leaf.origin) if index in tight else leaf
        new_line.append(kept, preformatted=True)
        for comment in line.comments_after(leaf):
            new_line.append(comment, preformatted=True)
    yield new_line


def _simple_left(leaves: list[Leaf], index: int) -> bool:
    """Whether the operand that ends at leaves[index] is simple: a number, or a name other than
    `lambda` (with the dot before it, if any), that does not follow a `)` or `]` (the result of
    a call or a subscript)."""
    operand = leaves[index]
    if operand.type == t.NAME and operand.value != "lambda":
        start = index - 1 if index > 0 and leaves[index - 1].type == t.DOT else index
    elif operand.type == t.NUMBER:
        start = index
    else:
        return False
    return start == 0 or leaves[start - 1].type not in (t.RPAR, t.RSQB)


def _simple_right(leaves: list[Leaf], index: int) -> bool:
    """Whether the operand that starts at leaves[index] is simple: after at most one unary
    sign, a number, or a run of names and dots (ended by `for` or anything else) that no `(`
    or `[` follows."""
    if leaves[index].type in (t.PLUS, t.MINUS, t.TILDE):
        index += 1
    if index >= len(leaves) or leaves[index].type not in (t.NAME, t.NUMBER):
        return False
    for leaf in leaves[index:]:
        if leaf.type in (t.LPAR, t.LSQB):
            return False
        if leaf.type not in (t.NAME, t.DOT) or leaf.value == "for":
            return True
    return True
