"""Spec text -> explicit IR: parse, lower, then run the pass pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dlspec.errors import Problem, SpecError
from dlspec.ir import Model
from dlspec.lower import lower
from dlspec.parse import parse
from dlspec.passes import PIPELINE, PassContext


@dataclass(frozen=True)
class Built:
    """An explicit model and the lint warnings found on the way."""

    model: Model
    warnings: tuple[Problem, ...]


def build(text: str, path: str = "<spec>", profile: Optional[str] = None) -> Built:
    """Run the whole front end; raise SpecError listing every problem found."""
    model = lower(parse(text, path))
    ctx = PassContext(profile_override=profile)
    for step in PIPELINE:
        model = step(model, ctx)
        if ctx.problems:
            raise SpecError(ctx.problems, path, text)
    return Built(model, tuple(sorted(ctx.warnings, key=lambda p: (p.pos.line, p.pos.col))))


def build_file(path: str, profile: Optional[str] = None) -> Built:
    """Read a spec file (path kept as given, for headers and messages) and build it."""
    text = Path(path).read_text(encoding="utf-8")
    return build(text, path, profile)
