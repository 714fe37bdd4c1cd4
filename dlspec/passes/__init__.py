"""The pass pipeline: resolve names, fill defaults, infer shapes, validate, lint (each pass's
contract, the facts it requires and ensures, is declared beside it and checked as it runs)."""

from __future__ import annotations

from dlspec.passes.base import Pass, PassContext
from dlspec.passes.defaults import defaults
from dlspec.passes.lint import lint
from dlspec.passes.resolve import resolve
from dlspec.passes.shapes import shapes
from dlspec.passes.validate import validate

PIPELINE: tuple[Pass, ...] = (resolve, defaults, shapes, validate, lint)

__all__ = ["PIPELINE", "Pass", "PassContext"]
