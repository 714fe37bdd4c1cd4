"""One line per item of a bracket's contents: the cut at the loosest delimiters, and the cut
around standalone comments."""

from __future__ import annotations

from typing import Iterator

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.delimiters import COMMA_PRIORITY, DOT_PRIORITY, STRING_PRIORITY
from dlspec.codegen.pyformat.fits import CALL_COMMAS, DEF_COMMAS, CannotSplit, Features
from dlspec.codegen.pyformat.lines import Line
from dlspec.codegen.pyformat.spacing import is_vararg
from dlspec.codegen.pyformat.tree import Leaf

_DEF_PARAMETERS = frozenset((t.typedargslist,))
_CALL_ARGUMENTS = frozenset((t.arglist, t.argument))


def delimiter_split(line: Line, features: Features) -> Iterator[Line]:
    """The line cut after each of its loosest delimiters (`_loosest`): one item per line.

    Comma-separated items get a comma after the last one, where `_comma_allowed`. An inline
    comment after the operator that opens an item (`and  # why`) ends the line before, with
    the operator's left operand; after a comma or between implicitly joined strings it stays
    on its leaf's line. A standalone comment outside the item's own brackets is a line."""
    leaves = line.leaves
    if not leaves:
        raise CannotSplit("line empty")
    loosest = _loosest(line)
    delimiters = line.brackets.delimiters
    cuts = {index for index, leaf in enumerate(leaves) if delimiters.get(leaf) == loosest}
    comments_move_up = loosest not in (COMMA_PRIORITY, STRING_PRIORITY)
    comma_after = _last_code_leaf(leaves) if loosest == COMMA_PRIORITY else -1
    if comma_after >= 0 and not _comma_allowed(leaves, features):
        comma_after = -1
    pieces = _Pieces(line)
    for index, leaf in enumerate(leaves):
        yield from pieces.add(leaf)
        if not (comments_move_up and index - 1 in cuts):
            yield from pieces.add_comments_of(leaf)
        if index == comma_after and pieces.current.leaves[-1].type != t.COMMA:
            pieces.current.append(Leaf(t.COMMA, ","))
        if index in cuts:
            if comments_move_up and index + 1 < len(leaves):
                yield from pieces.add_comments_of(leaves[index + 1])
            yield from pieces.finish()
    yield from pieces.finish()


def standalone_comment_split(line: Line, features: Features) -> Iterator[Line]:
    """The line cut around its standalone comments (outside brackets), which are lines."""
    if not line.has_standalone_comments():
        raise CannotSplit("no standalone comments")
    pieces = _Pieces(line)
    for leaf in line.leaves:
        yield from pieces.add(leaf)
        yield from pieces.add_comments_of(leaf)
    yield from pieces.finish()


def _loosest(line: Line) -> int:
    """The priority to cut at: the highest of the line's delimiters but one on its last leaf (a
    trailing comma does not make a list). CannotSplit where there is none, or where the cut
    would only part one attribute from what it is taken of."""
    delimiters = line.brackets.delimiters
    last = line.leaves[-1]
    priorities = [priority for leaf, priority in delimiters.items() if leaf is not last]
    if not priorities:
        raise CannotSplit("no delimiters")
    loosest = max(priorities)
    if loosest == DOT_PRIORITY and list(delimiters.values()).count(DOT_PRIORITY) == 1:
        raise CannotSplit("one attribute access is not split from its owner")
    return loosest


def _last_code_leaf(leaves: list[Leaf]) -> int:
    """The index of the last leaf that is not a standalone comment."""
    index = len(leaves) - 1
    while index > 0 and leaves[index].type == t.STANDALONE_COMMENT:
        index -= 1
    return index


def _comma_allowed(leaves: list[Leaf], features: Features) -> bool:
    """Whether a comma may follow the last item: after a `*args`, `**kwargs` or `/` of a call
    or a def only where the target Python takes it there. Only the line's own items are asked:
    the leaves at its first leaf's depth (none is shallower)."""
    outermost = leaves[0].bracket_depth
    for leaf in leaves:
        if leaf.bracket_depth > outermost:
            continue
        if is_vararg(leaf, _DEF_PARAMETERS) and DEF_COMMAS not in features:
            return False
        if is_vararg(leaf, _CALL_ARGUMENTS) and CALL_COMMAS not in features:
            return False
    return True


class _Pieces:
    """The lines a split is making of `line`'s leaves: the one being filled, and how it ends."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self.current = Line(line.depth, line.inside_brackets)

    def add(self, leaf: Leaf) -> Iterator[Line]:
        """Put leaf on the current line; a standalone comment outside brackets, or a leaf
        after one, first finishes it."""
        try:
            self.current.append_safe(leaf, preformatted=True)
        except ValueError:
            yield from self.finish()
            self.current.append(leaf)

    def add_comments_of(self, leaf: Leaf) -> Iterator[Line]:
        for comment in self.line.comments_after(leaf):
            yield from self.add(comment)

    def finish(self) -> Iterator[Line]:
        """The current line, if it holds anything, its first leaf unindented; a new one
        begins."""
        done, self.current = self.current, Line(self.line.depth, self.line.inside_brackets)
        if done:
            done.leaves[0].prefix = ""
            yield done
