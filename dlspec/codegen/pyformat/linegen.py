"""Cut a normalised tree into logical lines, before any splitting.

The leaves are read in order; a new line starts before each statement and each decorator,
and around each standalone comment; an indented block's lines are one level deeper. Comments
come out of the leaves' prefixes: the first one after code on a line is an inline comment of
that line, the others standalone (inside brackets they stay among the leaves). A stub def or
class (a block of only `...`, which black puts on the header's line) goes to black. dlspec's
own statement of black 26's rules (tests/test_pyformat.py checks the result against black)."""

from __future__ import annotations

from typing import Iterator

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.lines import Line
from dlspec.codegen.pyformat.normalize import normalize
from dlspec.codegen.pyformat.tree import LN, Leaf, Node, Unsupported

_LAYOUT = frozenset((t.DEDENT, t.INDENT, t.NEWLINE))
_DECORATION = frozenset((t.decorators, t.decorated))
_STATEMENTS = frozenset(
    (
        t.simple_stmt,
        t.funcdef,
        t.classdef,
        t.if_stmt,
        t.while_stmt,
        t.for_stmt,
        t.try_stmt,
        t.with_stmt,
    )
)


def comments_in(prefix: str, before_end: bool) -> list[tuple[int, str, int, int]]:
    """Each comment in a leaf's prefix as (kind, text, blank lines before it, where the rest
    of the prefix starts): a comment on the prefix's first line follows code and is inline
    (COMMENT), unless the leaf is the end of the file; the others are STANDALONE_COMMENT."""
    found: list[tuple[int, str, int, int]] = []
    blank = end = 0
    for number, raw in enumerate(prefix.split("\n")):
        end += len(raw) + 1
        text = raw.lstrip()
        if not text:
            blank += 1
        elif text[0] == "#":
            inline = number == 0 and not before_end
            kind = t.COMMENT if inline else t.STANDALONE_COMMENT
            found.append((kind, literals.make_comment(text), blank, end))
            blank = 0
    return found


def _is_stub_suite(node: LN) -> bool:
    """An indented block of a def or a class holding only `...`, without comments."""
    holder = node.parent
    if holder is not None and holder.type not in _STUB_HOLDERS:
        return False
    children = node.children
    if len(children) != 4:
        return False
    if [children[0].type, children[1].type, children[3].type] != [t.NEWLINE, t.INDENT, t.DEDENT]:
        return False
    if node.prefix.strip() or children[3].prefix.strip():
        return False
    return _is_ellipsis_statement(children[2])


_STUB_HOLDERS = frozenset((t.funcdef, t.classdef))


def _is_ellipsis_statement(node: LN) -> bool:
    if node.type != t.simple_stmt or len(node.children) != 2:
        return False
    body = node.children[0]
    return (
        body.type == t.atom
        and not body.prefix.strip()
        and len(body.children) == 3
        and all(isinstance(dot, Leaf) and dot.value == "." for dot in body.children)
    )


def _in_order(root: Node) -> Iterator[LN]:
    """Every node and leaf, parents first. A stub (a def's or class's block of only `...`,
    which black puts on the header's line) goes to black."""
    stack: list[LN] = [root]
    while stack:
        node = stack.pop()
        if node.type == t.suite and _is_stub_suite(node):
            raise Unsupported("a stub def or class")
        yield node
        stack.extend(reversed(node.children))


class _Lines:
    """The lines made so far and the one being filled."""

    def __init__(self) -> None:
        self.current = Line()
        self.done: list[Line] = []

    def end(self, indent: int = 0) -> None:
        """Finish the current line (an empty one is not kept) and start one `indent` deeper."""
        if not self.current:
            self.current.depth += indent
            return
        finished = self.current
        self.current = Line(finished.depth + indent)
        self.done.append(finished)

    def add(self, leaf: Leaf) -> None:
        """leaf's comments, then leaf (unless it is layout: a newline, indent or dedent)."""
        inside = self.current.brackets.any_open()
        prefix = leaf.prefix
        comments = comments_in(prefix, leaf.type == t.ENDMARKER) if "#" in prefix else []
        for kind, text, blank, _ in comments:
            comment = Leaf(kind, text, "\n" * blank)
            if not inside and kind == t.STANDALONE_COMMENT:
                self.end()
            self.current.append(comment)
            if not inside:
                self.end()
        rest = comments[-1][3] if comments else 0
        leaf.prefix = "" if inside else "\n" * prefix.count("\n", rest)
        if leaf.type not in _LAYOUT:
            self.current.append(leaf)


def _starts_line(node: LN) -> bool:
    """Does a new line start before node: a statement, a decorator or what it decorates? (A
    clause of a compound statement, `else:` or `except:`, follows the end of a block, which
    ended the line before it.)"""
    if node.type in _STATEMENTS:
        return True
    return node.parent is not None and node.parent.type in _DECORATION


def generate_lines(root: Node) -> list[Line]:
    """The logical lines of a file_input tree, in order (the tree is normalised first)."""
    normalize(root)
    lines = _Lines()
    for node in _in_order(root):
        if _starts_line(node):
            lines.end()
        if isinstance(node, Node):
            continue
        if node.type == t.INDENT:
            lines.end(+1)
        elif node.type == t.DEDENT:
            lines.end()
        lines.add(node)
        if node.type == t.DEDENT:
            lines.end(-1)
        elif node.type == t.ENDMARKER:
            lines.end()
    return lines.done
