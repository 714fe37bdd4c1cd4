"""Where a line may break between the leaves outside all its brackets, and how strongly.

Each leaf that arrives at a line is given its bracket depth; a leaf outside every bracket
may be a delimiter, a place where a split may break the line. The priority says which
delimiters a split uses first (the highest present): commas, then a comprehension's `for`
and `if`, a conditional's `if` and `else`, `and`/`or`, implicit string concatenation,
comparisons, binary operators from `|` (loosest) to `**` (tightest), and attribute dots
after a call or subscript. A break goes after a comma and before everything else.

dlspec's own statement of black 26's rules; tests/test_pyformat.py checks the formatter
built on it against the pinned black."""

from __future__ import annotations

from typing import Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.spacing import UNPACKING_PARENTS, VARARGS_PARENTS, is_vararg
from dlspec.codegen.pyformat.tree import Leaf

COMMA_PRIORITY = 18
COMPREHENSION_PRIORITY = 20
TERNARY_PRIORITY = 16
LOGIC_PRIORITY = 14
STRING_PRIORITY = 12
COMPARATOR_PRIORITY = 10
DOT_PRIORITY = 1

_BINARY_OPERATORS = {
    t.VBAR: 9, t.CIRCUMFLEX: 8, t.AMPER: 7, t.LEFTSHIFT: 6, t.RIGHTSHIFT: 6, t.PLUS: 5,
    t.MINUS: 5, t.STAR: 4, t.SLASH: 4, t.DOUBLESLASH: 4, t.PERCENT: 4, t.AT: 4, t.TILDE: 3,
    t.DOUBLESTAR: 2,
}  # fmt: skip
_UNARY_HOLDERS = frozenset((t.factor, t.star_expr))
_COMPARISON_SIGNS = frozenset(
    (t.LESS, t.GREATER, t.EQEQUAL, t.NOTEQUAL, t.LESSEQUAL, t.GREATEREQUAL)
)
_STARRED = VARARGS_PARENTS | UNPACKING_PARENTS
# a keyword is a delimiter by the node it belongs to (`if` of a comprehension, of a conditional)
_KEYWORDS = {
    (t.comp_for, "for"): COMPREHENSION_PRIORITY,
    (t.old_comp_for, "for"): COMPREHENSION_PRIORITY,
    (t.comp_if, "if"): COMPREHENSION_PRIORITY,
    (t.old_comp_if, "if"): COMPREHENSION_PRIORITY,
    (t.test, "if"): TERNARY_PRIORITY,
    (t.test, "else"): TERNARY_PRIORITY,
    (t.or_test, "or"): LOGIC_PRIORITY,
    (t.and_test, "and"): LOGIC_PRIORITY,
    (t.comparison, "in"): COMPARATOR_PRIORITY,
    (t.comparison, "is"): COMPARATOR_PRIORITY,
}


def break_after(leaf: Leaf) -> int:
    """The priority of a break after leaf: a comma's. (The commas between a for loop's
    targets never reach this: they are inside the scope the `for` opens.)"""
    return COMMA_PRIORITY if leaf.type == t.COMMA else 0


def break_before(leaf: Leaf, previous: Leaf) -> int:
    """The priority of a break before leaf (previous: the leaf before it on the line)."""
    kind, holder = leaf.type, leaf.parent
    if kind == t.NAME:
        return _keyword(leaf, holder)
    if kind in _BINARY_OPERATORS:
        unary = holder is None or holder.type in _UNARY_HOLDERS or is_vararg(leaf, _STARRED)
        return 0 if unary else _BINARY_OPERATORS[kind]
    if kind in _COMPARISON_SIGNS:
        return COMPARATOR_PRIORITY
    if kind == t.STRING:
        return STRING_PRIORITY if previous.type == t.STRING else 0
    if kind == t.DOT:  # an attribute after a call or a subscript (never so in an import)
        return DOT_PRIORITY if previous.type in t.CLOSING_BRACKETS else 0
    return 0


