"""What a pass may require of the model it reads and ensure of the one it returns, each checked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

from dlspec.ir.attrs import PROFILES
from dlspec.ir.model import Layer, Model, wrapped
from dlspec.ir.ops import OPS
from dlspec.ir.settings import DATASETS, OPTIMIZERS, SCHEDULES


@dataclass(frozen=True)
class Fact:
    """A property of a model: its name, what it means, and a check naming every breach."""

    name: str
    meaning: str
    breaches: Callable[[Model], Iterator[str]]

    def check(self, model: Model) -> list[str]:
        """Every place the model breaks this fact (none: it holds)."""
        return list(self.breaches(model))


def _resolved(model: Model) -> Iterator[str]:
    if model.profile not in PROFILES:
        yield f"profile {model.profile!r} is not one of {', '.join(PROFILES)}"
    made = {inp.name for inp in model.inputs}
    for layer in model.layers:
        if layer.op not in OPS:
            yield f"layer {layer.name!r} has an unknown op {layer.op!r}"
        if not layer.name.isidentifier() or layer.name in made:
            yield f"layer name {layer.name!r} is not a new identifier"
        for name in layer.inputs:
            if name not in made:
                yield f"layer {layer.name!r} reads {name!r}, which nothing before it makes"
        made.add(layer.name)
    if not model.outputs:
        yield "the model names no output"
    for name in model.outputs:
        if name not in {layer.name for layer in model.layers}:
            yield f"output {name!r} is no layer's tensor"


def _parts(layer: Layer) -> tuple[Layer, ...]:
    """The layer, and the layer it wraps if it is a time_distributed."""
    return (layer,) if wrapped(layer) is layer else (layer, wrapped(layer))


def _layer_explicit(layer: Layer) -> Iterator[str]:
    for part in _parts(layer):
        missing = sorted(set(OPS[part.op].attrs) - set(part.attrs))
        if missing:
            yield f"layer {layer.name!r} ({part.op}) lacks {', '.join(missing)}"
        unset = sorted(k for k, v in part.attrs.items() if v is None)
        if unset:
            yield f"layer {layer.name!r} ({part.op}) leaves {', '.join(unset)} unset"


def _same_keys(what: str, attrs: dict[str, Any], table: dict[str, Any]) -> Iterator[str]:
    if set(attrs) != set(table):
        yield f"{what} has {sorted(attrs)}, its table {sorted(table)}"


def _explicit(model: Model) -> Iterator[str]:
    for layer in model.layers:
        yield from _layer_explicit(layer)
    train = model.train
    if train is None:
        yield "the training settings are not filled"
        return
    yield from _same_keys("the optimiser", train.optimizer.attrs, OPTIMIZERS[train.optimizer.kind])
    yield from _same_keys("the schedule", train.schedule.attrs, SCHEDULES[train.schedule.kind])
    yield from _same_keys("the data", train.data.attrs, DATASETS[train.data.name].attrs)


def _sizes(shape: Any) -> bool:
    """A shape: a non-empty tuple of positive integers."""
    return (
        isinstance(shape, tuple)
        and bool(shape)
        and all(isinstance(n, int) and n > 0 for n in shape)
    )


def _integers(value: Any) -> bool:
    """Nested tuples of integers only (explicit padding)."""
    if isinstance(value, tuple):
        return all(_integers(item) for item in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _layer_shaped(layer: Layer, shapes: dict[str, tuple[int, ...]]) -> Iterator[str]:
    for part in _parts(layer):
        spec = OPS[part.op]
        undeclared = sorted(set(part.attrs) - set(spec.attrs) - set(spec.derived))
        if undeclared:
            yield f"layer {layer.name!r} ({part.op}) holds {', '.join(undeclared)}, undeclared"
        underived = sorted(set(spec.derived) - set(part.attrs))
        if underived:
            yield f"layer {layer.name!r} ({part.op}) lacks {', '.join(underived)}, not derived"
    if not _sizes(layer.out_shape):
        yield f"layer {layer.name!r} has no output shape ({layer.out_shape})"
    if layer.inputs and layer.in_shape != shapes.get(layer.inputs[0]):
        yield f"layer {layer.name!r} reads shape {layer.in_shape}, its source makes another"
    if "padding" in wrapped(layer).attrs and not _integers(wrapped(layer)["padding"]):
        yield f"layer {layer.name!r} has padding {wrapped(layer)['padding']!r}, not explicit"
    roles = OPS[wrapped(layer).op].params
    for param in layer.params:
        if param.role not in roles or not param.name.startswith(f"{layer.name}."):
            yield f"layer {layer.name!r} has a parameter {param.name!r} ({param.role}) not its op's"
        if not _sizes(param.shape):
            yield f"parameter {param.name!r} has shape {param.shape}"


def _shaped(model: Model) -> Iterator[str]:
    shapes = {inp.name: tuple(inp.shape) for inp in model.inputs}
    for name, shape in shapes.items():
        if not _sizes(shape):
            yield f"input {name!r} has shape {shape}"
    for layer in model.layers:
        yield from _layer_shaped(layer, shapes)
        shapes[layer.name] = layer.out_shape


RESOLVED = Fact(
    "resolved",
    "a profile chosen; known ops; every layer named by a new identifier; every edge names an "
    "input or an earlier layer (acyclic, in order); the outputs name layers",
    _resolved,
)
EXPLICIT = Fact(
    "explicit",
    "every attribute of every layer (a wrapped one's too) and every training setting stated, "
    "each from its table",
    _explicit,
)
SHAPED = Fact(
    "shaped",
    "every input and layer shape known, each layer reading its source's shape, padding as "
    "integers, parameters named and shaped for their layer, no attribute beyond the op's table "
    "and the ones it derives",
    _shaped,
)
FACTS = (RESOLVED, EXPLICIT, SHAPED)
