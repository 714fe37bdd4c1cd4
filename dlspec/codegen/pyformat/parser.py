"""A recursive-descent parser for the Python dlspec's templates emit, building black's tree shapes."""

from __future__ import annotations

from typing import Callable, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.tokens import KEYWORDS
from dlspec.codegen.pyformat.tree import LN, Leaf, Node, Unsupported

_AUGMENTED = frozenset(t.AUGMENTED.values())
_COMPARISONS = frozenset((t.LESS, t.GREATER, t.EQEQUAL, t.NOTEQUAL, t.LESSEQUAL, t.GREATEREQUAL))
# binary operator -> its level; the levels' node types, loosest first
_LEVELS = {
    t.VBAR: 0, t.CIRCUMFLEX: 1, t.AMPER: 2, t.LEFTSHIFT: 3, t.RIGHTSHIFT: 3, t.PLUS: 4,
    t.MINUS: 4, t.STAR: 5, t.SLASH: 5, t.PERCENT: 5, t.DOUBLESLASH: 5, t.AT: 5,
}  # fmt: skip
_LEVEL_SYMBOLS = (t.expr, t.xor_expr, t.and_expr, t.shift_expr, t.arith_expr, t.term)
_UNARY = frozenset((t.PLUS, t.MINUS, t.TILDE))
_EXPRESSION_STARTS = frozenset(
    (t.NAME, t.NUMBER, t.STRING, t.LPAR, t.LSQB, t.LBRACE, t.MINUS, t.PLUS, t.TILDE, t.STAR, t.DOT)
)


def _node(type: int, children: list[LN]) -> LN:
    """A node, or its only child (blib2to3 collapses one-child nodes)."""
    return children[0] if len(children) == 1 else Node(type, children)


