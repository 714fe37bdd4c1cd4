"""What the formatter changes in the tree before cutting it into lines.

Literals take their normal form (string prefixes and quotes, docstrings, numbers, escapes);
parentheses are hidden where redundant, and invisible ones are put where a split may show
them later (around a statement's parts, a conditional expression, a bare arithmetic
statement); visible ones are added where Python or black asks for them (a
number before an attribute, `-(x**2)`). One pre-order pass; each rule changes only the
children of the node it is given, so a node's rules have run before its leaves are read.
dlspec's own statement of black 26's rules (tests/test_pyformat.py checks the result). A
return annotation never arrives: the tokenizer hands a source with `->` to black."""

from __future__ import annotations

import re
from typing import Callable

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.fits import LINE_LENGTH
from dlspec.codegen.pyformat.lines import is_docstring_leaf
from dlspec.codegen.pyformat.parentheses import hide_redundant, optional_parentheses
from dlspec.codegen.pyformat.tree import LN, Leaf, Node, Unsupported, wrap_in_parentheses

_BACKSLASH_NEWLINE = re.compile(r"\\\s*\n")
_ASSIGNMENTS = frozenset("= += -= *= @= /= %= &= |= ^= <<= >>= **= //= :".split())
_BITWISE_OR_ARITHMETIC = frozenset((t.arith_expr, t.shift_expr, t.xor_expr, t.and_expr))
_NON_DECIMAL = ("0x", "0b", "0o")
# the parts of a statement that take optional parentheses: those after these words or a comma
# (a class's bases, a try and a yield have none)
PARENTHESIZED_AFTER: dict[int, frozenset[str]] = {
    t.assert_stmt: frozenset({"assert"}),
    t.if_stmt: frozenset({"if", "elif"}),
    t.while_stmt: frozenset({"while"}),
    t.for_stmt: frozenset({"for", "in"}),
    t.except_clause: frozenset({"except"}),
    t.with_stmt: frozenset({"with"}),
    t.expr_stmt: _ASSIGNMENTS,
    t.return_stmt: frozenset({"return"}),
    t.import_from: frozenset({"import"}),
    t.del_stmt: frozenset({"del"}),
}

Rule = Callable[[LN, int], None]


def normalize(root: Node) -> None:
    """Apply every rule to the tree, parents before children."""
    _visit(root, 0)


def _visit(node: LN, depth: int) -> None:
    """depth: the indentation of the block node is in (a docstring's is needed)."""
    rule = _RULES.get(node.type)
    if rule is not None:
        rule(node, depth)
    if node.type == t.suite:
        depth += 1
    for child in node.children:
        _visit(child, depth)


def _string(leaf: LN, depth: int) -> None:
    """Escapes, prefix and quotes normalised; a docstring re-indented and stripped; a
    multiline string elsewhere is left to black."""
    assert isinstance(leaf, Leaf)
    value = literals.normalize_unicode_escapes(leaf.value)
    if is_docstring_leaf(leaf):
        if _BACKSLASH_NEWLINE.search(value):
            raise Unsupported("a docstring with a backslash before a newline")
        value = literals.docstring_value(value, depth, LINE_LENGTH)
    elif "\n" in value:
        raise Unsupported("a multiline string that is not a docstring")
    leaf.value = literals.normalize_string_quotes(literals.normalize_string_prefix(value))


def _number(leaf: LN, depth: int) -> None:
    assert isinstance(leaf, Leaf)
    leaf.value = literals.normalize_number(leaf.value)


def _statement(node: LN, depth: int) -> None:
    assert isinstance(node, Node)
    optional_parentheses(node, PARENTHESIZED_AFTER[node.type])


def _conditional(node: LN, depth: int) -> None:
    """`a if b else c` gets invisible parentheses, unless it already sits in parentheses."""
    assert isinstance(node, Node)
    before = node.prev_sibling
    if before is not None and before.type == t.LPAR:
        return
    lpar, rpar = Leaf(t.LPAR, ""), Leaf(t.RPAR, "")
    lpar.prefix, node.prefix = node.prefix, ""
    node.insert_child(0, lpar)
    node.insert_child(len(node.children), rpar)


def _expression_statement(node: LN, depth: int) -> None:
    """A statement that is a bare `|`, `^`, `&`, shift or arithmetic expression takes
    invisible parentheses."""
    assert isinstance(node, Node)
    first = node.children[0]
    if first.type in _BITWISE_OR_ARITHMETIC:
        wrap_in_parentheses(node, first, visible=False)


def _number_attributes(node: LN, depth: int) -> None:
    """`1 .real` is written `(1).real` (not for hexadecimal, binary, octal or complex)."""
    assert isinstance(node, Node)
    children = node.children
    numbers = [
        child
        for child, following in zip(children[:-1], children[1:], strict=True)
        if isinstance(child, Leaf)
        and child.type == t.NUMBER
        and following.type == t.trailer
        and following.children[0].type == t.DOT
        and not child.value.lower().startswith(_NON_DECIMAL)
        and "j" not in child.value.lower()
    ]
    for number in numbers:
        wrap_in_parentheses(node, number)


def _negated_power(node: LN, depth: int) -> None:
    """`-x**2` is written `-(x**2)`."""
    assert isinstance(node, Node)
    operand = node.children[1]
    if operand.type != t.power or operand.children[1].type != t.DOUBLESTAR:
        return  # (`**` is right-associative: x**y**z is x ** (y**z), three children)
    wrapper = Node(t.atom, [Leaf(t.LPAR, "("), operand, Leaf(t.RPAR, ")")])
    node.children[1] = wrapper
    wrapper.parent = node
    node.positions = None


def _annotation(node: LN, depth: int) -> None:
    """A parameter's annotation loses redundant parentheses, keeping invisible ones."""
    assert isinstance(node, Node)
    if len(node.children) == 3 and hide_redundant(node.children[2], node):
        wrap_in_parentheses(node, node.children[2], visible=False)


def _display(node: LN, depth: int) -> None:
    """What a list or set display holds loses redundant parentheses."""
    assert isinstance(node, Node)
    if len(node.children) != 3:
        return
    pair = (node.children[0].type, node.children[2].type)
    if pair in ((t.LSQB, t.RSQB), (t.LBRACE, t.RBRACE)):
        hide_redundant(node.children[1], node)


_RULES: dict[int, Rule] = {
    t.STRING: _string,
    t.NUMBER: _number,
    t.test: _conditional,
    t.simple_stmt: _expression_statement,
    t.power: _number_attributes,
    t.factor: _negated_power,
    t.tname: _annotation,
    t.atom: _display,
    **{kind: _statement for kind in PARENTHESIZED_AFTER},
}
