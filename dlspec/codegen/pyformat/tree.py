"""The syntax tree the formatter works on: black's node shapes for the Python dlspec emits."""

from __future__ import annotations

from typing import Iterator, Optional, Union

# Token types (leaves) and node types (symbols, from 256), named as blib2to3 names them so a
# test can compare the trees with black's.
(
    ENDMARKER,
    NAME,
    NUMBER,
    STRING,
    NEWLINE,
    INDENT,
    DEDENT,
    LPAR,
    RPAR,
    LSQB,
    RSQB,
    COLON,
    COMMA,
    SEMI,
    PLUS,
    MINUS,
    STAR,
    SLASH,
    VBAR,
    AMPER,
    LESS,
    GREATER,
    EQUAL,
    DOT,
    PERCENT,
    EQEQUAL,
    NOTEQUAL,
    LESSEQUAL,
    GREATEREQUAL,
    TILDE,
    CIRCUMFLEX,
    LEFTSHIFT,
    RIGHTSHIFT,
    DOUBLESTAR,
    PLUSEQUAL,
    MINEQUAL,
    STAREQUAL,
    SLASHEQUAL,
    PERCENTEQUAL,
    AMPEREQUAL,
    VBAREQUAL,
    CIRCUMFLEXEQUAL,
    LEFTSHIFTEQUAL,
    RIGHTSHIFTEQUAL,
    DOUBLESTAREQUAL,
    DOUBLESLASH,
    DOUBLESLASHEQUAL,
    AT,
    ATEQUAL,
    RARROW,
    COLONEQUAL,
    LBRACE,
    RBRACE,
    COMMENT,
    STANDALONE_COMMENT,
) = range(55)
(
    file_input,
    decorator,
    decorators,
    decorated,
    funcdef,
    parameters,
    typedargslist,
    tname,
    varargslist,
    simple_stmt,
    expr_stmt,
    annassign,
    testlist_star_expr,
    del_stmt,
    return_stmt,
    raise_stmt,
    import_name,
    import_from,
    import_as_name,
    dotted_as_name,
    import_as_names,
    dotted_as_names,
    dotted_name,
    global_stmt,
    assert_stmt,
    if_stmt,
    while_stmt,
    for_stmt,
    try_stmt,
    with_stmt,
    except_clause,
    suite,
    testlist_safe,
    old_test,
    old_lambdef,
    asexpr_test,
    test,
    or_test,
    and_test,
    not_test,
    comparison,
    comp_op,
    star_expr,
    expr,
    xor_expr,
    and_expr,
    shift_expr,
    arith_expr,
    term,
    factor,
    power,
    atom,
    listmaker,
    testlist_gexp,
    lambdef,
    trailer,
    subscriptlist,
    subscript,
    sliceop,
    exprlist,
    testlist,
    dictsetmaker,
    classdef,
    arglist,
    argument,
    comp_for,
    comp_if,
    old_comp_for,
    old_comp_if,
    yield_expr,
    yield_arg,
) = range(256, 256 + 71)
TOKEN_NAMES = "ENDMARKER NAME NUMBER STRING NEWLINE INDENT DEDENT LPAR RPAR LSQB RSQB COLON COMMA SEMI PLUS MINUS STAR SLASH VBAR AMPER LESS GREATER EQUAL DOT PERCENT EQEQUAL NOTEQUAL LESSEQUAL GREATEREQUAL TILDE CIRCUMFLEX LEFTSHIFT RIGHTSHIFT DOUBLESTAR PLUSEQUAL MINEQUAL STAREQUAL SLASHEQUAL PERCENTEQUAL AMPEREQUAL VBAREQUAL CIRCUMFLEXEQUAL LEFTSHIFTEQUAL RIGHTSHIFTEQUAL DOUBLESTAREQUAL DOUBLESLASH DOUBLESLASHEQUAL AT ATEQUAL RARROW COLONEQUAL LBRACE RBRACE COMMENT STANDALONE_COMMENT".split()
SYMBOL_NAMES = "file_input decorator decorators decorated funcdef parameters typedargslist tname varargslist simple_stmt expr_stmt annassign testlist_star_expr del_stmt return_stmt raise_stmt import_name import_from import_as_name dotted_as_name import_as_names dotted_as_names dotted_name global_stmt assert_stmt if_stmt while_stmt for_stmt try_stmt with_stmt except_clause suite testlist_safe old_test old_lambdef asexpr_test test or_test and_test not_test comparison comp_op star_expr expr xor_expr and_expr shift_expr arith_expr term factor power atom listmaker testlist_gexp lambdef trailer subscriptlist subscript sliceop exprlist testlist dictsetmaker classdef arglist argument comp_for comp_if old_comp_for old_comp_if yield_expr yield_arg".split()
TYPE_NAMES = {**dict(enumerate(TOKEN_NAMES)), **dict(enumerate(SYMBOL_NAMES, start=256))}

