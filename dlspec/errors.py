"""Problems found in a spec: one class per kind, each with a source position, and their display."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from dlspec.limits import MAX_PROBLEMS_SHOWN


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column in a spec file (end_col exclusive, on the same line)."""

    line: int = 0
    col: int = 0
    end_col: int = 0


NOWHERE = Pos()
Paint = Callable[[str, str], tuple[str, str]]  # (source line, caret) -> the two as shown


@dataclass(frozen=True)
class Problem:
    """One diagnostic about a spec; subclasses name the kind of problem."""

    message: str
    pos: Pos = NOWHERE
    severity: str = field(default="error", compare=False)

    @property
    def kind(self) -> str:
        """The class name, as tests and JSON reports refer to it."""
        return type(self).__name__


class SyntaxProblem(Problem):
    """The text does not follow the grammar."""


class UnknownName(Problem):
    """An op, attribute, setting, initialiser or value name that dlspec does not know."""


class BadValue(Problem):
    """A value of the wrong type or out of range."""


class MissingValue(Problem):
    """A required attribute or setting is absent."""


class DuplicateName(Problem):
    """Two layers, inputs or settings with the same name."""


class ShapeProblem(Problem):
    """Shapes that do not fit together, found by shape inference."""


class Unsupported(Problem):
    """A construct that a target cannot express."""


class LintWarning(Problem):
    """A likely mistake that still compiles."""


class DlspecError(Exception):
    """Base of every error dlspec raises on purpose (the CLI prints these without a traceback)."""


class SpecError(DlspecError):
    """One or more problems in a spec, sorted by position; a problem found more than once (the
    same kind, message and position: a layer of a block expanded at several calls) is listed
    once."""

    def __init__(self, problems: list[Problem], path: str = "<spec>", text: str = "") -> None:
        unique = list({(p.kind, p.message, p.pos): p for p in problems}.values())
        self.problems = sorted(unique, key=lambda p: (p.pos.line, p.pos.col, p.message))
        self.path = path
        self.text = text
        super().__init__(format_problems(self.problems, path, text))


class UsageError(DlspecError):
    """A command-line usage error (exit code 2)."""


def display_path(path: str) -> str:
    """A path as printable ASCII: other characters (a newline, a line separator, an undecodable
    byte) and the backslash are written as Python escapes, so a file name can neither end a
    comment in generated code nor forge lines in a message."""
    out = []
    for ch in path:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def source_lines(text: str) -> list[str]:
    """The lines as the parser counts them: split on \\n only (a lone \\r, a form feed or U+2028
    does not start a line), without a byte-order mark."""
    return text.removeprefix("\ufeff").split("\n")


def _shown(line: str) -> str:
    """A source line safe to print: a trailing \\r dropped, control characters as '?'."""
    line = line.removesuffix("\r")
    return "".join(ch if ch.isprintable() or ch == "\t" else "?" for ch in line)


def _caret(line: str, pos: Pos) -> str:
    """The underline: tabs copied from the source line so the caret lands under the column."""
    lead = "".join("\t" if ch == "\t" else " " for ch in line[: pos.col - 1])
    width = max(1, pos.end_col - pos.col) if pos.end_col > pos.col else 1
    return lead + "^" + "~" * (width - 1)


def format_problem(
    problem: Problem,
    path: str,
    text: str,
    lines: Optional[list[str]] = None,
    paint: Optional[Paint] = None,
) -> str:
    """Render `file:line:col: severity: message`, the source line and a caret underline (those
    two passed through `paint` when given: the first line stays plain)."""
    pos = problem.pos
    head = f"{display_path(path)}:{pos.line}:{pos.col}: {problem.severity}: {problem.message}"
    lines = source_lines(text) if lines is None else lines
    if not 1 <= pos.line <= len(lines):
        return head
    source = _shown(lines[pos.line - 1])
    caret = _caret(source, pos)
    if paint is not None:
        source, caret = paint(source, caret)
    return f"{head}\n    {source}\n    {caret}"


def format_problems(
    problems: list[Problem], path: str, text: str, paint: Optional[Paint] = None
) -> str:
    """Render several problems, one block each (the text is split once: linear in its size)."""
    lines = source_lines(text)
    shown = [format_problem(p, path, text, lines, paint) for p in problems[:MAX_PROBLEMS_SHOWN]]
    hidden = len(problems) - len(shown)
    if hidden > 0:
        shown.append(f"{display_path(path)}: {hidden} more problem(s) not shown")
    return "\n".join(shown)
