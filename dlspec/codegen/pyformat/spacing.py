"""The space before a leaf that follows another on a line, read off the leaf's place in the tree.

dlspec's own statement of black 26's rules (tests/test_pyformat.py checks the result against
black on every golden, regression and fuzzed spec): one space between tokens, except none
after an opening bracket, before a closing one, a comma or a call's or subscript's bracket, around
a keyword argument's or unannotated default's `=`, after a unary operator or a `*`/`**` that
unpacks, around a simple slice's colon, and inside dotted names and decorators; two before a
trailing comment. Decided first by the leaf's own kind, then (for the first leaf of a node)
by the leaf before it, then by the node the leaf is in."""

from __future__ import annotations

from typing import Callable, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.tree import LN, Leaf, preceding_leaf

NO, SPACE = "", " "
_NEVER_SPACED = t.CLOSING_BRACKETS | {t.COMMA, t.STANDALONE_COMMENT}
_SLICE_PARENTS = frozenset((t.subscript, t.subscriptlist, t.sliceop))
_KEYWORD_EQUAL_PARENTS = frozenset((t.arglist, t.argument, t.parameters, t.varargslist))
_STARS = frozenset((t.STAR, t.DOUBLESTAR, t.SLASH))
VARARGS_PARENTS = frozenset((t.arglist, t.argument, t.trailer, t.typedargslist, t.varargslist))
UNPACKING_PARENTS = frozenset(
    (t.atom, t.dictsetmaker, t.listmaker, t.testlist_gexp, t.testlist_star_expr)
)
MATH_OPERATORS = frozenset(
    (
        t.VBAR, t.CIRCUMFLEX, t.AMPER, t.LEFTSHIFT, t.RIGHTSHIFT, t.PLUS, t.MINUS, t.STAR,
        t.SLASH, t.DOUBLESLASH, t.PERCENT, t.AT, t.TILDE, t.DOUBLESTAR,
    )
)  # fmt: skip
TEST_DESCENDANTS = frozenset(
    (
        t.test, t.lambdef, t.or_test, t.and_test, t.not_test, t.comparison, t.star_expr,
        t.expr, t.xor_expr, t.and_expr, t.shift_expr, t.arith_expr, t.trailer, t.term, t.power,
    )
)  # fmt: skip

Complex = Callable[[Leaf], bool]
Rule = Callable[[Leaf, t.Node, Optional[LN], Complex], str]


def is_vararg(leaf: Leaf, within: frozenset[int]) -> bool:
    """Is leaf the `*`, `**` or `/` of a vararg, a kwarg or an unpacking within these parents
    (looking through a star_expr)?"""
    if leaf.type not in _STARS or leaf.parent is None:
        return False
    holder: Optional[t.Node] = leaf.parent
    if holder.type == t.star_expr:
        holder = holder.parent
    return holder is not None and holder.type in within


def whitespace(leaf: Leaf, complex_subscript: Complex) -> str:
    """The prefix black gives `leaf` after another leaf on its line (`complex_subscript(leaf)`:
    does the subscript holding leaf hold more than names and numbers? asked only when needed)."""
    kind = leaf.type
    if kind in _NEVER_SPACED:
        return NO
    if kind == t.COMMENT:
        return "  "
    parent = leaf.parent
    assert parent is not None, "a leaf made by hand has no parent"
    if kind == t.COLON and parent.type not in _SLICE_PARENTS:
        return NO
    prev = leaf.prev_sibling
    if prev is not None and prev.type in t.OPENING_BRACKETS:
        return NO
    if prev is None:
        decided = _by_leaf_before(leaf, parent, complex_subscript)
        if decided is not None:
            return decided
    rule = _BY_PARENT.get(parent.type)
    return rule(leaf, parent, prev, complex_subscript) if rule else SPACE


# ---- the first leaf of a node: decided by the leaf before it, when that settles it ----------


def _by_leaf_before(leaf: Leaf, parent: t.Node, complex_subscript: Complex) -> Optional[str]:
    """For the first leaf of `parent`: the space the leaf before it settles, or None."""
    before = preceding_leaf(parent)
    if before is None or before.type in t.OPENING_BRACKETS:
        return NO
    if leaf.type == t.COLON:  # a slice's colon first in its node
        if before.type == t.COLON:
            return NO
        return SPACE if before.type == t.COMMA or complex_subscript(leaf) else NO
    holder = before.parent
    if before.type == t.EQUAL:
        return _after_equal(before, holder)
    if before.type in _STARS:
        return NO if is_vararg(before, VARARGS_PARENTS | UNPACKING_PARENTS) else None
    if before.type == t.COLON:
        if holder is not None and holder.type in (t.subscript, t.sliceop):
            return SPACE if complex_subscript(leaf) else NO
        return None
    if holder is not None and holder.type == t.factor and before.type in MATH_OPERATORS:
        return NO  # after a unary operator
    if before.type == t.AT and parent.parent is not None and parent.parent.type == t.decorator:
        return NO
    return None


