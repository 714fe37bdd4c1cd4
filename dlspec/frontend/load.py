"""Spec bytes or text -> explicit IR: decode, parse, lower, then run the pass pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dlspec.errors import BadValue, Pos, Problem, SpecError, UsageError, display_path
from dlspec.frontend.ast import Written
from dlspec.frontend.lower import lower
from dlspec.frontend.parse import parse
from dlspec.ir.model import Model
from dlspec.limits import MAX_SPEC_BYTES
from dlspec.passes import PIPELINE, PassContext


@dataclass(frozen=True)
class Built:
    """An explicit model and the lint warnings found on the way."""

    model: Model
    warnings: tuple[Problem, ...]


def build(text: str, path: str = "<spec>", profile: Optional[str] = None) -> Built:
    """Run the whole front end; raise SpecError listing every problem found."""
    model, written = lower(parse(text, path))
    return run_passes(model, written, profile)


def run_passes(model: Model, written: Written, profile: Optional[str] = None) -> Built:
    """The pass pipeline over a lowered model and the syntax it was lowered from; SpecError at
    the first pass that finds problems."""
    ctx = PassContext(written=written, profile_override=profile)
    for step in PIPELINE:
        model = step(model, ctx)
        if ctx.problems:
            raise SpecError(ctx.problems, model.source.path, model.source.text)
    return Built(model, tuple(sorted(ctx.warnings, key=lambda p: (p.pos.line, p.pos.col))))


def decode(data: bytes, path: str) -> str:
    """The spec's text, exactly its bytes (no newline translation, so the header's sha256 is the
    file's); SpecError at the first byte that is not UTF-8, or for an oversized file."""
    if len(data) > MAX_SPEC_BYTES:
        problem = BadValue(
            f"the file has {len(data)} bytes; the limit is {MAX_SPEC_BYTES}", Pos(1, 1, 2)
        )
        raise SpecError([problem], path, data.decode("utf-8", "replace"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = before.count(b"\n") + 1
        prefix = before[before.rfind(b"\n") + 1 :].decode("utf-8")
        col = len(prefix.removeprefix("\ufeff") if line == 1 else prefix) + 1
        message = f"the file is not UTF-8: byte 0x{data[err.start]:02x} cannot start or continue a character"
        text = data.decode("utf-8", "replace")
        raise SpecError([BadValue(message, Pos(line, col, col + 1))], path, text) from None


def read_spec(path: str) -> str:
    """A spec file's text (path kept as given, for headers and messages); UsageError when it
    cannot be read at all."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read spec {display_path(path)}: {err.strerror}") from None
    return decode(data, path)


def build_file(path: str, profile: Optional[str] = None) -> Built:
    """Read a spec file and build it."""
    return build(read_spec(path), path, profile)
