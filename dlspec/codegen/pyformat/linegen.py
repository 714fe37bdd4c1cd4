"""Walk the tree into logical lines as black's LineGenerator does (parentheses, comments, strings)."""

from __future__ import annotations

import re
from typing import Callable, Optional

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.lines import (
    COMMA_PRIORITY,
    BracketTracker,
    Line,
    is_docstring_leaf,
    is_multiline_string,
)
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


def _is_empty_tuple(node: LN) -> bool:
    return (
        node.type == t.atom
        and len(node.children) == 2
        and node.children[0].type == t.LPAR
        and node.children[1].type == t.RPAR
    )


def _gexp(node: LN) -> Optional[LN]:
    """The testlist_gexp inside an atom `( ... )`, if that is what it holds."""
    if node.type != t.atom:
        return None
    inner = t.unwrap_singleton_parenthesis(node)
    if inner is None or inner.type != t.testlist_gexp:
        return None
    return inner


def is_one_tuple(node: LN) -> bool:
    """A one-item tuple, with or without parentheses."""
    if node.type == t.atom:
        inner = _gexp(node)
        return inner is not None and len(inner.children) == 2 and inner.children[1].type == t.COMMA
    return (
        node.type in (t.testlist, t.testlist_star_expr, t.exprlist)
        and len(node.children) == 2
        and node.children[1].type == t.COMMA
    )


def _is_tuple_containing_star(node: LN) -> bool:
    inner = _gexp(node)
    return inner is not None and any(c.type == t.star_expr for c in inner.children)


def _is_generator(node: LN) -> bool:
    inner = _gexp(node)
    return inner is not None and any(c.type == t.old_comp_for for c in inner.children)


def _is_yield(node: LN) -> bool:
    if node.type == t.yield_expr:
        return True
    if node.type == t.NAME and node.value == "yield":
        return True
    if node.type != t.atom or len(node.children) != 3:
        return False
    lpar, inner, rpar = node.children
    return lpar.type == t.LPAR and rpar.type == t.RPAR and _is_yield(inner)


def _top_level_leaves(children: list[LN]) -> list[Leaf]:
    out: list[Leaf] = []
    for child in children:
        if isinstance(child, Leaf):
            out.append(child)
            continue
        if not child.children:
            continue
        first, last = child.children[0], child.children[-1]
        if (
            isinstance(first, Leaf)
            and isinstance(last, Leaf)
            and first.type in t.OPENING_BRACKETS
            and last.type in t.CLOSING_BRACKETS
        ):
            out += [first, last]
        else:
            out += _top_level_leaves(child.children)
    return out


def max_delimiter_priority_in_atom(node: LN) -> int:
    """The highest delimiter priority directly inside a parenthesized atom (0 if none)."""
    if node.type != t.atom:
        return 0
    first, last = node.children[0], node.children[-1]
    if not (first.type == t.LPAR and last.type == t.RPAR):
        return 0
    tracker = BracketTracker()
    for leaf in _top_level_leaves(node.children[1:-1]):
        tracker.mark(leaf)
    try:
        return tracker.max_delimiter_priority()
    except ValueError:
        return 0


def _is_atom_with_invisible_parens(node: LN) -> bool:
    if isinstance(node, Leaf) or node.type != t.atom:
        return False
    first, last = node.children[0], node.children[-1]
    return (
        isinstance(first, Leaf)
        and first.type == t.LPAR
        and first.value == ""
        and isinstance(last, Leaf)
        and last.type == t.RPAR
        and last.value == ""
    )


def maybe_make_parens_invisible_in_atom(
    node: LN, parent: LN, remove_brackets_around_comma: bool = False, allow_star_expr: bool = False
) -> bool:
    """Hide redundant parentheses of an atom (recursively); True when the caller should wrap
    node in invisible parentheses instead."""
    if (
        node.type not in (t.atom, t.expr)
        or _is_empty_tuple(node)
        or is_one_tuple(node)
        or (_gexp(node) is not None and parent.type == t.asexpr_test)
        or (_gexp(node) is not None and parent.type == t.with_stmt and _has_comma_sibling(node))
        or (_is_yield(node) and parent.type != t.expr_stmt)
        or (
            not remove_brackets_around_comma
            and max_delimiter_priority_in_atom(node) >= COMMA_PRIORITY
        )
        or (not allow_star_expr and _is_tuple_containing_star(node))
        or _is_generator(node)
    ):
        return False
    assert isinstance(node, Node)
    first, last = node.children[0], node.children[-1]
    if first.type == t.LPAR and last.type == t.RPAR:
        middle = node.children[1]
        first.value = ""
        last.value = ""
        maybe_make_parens_invisible_in_atom(middle, parent, remove_brackets_around_comma)
        if _is_atom_with_invisible_parens(middle):
            assert isinstance(middle, Node)
            inner = middle.children[1]
            t.replace_node(middle, inner)
            if middle.children[0].prefix.strip():
                inner.prefix = middle.children[0].prefix + inner.prefix
            if middle.children[-1].prefix.strip():
                last.prefix = middle.children[-1].prefix + last.prefix
        return False
    return True


