"""Logical lines: leaves spaced as black spaces them, their comments, and bracket data.

A line is built leaf by leaf: each leaf gets its space from spacing.py and its depth and
delimiter priority from delimiters.py; an inline comment is attached to the leaf it
follows rather than kept as a leaf. The questions the splitters and blank-line rules ask
of a line (what statement it starts, whether it ends in a magic trailing comma, its
length leaf by leaf) are answered here. dlspec's own statement of black 26's rules."""

from __future__ import annotations

from typing import Iterator, Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.delimiters import Brackets
from dlspec.codegen.pyformat.spacing import TEST_DESCENDANTS, whitespace
from dlspec.codegen.pyformat.tree import Leaf, Node

_STRING_PREFIXES = "fturbFTURB"
_ARGUMENT_LISTS = frozenset((t.arglist, t.typedargslist))


def holds_one_item(
    opening: Leaf, closing: Leaf, leaves: list[Leaf], brackets: tuple[int, int] = (t.LPAR, t.RPAR)
) -> bool:
    """Do the brackets (of the kinds given) hold one item, as `(a,)` or `(a)` do: at most one
    comma directly inside, and none that separates arguments or parameters?"""
    if (opening.type, closing.type) != brackets:
        return False
    start = _find(opening, leaves)
    if start < 0:
        return False
    depth = closing.bracket_depth + 1
    commas = 0
    for leaf in leaves[start + 1 :]:
        if leaf is closing:
            break
        if leaf.type == t.COMMA and leaf.bracket_depth == depth:
            if leaf.parent is not None and leaf.parent.type in _ARGUMENT_LISTS:
                return False
            commas += 1
    return commas <= 1


def _find(leaf: Leaf, leaves: list[Leaf]) -> int:
    """The index of leaf in leaves (-1 if absent), searched from both ends at once: an
    opening bracket is usually near one of them."""
    left, right = 0, len(leaves) - 1
    while left <= right:
        if leaves[left] is leaf:
            return left
        if leaves[right] is leaf:
            return right
        left += 1
        right -= 1
    return -1


def _string_prefix(value: str) -> str:
    return value[: len(value) - len(value.lstrip(_STRING_PREFIXES))]


def is_multiline_string(leaf: t.LN) -> bool:
    """A triple-quoted string that spans lines."""
    if leaf.type != t.STRING or not isinstance(leaf, Leaf) or "\n" not in leaf.value:
        return False
    quotes = leaf.value[len(_string_prefix(leaf.value)) :][:3]
    return quotes in ('"""', "'''")


def is_docstring_leaf(leaf: Leaf) -> bool:
    """A string statement that is first in the file or in an indented block (not bytes, not
    an f- or t-string)."""
    if leaf.type != t.STRING or set(_string_prefix(leaf.value)) & set("bBfFtT"):
        return False
    statement = leaf.parent
    if statement is None or statement.type != t.simple_stmt:
        return False
    before = statement.prev_sibling
    if before is None:
        return statement.parent is not None and statement.parent.type == t.file_input
    if before.type != t.INDENT:
        return False
    newline = before.prev_sibling  # a block starts NEWLINE INDENT
    return newline is not None and newline.type == t.NEWLINE and newline.prev_sibling is None


def _is_import_keyword(leaf: Leaf) -> bool:
    holder = leaf.parent
    if leaf.type != t.NAME or holder is None:
        return False
    return (leaf.value, holder.type) in (("import", t.import_name), ("from", t.import_from))


def _is_atom_holding_one_leaf(node: Optional[Node]) -> bool:
    """Is node a pair of brackets around one leaf (three leaves in all, or fewer)?"""
    if node is None:
        return False
    count = 0
    for _ in node.leaves():
        count += 1
        if count > 3:
            return False
    return True