class _Parser:
    """Consumes the tokenizer's leaves; every method returns the subtree of one grammar rule."""

    def __init__(self, leaves: list[Leaf]) -> None:
        self.leaves = leaves
        self.pos = 0

    # ---- tokens ------------------------------------------------------------------------

    def peek(self) -> Leaf:
        return self.leaves[self.pos]

    def take(self) -> Leaf:
        leaf = self.leaves[self.pos]
        self.pos += 1
        return leaf

    def expect(self, type: int) -> Leaf:
        leaf = self.leaves[self.pos]
        if leaf.type != type:
            raise Unsupported(f"expected {t.TYPE_NAMES[type]}, found {leaf.value!r}")
        self.pos += 1
        return leaf

    def keyword(self, value: str) -> Leaf:
        leaf = self.leaves[self.pos]
        if leaf.type != t.NAME or leaf.value != value:
            raise Unsupported(f"expected {value!r}, found {leaf.value!r}")
        self.pos += 1
        return leaf

    def at(self, value: str) -> bool:
        leaf = self.leaves[self.pos]
        return leaf.type == t.NAME and leaf.value == value

    def starts_expression(self) -> bool:
        leaf = self.leaves[self.pos]
        if leaf.type == t.NAME:
            return leaf.value not in KEYWORDS or leaf.value in ("lambda", "not", "yield")
        return leaf.type in _EXPRESSION_STARTS

    # ---- statements --------------------------------------------------------------------

    def file_input(self) -> Node:
        children: list[LN] = []
        while self.peek().type != t.ENDMARKER:
            children.append(self.statement())
        children.append(self.take())
        return Node(t.file_input, children)

    def statement(self) -> LN:
        leaf = self.peek()
        if leaf.type == t.AT:
            return self.decorated()
        if leaf.type == t.NAME:
            compound = self._COMPOUND.get(leaf.value)
            if compound is not None:
                return compound(self)
        small = self.small_statement()
        return Node(t.simple_stmt, [small, self.expect(t.NEWLINE)])

    def small_statement(self) -> LN:
        leaf = self.peek()
        if leaf.type == t.NAME:
            simple = self._SIMPLE.get(leaf.value)
            if simple is not None:
                return simple(self)
            if leaf.value in KEYWORDS and leaf.value not in ("lambda", "not", "yield"):
                raise Unsupported(f"statement {leaf.value!r}")
        return self.expr_stmt()

    def expr_stmt(self) -> LN:
        first = self.testlist_star_expr()
        leaf = self.peek()
        if leaf.type == t.EQUAL:
            children = [first]
            while self.peek().type == t.EQUAL:
                children.append(self.take())
                children.append(self.yield_or(self.testlist_star_expr))
            return Node(t.expr_stmt, children)
        if leaf.type in _AUGMENTED:
            return Node(t.expr_stmt, [first, self.take(), self.yield_or(self.testlist)])
        if leaf.type == t.COLON:
            # black may infer newer target versions from one (ANN_ASSIGN_EXTENDED_RHS), and
            # dlspec emits none
            raise Unsupported("an annotated assignment")
        return first

    def yield_or(self, other: Callable[[], LN]) -> LN:
        return self.yield_expr() if self.at("yield") else other()

    def flow_keyword(self) -> LN:
        return self.take()

    def return_stmt(self) -> LN:
        children: list[LN] = [self.take()]
        if self.peek().type != t.NEWLINE:
            children.append(self.testlist_star_expr())
        return _node(t.return_stmt, children)

    def raise_stmt(self) -> LN:
        children: list[LN] = [self.take()]
        if self.peek().type != t.NEWLINE:
            children.append(self.test())
            if self.at("from"):
                children += [self.take(), self.test()]
        return _node(t.raise_stmt, children)

    def del_stmt(self) -> LN:
        return Node(t.del_stmt, [self.take(), self.exprlist()])

    def global_stmt(self) -> LN:
        children: list[LN] = [self.take(), self.expect(t.NAME)]
        while self.peek().type == t.COMMA:
            children += [self.take(), self.expect(t.NAME)]
        return Node(t.global_stmt, children)

    def assert_stmt(self) -> LN:
        children: list[LN] = [self.take(), self.test()]
        if self.peek().type == t.COMMA:
            children += [self.take(), self.test()]
        return Node(t.assert_stmt, children)

    def import_name(self) -> LN:
        keyword = self.take()
        names = [self.dotted_as_name()]
        while self.peek().type == t.COMMA:
            names += [self.take(), self.dotted_as_name()]
        return Node(t.import_name, [keyword, _node(t.dotted_as_names, names)])

    def dotted_as_name(self) -> LN:
        children: list[LN] = [self.dotted_name()]
        if self.at("as"):
            children += [self.take(), self.expect(t.NAME)]
        return _node(t.dotted_as_name, children)

    def dotted_name(self) -> LN:
        children: list[LN] = [self.expect(t.NAME)]
        while self.peek().type == t.DOT:
            children += [self.take(), self.expect(t.NAME)]
        return _node(t.dotted_name, children)

    def import_from(self) -> LN:
        children: list[LN] = [self.take()]
        while self.peek().type == t.DOT:
            children.append(self.take())
        if not self.at("import"):
            children.append(self.dotted_name())
        children.append(self.keyword("import"))
        leaf = self.peek()
        if leaf.type == t.STAR:
            children.append(self.take())
        elif leaf.type == t.LPAR:
            children += [self.take(), self.import_as_names(), self.expect(t.RPAR)]
        else:
            children.append(self.import_as_names())
        return Node(t.import_from, children)

    def import_as_names(self) -> LN:
        names = [self.import_as_name()]
        while self.peek().type == t.COMMA:
            names.append(self.take())
            if self.peek().type != t.NAME:
                break
            names.append(self.import_as_name())
        return _node(t.import_as_names, names)

    def import_as_name(self) -> LN:
        children: list[LN] = [self.expect(t.NAME)]
        if self.at("as"):
            children += [self.take(), self.expect(t.NAME)]
        return _node(t.import_as_name, children)

    def if_stmt(self) -> LN:
        children: list[LN] = [self.take(), self.test(), self.expect(t.COLON), self.suite()]
        while self.at("elif"):
            children += [self.take(), self.test(), self.expect(t.COLON), self.suite()]
        if self.at("else"):
            children += [self.take(), self.expect(t.COLON), self.suite()]
        return Node(t.if_stmt, children)

    def while_stmt(self) -> LN:
        children: list[LN] = [self.take(), self.test(), self.expect(t.COLON), self.suite()]
        if self.at("else"):
            children += [self.take(), self.expect(t.COLON), self.suite()]
        return Node(t.while_stmt, children)

    def for_stmt(self) -> LN:
        children: list[LN] = [self.take(), self.exprlist(), self.keyword("in")]
        children += [self.testlist_star_expr(), self.expect(t.COLON), self.suite()]
        if self.at("else"):
            children += [self.take(), self.expect(t.COLON), self.suite()]
        return Node(t.for_stmt, children)

    def try_stmt(self) -> LN:
        children: list[LN] = [self.take(), self.expect(t.COLON), self.suite()]
        handled = self.at("except")
        while self.at("except"):
            children += [self.except_clause(), self.expect(t.COLON), self.suite()]
        if handled and self.at("else"):
            children += [self.take(), self.expect(t.COLON), self.suite()]
        if self.at("finally"):
            children += [self.take(), self.expect(t.COLON), self.suite()]
        elif not handled:
            raise Unsupported("a try statement with neither except nor finally")
        return Node(t.try_stmt, children)

    def except_clause(self) -> LN:
        children: list[LN] = [self.take()]
        if self.peek().type != t.COLON:
            children.append(self.test())
            if self.at("as"):
                children += [self.take(), self.expect(t.NAME)]
        return _node(t.except_clause, children)

    def with_stmt(self) -> LN:
        children: list[LN] = [self.take(), self.asexpr_test()]
        while self.peek().type == t.COMMA:
            children += [self.take(), self.asexpr_test()]
        return Node(t.with_stmt, children + [self.expect(t.COLON), self.suite()])

    def asexpr_test(self) -> LN:
        children = [self.test()]
        if self.at("as"):
            children += [self.take(), self.test()]
        return _node(t.asexpr_test, children)

    def funcdef(self) -> LN:
        children: list[LN] = [self.take(), self.expect(t.NAME), self.parameters()]
        return Node(t.funcdef, children + [self.expect(t.COLON), self.suite()])

    def parameters(self) -> LN:
        children: list[LN] = [self.expect(t.LPAR)]
        if self.peek().type != t.RPAR:
            children.append(self.argument_list(t.typedargslist, self.tname))
        return Node(t.parameters, children + [self.expect(t.RPAR)])

    def tname(self) -> LN:
        children: list[LN] = [self.expect(t.NAME)]
        if self.peek().type == t.COLON:
            children += [self.take(), self.test()]
        return _node(t.tname, children)

    def vname(self) -> LN:
        return self.expect(t.NAME)

    def argument_list(self, type: int, name: Callable[[], LN]) -> LN:
        """typedargslist (def) or varargslist (lambda): flat names, defaults, stars, commas."""
        children: list[LN] = []
        end = t.RPAR if type == t.typedargslist else t.COLON
        while self.peek().type != end:
            leaf = self.peek()
            if leaf.type in (t.STAR, t.DOUBLESTAR):
                children.append(self.take())
                if self.peek().type == t.NAME:
                    children.append(name())
            else:
                children.append(name())
                if self.peek().type == t.EQUAL:
                    children += [self.take(), self.test()]
            if self.peek().type != t.COMMA:
                break
            children.append(self.take())
        return _node(type, children)

    def classdef(self) -> LN:
        children: list[LN] = [self.take(), self.expect(t.NAME)]
        if self.peek().type == t.LPAR:
            children.append(self.take())
            if self.peek().type != t.RPAR:
                children.append(self.arglist())
            children.append(self.expect(t.RPAR))
        return Node(t.classdef, children + [self.expect(t.COLON), self.suite()])

    def decorated(self) -> LN:
        decorators: list[LN] = []
        while self.peek().type == t.AT:
            decorators.append(Node(t.decorator, [self.take(), self.test(), self.expect(t.NEWLINE)]))
        if self.at("def"):
            definition = self.funcdef()
        elif self.at("class"):
            definition = self.classdef()
        else:
            raise Unsupported("decorated statement")
        return Node(t.decorated, [_node(t.decorators, decorators), definition])

    def suite(self) -> LN:
        if self.peek().type != t.NEWLINE:
            raise Unsupported("a block on its statement's line")
        children: list[LN] = [self.take(), self.expect(t.INDENT)]
        while self.peek().type != t.DEDENT:
            children.append(self.statement())
        children.append(self.take())
        return Node(t.suite, children)

    _COMPOUND: dict[str, Callable[[_Parser], LN]] = {}
    _SIMPLE: dict[str, Callable[[_Parser], LN]] = {}

    # ---- expressions -------------------------------------------------------------------

    def testlist_star_expr(self) -> LN:
        return self.sequence(t.testlist_star_expr, self.test_or_star)

    def testlist(self) -> LN:
        return self.sequence(t.testlist, self.test)

    def exprlist(self) -> LN:
        return self.sequence(t.exprlist, self.expr_or_star)

    def sequence(self, type: int, item: Callable[[], LN], also: int = -1) -> LN:
        """Items and commas (a trailing comma too); an item may also start with `also`."""
        children = [item()]
        while self.peek().type == t.COMMA:
            children.append(self.take())
            if not self.starts_expression() and self.peek().type != also:
                break
            children.append(item())
        return _node(type, children)

    def test_or_star(self) -> LN:
        return self.star_expr() if self.peek().type == t.STAR else self.test()

    def expr_or_star(self) -> LN:
        return self.star_expr() if self.peek().type == t.STAR else self.expr()

    def star_expr(self) -> LN:
        return Node(t.star_expr, [self.take(), self.expr()])

    def test(self) -> LN:
        if self.at("lambda"):
            return self.lambdef(t.lambdef, self.test)
        condition = self.or_test()
        if self.at("if"):
            children = [condition, self.take(), self.or_test(), self.keyword("else"), self.test()]
            return Node(t.test, children)
        return condition

    def old_test(self) -> LN:
        if self.at("lambda"):
            return self.lambdef(t.old_lambdef, self.old_test)
        return self.or_test()

    def lambdef(self, type: int, body: Callable[[], LN]) -> LN:
        children: list[LN] = [self.take()]
        if self.peek().type != t.COLON:
            children.append(self.argument_list(t.varargslist, self.vname))
        return Node(type, children + [self.expect(t.COLON), body()])

    def or_test(self) -> LN:
        children = [self.and_test()]
        while self.at("or"):
            children += [self.take(), self.and_test()]
        return _node(t.or_test, children)

    def and_test(self) -> LN:
        children = [self.not_test()]
        while self.at("and"):
            children += [self.take(), self.not_test()]
        return _node(t.and_test, children)

    def not_test(self) -> LN:
        if self.at("not"):
            return Node(t.not_test, [self.take(), self.not_test()])
        return self.comparison()

    def comparison(self) -> LN:
        first = self.expr()
        operator = self.comparison_operator()
        if operator is None:
            return first
        children = [first]
        while operator is not None:
            children += [operator, self.expr()]
            operator = self.comparison_operator()
        return Node(t.comparison, children)

    def comparison_operator(self) -> Optional[LN]:
        leaf = self.peek()
        if leaf.type in _COMPARISONS:
            return self.take()
        if leaf.type != t.NAME:
            return None
        if leaf.value == "in":
            return self.take()
        if leaf.value == "not":
            return Node(t.comp_op, [self.take(), self.keyword("in")])
        if leaf.value == "is":
            first = self.take()
            return Node(t.comp_op, [first, self.take()]) if self.at("not") else first
        return None

    def expr(self, min_level: int = 0) -> LN:
        """Binary operators by precedence climbing; one flat node per run of one level."""
        left = self.factor()
        while True:
            level = _LEVELS.get(self.peek().type)
            if level is None or level < min_level:
                return left
            children = [left]
            while _LEVELS.get(self.peek().type) == level:
                children.append(self.take())
                children.append(self.expr(level + 1))
            left = Node(_LEVEL_SYMBOLS[level], children)

    def factor(self) -> LN:
        if self.peek().type in _UNARY:
            return Node(t.factor, [self.take(), self.factor()])
        return self.power()

    def power(self) -> LN:
        children = [self.atom()]
        while True:
            leaf = self.peek()
            if leaf.type == t.LPAR:
                children.append(self.call_trailer())
            elif leaf.type == t.LSQB:
                trailer = [self.take(), self.subscriptlist(), self.expect(t.RSQB)]
                children.append(Node(t.trailer, trailer))
            elif leaf.type == t.DOT:
                children.append(Node(t.trailer, [self.take(), self.expect(t.NAME)]))
            else:
                break
        if self.peek().type == t.DOUBLESTAR:
            children += [self.take(), self.factor()]
        return _node(t.power, children)

    def call_trailer(self) -> Node:
        children: list[LN] = [self.take()]
        if self.peek().type != t.RPAR:
            children.append(self.arglist())
        return Node(t.trailer, children + [self.expect(t.RPAR)])

    def atom(self) -> LN:
        leaf = self.peek()
        kind = leaf.type
        if kind == t.NAME:
            if leaf.value in KEYWORDS:
                raise Unsupported(f"keyword {leaf.value!r} in an expression")
            return self.take()
        if kind == t.NUMBER:
            return self.take()
        if kind == t.STRING:
            strings: list[LN] = [self.take()]
            while self.peek().type == t.STRING:
                strings.append(self.take())
            return _node(t.atom, strings)
        if kind == t.LPAR:
            return self.bracketed(t.RPAR, self.parenthesized)
        if kind == t.LSQB:
            return self.bracketed(t.RSQB, self.listmaker)
        if kind == t.LBRACE:
            return self.bracketed(t.RBRACE, self.dictsetmaker)
        if kind == t.DOT:
            return Node(t.atom, [self.take(), self.expect(t.DOT), self.expect(t.DOT)])
        raise Unsupported(f"unexpected {leaf.value!r}")

    def bracketed(self, closing: int, inside: Callable[[], LN]) -> Node:
        opening = self.take()
        if self.peek().type == closing:
            return Node(t.atom, [opening, self.take()])
        return Node(t.atom, [opening, inside(), self.expect(closing)])

    def parenthesized(self) -> LN:
        if self.at("yield"):
            return self.yield_expr()
        return self.comprehension_or_list(t.testlist_gexp)

    def listmaker(self) -> LN:
        return self.comprehension_or_list(t.listmaker)

    def comprehension_or_list(self, type: int) -> LN:
        first = self.test_or_star()
        if self.at("for"):
            return Node(type, [first, self.old_comp_for()])
        children = [first]
        while self.peek().type == t.COMMA:
            children.append(self.take())
            if not self.starts_expression():
                break
            children.append(self.test_or_star())
        return _node(type, children)

    def dictsetmaker(self) -> LN:
        children = self.dict_or_set_item()
        if self.at("for"):
            return Node(t.dictsetmaker, children + [self.comp_for()])
        while self.peek().type == t.COMMA:
            children.append(self.take())
            if not self.starts_expression() and self.peek().type != t.DOUBLESTAR:
                break
            children += self.dict_or_set_item()
        return _node(t.dictsetmaker, children)

    def dict_or_set_item(self) -> list[LN]:
        leaf = self.peek()
        if leaf.type == t.DOUBLESTAR:
            return [self.take(), self.expr()]
        if leaf.type == t.STAR:
            return [self.star_expr()]
        key = self.test()
        if self.peek().type == t.COLON:
            return [key, self.take(), self.test()]
        return [key]

    def old_comp_for(self) -> LN:
        children: list[LN] = [self.take(), self.exprlist(), self.keyword("in")]
        children.append(self.sequence(t.testlist_safe, self.old_test))
        return Node(t.old_comp_for, children + self.comp_iter(old=True))

    def comp_for(self) -> LN:
        children: list[LN] = [self.take(), self.exprlist(), self.keyword("in"), self.or_test()]
        return Node(t.comp_for, children + self.comp_iter(old=False))

    def comp_iter(self, old: bool) -> list[LN]:
        if self.at("for"):
            return [self.old_comp_for() if old else self.comp_for()]
        if self.at("if"):
            children = [self.take(), self.old_test(), *self.comp_iter(old)]
            return [Node(t.old_comp_if if old else t.comp_if, children)]
        return []

    def arglist(self) -> LN:
        return self.sequence(t.arglist, self.argument, t.DOUBLESTAR)

    def argument(self) -> LN:
        leaf = self.peek()
        if leaf.type in (t.STAR, t.DOUBLESTAR):
            return Node(t.argument, [self.take(), self.test()])
        value = self.test()
        if self.peek().type == t.EQUAL:
            return Node(t.argument, [value, self.take(), self.test()])
        if self.at("for"):
            return Node(t.argument, [value, self.comp_for()])
        return value

    def subscriptlist(self) -> LN:
        return self.sequence(t.subscriptlist, self.subscript, t.COLON)

    def subscript(self) -> LN:
        children: list[LN] = []
        if self.peek().type != t.COLON:
            children.append(self.test())
            if self.peek().type != t.COLON:
                return children[0]
        children.append(self.take())
        if self.starts_expression():
            children.append(self.test())
        if self.peek().type == t.COLON:
            step: list[LN] = [self.take()]
            if self.starts_expression():
                step.append(self.test())
            children.append(_node(t.sliceop, step))
        return _node(t.subscript, children)

    def yield_expr(self) -> LN:
        children: list[LN] = [self.take()]
        if self.at("from"):
            children.append(Node(t.yield_arg, [self.take(), self.test()]))
        elif self.starts_expression():
            children.append(self.testlist_star_expr())
        return _node(t.yield_expr, children)


_Parser._COMPOUND.update(
    {
        "if": _Parser.if_stmt,
        "while": _Parser.while_stmt,
        "for": _Parser.for_stmt,
        "try": _Parser.try_stmt,
        "with": _Parser.with_stmt,
        "def": _Parser.funcdef,
        "class": _Parser.classdef,
    }
)
_Parser._SIMPLE.update(
    {
        "pass": _Parser.flow_keyword,
        "break": _Parser.flow_keyword,
        "continue": _Parser.flow_keyword,
        "return": _Parser.return_stmt,
        "raise": _Parser.raise_stmt,
        "del": _Parser.del_stmt,
        "global": _Parser.global_stmt,
        "nonlocal": _Parser.global_stmt,
        "assert": _Parser.assert_stmt,
        "import": _Parser.import_name,
        "from": _Parser.import_from,
        "yield": _Parser.yield_expr,
    }
)


def parse(leaves: list[Leaf]) -> Node:
    """The file_input tree of the tokenizer's leaves; Unsupported on anything else."""
    return _Parser(leaves).file_input()