def _has_comma_sibling(node: LN) -> bool:
    parent = node.parent
    return parent is not None and any(c is not node and c.type == t.COMMA for c in parent.children)


def _is_atom_multiline(node: LN) -> bool:
    if not isinstance(node, Node) or len(node.children) < 3:
        return False
    return any(
        isinstance(child, Leaf) and "\n" in child.prefix for child in node.children[1].pre_order()
    )


def _lambda_or_ternary_in_parens(node: LN) -> bool:
    while (
        node.type == t.atom
        and len(node.children) == 3
        and node.children[0].type == t.LPAR
        and node.children[-1].type == t.RPAR
    ):
        middle = node.children[1]
        if middle.type in (t.test, t.lambdef):
            return True
        node = middle
    return False


def normalize_invisible_parens(node: Node, parens_after: frozenset[str]) -> None:
    """Hide redundant parentheses or add invisible ones around the children of a statement
    that follow a keyword in `parens_after` (black's optional parentheses)."""
    check_lpar = False
    for index, child in enumerate(list(node.children)):
        if isinstance(child, Node) and child.type == t.annassign:
            normalize_invisible_parens(child, parens_after)
        if index == 0 and isinstance(child, Node) and child.type == t.testlist_star_expr:
            check_lpar = True
        if (
            index == 0
            and isinstance(child, Node)
            and child.type == t.atom
            and node.type == t.expr_stmt
            and not is_one_tuple(child)
            and not _is_atom_multiline(child)
        ):
            if len(node.children) >= 2 and node.children[1].type == t.annassign:
                raise Unsupported("a parenthesized annotated target")
            if maybe_make_parens_invisible_in_atom(
                child, node, remove_brackets_around_comma=True, allow_star_expr=True
            ):
                wrap_in_parentheses(node, child, visible=False)
        if check_lpar:
            if _add_parens_after(node, child, index, parens_after):
                break
        check_lpar = isinstance(child, Leaf) and (
            child.value in parens_after or child.type == t.COMMA
        )


def _add_parens_after(node: Node, child: LN, index: int, parens_after: frozenset[str]) -> bool:
    """One child after a keyword of `parens_after`; True to stop looking (an import)."""
    before = child.prev_sibling
    if (
        child.type == t.atom
        and node.type == t.for_stmt
        and isinstance(before, Leaf)
        and before.type == t.NAME
        and before.value == "for"
    ):
        if maybe_make_parens_invisible_in_atom(child, node, remove_brackets_around_comma=True):
            wrap_in_parentheses(node, child, visible=False)
    elif isinstance(child, Node) and node.type == t.with_stmt:
        _remove_with_parens(child, node)
    elif child.type == t.atom:
        if "in" in parens_after and _lambda_or_ternary_in_parens(child):
            raise Unsupported("a parenthesized lambda or ternary after `in`")
        if maybe_make_parens_invisible_in_atom(child, node):
            wrap_in_parentheses(node, child, visible=False)
    elif is_one_tuple(child):
        wrap_in_parentheses(node, child, visible=True)
    elif node.type == t.import_from:
        _normalize_import_from(node, child, index)
        return True
    elif not is_multiline_string(child):
        wrap_in_parentheses(node, child, visible=False)
    return False


def _normalize_import_from(parent: Node, child: LN, index: int) -> None:
    if child.type == t.LPAR:
        child.value = ""
        parent.children[-1].value = ""
    elif child.type != t.STAR:
        parent.insert_child(index, Leaf(t.LPAR, ""))
        parent.insert_child(len(parent.children), Leaf(t.RPAR, ""))


def _remove_with_parens(node: Node, parent: Node) -> None:
    if node.type == t.atom:
        if maybe_make_parens_invisible_in_atom(node, parent, remove_brackets_around_comma=True):
            wrap_in_parentheses(parent, node, visible=False)
        if isinstance(node.children[1], Node):
            _remove_with_parens(node.children[1], node)
    elif node.type == t.testlist_gexp:
        for child in node.children:
            if isinstance(child, Node):
                _remove_with_parens(child, node)
    elif node.type == t.asexpr_test:
        first = node.children[0]
        if maybe_make_parens_invisible_in_atom(first, node, remove_brackets_around_comma=True):
            wrap_in_parentheses(node, first, visible=False)


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
        any_open_brackets = self.current_line.bracket_tracker.any_open_brackets()
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
        normalize_invisible_parens(node, parens)
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
                    if maybe_make_parens_invisible_in_atom(child, node):
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
        if len(node.children) == 3 and maybe_make_parens_invisible_in_atom(node.children[2], node):
            wrap_in_parentheses(node, node.children[2], visible=False)
        self.visit_default(node)

    def visit_atom(self, node: LN) -> None:
        assert isinstance(node, Node)
        if len(node.children) == 3:
            first, last = node.children[0], node.children[-1]
            if (first.type == t.LSQB and last.type == t.RSQB) or (
                first.type == t.LBRACE and last.type == t.RBRACE
            ):
                maybe_make_parens_invisible_in_atom(node.children[1], node)
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