# fmt: off
OPERATORS: dict[str, int] = {
    "(": LPAR, ")": RPAR, "[": LSQB, "]": RSQB, "{": LBRACE, "}": RBRACE, ":": COLON,
    ",": COMMA, ";": SEMI, "+": PLUS, "-": MINUS, "*": STAR, "/": SLASH, "|": VBAR,
    "&": AMPER, "<": LESS, ">": GREATER, "=": EQUAL, ".": DOT, "%": PERCENT, "==": EQEQUAL,
    "!=": NOTEQUAL, "<=": LESSEQUAL, ">=": GREATEREQUAL, "~": TILDE, "^": CIRCUMFLEX,
    "<<": LEFTSHIFT, ">>": RIGHTSHIFT, "**": DOUBLESTAR, "//": DOUBLESLASH, "@": AT,
    "->": RARROW, ":=": COLONEQUAL,
}
AUGMENTED = {
    "+=": PLUSEQUAL, "-=": MINEQUAL, "*=": STAREQUAL, "/=": SLASHEQUAL, "%=": PERCENTEQUAL,
    "&=": AMPEREQUAL, "|=": VBAREQUAL, "^=": CIRCUMFLEXEQUAL, "<<=": LEFTSHIFTEQUAL,
    ">>=": RIGHTSHIFTEQUAL, "**=": DOUBLESTAREQUAL, "//=": DOUBLESLASHEQUAL, "@=": ATEQUAL,
}
# fmt: on
OPERATORS.update(AUGMENTED)

OPENING_BRACKETS = frozenset((LPAR, LSQB, LBRACE))
CLOSING_BRACKETS = frozenset((RPAR, RSQB, RBRACE))
BRACKETS = OPENING_BRACKETS | CLOSING_BRACKETS
BRACKET = {LPAR: RPAR, LSQB: RSQB, LBRACE: RBRACE}


class Unsupported(Exception):
    """The source holds something the fast formatter does not reproduce: black formats it."""


class Leaf:
    """A token: its type, text, the whitespace and comments before it, and line metadata."""

    __slots__ = ("type", "value", "prefix", "parent", "bracket_depth", "opening_bracket", "origin")

    def __init__(self, type: int, value: str, prefix: str = "", origin: int = -1) -> None:
        self.type = type
        self.value = value
        self.prefix = prefix
        self.parent: Optional[Node] = None
        self.bracket_depth = 0
        self.opening_bracket: Optional[Leaf] = None
        self.origin = origin  # which name, number or string of the source this is (or -1)

    def __str__(self) -> str:
        return self.prefix + self.value

    def __repr__(self) -> str:
        return f"Leaf({TYPE_NAMES.get(self.type, self.type)}, {self.value!r})"

    @property
    def prev_sibling(self) -> Optional[LN]:
        return _sibling(self, -1)

    @property
    def next_sibling(self) -> Optional[LN]:
        return _sibling(self, 1)

    @property
    def children(self) -> tuple[()]:
        """None: a leaf has no children (so that code can read `children` of either kind)."""
        return ()

    def leaves(self) -> Iterator[Leaf]:
        yield self

    def pre_order(self) -> Iterator[LN]:
        yield self


