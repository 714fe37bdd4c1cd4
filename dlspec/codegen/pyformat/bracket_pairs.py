"""A line cut at one bracket pair: which pair the right-hand split takes, and the head, body
and tail lines the cut makes."""

from __future__ import annotations

from typing import AbstractSet

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.delimiters import COMMA_PRIORITY
from dlspec.codegen.pyformat.fits import CannotSplit
from dlspec.codegen.pyformat.lines import Line
from dlspec.codegen.pyformat.tree import Leaf


class Cut:
    """The three lines of a line cut at one bracket pair, and the pair."""

    __slots__ = ("head", "body", "tail", "opening_bracket", "closing_bracket")

    def __init__(self, head: Line, body: Line, tail: Line, opening: Leaf, closing: Leaf) -> None:
        self.head, self.body, self.tail = head, body, tail
        self.opening_bracket, self.closing_bracket = opening, closing


def last_pair_cut(line: Line, omit: AbstractSet[int] = frozenset()) -> Cut:
    """The line cut at its last closing bracket with something inside, leaving out those in
    `omit` (ids; what follows them stays in the tail). CannotSplit where there is none, or
    its opening bracket is not on the line."""
    leaves = line.leaves
    for closing in range(len(leaves) - 1, 0, -1):
        leaf = leaves[closing]
        if leaf.type not in t.CLOSING_BRACKETS or id(leaf) in omit:
            continue
        if leaves[closing - 1] is leaf.opening_bracket:
            continue  # empty brackets: the search goes on before them
        opening = next((j for j in range(closing) if leaves[j] is leaf.opening_bracket), None)
        if opening is None:
            break
        head, body, tail = cut_lines(line, opening, closing)
        return Cut(head, body, tail, leaves[opening], leaf)
    raise CannotSplit("no brackets found")


def cut_lines(line: Line, opening: int, closing: int) -> tuple[Line, Line, Line]:
    """Head (up to the opening bracket), body (inside) and tail (from the closing bracket) of
    the line cut at the pair at these indices (never an empty pair: both splits pass them)."""
    leaves = line.leaves
    head = _head(leaves[: opening + 1], line)
    body = _body(leaves[opening + 1 : closing], line, leaves[opening])
    return head, body, _plain(leaves[closing:], line)


def _head(leaves: list[Leaf], original: Line) -> Line:
    """The head line: only the leaves of bracket pairs that open and close within it have
    their brackets and delimiters tracked."""
    return _plain(leaves, original, tracked=_inside_closed_pairs(leaves))


def _body(leaves: list[Leaf], original: Line, opening: Leaf) -> Line:
    """The body line, one level deeper and inside brackets, with the trailing comma black
    adds to an import's names and to a def's only parameter; it is exploded, one item per
    line, when it is a comma list ending in a comma, or inside a collection's or an import's
    brackets."""
    if leaves and _comma_added(leaves, original, opening):
        code = [index for index, leaf in enumerate(leaves) if leaf.type != t.STANDALONE_COMMENT]
        if code and leaves[code[-1]].type != t.COMMA:
            leaves.insert(code[-1] + 1, Leaf(t.COMMA, ","))
    body = _plain(leaves, original, depth=1)
    if _explodes(body, opening):
        body.exploded = True
    return body


def _plain(
    leaves: list[Leaf], original: Line, tracked: AbstractSet[int] = frozenset(), depth: int = 0
) -> Line:
    """A line of the leaves as they are, each followed by the comments that followed it; the
    body's (depth 1) is inside brackets, the others' brackets are tracked only for the leaves
    in `tracked` (ids)."""
    line = Line(original.depth + depth, inside_brackets=depth == 1)
    for leaf in leaves:
        line.append(leaf, preformatted=True, track_bracket=id(leaf) in tracked)
        for comment in original.comments_after(leaf):
            line.append(comment, preformatted=True)
    return line


def _inside_closed_pairs(leaves: list[Leaf]) -> set[int]:
    """ids of the leaves from each opening bracket to its closing one, for the pairs that
    close within the head (not the pair the cut is at, nor those a right-hand split leaves
    open around it)."""
    found: set[int] = set()
    open_pairs: list[list[int]] = []  # per open pair, the ids seen in it so far
    for leaf in leaves:
        if leaf.type in t.OPENING_BRACKETS:
            open_pairs.append([id(leaf)])
        elif leaf.type in t.CLOSING_BRACKETS and open_pairs:
            found.update(open_pairs.pop(), (id(leaf),))
        elif open_pairs:
            open_pairs[-1].append(id(leaf))
    return found


def _comma_added(leaves: list[Leaf], original: Line, opening: Leaf) -> bool:
    """Whether the body gets a trailing comma: an import's always, a def's parameters when
    there is one (no comma among them). Commas in a parameter's annotation go to black. (The
    cut on a def line is at its parameters: a return annotation goes to black at the
    tokenizer.)"""
    if original.is_import:
        return True
    if not original.is_def or opening.value != "(":
        return False
    commas = [leaf for leaf in leaves if leaf.type == t.COMMA]
    if any(_in_annotation(comma) for comma in commas):
        raise t.Unsupported("a comma inside an annotation")
    return not commas


def _in_annotation(leaf: Leaf) -> bool:
    """Whether leaf is part of a parameter's annotation."""
    ancestor = leaf.parent
    while ancestor is not None:
        if ancestor.parent is not None and ancestor.parent.type == t.tname:
            return True
        ancestor = ancestor.parent
    return False


def _explodes(body: Line, opening: Leaf) -> bool:
    """Whether the body goes one item per line even if it fits: its loosest delimiters (but a
    trailing comma) are commas, and it ends in a comma (as an import's body always does:
    `_comma_added`) or fills a collection's brackets (invisible parentheses count)."""
    if opening.parent is None or not body.leaves:
        return False
    trailing_comma = body.leaves[-1] if body.leaves[-1].type == t.COMMA else None
    priorities = [p for leaf, p in body.brackets.delimiters.items() if leaf is not trailing_comma]
    if not priorities or max(priorities) != COMMA_PRIORITY:
        return False
    return trailing_comma is not None or opening.parent.type == t.atom


def make_visible(leaf: Leaf) -> None:
    """Give invisible parentheses their characters."""
    if leaf.type == t.LPAR:
        leaf.value = "("
    elif leaf.type == t.RPAR:
        leaf.value = ")"
