"""The blank lines black 26 puts before each logical line, decided from the lines above it.

dlspec's own statement of the rules (tests/test_pyformat.py checks the result against black on
every golden, regression and fuzzed spec): a line keeps up to two of the blank lines written
before it at the top level and one inside a block; the first line after a def or class body
gets two (one inside a block); a def, class or decorator gets two (one inside a block), moved
above the comments directly over it; a one-line module docstring is followed by exactly one;
a class docstring is followed by one; nothing follows a decorator or a def's opening line."""

from __future__ import annotations

from typing import Iterable, Optional

from dlspec.codegen.pyformat.lines import Line

# block headers that, just after a nested body, keep a top-level line at two blank lines
_FLOW_HEADERS = frozenset(("with", "try", "for", "while", "if", "match"))


class LineInfo:
    """What the blank-line rules read of a logical line (its facts are stored in memos)."""

    __slots__ = (
        "depth",
        "before",
        "is_comment",
        "is_decorator",
        "is_def",
        "is_class",
        "is_import",
        "is_docstring",
        "opens_block",
        "first_value",
        "one_leaf",
    )

    def __init__(self, depth: int, before: int, first_value: str = "") -> None:
        self.depth = depth
        self.before = before  # newlines before the line's first leaf
        self.first_value = first_value
        self.is_comment = self.is_decorator = self.is_def = self.is_class = False
        self.is_import = self.is_docstring = self.opens_block = False
        self.one_leaf = False

    def placed(self, depth: int, before: int) -> LineInfo:
        """A copy at this depth with this many newlines before it."""
        return LineInfo.from_facts(self.facts(), depth, before)

    def facts(self) -> tuple:
        """What the line is, apart from where it stands (its depth, the newlines before it)."""
        return tuple(getattr(self, name) for name in self.__slots__[3:])

    @classmethod
    def from_facts(cls, facts: tuple, depth: int, before: int) -> LineInfo:
        """The line with these facts, at this depth with this many newlines before it."""
        info = cls(depth, before)
        for name, value in zip(cls.__slots__[3:], facts, strict=True):
            setattr(info, name, value)
        return info

    @property
    def defines(self) -> bool:
        """A def or class line."""
        return self.is_def or self.is_class


def info_from_line(line: Line) -> LineInfo:
    """The blank-line facts of a Line built by the line generator."""
    first = line.leaves[0] if line.leaves else None
    info = LineInfo(
        line.depth, first.prefix.count("\n") if first else 0, first.value if first else ""
    )
    info.is_comment = line.is_comment
    info.is_decorator = line.is_decorator
    info.is_def = line.is_def
    info.is_class = line.is_class
    info.is_import = line.is_import
    info.is_docstring = line.is_docstring
    info.opens_block = line.opens_block
    info.one_leaf = len(line.leaves) == 1
    return info


class Block:
    """A placed logical line: the blank lines before it, its physical lines, the blank lines
    after it, and the block placed above it."""

    __slots__ = ("info", "before", "after", "lines", "above")

    def __init__(self, info: LineInfo, before: int, after: int, above: Optional[Block]) -> None:
        self.info = info
        self.before = before
        self.after = after
        self.lines: list[str] = []
        self.above = above

    def parts(self) -> list[str]:
        """Its text: blank lines, physical lines, blank lines."""
        return ["\n" * self.before, *self.lines, "\n" * self.after]


def joined(blocks: list[Block]) -> str:
    """The file's text: its blocks, without blank lines after the last."""
    blocks[-1].after = 0
    return "".join(text for block in blocks for text in block.parts())


class BlankLines:
    """Places logical lines one after another, deciding the blank lines before each."""

    def __init__(self) -> None:
        self.last: Optional[Block] = None
        # def and class lines whose bodies may go on, outermost first
        self.open_defs: list[LineInfo] = []
        # the first of the comments right above the next line: where a def below them moves
        # its blank lines
        self.comment_run: Optional[Block] = None

    def place(self, info: LineInfo, lines: Iterable[str] = ()) -> Block:
        """The block of the next line, holding its physical lines."""
        before, after = self._wanted(info)
        if self.last is not None:
            before = max(0, before - self.last.after)
        if self._follows_module_docstring(info):
            before = 1
        block = Block(info, before, after, self.last)
        block.lines = list(lines)
        self._track_comment_run(block)
        self.last = block
        return block

    def resume(self, last: Block, open_defs: list[LineInfo]) -> None:
        """Go on below a block placed elsewhere (a remembered segment's end)."""
        self.last = last
        self.open_defs = open_defs
        self.comment_run = None

    def _wanted(self, info: LineInfo) -> tuple[int, int]:
        """(blank lines before, blank lines after) the line, before the one after the line
        above is taken off."""
        written = min(info.before, 2 if info.depth == 0 else 1)
        closed = self._close_bodies(info.depth)
        if info.defines:
            self.open_defs.append(info)
        if self.last is None:
            return 0, 0
        above = self.last.info
        if info.is_docstring and above.is_class:
            return 0, 1
        if info.is_docstring and above.is_def and above.opens_block:
            return 0, 0
        before = written if closed is None else _after_body(info, closed)
        if info.is_decorator or info.defines:
            return self._before_definition(info, before, written > 0), 0
        if above.is_import and not info.is_import:
            if above.depth == 0 == info.depth:
                return 1, 0
            if above.depth == info.depth:
                return before or 1, 0
        return before, 0

    def _close_bodies(self, depth: int) -> Optional[LineInfo]:
        """Close the def and class bodies a line at this depth ends; the outermost of them."""
        closed = None
        while self.open_defs and self.open_defs[-1].depth >= depth:
            closed = self.open_defs.pop()
        return closed

    def _before_definition(self, info: LineInfo, before: int, written: bool) -> int:
        """Blank lines before a def, class or decorator line (those it wants may be moved
        above the comments directly over it, which then get them instead)."""
        above = self.last.info if self.last else None
        assert above is not None
        if above.is_decorator:
            return 0
        if above.defines and above.depth < info.depth:
            return 1 if written else 0
        wanted = 1 if info.depth else 2
        if above.is_comment and above.depth == info.depth and before == 0:
            run = self.comment_run
            if run is None or run.above is None or run.before > 1:
                return 0
            if run.above.info.is_class or run.above.info.opens_block:
                return 0
            run.before = max(run.before, wanted) - run.above.after
            return 0
        return wanted

    def _follows_module_docstring(self, info: LineInfo) -> bool:
        """Is the line the first after a one-line module docstring (only comments above it)?"""
        last = self.last
        if last is None or info.defines:
            return False
        docstring = last.info
        if not (docstring.is_docstring and docstring.one_leaf and docstring.depth == 0):
            return False
        block = last.above
        while block is not None:
            if not block.info.is_comment:
                return False
            block = block.above
        return True

    def _track_comment_run(self, block: Block) -> None:
        """Start a run of comments at a comment that follows blank lines or other code (not a
        decorator); end it at a line of code other than a decorator right below."""
        info = block.info
        above = block.above.info if block.above else None
        if info.is_comment:
            if above is None or (
                not above.is_decorator
                and (block.before > 0 or (not above.is_comment and self.comment_run is None))
            ):
                self.comment_run = block
        elif not info.is_decorator or block.before:
            self.comment_run = None


def _after_body(info: LineInfo, closed: LineInfo) -> int:
    """Blank lines before the first line after a def or class body (`closed`, the outermost
    body it ends)."""
    if info.depth:
        return 1
    if closed.depth and info.opens_block and info.first_value not in _FLOW_HEADERS:
        return 1
    return 2