class Line:
    """A logical line being built or split: leaves, the comments after leaves, bracket data,
    and whether a split must put one item per line (`exploded`)."""

    __slots__ = (
        "depth",
        "leaves",
        "comments",
        "brackets",
        "inside_brackets",
        "exploded",
        "magic_comma",
        "_subscripts",
    )

    def __init__(self, depth: int = 0, inside_brackets: bool = False) -> None:
        self.depth = depth
        self.leaves: list[Leaf] = []
        self.comments: dict[Leaf, list[Leaf]] = {}  # leaf -> the inline comments after it
        self.brackets = Brackets()
        self.inside_brackets = inside_brackets
        self.exploded = False
        self.magic_comma: Optional[Leaf] = None  # the closing bracket after a magic comma
        self._subscripts: dict[int, bool] = {}  # id(subscript element) -> is it complex

    # ---- building --------------------------------------------------------------------

    def append(self, leaf: Leaf, preformatted: bool = False, track_bracket: bool = False) -> None:
        """Add leaf, spaced (unless preformatted, as the leaves a split moves are) and
        tracked (unless preformatted outside brackets and not asked to be)."""
        if not leaf.value.strip() and leaf.type not in t.BRACKETS:
            return  # newlines, indents, dedents
        if leaf.type == t.COLON and self._is_class_with_empty_parentheses():
            del self.leaves[-2:]  # `class A():` -> `class A:`
        if self.leaves and not preformatted:
            leaf.prefix += whitespace(leaf, self._in_complex_subscript)
        if self.inside_brackets or not preformatted or track_bracket:
            self.brackets.mark(leaf)
            if self._ends_magic_comma(leaf):
                self.magic_comma = leaf
        if not self._attach_comment(leaf):
            self.leaves.append(leaf)

    def append_safe(self, leaf: Leaf, preformatted: bool = False) -> None:
        """append, refusing (ValueError) to put code and a standalone comment on one line
        outside brackets."""
        if self.brackets.depth == 0 or self.brackets.in_scope():
            if self.is_comment:
                raise ValueError("cannot append to standalone comments")
            if self.leaves and leaf.type == t.STANDALONE_COMMENT:
                raise ValueError("cannot append standalone comments to a populated line")
        self.append(leaf, preformatted=preformatted)

    def _attach_comment(self, comment: Leaf) -> bool:
        """Attach an inline comment to the leaf before it; False when it is a leaf of the line
        (a standalone comment inside brackets, or a comment with nothing before it, which
        becomes standalone) or not a comment at all."""
        if comment.type == t.STANDALONE_COMMENT:
            if self.brackets.any_open():
                comment.prefix = ""
            return False
        if comment.type != t.COMMENT:
            return False
        if not self.leaves:
            comment.type = t.STANDALONE_COMMENT
            comment.prefix = ""
            return False
        self.comments.setdefault(self._comment_anchor(), []).append(comment)
        return True

    def _comment_anchor(self) -> Leaf:
        """The last leaf, or the one before an invisible `)` closing around a single leaf (a
        comment then stays beside that leaf when the parentheses are shown)."""
        last = self.leaves[-1]
        if (
            len(self.leaves) > 1
            and last.type == t.RPAR
            and not last.value
            and _is_atom_holding_one_leaf(last.parent)
            and not self.has_standalone_comments()
        ):
            return self.leaves[-2]
        return last

    def _ends_magic_comma(self, closing: Leaf) -> bool:
        """Does a trailing comma come right before closing, asking for one item per line? Not
        in a one-item tuple `(a,)` nor a one-item subscript `x[a,]`; always in `{...}`, in an
        import's parentheses, and in a list or a call with several items."""
        if closing.type not in t.CLOSING_BRACKETS or not self.leaves:
            return False
        if self.leaves[-1].type != t.COMMA:
            return False
        opening = closing.opening_bracket
        if closing.type == t.RBRACE:
            return True
        if closing.type == t.RSQB:
            subscript = closing.parent is not None and closing.parent.type == t.trailer
            return not (
                subscript
                and opening is not None
                and holds_one_item(opening, closing, self.leaves, (t.LSQB, t.RSQB))
            )
        if self.is_import:
            return True
        return opening is not None and not holds_one_item(opening, closing, self.leaves)

    def _in_complex_subscript(self, leaf: Leaf) -> bool:
        """Is leaf inside a subscript element that holds more than a name or a number (an
        operator, a call, an attribute)? (Asked only of a slice's parts, so the innermost `[`
        is a subscript's, never a list display's.)"""
        lsqb = self.brackets.open_subscript()
        element = lsqb.next_sibling if lsqb is not None else None
        if element is None:
            return False
        if element.type == t.subscriptlist:
            element = _child_towards(element, leaf)
            if element is None:
                return False
        known = self._subscripts.get(id(element))
        if known is None:
            known = any(node.type in TEST_DESCENDANTS for node in element.pre_order())
            self._subscripts[id(element)] = known
        return known

    # ---- what the line is --------------------------------------------------------------

    def _starts_with(self, word: str) -> bool:
        return bool(self.leaves) and self.leaves[0].type == t.NAME and self.leaves[0].value == word

    @property
    def is_comment(self) -> bool:
        return len(self.leaves) == 1 and self.leaves[0].type == t.STANDALONE_COMMENT

    @property
    def is_decorator(self) -> bool:
        return bool(self.leaves) and self.leaves[0].type == t.AT

    @property
    def is_import(self) -> bool:
        return bool(self.leaves) and _is_import_keyword(self.leaves[0])

    @property
    def is_with_stmt(self) -> bool:
        return self._starts_with("with")

    @property
    def is_class(self) -> bool:
        return self._starts_with("class")

    @property
    def is_def(self) -> bool:
        return self._starts_with("def")

    def _is_class_with_empty_parentheses(self) -> bool:
        """`class A()` so far (visible parentheses)."""
        return (
            len(self.leaves) == 4
            and self.is_class
            and [(leaf.type, leaf.value) for leaf in self.leaves[2:]]
            == [(t.LPAR, "("), (t.RPAR, ")")]
        )

    @property
    def is_docstring(self) -> bool:
        return bool(self.leaves) and is_docstring_leaf(self.leaves[0])

    @property
    def is_chained_assignment(self) -> bool:
        return [leaf.type for leaf in self.leaves].count(t.EQUAL) > 1

    @property
    def opens_block(self) -> bool:
        return bool(self.leaves) and self.leaves[-1].type == t.COLON

    def has_standalone_comments(self) -> bool:
        return any(leaf.type == t.STANDALONE_COMMENT for leaf in self.leaves)

    def has_commented_string_concatenation(self) -> bool:
        """Does a string that is part of an implicit concatenation have a comment after it?"""
        leaves = self.leaves
        for index, leaf in enumerate(leaves):
            if leaf.type == t.STRING and self.comments.get(leaf):
                neighbours = leaves[max(index - 1, 0) : index] + leaves[index + 1 : index + 2]
                if any(other.type == t.STRING for other in neighbours):
                    return True
        return False

    def has_multiline_strings(self) -> bool:
        return any(is_multiline_string(leaf) for leaf in self.leaves)

    def comments_after(self, leaf: Leaf) -> list[Leaf]:
        return self.comments.get(leaf, [])

    # ---- measuring and rendering -----------------------------------------------------

    def measured(self, reverse: bool = False) -> Iterator[tuple[int, Leaf, int]]:
        """(index, leaf, its width with its prefix and the comments after it), from the start
        or the end, up to the first leaf that spans lines."""
        order = range(len(self.leaves) - 1, -1, -1) if reverse else range(len(self.leaves))
        for index in order:
            leaf = self.leaves[index]
            if "\n" in leaf.value:
                return
            width = len(leaf.prefix) + len(leaf.value)
            width += sum(len(comment.value) for comment in self.comments.get(leaf, ()))
            yield index, leaf, width

    def clone(self) -> Line:
        """An empty line with this one's depth and flags."""
        line = Line(self.depth, self.inside_brackets)
        line.exploded = self.exploded
        line.magic_comma = self.magic_comma
        return line

    def render(self) -> str:
        """The line as text, indented, without a newline."""
        return str(self).strip("\n")

    def __str__(self) -> str:
        if not self.leaves:
            return "\n"
        first = self.leaves[0]
        text = [first.prefix, "    " * self.depth, first.value]
        text += [leaf.prefix + leaf.value for leaf in self.leaves[1:]]
        text += [c.prefix + c.value for comments in self.comments.values() for c in comments]
        text.append("\n")
        return "".join(text)

    def __bool__(self) -> bool:
        return bool(self.leaves or self.comments)

    def template(self, offset: int) -> list:
        """The line as text pieces, indented, with a newline; the names, numbers and strings
        of the source are their index (counted from offset) in place of their text."""
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


def _child_towards(ancestor: Node, descendant: t.LN) -> Optional[t.LN]:
    """The child of ancestor that descendant is in (None if it is not)."""
    node: Optional[t.LN] = descendant
    while node is not None and node.parent is not ancestor:
        node = node.parent
    return node
