"""The whitespace black puts before a leaf, decided from the leaf's place in the tree."""

from __future__ import annotations

from typing import Callable

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.tree import Leaf, preceding_leaf

_ALWAYS_NO_SPACE = t.CLOSING_BRACKETS | {t.COMMA, t.STANDALONE_COMMENT}
_SLICE_PARENTS = frozenset((t.subscript, t.subscriptlist, t.sliceop))
_ARGUMENT_PARENTS = frozenset((t.arglist, t.argument, t.parameters, t.varargslist))
_VARARGS_SPECIALS = frozenset((t.STAR, t.DOUBLESTAR, t.SLASH))
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
NO, SPACE = "", " "


def is_vararg(leaf: Leaf, within: frozenset[int]) -> bool:
    """Is leaf the `*` or `**` of a vararg, a kwarg or an unpacking within these parents?"""
    if leaf.type not in _VARARGS_SPECIALS or leaf.parent is None:
        return False
    parent = leaf.parent
    if parent.type == t.star_expr:
        if parent.parent is None:
            return False
        parent = parent.parent
    return parent.type in within


def whitespace(leaf: Leaf, complex_subscript: Callable[[Leaf], bool]) -> str:
    """The prefix black gives `leaf` when it follows another leaf on a line
    (`complex_subscript(leaf)`: is leaf in a subscript with more than names and numbers?
    asked only where the answer matters)."""
    kind = leaf.type
    if kind in _ALWAYS_NO_SPACE:
        return NO
    if kind == t.COMMENT:
        return "  "
    parent = leaf.parent
    assert parent is not None, "a leaf made by hand has no parent"
    if kind == t.COLON and parent.type not in _SLICE_PARENTS:
        return NO
    prev = leaf.prev_sibling
    if prev is None:
        early = _first_child_space(leaf, parent, complex_subscript)
        if early is not None:
            return early
    elif prev.type in t.OPENING_BRACKETS:
        return NO
    return _space_in_parent(leaf, parent, prev, complex_subscript)


def _first_child_space(
    leaf: Leaf, parent: t.Node, complex_subscript: Callable[[Leaf], bool]
) -> str | None:
    """The decision for the first child of its parent, made from the leaf before it."""
    prevp = preceding_leaf(parent)
    if prevp is None or prevp.type in t.OPENING_BRACKETS:
        return NO
    if leaf.type == t.COLON:
        if prevp.type == t.COLON:
            return NO
        if prevp.type != t.COMMA and not complex_subscript(leaf):
            return NO
        return SPACE
    prevp_parent = prevp.parent
    if prevp.type == t.EQUAL:
        if prevp_parent is not None:
            if prevp_parent.type in _ARGUMENT_PARENTS:
                return NO
            if prevp_parent.type == t.typedargslist:
                return prevp.prefix
    elif prevp.type in _VARARGS_SPECIALS:
        if is_vararg(prevp, VARARGS_PARENTS | UNPACKING_PARENTS):
            return NO
    elif prevp.type == t.COLON:
        if prevp_parent is not None and prevp_parent.type in (t.subscript, t.sliceop):
            return SPACE if complex_subscript(leaf) else NO
    elif (
        prevp_parent is not None
        and prevp_parent.type == t.factor
        and (prevp.type in MATH_OPERATORS)
    ):
        return NO
    elif prevp.type == t.AT and parent.parent is not None and parent.parent.type == t.decorator:
        return NO
    return None


def _space_in_parent(
    leaf: Leaf, parent: t.Node, prev: t.LN | None, complex_subscript: Callable[[Leaf], bool]
) -> str:
    """The decision by the parent's type (black's long chain of cases, in its order)."""
    kind, ptype = leaf.type, parent.type
    if ptype in (t.parameters, t.arglist):
        if prev is None or prev.type != t.COMMA:
            return NO
    elif ptype == t.varargslist:
        if prev is not None and prev.type != t.COMMA:
            return NO
    elif ptype == t.typedargslist:
        if prev is None:
            return NO
        if kind == t.EQUAL:
            if prev.type != t.tname:
                return NO
        elif prev.type == t.EQUAL:
            return prev.prefix
        elif prev.type != t.COMMA:
            return NO
    elif ptype == t.tname:
        if prev is None:
            prevp = preceding_leaf(parent)
            if prevp is None or prevp.type != t.COMMA:
                return NO
    elif ptype == t.trailer:
        if kind in (t.LPAR, t.RPAR):
            return NO
        if prev is None:
            if kind in (t.DOT, t.LSQB):
                return NO
        elif prev.type != t.COMMA:
            return NO
    elif ptype == t.argument:
        if kind == t.EQUAL:
            return NO
        if prev is None:
            prevp = preceding_leaf(parent)
            if prevp is None or prevp.type == t.LPAR:
                return NO
        elif prev.type == t.EQUAL or prev.type in _VARARGS_SPECIALS:
            return NO
    elif ptype == t.decorator:
        return NO
    elif ptype == t.dotted_name:
        if prev is not None:
            return NO
        prevp = preceding_leaf(parent)
        if prevp is None or prevp.type in (t.AT, t.DOT):
            return NO
    elif ptype == t.classdef:
        if kind == t.LPAR:
            return NO
        if prev is not None and prev.type == t.LPAR:
            return NO
    elif ptype in (t.subscript, t.sliceop):
        if prev is None:
            assert parent.parent is not None, "subscripts are always parented"
            if parent.parent.type == t.subscriptlist:
                return SPACE
            return NO
        if not complex_subscript(leaf):
            return NO
    elif ptype == t.atom:
        if prev is not None and kind == t.DOT:
            return NO
    elif ptype == t.dictsetmaker:
        if prev is not None and prev.type == t.DOUBLESTAR:
            return NO
    elif ptype in (t.factor, t.star_expr):
        return _unary_space(leaf, parent, prev)
    elif ptype == t.import_from:
        if kind == t.DOT:
            if prev is not None and prev.type == t.DOT:
                return NO
        elif kind == t.NAME:
            if leaf.value == "import":
                return SPACE
            if prev is not None and prev.type == t.DOT:
                return NO
    return SPACE


def _unary_space(leaf: Leaf, parent: t.Node, prev: t.LN | None) -> str:
    if prev is None:
        prevp = preceding_leaf(parent)
        if prevp is None or prevp.type in t.OPENING_BRACKETS:
            return NO
        prevp_parent = prevp.parent
        assert prevp_parent is not None
        if prevp.type == t.COLON and prevp_parent.type in (t.subscript, t.sliceop):
            return NO
        if prevp.type == t.EQUAL and prevp_parent.type == t.argument:
            return NO
    elif leaf.type in (t.NAME, t.NUMBER, t.STRING):
        return NO
    return SPACE
