"""Walk the tree into logical lines as black's LineGenerator does (parentheses, comments, strings)."""

from __future__ import annotations

import re
from typing import Callable

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.lines import (
    Line,
    is_docstring_leaf,
)
from dlspec.codegen.pyformat.parentheses import hide_redundant, optional_parentheses
from dlspec.codegen.pyformat.tree import LN, Leaf, Node, Unsupported, wrap_in_parentheses

_WHITESPACE = frozenset((t.DEDENT, t.INDENT, t.NEWLINE))
_ASSIGNMENTS = frozenset("= += -= *= @= /= %= &= |= ^= <<= >>= **= //= :".split())
_BACKSLASH_NEWLINE = re.compile(r"\\\s*\n")
_LINE_LENGTH = 100


def list_comments(prefix: str, is_endmarker: bool) -> list[tuple[int, str, int, int]]:
    """The comments in a prefix: (type, text, blank lines before, characters consumed)."""
    result: list[tuple[int, str, int, int]] = []
    if "#" not in prefix:
        return result
    consumed = newlines = 0
    for index, full_line in enumerate(prefix.split("\n")):
        consumed += len(full_line) + 1
        line = full_line.lstrip()
        if not line:
            newlines += 1
        if not line.startswith("#"):
            continue
        kind = t.COMMENT if index == 0 and not is_endmarker else t.STANDALONE_COMMENT
        result.append((kind, literals.make_comment(line), newlines, consumed))
        newlines = 0
    return result


def _is_arith_like(node: LN) -> bool:
    return node.type in (t.arith_expr, t.shift_expr, t.xor_expr, t.and_expr)


def _is_stub_suite(node: Node) -> bool:
    parent = node.parent
    if parent is not None and parent.type not in (t.funcdef, t.classdef):
        return False
    if node.prefix.strip():
        return False
    children = node.children
    if (
        len(children) != 4
        or children[0].type != t.NEWLINE
        or children[1].type != t.INDENT
        or children[3].type != t.DEDENT
    ):
        return False
    if children[3].prefix.strip():
        return False
    return _is_stub_body(children[2])


def _is_stub_body(node: LN) -> bool:
    if not isinstance(node, Node) or node.type != t.simple_stmt or len(node.children) != 2:
        return False
    child = node.children[0]
    return (
        not child.prefix.strip()
        and child.type == t.atom
        and len(child.children) == 3
        and all(leaf.type == t.DOT and leaf.value == "." for leaf in child.children)
    )


_STATEMENTS: dict[int, tuple[frozenset[str], frozenset[str]]] = {
    t.assert_stmt: (frozenset({"assert"}), frozenset({"assert", ","})),
    t.if_stmt: (frozenset({"if", "else", "elif"}), frozenset({"if", "elif"})),
    t.while_stmt: (frozenset({"while", "else"}), frozenset({"while"})),
    t.for_stmt: (frozenset({"for", "else"}), frozenset({"for", "in"})),
    t.try_stmt: (frozenset({"try", "except", "else", "finally"}), frozenset()),
    t.except_clause: (frozenset({"except"}), frozenset({"except"})),
    t.with_stmt: (frozenset({"with"}), frozenset({"with"})),
    t.classdef: (frozenset({"class"}), frozenset()),
    t.expr_stmt: (frozenset(), _ASSIGNMENTS),
    t.return_stmt: (frozenset({"return"}), frozenset({"return"})),
    t.yield_expr: (frozenset(), frozenset()),
    t.import_from: (frozenset(), frozenset({"import"})),
    t.del_stmt: (frozenset(), frozenset({"del"})),
}


