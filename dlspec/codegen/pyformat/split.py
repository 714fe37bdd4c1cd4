"""Split a logical line that does not fit, with black's transformers and in their order."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.bracket_pairs import left_hand_split
from dlspec.codegen.pyformat.bracket_split import should_split_funcdef_with_rhs
from dlspec.codegen.pyformat.fits import (
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
    """The physical lines black makes of one logical line."""
    if line.is_comment:
        yield line
        return
    line_str = line.render()
    hugged = _hugged_string(line, features) or line_str
    transformers: list[Transformer]
    if (
        not line.should_split_rhs
        and not line.magic_trailing_comma
        and is_line_short_enough(line, line_str=hugged)
        and not (line.inside_brackets and line.contains_standalone_comments())
        and not line.contains_implicit_multiline_string_with_comments()
    ):
        transformers = []
    elif line.is_def and not should_split_funcdef_with_rhs(line):
        transformers = [left_hand_split]
    elif line.inside_brackets:
        transformers = [delimiter_split, standalone_comment_split, rhs]
    else:
        transformers = [rhs]
    transformers.append(hug_power_op)
    for transform in transformers:
        try:
            result = run_transformer(line, transform, features, line_str)
        except CannotTransform:
            continue
        yield from result
        return
    if line.contains_standalone_comments():
        raise t.Unsupported("a standalone comment black cannot place")
    yield line


def _hugged_string(line: Line, features: Features) -> Optional[str]:
    try:
        return next(hug_power_op(line, features)).render()
    except CannotTransform:
        return None


def run_transformer(
    line: Line, transform: Transformer, features: Features, line_str: str
) -> list[Line]:
    optional_parens = [b for b in line.bracket_tracker.invisible if b.bracket_depth == 0]
    result: list[Line] = []
    for transformed in transform(line, features):
        if transformed.render() == line_str:
            raise CannotTransform("the transformer returned the line unchanged")
        result.extend(transform_line(transformed, features))
    if (
        "force_optional_parentheses" in features
        or transform is not rhs
        or not line.bracket_tracker.invisible
        or any(bracket.value for bracket in optional_parens)
        or line.contains_multiline_strings()
        or is_line_short_enough(result[0])
        or over_length_only_due_to_subscript_comment(result[0])
        or any(leaf.parent is None for leaf in line.leaves)
    ):
        return result
    line_copy = line.clone()
    _append_leaves(line_copy, line, line.leaves)
    second_opinion = run_transformer(
        line_copy, transform, features | {"force_optional_parentheses"}, line_str
    )
    if all(is_line_short_enough(ln) for ln in second_opinion):
        result = second_opinion
    return result


def _append_leaves(new_line: Line, old_line: Line, leaves: list[Leaf]) -> None:
    """Copy leaves into new_line, the copies replacing the originals in the tree."""
    for old in leaves:
        new = Leaf(old.type, old.value, "", old.origin)
        t.replace_node(old, new)
        new_line.append(new, preformatted=False)
        for comment in old_line.comments_after(old):
            new_line.append(comment, preformatted=True)


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
    if leaves[index].type == t.NUMBER:
        return True
    for leaf in leaves[index:]:
        if leaf.type in (t.LPAR, t.LSQB):
            return False
        if leaf.type not in (t.NAME, t.DOT) or leaf.value == "for":
            return True
    return True
