"""Optional parentheses: where the formatter hides a statement's redundant parentheses, keeps
them, or puts invisible ones that a split may show later (after `return`, `=`, `in`, ...)."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.delimiters import COMMA_PRIORITY, Brackets
from dlspec.codegen.pyformat.lines import is_multiline_string
from dlspec.codegen.pyformat.tree import LN, Leaf, Node, Unsupported, wrap_in_parentheses

# what a bare tuple is, as the part of a statement (`return 1,`, `for x in 1, 2:`)
_BARE_TUPLES = (t.testlist, t.testlist_star_expr, t.exprlist)


def _inside(node: LN) -> Optional[LN]:
    """What a parenthesized atom holds (its parentheses visible or not), else None."""
    return t.unwrap_singleton_parenthesis(node) if node.type == t.atom else None


def _items(node: LN) -> Optional[list[LN]]:
    """The items (and commas) of the tuple or generator a parenthesized atom holds, else None."""
    inner = _inside(node)
    return inner.children if inner is not None and inner.type == t.testlist_gexp else None


def is_one_tuple(node: LN) -> bool:
    """A tuple of one item, `(x,)` or bare `x,`."""
    if node.type == t.atom:
        parts = _items(node)
    else:
        parts = node.children if node.type in _BARE_TUPLES else None
    return parts is not None and len(parts) == 2 and parts[1].type == t.COMMA


def _is_yield(node: LN) -> bool:
    """A yield expression, bare or inside any number of parentheses."""
    while not (node.type == t.yield_expr or (node.type == t.NAME and node.value == "yield")):
        inner = _inside(node)
        if inner is None:
            return False
        node = inner
    return True


def _outer_leaves(children: list[LN]) -> Iterator[Leaf]:
    """The leaves of children outside any bracket pair among them (of a pair, its brackets)."""
    for child in children:
        if isinstance(child, Leaf):
            yield child
        elif child.children:
            first, last = child.children[0], child.children[-1]
            if first.type in t.OPENING_BRACKETS and last.type in t.CLOSING_BRACKETS:
                yield from (first, last)
            else:
                yield from _outer_leaves(child.children)


def _loosest_delimiter_inside(node: LN) -> int:
    """The priority of the loosest delimiter directly inside `( ... )`; 0 for none, or for a
    node that is not a parenthesized atom."""
    if node.type != t.atom or node.children[0].type != t.LPAR or node.children[-1].type != t.RPAR:
        return 0
    tracker = Brackets()
    for leaf in _outer_leaves(node.children[1:-1]):
        tracker.mark(leaf)
    return max(tracker.delimiters.values(), default=0)


def _beside_a_comma(node: LN) -> bool:
    """Whether a comma sits beside node among its parent's children."""
    parent = node.parent
    return parent is not None and any(c is not node and c.type == t.COMMA for c in parent.children)


def _must_stay(node: LN, parent: LN, commas_ok: bool, star_ok: bool) -> bool:
    """Whether node keeps what it has: it is neither an atom nor a `|` expression; or its
    parentheses mean something (an empty or one-item tuple, a generator, a yield outside an
    assignment, a tuple `with` or `as` needs, a top-level comma or a starred item unless the
    caller allows them)."""
    if node.type not in (t.atom, t.expr):
        return True
    items = _items(node)
    if items is not None and (
        parent.type == t.asexpr_test
        or (parent.type == t.with_stmt and _beside_a_comma(node))
        or any(item.type == t.old_comp_for for item in items)
        or (not star_ok and any(item.type == t.star_expr for item in items))
    ):
        return True
    empty = node.type == t.atom and [c.type for c in node.children] == [t.LPAR, t.RPAR]
    return (
        empty
        or is_one_tuple(node)
        or (_is_yield(node) and parent.type != t.expr_stmt)
        or (not commas_ok and _loosest_delimiter_inside(node) >= COMMA_PRIORITY)
    )


def _invisibly_parenthesized(node: LN) -> bool:
    """An atom whose parentheses are both invisible."""
    if not isinstance(node, Node) or node.type != t.atom:
        return False
    first, last = node.children[0], node.children[-1]
    return first.type == t.LPAR and last.type == t.RPAR and first.value == last.value == ""


def hide_redundant(node: LN, parent: LN, commas_ok: bool = False, star_ok: bool = False) -> bool:
    """Make the parentheses around node invisible where nothing needs them, and those directly
    inside them too (`((x))` ends as one invisible pair). True when node has none to hide but
    may take some (a `[...]`, `{...}` or `|` expression): the caller wraps it in invisible ones.
    parent: the statement or node node belongs to, which decides some cases (_must_stay)."""
    if _must_stay(node, parent, commas_ok, star_ok):
        return False
    assert isinstance(node, Node)
    opening, closing = node.children[0], node.children[-1]
    if opening.type != t.LPAR or closing.type != t.RPAR:
        return True
    opening.value = closing.value = ""
    inner = node.children[1]
    hide_redundant(inner, parent, commas_ok)
    if _invisibly_parenthesized(inner):
        _lift(inner, closing)
    return False


