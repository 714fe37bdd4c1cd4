"""Problems found in a spec: one class per kind, each with a source position, and their display."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column in a spec file (end_col exclusive, on the same line)."""

    line: int = 0
    col: int = 0
    end_col: int = 0


NOWHERE = Pos()


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
    """One or more problems in a spec, sorted by position."""

    def __init__(self, problems: list[Problem], path: str = "<spec>", text: str = "") -> None:
        self.problems = sorted(problems, key=lambda p: (p.pos.line, p.pos.col, p.message))
        self.path = path
        self.text = text
        super().__init__(format_problems(self.problems, path, text))


class UsageError(DlspecError):
    """A command-line usage error (exit code 2)."""


def format_problem(problem: Problem, path: str, text: str) -> str:
    """Render `file:line:col: severity: message`, the source line and a caret underline."""
    pos = problem.pos
    head = f"{path}:{pos.line}:{pos.col}: {problem.severity}: {problem.message}"
    lines = text.removeprefix("\ufeff").splitlines()
    if not 1 <= pos.line <= len(lines):
        return head
    source = lines[pos.line - 1]
    width = max(1, pos.end_col - pos.col) if pos.end_col > pos.col else 1
    caret = " " * (pos.col - 1) + "^" + "~" * (width - 1)
    return f"{head}\n    {source}\n    {caret}"


def format_problems(problems: list[Problem], path: str, text: str) -> str:
    """Render several problems, one block each."""
    return "\n".join(format_problem(p, path, text) for p in problems)
