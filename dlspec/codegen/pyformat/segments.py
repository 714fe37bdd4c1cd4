"""A script cut into top-level segments (the file's head, then each top-level def or class with
what follows it) whose formatted text is remembered whole, so that a script formatted before
but for one segment (an edited spec's) is looked up segment by segment, not statement by
statement.

A cut is made only before a `def`, `class` or decorator line at column 0 that is outside every
multi-line string (the one construct in which such a line is not a statement), at the start of
the blank lines before it. Each segment then scans on its own into the statements the whole
file scans into (the scanner is in the same state at a cut: depth 0, nothing open), and black's
blank lines inside a segment depend on nothing before it once its def or class line has passed
(that line resets the blank-line placer's state): so a segment's remembered text is its lines
after its head (its decorators and def or class line, whose blank lines depend on what is
before them and are decided again), with the placer's state at its end."""

from __future__ import annotations

import hashlib
import re
from typing import Optional

from dlspec.codegen.pyformat.blank_lines import BlankLines, Block, LineInfo
from dlspec.codegen.pyformat.tokens import STRING_PATTERN

_DECORATOR = re.compile(r"@[A-Za-z_][A-Za-z0-9_.]*(?:\([^()\n]*\))?[ ]*")
_TRIPLE = re.compile("'''|\"\"\"")
_TOKEN = re.compile(rf"{STRING_PATTERN}|#[^\n]*")

# memo keys of segments: this tag, the blake2b digest of the segment's text, and whether it is
# the file's first (whose placer starts empty: its head is not looked at again)
SEGMENT = "segment"

# a line's blank-line facts, with its place: (is_comment, facts, depth, before)
Placed = tuple[bool, tuple, int, int]
# a head statement's lines, and its Placed
HeadItem = tuple[tuple, Placed]


def placed(info: LineInfo) -> Placed:
    """All of info, to be stored."""
    return (info.is_comment, info.facts(), info.depth, info.before)


def unplaced(stored: Placed) -> LineInfo:
    """The LineInfo placed() stored."""
    is_comment, facts, depth, before = stored
    info = LineInfo.from_facts(facts, depth, before)
    info.is_comment = is_comment
    return info


def _multiline_strings(source: str) -> list[tuple[int, int]]:
    """The spans of the strings that go over a line end (tokenised from the start of each line
    holding a triple quote: a line starts outside any string unless one of these spans it)."""
    spans: list[tuple[int, int]] = []
    resume = 0
    while True:
        triple = _TRIPLE.search(source, resume)
        if triple is None:
            return spans
        start = max(source.rfind("\n", 0, triple.start()) + 1, resume)
        # the first token past the triple quote holds it: at worst `""` matches there
        token = next(t for t in _TOKEN.finditer(source, start) if t.end() > triple.start())
        if "\n" in token.group():
            spans.append(token.span())
        resume = token.end()


def _def_lines(source: str) -> list[int]:
    """Where the lines beginning `def ` or `class ` start (the first line aside), in order."""
    starts = []
    for word in ("\ndef ", "\nclass "):
        found = source.find(word)
        while found >= 0:
            starts.append(found + 1)
            found = source.find(word, found + 1)
    return sorted(starts)


def _cut_above(source: str, line: int) -> int:
    """Where a cut before the line starting at `line` goes: above the blank lines, comment
    lines and one-line decorators at column 0 just before it (black's output places them
    with the def)."""
    while line > 0:
        above = source.rfind("\n", 0, line - 1) + 1
        text = source[above : line - 1]
        if text.strip(" ") and not text.startswith("#") and not _DECORATOR.fullmatch(text):
            break
        line = above
    return line


def split(source: str) -> list[str]:
    """The segments of source (whose leading whitespace is already stripped): joined, source."""
    strings = _multiline_strings(source) if _TRIPLE.search(source) else []
    cuts = [0]
    for line in _def_lines(source):
        cut = _cut_above(source, line)
        if cut <= cuts[-1] or source[cut - 2 : cut - 1] == "\\":
            continue
        if any(lo < cut < hi or lo < line < hi for lo, hi in strings):
            continue
        cuts.append(cut)
    cuts.append(len(source))
    return [source[lo:hi] for lo, hi in zip(cuts[:-1], cuts[1:], strict=True) if hi > lo]


def digest(segment: str) -> bytes:
    """The segment's memo key digest."""
    return hashlib.blake2b(segment.encode("utf-8"), digest_size=16).digest()


def head_length(infos: list[LineInfo], first: bool) -> Optional[int]:
    """How many statements begin the segment up to its def or class line (comments and
    decorators, then that line; 0 for the file's first segment, whose placer starts empty);
    None when its text cannot be remembered: it does not begin so, it is that head alone, or
    its last statement leaves the placer pointing back at it (a comment, a decorator, a
    block's header line, a docstring)."""
    count = 0
    if not first:
        for info in infos:
            count += 1
            if info.depth != 0:
                return None
            if info.is_def or info.is_class:
                break
            if not (info.is_comment or info.is_decorator):
                return None
        else:
            return None
    if len(infos) <= count:
        return None
    last = infos[-1]
    if last.is_comment or last.is_decorator or last.opens_block or last.is_docstring:
        return None
    return count


def remembered(head: list[HeadItem], body: list[Block], placer: BlankLines) -> tuple:
    """A segment's memo entry: its head statements, the text of its other blocks (the last
    one's blank lines after it apart) and the placer's state at its end."""
    last = body[-1]
    text = "".join(line for block in body for line in block.parts())
    text = text[: len(text) - last.after] if last.after else text
    defs = tuple(placed(info) for info in placer.open_defs)
    return (tuple(head), text, (placed(last.info), last.after, defs))


def replay(entry: tuple, placer: BlankLines, blocks: list[Block]) -> None:
    """Append a remembered segment's blocks: its head's blank lines decided from what is before
    them, then its text as one block, which leaves the placer as the segment's end did."""
    head, text, (end, after, defs) = entry
    for lines, line in head:
        blocks.append(placer.place(unplaced(line), lines))
    block = Block(unplaced(end), 0, after, placer.last)
    block.lines = [text]
    blocks.append(block)
    placer.resume(block, [unplaced(info) for info in defs])