def _lift(pair: LN, closing: Leaf) -> None:
    """Put what an invisible pair of parentheses holds in its place; a comment that was on one
    of its parentheses goes to what it held, or to the outer closing parenthesis."""
    assert isinstance(pair, Node)
    left, held, right = pair.children[0], pair.children[1], pair.children[-1]
    t.replace_node(pair, held)
    if left.prefix.strip():
        held.prefix = left.prefix + held.prefix
    if right.prefix.strip():
        closing.prefix = right.prefix + closing.prefix


def _spans_lines(node: LN) -> bool:
    """Whether a line break sits anywhere inside what an atom's brackets hold."""
    if not isinstance(node, Node) or len(node.children) < 3:
        return False
    return any(isinstance(n, Leaf) and "\n" in n.prefix for n in node.children[1].pre_order())


def _lambda_or_ternary_inside(node: LN) -> bool:
    """Whether parentheses (any number of pairs) hold a lambda or a conditional expression."""
    inner = _inside(node)
    while inner is not None:
        if inner.type in (t.test, t.lambdef):
            return True
        inner = _inside(inner)
    return False


def optional_parentheses(statement: Node, after: frozenset[str]) -> None:
    """Give the parts of a statement that follow one of the words in `after`, or a comma (or
    that open it as a bare tuple), black's optional parentheses (_part_after); hide the
    redundant parentheses of an assignment's target."""
    children = list(statement.children)
    for index, child in enumerate(children):
        if index == 0 and statement.type == t.expr_stmt and child.type == t.atom:
            _assignment_target(statement, child)
        before = children[index - 1] if index else None
        follows = isinstance(before, Leaf) and (before.value in after or before.type == t.COMMA)
        opens_tuple = index == 0 and child.type == t.testlist_star_expr
        if (follows or opens_tuple) and _part_after(statement, child, index, after):
            return


def _assignment_target(statement: Node, target: LN) -> None:
    """`(x) = ...`: the target's parentheses are hidden where redundant (a one-item tuple and
    a target written over several lines keep theirs)."""
    if is_one_tuple(target) or _spans_lines(target):
        return
    if hide_redundant(target, statement, commas_ok=True, star_ok=True):
        wrap_in_parentheses(statement, target, visible=False)


def _part_after(statement: Node, part: LN, index: int, after: frozenset[str]) -> bool:
    """One part of a statement after a word of `after` (or a comma): a `for` target or another
    atom loses redundant parentheses (or takes invisible ones); a `with` item is done item by
    item; a bare one-item tuple gets visible ones; the names an import takes get invisible
    ones (True: nothing after them is looked at); anything else but a multiline string gets
    invisible ones."""
    before = part.prev_sibling
    loop_target = isinstance(before, Leaf) and before.type == t.NAME and before.value == "for"
    if part.type == t.atom and statement.type == t.for_stmt and loop_target:
        if hide_redundant(part, statement, commas_ok=True):
            wrap_in_parentheses(statement, part, visible=False)
    elif isinstance(part, Node) and statement.type == t.with_stmt:
        _with_item(part, statement)
    elif part.type == t.atom:
        if "in" in after and _lambda_or_ternary_inside(part):
            raise Unsupported("a parenthesized lambda or ternary after `in`")
        if hide_redundant(part, statement):
            wrap_in_parentheses(statement, part, visible=False)
    elif is_one_tuple(part):
        wrap_in_parentheses(statement, part, visible=True)
    elif statement.type == t.import_from:
        _imported_names(statement, part, index)
        return True
    elif not is_multiline_string(part):
        wrap_in_parentheses(statement, part, visible=False)
    return False


def _imported_names(statement: Node, first: LN, index: int) -> None:
    """`from m import (a, b)` gets its parentheses hidden, `from m import a, b` invisible ones
    around the names; `from m import *` stays as it is."""
    if first.type == t.LPAR:
        first.value = statement.children[-1].value = ""
    elif first.type != t.STAR:
        statement.insert_child(index, Leaf(t.LPAR, ""))
        statement.insert_child(len(statement.children), Leaf(t.RPAR, ""))


def _with_item(node: Node, parent: Node) -> None:
    """A `with` statement's items: redundant parentheses hidden around each (through tuples of
    items and parenthesized ones), and around the expression before each `as`."""
    if node.type == t.atom:
        if hide_redundant(node, parent, commas_ok=True):
            wrap_in_parentheses(parent, node, visible=False)
        if isinstance(node.children[1], Node):
            _with_item(node.children[1], node)
    elif node.type == t.testlist_gexp:
        for child in node.children:
            if isinstance(child, Node):
                _with_item(child, node)
    elif node.type == t.asexpr_test:
        managed = node.children[0]
        if hide_redundant(managed, node, commas_ok=True):
            wrap_in_parentheses(node, managed, visible=False)