def _keyword(leaf: Leaf, holder: Optional[t.Node]) -> int:
    """A two-word comparison (`not in`, `is not`) breaks before its first word only."""
    if holder is None:
        return 0
    if holder.type == t.comp_op:
        return COMPARATOR_PRIORITY if holder.children[0] is leaf else 0
    return _KEYWORDS.get((holder.type, leaf.value), 0)


class Brackets:
    """What is open at each leaf of a line as the leaves arrive, and the delimiters found.

    Depth counts open brackets and the two keywords that open a scope without one: a `for`
    until its `in`, a `lambda` until its `:` (a comma in a lambda's parameters or a for
    loop's targets is not a delimiter of the line). What opens last closes first, so one
    stack holds both kinds and the depth is its height."""

    __slots__ = ("depth", "opened", "delimiters", "previous", "invisible")

    def __init__(self) -> None:
        self.depth = 0
        self.opened: list[Leaf] = []  # opening brackets and scope keywords, innermost last
        self.delimiters: dict[Leaf, int] = {}  # the leaf a break goes after -> priority
        self.previous: Optional[Leaf] = None
        self.invisible: list[Leaf] = []  # valueless opening parentheses (a pair shows as one)

    def mark(self, leaf: Leaf) -> None:
        """Give leaf its depth (and a closing bracket its opening one); note a delimiter."""
        kind = leaf.type
        if kind == t.COMMENT or (self.depth == 0 and kind in t.CLOSING_BRACKETS):
            return  # a closing bracket with nothing open: a line that starts inside brackets
        if self.depth:
            self._close(leaf)
        leaf.bracket_depth = self.depth
        if self.depth == 0:
            self._note_delimiter(leaf)
        if kind in t.OPENING_BRACKETS:
            self._push(leaf)
            if not leaf.value:
                self.invisible.append(leaf)
        elif kind == t.NAME and leaf.value in ("for", "lambda"):
            self._push(leaf)
        self.previous = leaf

    def _close(self, leaf: Leaf) -> None:
        """Close the innermost open thing if leaf ends it (an unmatched bracket: Unsupported)."""
        innermost = self.opened[-1]
        if innermost.type == t.NAME:
            if _ends_scope(innermost, leaf):
                self._pop()
                return
        elif leaf.type in t.CLOSING_BRACKETS and t.BRACKET[innermost.type] == leaf.type:
            self._pop()
            leaf.opening_bracket = innermost
            return
        if leaf.type in t.CLOSING_BRACKETS:
            raise t.Unsupported("unmatched closing bracket")

    def _push(self, opener: Leaf) -> None:
        self.opened.append(opener)
        self.depth += 1

    def _pop(self) -> None:
        self.opened.pop()
        self.depth -= 1

    def _note_delimiter(self, leaf: Leaf) -> None:
        """A break before leaf is noted on the leaf before it (none before the first leaf)."""
        if self.previous is not None:
            before = break_before(leaf, self.previous)
            if before:
                self.delimiters[self.previous] = before
                return
        after = break_after(leaf)
        if after:
            self.delimiters[leaf] = after

    def in_scope(self) -> bool:
        """Is a `for` or a `lambda` open (its targets or parameters still arriving)?"""
        return any(opener.type == t.NAME for opener in self.opened)

    def any_open(self) -> bool:
        """Is a bracket open?"""
        return any(opener.type != t.NAME for opener in self.opened)

    def open_subscript(self) -> Optional[Leaf]:
        """The innermost open thing if it is a `[`."""
        if self.opened and self.opened[-1].type == t.LSQB:
            return self.opened[-1]
        return None


def _ends_scope(opener: Leaf, leaf: Leaf) -> bool:
    if opener.value == "for":
        return leaf.type == t.NAME and leaf.value == "in"
    return leaf.type == t.COLON
