"""Logical lines: leaves with black's whitespace, bracket depths, delimiters and comments."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.spacing import (
    MATH_OPERATORS,
    TEST_DESCENDANTS,
    UNPACKING_PARENTS,
    VARARGS_PARENTS,
    is_vararg,
    whitespace,
)
from dlspec.codegen.pyformat.tree import Leaf, Node

COMPREHENSION_PRIORITY = 20
COMMA_PRIORITY = 18
TERNARY_PRIORITY = 16
LOGIC_PRIORITY = 14
STRING_PRIORITY = 12
COMPARATOR_PRIORITY = 10
MATH_PRIORITIES = {
    t.VBAR: 9, t.CIRCUMFLEX: 8, t.AMPER: 7, t.LEFTSHIFT: 6, t.RIGHTSHIFT: 6, t.PLUS: 5,
    t.MINUS: 5, t.STAR: 4, t.SLASH: 4, t.DOUBLESLASH: 4, t.PERCENT: 4, t.AT: 4, t.TILDE: 3,
    t.DOUBLESTAR: 2,
}  # fmt: skip
DOT_PRIORITY = 1
COMPARATORS = frozenset((t.LESS, t.GREATER, t.EQEQUAL, t.NOTEQUAL, t.LESSEQUAL, t.GREATEREQUAL))
_SPLIT_PARENTS = VARARGS_PARENTS | UNPACKING_PARENTS


def is_split_after_delimiter(leaf: Leaf) -> int:
    """The priority of a line break after leaf (commas, unless they unpack a for target)."""
    if leaf.type != t.COMMA:
        return 0
    parent = leaf.parent
    if parent is not None and parent.type == t.exprlist:
        grandparent = parent.parent
        if grandparent is not None and grandparent.type in (
            t.comp_for,
            t.old_comp_for,
            t.for_stmt,
        ):
            return 0
    return COMMA_PRIORITY


def is_split_before_delimiter(leaf: Leaf, previous: Optional[Leaf]) -> int:
    """The priority of a line break before leaf: operators, keywords, attribute dots."""
    if is_vararg(leaf, _SPLIT_PARENTS):
        return 0
    kind, parent = leaf.type, leaf.parent
    if kind == t.DOT:
        if (
            parent is not None
            and parent.type not in (t.import_from, t.dotted_name)
            and (previous is None or previous.type in t.CLOSING_BRACKETS)
        ):
            return DOT_PRIORITY
        return 0
    if kind in MATH_OPERATORS:
        if parent is not None and parent.type not in (t.factor, t.star_expr):
            return MATH_PRIORITIES[kind]
        return 0
    if kind in COMPARATORS:
        return COMPARATOR_PRIORITY
    if kind == t.STRING:
        if previous is not None and previous.type == t.STRING:
            return STRING_PRIORITY
        return 0
    if kind != t.NAME:
        return 0
    return _keyword_priority(leaf.value, parent.type if parent is not None else -1, previous)


def _keyword_priority(value: str, parent: int, previous: Optional[Leaf]) -> int:
    """(parent is -1 for a leaf without one: only `is` is a delimiter then.)"""
    if value == "for" and parent in (t.comp_for, t.old_comp_for):
        return COMPREHENSION_PRIORITY
    if value == "if" and parent in (t.comp_if, t.old_comp_if):
        return COMPREHENSION_PRIORITY
    if value in ("if", "else") and parent == t.test:
        return TERNARY_PRIORITY
    if value == "is":
        return COMPARATOR_PRIORITY
    if value == "in" and parent in (t.comp_op, t.comparison):
        if previous is not None and previous.type == t.NAME and previous.value == "not":
            return 0
        return COMPARATOR_PRIORITY
    if value == "not" and parent == t.comp_op:
        if previous is not None and previous.type == t.NAME and previous.value == "is":
            return 0
        return COMPARATOR_PRIORITY
    if value in ("and", "or") and parent != -1:
        return LOGIC_PRIORITY
    return 0


class BracketTracker:
    """Depths, matching brackets and delimiter priorities of the leaves of one line."""

    __slots__ = (
        "depth",
        "bracket_match",
        "delimiters",
        "previous",
        "for_depths",
        "lambda_depths",
        "invisible",
    )

    def __init__(self) -> None:
        self.depth = 0
        self.bracket_match: dict[tuple[int, int], Leaf] = {}
        self.delimiters: dict[Leaf, int] = {}
        self.previous: Optional[Leaf] = None
        self.for_depths: list[int] = []
        self.lambda_depths: list[int] = []
        self.invisible: list[Leaf] = []  # valueless parentheses, as they were when marked

    def mark(self, leaf: Leaf) -> None:
        kind = leaf.type
        if kind == t.COMMENT:
            return
        if self.depth == 0 and kind in t.CLOSING_BRACKETS:
            if (self.depth, kind) not in self.bracket_match:
                return
        if self.for_depths and self.for_depths[-1] == self.depth:
            if kind == t.NAME and leaf.value == "in":
                self.depth -= 1
                self.for_depths.pop()
        if self.lambda_depths and self.lambda_depths[-1] == self.depth and kind == t.COLON:
            self.depth -= 1
            self.lambda_depths.pop()
        if kind in t.CLOSING_BRACKETS:
            self.depth -= 1
            try:
                opening = self.bracket_match.pop((self.depth, kind))
            except KeyError:
                raise t.Unsupported("unmatched closing bracket") from None
            leaf.opening_bracket = opening
            if not leaf.value:
                self.invisible.append(leaf)
        leaf.bracket_depth = self.depth
        if self.depth == 0:
            priority = is_split_before_delimiter(leaf, self.previous)
            if priority and self.previous is not None:
                self.delimiters[self.previous] = priority
            else:
                priority = is_split_after_delimiter(leaf)
                if priority:
                    self.delimiters[leaf] = priority
        if kind in t.OPENING_BRACKETS:
            self.bracket_match[self.depth, t.BRACKET[kind]] = leaf
            self.depth += 1
            if not leaf.value:
                self.invisible.append(leaf)
        self.previous = leaf
        if kind == t.NAME:
            if leaf.value == "lambda":
                self.depth += 1
                self.lambda_depths.append(self.depth)
            elif leaf.value == "for":
                self.depth += 1
                self.for_depths.append(self.depth)

    def any_open_for_or_lambda(self) -> bool:
        return bool(self.for_depths or self.lambda_depths)

    def any_open_brackets(self) -> bool:
        return bool(self.bracket_match)

    def max_delimiter_priority(self, exclude: Optional[Leaf] = None) -> int:
        """The highest priority (ValueError when there is no delimiter)."""
        return max(v for k, v in self.delimiters.items() if k is not exclude)

    def delimiter_count_with_priority(self, priority: int = 0) -> int:
        if not self.delimiters:
            return 0
        priority = priority or self.max_delimiter_priority()
        return sum(1 for p in self.delimiters.values() if p == priority)

    def get_open_lsqb(self) -> Optional[Leaf]:
        return self.bracket_match.get((self.depth - 1, t.RSQB))


def is_one_sequence_between(
    opening: Leaf, closing: Leaf, leaves: list[Leaf], brackets: tuple[int, int] = (t.LPAR, t.RPAR)
) -> bool:
    """Is what lies between the brackets a one-item sequence (`(a,)` rather than `(a, b)`)?"""
    if (opening.type, closing.type) != brackets:
        return False
    depth = closing.bracket_depth + 1
    start, left, right = -1, 0, len(leaves) - 1
    while left <= right:  # from both ends: the opening bracket is usually near one
        if leaves[left] is opening:
            start = left
            break
        if leaves[right] is opening:
            start = right
            break
        left += 1
        right -= 1
    if start < 0:
        return False
    commas = 0
    for leaf in leaves[start + 1 :]:
        if leaf is closing:
            break
        if leaf.bracket_depth == depth and leaf.type == t.COMMA:
            commas += 1
            if leaf.parent is not None and leaf.parent.type in (t.arglist, t.typedargslist):
                commas += 1
                break
    return commas < 2


def is_import_leaf(leaf: Leaf) -> bool:
    parent = leaf.parent
    if leaf.type != t.NAME or parent is None:
        return False
    return (leaf.value == "import" and parent.type == t.import_name) or (
        leaf.value == "from" and parent.type == t.import_from
    )


def is_multiline_string(leaf: t.LN) -> bool:
    if not isinstance(leaf, Leaf) or leaf.type != t.STRING:
        return False
    value = leaf.value.lstrip("fturbFTURB")
    return value[:3] in ('"""', "'''") and "\n" in leaf.value