class LineGenerator:
    """Turns a file_input tree into black's logical lines (before any splitting)."""

    def __init__(self) -> None:
        self.current_line = Line()
        self.lines: list[Line] = []
        self._visitors: dict[int, Callable[[LN], None]] = {
            t.INDENT: self.visit_indent,
            t.DEDENT: self.visit_dedent,
            t.ENDMARKER: self.visit_endmarker,
            t.STRING: self.visit_string,
            t.NUMBER: self.visit_number,
            t.test: self.visit_test,
            t.funcdef: self.visit_funcdef,
            t.suite: self.visit_suite,
            t.simple_stmt: self.visit_simple_stmt,
            t.decorators: self.visit_decorators,
            t.decorated: self.visit_decorators,
            t.power: self.visit_power,
            t.factor: self.visit_factor,
            t.tname: self.visit_tname,
            t.atom: self.visit_atom,
        }
        for kind in _STATEMENTS:
            self._visitors[kind] = self.visit_stmt

    def line(self, indent: int = 0) -> None:
        """Finish the current line (if it has anything) and start one `indent` deeper."""
        if not self.current_line:
            self.current_line.depth += indent
            return
        complete = self.current_line
        self.current_line = Line(complete.depth + indent)
        self.lines.append(complete)

    def visit(self, node: LN) -> None:
        visitor = self._visitors.get(node.type)
        if visitor is not None:
            visitor(node)
        else:
            self.visit_default(node)

    def visit_default(self, node: LN) -> None:
        if isinstance(node, Node):
            for child in node.children:
                self.visit(child)
            return
        any_open_brackets = self.current_line.brackets.any_open()
        prefix = node.prefix
        comments = list_comments(prefix, node.type == t.ENDMARKER) if "#" in prefix else []
        for kind, value, newlines, _ in comments:
            comment = Leaf(kind, value, "\n" * newlines)
            if any_open_brackets:
                self.current_line.append(comment)
            elif kind == t.COMMENT:
                self.current_line.append(comment)
                self.line()
            else:
                self.line()
                self.current_line.append(comment)
                self.line()
        consumed = comments[-1][3] if comments else 0
        node.prefix = "" if any_open_brackets else "\n" * prefix.count("\n", consumed)
        if node.type not in _WHITESPACE:
            self.current_line.append(node)

    def visit_test(self, node: LN) -> None:
        assert isinstance(node, Node)
        before = node.prev_sibling
        if not (before is not None and before.type == t.LPAR):
            lpar, rpar = Leaf(t.LPAR, ""), Leaf(t.RPAR, "")
            lpar.prefix = node.prefix
            node.prefix = ""
            node.insert_child(0, lpar)
            node.insert_child(len(node.children), rpar)
        self.visit_default(node)

    def visit_indent(self, node: LN) -> None:
        self.line(+1)
        self.visit_default(node)

    def visit_dedent(self, node: LN) -> None:
        self.line()
        self.visit_default(node)
        self.line(-1)

    def visit_endmarker(self, node: LN) -> None:
        self.visit_default(node)
        self.line()

    def visit_stmt(self, node: LN) -> None:
        assert isinstance(node, Node)
        keywords, parens = _STATEMENTS[node.type]
        optional_parentheses(node, parens)
        for child in node.children:
            if child.type == t.NAME and child.value in keywords:
                self.line()
            self.visit(child)

    def visit_funcdef(self, node: LN) -> None:
        assert isinstance(node, Node)
        self.line()
        is_return_annotation = False
        for child in list(node.children):
            if child.type == t.RARROW:
                is_return_annotation = True
            elif is_return_annotation:
                if child.type == t.atom and child.children[0].type == t.LPAR:
                    if hide_redundant(child, node):
                        wrap_in_parentheses(node, child, visible=False)
                else:
                    wrap_in_parentheses(node, child, visible=False)
                is_return_annotation = False
        for child in node.children:
            self.visit(child)

    def visit_suite(self, node: LN) -> None:
        assert isinstance(node, Node)
        if _is_stub_suite(node):
            self.visit(node.children[2])
        else:
            self.visit_default(node)

    def visit_simple_stmt(self, node: LN) -> None:
        assert isinstance(node, Node)
        first = node.children[0]
        if _is_arith_like(first):
            wrap_in_parentheses(node, first, visible=False)
        parent = node.parent
        if parent is not None and parent.type == t.suite and _is_stub_suite(parent):
            node.prefix = ""
            self.visit_default(node)
            return
        self.line()
        self.visit_default(node)

    def visit_decorators(self, node: LN) -> None:
        assert isinstance(node, Node)
        for child in node.children:
            self.line()
            self.visit(child)

    def visit_power(self, node: LN) -> None:
        assert isinstance(node, Node)
        for index, leaf in enumerate(node.children[:-1]):
            following = node.children[index + 1]
            if not isinstance(leaf, Leaf) or leaf.type != t.NUMBER:
                continue
            value = leaf.value.lower()
            if (
                following.type == t.trailer
                and following.children[0].type == t.DOT
                and not value.startswith(("0x", "0b", "0o"))
                and "j" not in value
            ):
                wrap_in_parentheses(node, leaf)
        self.visit_default(node)

    def visit_factor(self, node: LN) -> None:
        assert isinstance(node, Node)
        operand = node.children[1]
        if (
            operand.type == t.power
            and len(operand.children) == 3
            and operand.children[1].type == t.DOUBLESTAR
        ):
            lpar, rpar = Leaf(t.LPAR, "("), Leaf(t.RPAR, ")")
            wrapper = Node(t.atom, [lpar, operand, rpar])
            node.children[1] = wrapper
            wrapper.parent = node
            node.positions = None
        self.visit_default(node)

    def visit_tname(self, node: LN) -> None:
        assert isinstance(node, Node)
        if len(node.children) == 3 and hide_redundant(node.children[2], node):
            wrap_in_parentheses(node, node.children[2], visible=False)
        self.visit_default(node)

    def visit_atom(self, node: LN) -> None:
        assert isinstance(node, Node)
        if len(node.children) == 3:
            first, last = node.children[0], node.children[-1]
            if (first.type == t.LSQB and last.type == t.RSQB) or (
                first.type == t.LBRACE and last.type == t.RBRACE
            ):
                hide_redundant(node.children[1], node)
        self.visit_default(node)

    def visit_string(self, node: LN) -> None:
        assert isinstance(node, Leaf)
        node.value = literals.normalize_unicode_escapes(node.value)
        if is_docstring_leaf(node):
            if _BACKSLASH_NEWLINE.search(node.value):
                raise Unsupported("a docstring with a backslash before a newline")
            node.value = literals.docstring_value(node.value, self.current_line.depth, _LINE_LENGTH)
        if "\n" in node.value and not is_docstring_leaf(node):
            raise Unsupported("a multiline string that is not a docstring")
        node.value = literals.normalize_string_quotes(literals.normalize_string_prefix(node.value))
        self.visit_default(node)

    def visit_number(self, node: LN) -> None:
        assert isinstance(node, Leaf)
        node.value = literals.normalize_number(node.value)
        self.visit_default(node)


def generate_lines(root: Node) -> list[Line]:
    """The logical lines of a file_input tree, in order."""
    generator = LineGenerator()
    generator.visit(root)
    return generator.lines
