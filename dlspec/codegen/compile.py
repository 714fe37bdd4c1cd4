"""Compile an explicit model for one target: backend context -> Jinja -> black."""

from __future__ import annotations

from dataclasses import dataclass

from dlspec.backends import get_backend
from dlspec.codegen.contract import skeleton_context
from dlspec.codegen.render import render
from dlspec.errors import SpecError
from dlspec.ir.model import Model


@dataclass(frozen=True)
class Compiled:
    """A generated script and its normalisation report."""

    target: str
    source: str
    report: str
    filename: str


def compile_model(model: Model, target: str) -> Compiled:
    """Generate `target`'s script for `model`; SpecError when the target cannot express it."""
    backend = get_backend(target)
    problems = backend.unsupported(model)
    if problems:
        raise SpecError(problems, model.source.path, model.source.text)
    context = {**backend.context(model), **skeleton_context(model, backend.name)}
    source = render(backend.template, context, backend.black_mode)
    filename = f"{model.name}_{backend.name}{backend.extension}"
    return Compiled(backend.name, source, backend.report(model).render(), filename)
