"""Compile an explicit model for one target: contract and backend context -> Jinja -> black's format."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlspec.backends import get_backend
from dlspec.codegen.contract import model_context, skeleton_context
from dlspec.codegen.render import FormatMode, format_source, render_unformatted
from dlspec.errors import SpecError
from dlspec.ir.model import Model


@dataclass(frozen=True)
class Compiled:
    """A generated script, and its normalisation report on demand (only --report prints it)."""

    target: str
    source: str
    filename: str
    model: Model = field(repr=False, compare=False)

    @property
    def report(self) -> str:
        """The normalisation report: native defaults overridden, and the emitters' notes."""
        return get_backend(self.target).report(self.model).render()


def unformatted(model: Model, target: str) -> tuple[str, FormatMode]:
    """`target`'s script for `model` as the template renders it, and how it is formatted;
    SpecError when the target cannot express the model."""
    backend = get_backend(target)
    problems = backend.unsupported(model)
    if problems:
        raise SpecError(problems, model.source.path, model.source.text)
    context = {
        **model_context(model),
        **backend.context(model),
        **skeleton_context(model, backend.name),
    }
    return render_unformatted(backend.template, context), backend.format_mode


def compile_model(model: Model, target: str) -> Compiled:
    """Generate `target`'s script for `model`; SpecError when the target cannot express it."""
    backend = get_backend(target)
    source, mode = unformatted(model, target)
    filename = f"{model.name}_{backend.name}{backend.extension}"
    return Compiled(backend.name, format_source(source, mode), filename, model)
