"""Blank lines between logical lines, as black's EmptyLineTracker counts them (not .pyi)."""

from __future__ import annotations

from typing import Optional

from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.lines import Line

_HEADER_KEYWORDS = ("with", "try", "for", "while", "if", "match")


class LineInfo:
    """What black's blank-line rules read of a logical line."""

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
        "is_stub_def",
        "first_value",
        "one_leaf",
    )

    def __init__(self, depth: int, before: int, first_value: str = "") -> None:
        self.depth = depth
        self.before = before  # newlines before the line's first leaf
        self.first_value = first_value
        self.is_comment = self.is_decorator = self.is_def = self.is_class = False
        self.is_import = self.is_docstring = self.opens_block = self.is_stub_def = False
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
    info.is_stub_def = line.is_stub_def
    info.one_leaf = len(line.leaves) == 1
    if line.is_stub_class:
        raise t.Unsupported("a stub class")
    return info


class LinesBlock:
    """A logical line's physical lines and the blank lines before and after them."""

    __slots__ = ("previous_block", "original_line", "before", "after", "content_lines")

    def __init__(
        self, previous: Optional[LinesBlock], line: LineInfo, before: int, after: int
    ) -> None:
        self.previous_block = previous
        self.original_line = line
        self.before = before
        self.after = after
        self.content_lines: list[str] = []

    def all_lines(self) -> list[str]:
        return ["\n" * self.before, *self.content_lines, "\n" * self.after]


class EmptyLineTracker:
    """Decides the blank lines before each logical line from the ones before it."""

    def __init__(self) -> None:
        self.previous_line: Optional[LineInfo] = None
        self.previous_block: Optional[LinesBlock] = None
        self.previous_defs: list[LineInfo] = []
        self.semantic_leading_comment: Optional[LinesBlock] = None

    def maybe_empty_lines(self, current_line: LineInfo) -> LinesBlock:
        before, after = self._maybe_empty_lines(current_line)
        previous_after = self.previous_block.after if self.previous_block else 0
        before = max(0, before - previous_after)
        if self._line_is_module_docstring(current_line):
            before = 1
        block = LinesBlock(self.previous_block, current_line, before, after)
        if current_line.is_comment:
            previous = self.previous_line
            if previous is None or (
                not previous.is_decorator
                and (not previous.is_comment or before)
                and (self.semantic_leading_comment is None or before)
            ):
                self.semantic_leading_comment = block
        elif not current_line.is_decorator or before:
            self.semantic_leading_comment = None
        self.previous_line = current_line
        self.previous_block = block
        return block

    def _line_is_module_docstring(self, current_line: LineInfo) -> bool:
        block = self.previous_block
        if not block:
            return False
        original = block.original_line
        if (
            not original.one_leaf
            or not original.is_docstring
            or original.depth != 0
            or current_line.is_class
            or current_line.is_def
        ):
            return False
        while True:
            block = block.previous_block
            if block is None:
                return True
            if not block.original_line.is_comment:
                return False

    def _maybe_empty_lines(self, current_line: LineInfo) -> tuple[int, int]:
        max_allowed = 2 if current_line.depth == 0 else 1
        before = min(current_line.before, max_allowed)
        user_had_newline = bool(before)
        depth = current_line.depth
        previous_def = None
        while self.previous_defs and self.previous_defs[-1].depth >= depth:
            previous_def = self.previous_defs.pop()
        if current_line.is_def or current_line.is_class:
            self.previous_defs.append(current_line)
        previous = self.previous_line
        if previous is None:
            return 0, 0
        if current_line.is_docstring:
            if previous.is_class:
                return 0, 1
            if previous.opens_block and previous.is_def:
                return 0, 0
        if previous_def is not None:
            if depth:
                before = 1
            elif (
                previous_def.depth
                and current_line.opens_block
                and current_line.first_value not in _HEADER_KEYWORDS
            ):
                before = 1
            else:
                before = 2
        if current_line.is_decorator or current_line.is_def or current_line.is_class:
            return self._for_class_or_def(current_line, before, user_had_newline)
        if (
            previous.is_import
            and previous.depth == 0
            and current_line.depth == 0
            and not current_line.is_import
        ):
            return 1, 0
        if previous.is_import and not current_line.is_import and depth == previous.depth:
            return (before or 1), 0
        return before, 0

    def _for_class_or_def(
        self, current_line: LineInfo, before: int, user_had_newline: bool
    ) -> tuple[int, int]:
        previous = self.previous_line
        assert previous is not None
        if previous.is_decorator:
            return 0, 0
        if previous.depth < current_line.depth and (previous.is_class or previous.is_def):
            return (1 if user_had_newline else 0), 0
        comment_to_add_newlines: Optional[LinesBlock] = None
        if previous.is_comment and previous.depth == current_line.depth and before == 0:
            slc = self.semantic_leading_comment
            if (
                slc is not None
                and slc.previous_block is not None
                and not slc.previous_block.original_line.is_class
                and not slc.previous_block.original_line.opens_block
                and slc.before <= 1
            ):
                comment_to_add_newlines = slc
            else:
                return 0, 0
        newlines = 1 if current_line.depth else 2
        if previous.is_stub_def and not user_had_newline:
            newlines = 0
        if comment_to_add_newlines is not None:
            previous_block = comment_to_add_newlines.previous_block
            if previous_block is not None:
                comment_to_add_newlines.before = (
                    max(comment_to_add_newlines.before, newlines) - previous_block.after
                )
                newlines = 0
        return newlines, 0