class Node:
    """An inner node: a symbol type and its children (never a single child: those collapse)."""

    __slots__ = ("type", "children", "parent", "positions")

    def __init__(self, type: int, children: list[LN]) -> None:
        self.type = type
        self.children = children
        self.parent: Optional[Node] = None
        self.positions: Optional[dict[int, int]] = None  # id(child) -> index, built on demand
        for child in children:
            child.parent = self

    def __str__(self) -> str:
        return "".join(str(leaf) for leaf in self.leaves())

    def __repr__(self) -> str:
        return f"Node({TYPE_NAMES.get(self.type, self.type)}, {self.children!r})"

    @property
    def prefix(self) -> str:
        return self.children[0].prefix if self.children else ""

    @prefix.setter
    def prefix(self, value: str) -> None:
        if self.children:
            self.children[0].prefix = value

    @property
    def prev_sibling(self) -> Optional[LN]:
        return _sibling(self, -1)

    @property
    def next_sibling(self) -> Optional[LN]:
        return _sibling(self, 1)

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def pre_order(self) -> Iterator[LN]:
        yield self
        for child in self.children:
            yield from child.pre_order()

    def set_child(self, index: int, child: LN) -> None:
        child.parent = self
        self.children[index].parent = None
        self.children[index] = child
        self.positions = None

    def insert_child(self, index: int, child: LN) -> None:
        child.parent = self
        self.children.insert(index, child)
        self.positions = None


LN = Union[Leaf, Node]


def _sibling(node: LN, step: int) -> Optional[LN]:
    parent = node.parent
    if parent is None:
        return None
    children = parent.children
    positions = parent.positions
    if positions is None:
        positions = parent.positions = {id(child): i for i, child in enumerate(children)}
    index = positions.get(id(node))
    if index is None:
        return None
    other = index + step
    return children[other] if 0 <= other < len(children) else None


def first_leaf(node: LN) -> Optional[Leaf]:
    """The first leaf under node."""
    while isinstance(node, Node):
        if not node.children:
            return None
        node = node.children[0]
    return node


def last_leaf(node: LN) -> Optional[Leaf]:
    """The last leaf under node."""
    while isinstance(node, Node):
        if not node.children:
            return None
        node = node.children[-1]
    return node


def preceding_leaf(node: Optional[LN]) -> Optional[Leaf]:
    """The leaf just before node in the tree, if any."""
    while node is not None:
        before = node.prev_sibling
        if before is not None:
            return last_leaf(before)
        node = node.parent
    return None


def replace_node(old: LN, new: LN) -> None:
    """Put new where old is in old's parent."""
    parent = old.parent
    if parent is None:
        return
    for index, child in enumerate(parent.children):
        if child is old:
            parent.set_child(index, new)
            return


def wrap_in_parentheses(parent: Node, child: LN, visible: bool = True) -> Node:
    """Replace child with an atom of parentheses around it (valueless when invisible)."""
    lpar = Leaf(LPAR, "(" if visible else "")
    rpar = Leaf(RPAR, ")" if visible else "")
    prefix = child.prefix
    child.prefix = ""
    index = next(i for i, c in enumerate(parent.children) if c is child)
    child.parent = None
    wrapper = Node(atom, [lpar, child, rpar])
    wrapper.prefix = prefix
    parent.children[index] = wrapper
    wrapper.parent = parent
    parent.positions = None
    return wrapper


def unwrap_singleton_parenthesis(node: LN) -> Optional[LN]:
    """The middle child of `( wrapped )` (parentheses possibly invisible), else None."""
    if not isinstance(node, Node) or len(node.children) != 3:
        return None
    lpar, wrapped, rpar = node.children
    if lpar.type == LPAR and rpar.type == RPAR:
        return wrapped
    return None
