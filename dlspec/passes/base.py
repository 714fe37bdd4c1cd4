"""What every pass shares: the context that collects problems, and the pass signature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from dlspec.errors import Problem
from dlspec.frontend.ast import Written
from dlspec.ir.model import Model


@dataclass
class PassContext:
    """The spec's syntax the passes read (the IR carries none), problems and warnings found so
    far, and options from the command line."""

    written: Written = field(default_factory=Written)
    profile_override: Optional[str] = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, problem: Problem) -> None:
        """Record an error."""
        self.problems.append(problem)

    def warn(self, problem: Problem) -> None:
        """Record a lint warning."""
        self.warnings.append(problem)


Pass = Callable[[Model, PassContext], Model]
