"""What every pass shares: the context that collects problems, and the pass with its contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from dlspec.errors import Problem
from dlspec.frontend.ast import Written
from dlspec.ir.model import Model
from dlspec.passes.facts import Fact


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


Run = Callable[[Model, PassContext], Model]


class PassContractError(AssertionError):
    """A pass given a model without what it requires, or returning one that breaks what it
    ensures: a bug in dlspec, never a problem in a spec."""


def _hold(facts: tuple[Fact, ...], model: Model, what: str) -> None:
    breaches = [f"{fact.name}: {breach}" for fact in facts for breach in fact.check(model)]
    if breaches:
        raise PassContractError(f"{what}: " + "; ".join(breaches))


@dataclass(frozen=True)
class Pass:
    """One pass (model in, model out) and its contract: the facts it needs of the model it
    reads, checked before it runs, and those it makes true, checked after it (unless it found
    problems in the spec, which stop the pipeline)."""

    run: Run
    requires: tuple[Fact, ...] = ()
    ensures: tuple[Fact, ...] = ()

    @property
    def name(self) -> str:
        """The pass's name: its function's."""
        return self.run.__name__

    def __call__(self, model: Model, ctx: PassContext) -> Model:
        _hold(self.requires, model, f"pass {self.name} requires")
        out = self.run(model, ctx)
        if not ctx.problems:
            _hold(self.ensures, out, f"pass {self.name} ensures")
        return out


def declare(
    requires: tuple[Fact, ...] = (), ensures: tuple[Fact, ...] = ()
) -> Callable[[Run], Pass]:
    """Make a function a Pass with this contract (`@declare(requires=..., ensures=...)`)."""
    return lambda run: Pass(run, requires, ensures)


def unmet(passes: tuple[Pass, ...]) -> list[str]:
    """Each fact a pass requires that no earlier pass ensures (none: the order is sound)."""
    made: set[str] = set()
    out = []
    for step in passes:
        out += [f"{step.name} requires {f.name}" for f in step.requires if f.name not in made]
        made.update(f.name for f in step.ensures)
    return out