def _after_equal(equal: Leaf, holder: Optional[t.Node]) -> Optional[str]:
    """After a keyword argument's or default's `=`: none; an annotated default's keeps what the
    `=` itself was given."""
    if holder is None:
        return None
    if holder.type in _KEYWORD_EQUAL_PARENTS:
        return NO
    if holder.type == t.typedargslist:
        return equal.prefix
    return None


# ---- decided by the node the leaf is in ------------------------------------------------------
# (The first leaf of a node gets here only where _by_leaf_before has not decided it: never at
# the start of a line or after an opening bracket, a keyword's `=`, a slice's colon or an
# unpacking star.)


def _after_comma_only(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    """Parameters and call arguments: a space after a comma only."""
    return SPACE if prev is not None and prev.type == t.COMMA else NO


def _lambda_parameters(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    return NO if prev is not None and prev.type != t.COMMA else SPACE


def _typed_parameters(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    """A def's parameters: spaces around an annotated default's `=` (which the `=` was given
    when its parameter was read), after commas, nowhere else."""
    if prev is None:
        return NO
    if leaf.type == t.EQUAL:
        return SPACE if prev.type == t.tname else NO
    if prev.type == t.EQUAL:
        return prev.prefix
    return SPACE if prev.type == t.COMMA else NO


def _keyword_argument(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    """`name=value` and `*args`, `**kwargs` in a call: no spaces inside."""
    if leaf.type == t.EQUAL:
        return NO
    if prev is None:
        return SPACE
    return NO if prev.type == t.EQUAL or prev.type in _STARS else SPACE


def _never(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    """A decorator's leaves, and a trailer's: a call's parentheses, a subscript's bracket, an
    attribute's dot and name (what a trailer holds after a comma is in a node of its own)."""
    return NO


def _dotted_name(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    if prev is not None:
        return NO
    before = preceding_leaf(parent)
    return NO if before is None or before.type in (t.AT, t.DOT) else SPACE


def _class_bases(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    if leaf.type == t.LPAR or (prev is not None and prev.type == t.LPAR):
        return NO
    return SPACE


def _slice(leaf: Leaf, parent: t.Node, prev: Optional[LN], complex_subscript: Complex) -> str:
    """A slice's parts: spaced like a binary operator's only when the slice is complex."""
    if prev is None:
        assert parent.parent is not None, "subscripts are always parented"
        return SPACE if parent.parent.type == t.subscriptlist else NO
    return SPACE if complex_subscript(leaf) else NO


def _atom(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    return NO if prev is not None and leaf.type == t.DOT else SPACE


def _dict_items(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    return NO if prev is not None and prev.type == t.DOUBLESTAR else SPACE


def _unary(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    """A unary operator or an unpacking star, and what it applies to."""
    if prev is not None:
        return NO if leaf.type in (t.NAME, t.NUMBER, t.STRING) else SPACE
    return SPACE


def _import_from(leaf: Leaf, parent: t.Node, prev: Optional[LN], _: Complex) -> str:
    """`from .module import name`: the dots of a relative module joined to it."""
    if leaf.type == t.DOT:
        return NO if prev is not None and prev.type == t.DOT else SPACE
    if leaf.type == t.NAME and leaf.value != "import":
        return NO if prev is not None and prev.type == t.DOT else SPACE
    return SPACE


_BY_PARENT: dict[int, Rule] = {
    t.parameters: _after_comma_only,
    t.arglist: _after_comma_only,
    t.varargslist: _lambda_parameters,
    t.typedargslist: _typed_parameters,
    t.trailer: _never,
    t.argument: _keyword_argument,
    t.decorator: _never,
    t.dotted_name: _dotted_name,
    t.classdef: _class_bases,
    t.subscript: _slice,
    t.sliceop: _slice,
    t.atom: _atom,
    t.dictsetmaker: _dict_items,
    t.factor: _unary,
    t.star_expr: _unary,
    t.import_from: _import_from,
}