def is_docstring_leaf(leaf: Leaf) -> bool:
    """black's docstring test: a plain string statement first in the file or in a block."""
    if leaf.type != t.STRING:
        return False
    prefix = leaf.value[: len(leaf.value) - len(leaf.value.lstrip("fturbFTURB"))]
    if set(prefix) & set("bBfFtT"):
        return False
    parent = leaf.parent
    if parent is None or parent.type != t.simple_stmt:
        return False
    before = parent.prev_sibling
    if before is None:
        return parent.parent is not None and parent.parent.type == t.file_input
    if before.type == t.INDENT:
        earlier = before.prev_sibling
        return earlier is not None and earlier.type == t.NEWLINE and earlier.prev_sibling is None
    return False


class Line:
    """A logical line being built or split: leaves, comments after leaves, bracket data."""

    __slots__ = (
        "depth",
        "leaves",
        "comments",
        "bracket_tracker",
        "inside_brackets",
        "should_split_rhs",
        "magic_trailing_comma",
        "_complex_subscripts",
    )

    def __init__(self, depth: int = 0, inside_brackets: bool = False) -> None:
        self.depth = depth
        self.leaves: list[Leaf] = []
        self.comments: dict[Leaf, list[Leaf]] = {}
        self.bracket_tracker = BracketTracker()
        self.inside_brackets = inside_brackets
        self.should_split_rhs = False
        self.magic_trailing_comma: Optional[Leaf] = None
        self._complex_subscripts: dict[int, bool] = {}

    def append(self, leaf: Leaf, preformatted: bool = False, track_bracket: bool = False) -> None:
        """Add leaf with black's whitespace (unless preformatted) and bracket bookkeeping."""
        if leaf.type not in t.BRACKETS and not leaf.value.strip():
            return
        if leaf.type == t.COLON and self.is_class_paren_empty:
            del self.leaves[-2:]
        if self.leaves and not preformatted:
            leaf.prefix += whitespace(leaf, self.is_complex_subscript)
        if self.inside_brackets or not preformatted or track_bracket:
            self.bracket_tracker.mark(leaf)
            if self.has_magic_trailing_comma(leaf):
                self.magic_trailing_comma = leaf
        if not self.append_comment(leaf):
            self.leaves.append(leaf)

    def append_safe(self, leaf: Leaf, preformatted: bool = False) -> None:
        """append, but ValueError for a leaf after a standalone comment or a standalone comment
        after other leaves (outside brackets)."""
        tracker = self.bracket_tracker
        if tracker.depth == 0 or tracker.any_open_for_or_lambda():
            if self.is_comment:
                raise ValueError("cannot append to standalone comments")
            if self.leaves and leaf.type == t.STANDALONE_COMMENT:
                raise ValueError("cannot append standalone comments to a populated line")
        self.append(leaf, preformatted=preformatted)

    def append_comment(self, comment: Leaf) -> bool:
        """Attach an inline comment to the last leaf; False when it is a leaf of its own."""
        if comment.type == t.STANDALONE_COMMENT and self.bracket_tracker.any_open_brackets():
            comment.prefix = ""
            return False
        if comment.type != t.COMMENT:
            return False
        if not self.leaves:
            comment.type = t.STANDALONE_COMMENT
            comment.prefix = ""
            return False
        last = self.leaves[-1]
        if (
            last.type == t.RPAR
            and not last.value
            and last.parent is not None
            and len(list(last.parent.leaves())) <= 3
            and not self.contains_standalone_comments()
        ):
            if len(self.leaves) >= 2:
                last = self.leaves[-2]
        self.comments.setdefault(last, []).append(comment)
        return True

    def comments_after(self, leaf: Leaf) -> list[Leaf]:
        return self.comments.get(leaf, [])

    # ---- what kind of line -------------------------------------------------------------

    @property
    def is_comment(self) -> bool:
        return len(self.leaves) == 1 and self.leaves[0].type == t.STANDALONE_COMMENT

    @property
    def is_decorator(self) -> bool:
        return bool(self) and self.leaves[0].type == t.AT

    @property
    def is_import(self) -> bool:
        return bool(self) and is_import_leaf(self.leaves[0])

    @property
    def is_with_stmt(self) -> bool:
        if not self:
            return False
        first = self.leaves[0]
        return (
            first.type == t.NAME
            and first.value == "with"
            and first.parent is not None
            and first.parent.type == t.with_stmt
        )

    @property
    def is_class(self) -> bool:
        return bool(self) and self.leaves[0].type == t.NAME and self.leaves[0].value == "class"

    @property
    def is_stub_class(self) -> bool:
        return self.is_class and [(x.type, x.value) for x in self.leaves[-3:]] == [(t.DOT, ".")] * 3

    @property
    def is_def(self) -> bool:
        return bool(self.leaves) and self.leaves[0].type == t.NAME and self.leaves[0].value == "def"

    @property
    def is_stub_def(self) -> bool:
        return (
            self.is_def
            and [(x.type, x.value) for x in self.leaves[-4:]]
            == [(t.COLON, ":")] + [(t.DOT, ".")] * 3
        )

    @property
    def is_class_paren_empty(self) -> bool:
        leaves = self.leaves
        return (
            len(leaves) == 4
            and self.is_class
            and leaves[2].type == t.LPAR
            and leaves[2].value == "("
            and leaves[3].type == t.RPAR
            and leaves[3].value == ")"
        )

    @property
    def is_docstring(self) -> bool:
        return bool(self) and is_docstring_leaf(self.leaves[0])

    @property
    def is_chained_assignment(self) -> bool:
        return sum(1 for leaf in self.leaves if leaf.type == t.EQUAL) > 1

    @property
    def opens_block(self) -> bool:
        return bool(self.leaves) and self.leaves[-1].type == t.COLON

    def contains_standalone_comments(self) -> bool:
        return any(leaf.type == t.STANDALONE_COMMENT for leaf in self.leaves)

    def contains_implicit_multiline_string_with_comments(self) -> bool:
        leaves = self.leaves
        for index, leaf in enumerate(leaves):
            if leaf.type != t.STRING or not self.comments.get(leaf):
                continue
            before = index > 0 and leaves[index - 1].type == t.STRING
            after = index + 1 < len(leaves) and leaves[index + 1].type == t.STRING
            if before or after:
                return True
        return False

    def contains_multiline_strings(self) -> bool:
        return any(is_multiline_string(leaf) for leaf in self.leaves)

    def has_magic_trailing_comma(self, closing: Leaf) -> bool:
        """A trailing comma before closing that asks for one item per line (not a one-tuple,
        not a one-item subscript)."""
        if closing.type not in t.CLOSING_BRACKETS or not self.leaves:
            return False
        if self.leaves[-1].type != t.COMMA:
            return False
        if closing.type == t.RBRACE:
            return True
        if closing.type == t.RSQB:
            if (
                closing.parent is not None
                and closing.parent.type == t.trailer
                and closing.opening_bracket is not None
                and is_one_sequence_between(
                    closing.opening_bracket, closing, self.leaves, (t.LSQB, t.RSQB)
                )
            ):
                return False
            return True
        if self.is_import:
            return True
        if closing.opening_bracket is not None and not is_one_sequence_between(
            closing.opening_bracket, closing, self.leaves
        ):
            return True
        return False

    def is_complex_subscript(self, leaf: Leaf) -> bool:
        """Is leaf inside a subscript holding more than names and numbers?"""
        open_lsqb = self.bracket_tracker.get_open_lsqb()
        if open_lsqb is None:
            return False
        start = open_lsqb.next_sibling
        if isinstance(start, Node):
            if start.type == t.listmaker:
                return False
            if start.type == t.subscriptlist:
                start = _child_towards(start, leaf)
        if start is None:
            return False
        key = id(start)
        cached = self._complex_subscripts.get(key)
        if cached is None:
            cached = _has_test_descendant(start)
            self._complex_subscripts[key] = cached
        return cached

    # ---- rendering -----------------------------------------------------------------------

    def enumerate_with_length(self, reverse: bool = False) -> Iterator[tuple[int, Leaf, int]]:
        """(index, leaf, length with the comments after it); stops at a multiline string."""
        indices = range(len(self.leaves) - 1, -1, -1) if reverse else range(len(self.leaves))
        for index in indices:
            leaf = self.leaves[index]
            if "\n" in leaf.value:
                return
            length = len(leaf.prefix) + len(leaf.value)
            for comment in self.comments.get(leaf, ()):
                length += len(comment.value)
            yield index, leaf, length

    def clone(self) -> Line:
        line = Line(self.depth, self.inside_brackets)
        line.should_split_rhs = self.should_split_rhs
        line.magic_trailing_comma = self.magic_trailing_comma
        return line

    def render(self) -> str:
        """The line without its newline (black's str(line) stripped of newlines)."""
        return str(self).strip("\n")

    def __str__(self) -> str:
        if not self.leaves:
            return "\n"
        first = self.leaves[0]
        parts = [first.prefix, "    " * self.depth, first.value]
        parts += [leaf.prefix + leaf.value for leaf in self.leaves[1:]]
        for comments in self.comments.values():
            parts += [comment.prefix + comment.value for comment in comments]
        return "".join(parts) + "\n"

    def __bool__(self) -> bool:
        return bool(self.leaves or self.comments)

    def template(self, offset: int) -> list:
        """The rendered line as text pieces and, for names, numbers and strings of the
        source, their index (counted from `offset`) in place of their text."""
        if not self.leaves:
            return ["\n"]
        pieces: list = [self.leaves[0].prefix, "    " * self.depth]
        for index, leaf in enumerate(self.leaves):
            if index:
                pieces.append(leaf.prefix)
            pieces.append(leaf.origin - offset if leaf.origin >= 0 else leaf.value)
        for comments in self.comments.values():
            pieces += [comment.prefix + comment.value for comment in comments]
        pieces.append("\n")
        return pieces


def _has_test_descendant(node: t.LN) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in TEST_DESCENDANTS:
            return True
        if isinstance(current, Node):
            stack.extend(current.children)
    return False


def _child_towards(ancestor: Node, descendant: t.LN) -> Optional[t.LN]:
    node: Optional[t.LN] = descendant
    while node is not None and node.parent is not ancestor:
        node = node.parent
    return node
