"""Pass: checks across the model and its training settings (data vs input, loss vs output)."""

from __future__ import annotations

import math

from dlspec.errors import BadValue, ShapeProblem, Unsupported
from dlspec.ir.model import Model, wrapped
from dlspec.ir.ops import TOKEN_IDS
from dlspec.ir.settings import DATASETS
from dlspec.passes.base import PassContext, declare
from dlspec.passes.facts import EXPLICIT, RESOLVED, SHAPED


def accepted_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """A dataset's sample shape, flattened, or with a leading single channel dropped or moved last.

    Each is a reshape of the stored values, never a permutation: moving an axis of length 1 keeps
    every value's position in memory (Keras's MNIST examples declare (28, 28, 1))."""
    out = [shape, (math.prod(shape),)]
    if len(shape) > 1 and shape[0] == 1:
        out += [shape[1:], (*shape[1:], 1)]
    return out


def _check_data(model: Model, ctx: PassContext) -> None:
    train = model.train
    assert train is not None
    data, inp = train.data, model.inputs[0]
    spec = DATASETS[data.name]
    if data.name not in ("synthetic", "npz") and len(model.inputs) > 1:
        message = (
            f"data {data.name} gives one input; the model has {len(model.inputs)} "
            "(a model with several inputs trains on synthetic or npz data)"
        )
        ctx.error(BadValue(message, model.inputs[1].pos))
        return
    if spec.dtype and spec.dtype != inp.dtype:
        ctx.error(
            BadValue(
                f"data {data.name} gives {spec.dtype} samples but input {inp.name} is {inp.dtype}",
                inp.pos,
            )
        )
    if spec.shape and tuple(inp.shape) not in accepted_shapes(spec.shape):
        shapes = " or ".join(str(list(a)) for a in accepted_shapes(spec.shape))
        ctx.error(
            ShapeProblem(
                f"data {data.name} gives samples of shape {list(spec.shape)}; declare the input "
                f"as {shapes}, not {list(inp.shape)}",
                inp.pos,
            )
        )
    if data.name == "imdb":
        if len(inp.shape) != 1:
            ctx.error(ShapeProblem("imdb input must be int32[maxlen]", inp.pos))
        _check_vocab(model, inp.name, data["vocab"], ctx)


def _check_vocab(model: Model, name: str, vocab: int, ctx: PassContext) -> None:
    """Every layer reading input `name` as token ids (a branch's, a wrapped one's) has a row for
    each of the data's `vocab` ids: a smaller table makes the scripts index past its end."""
    for layer in model.layers:
        inner = wrapped(layer)
        if inner.op in TOKEN_IDS and name in layer.inputs and inner["vocab"] < vocab:
            message = f"{inner.op} vocab {inner['vocab']} is smaller than imdb vocab {vocab}"
            ctx.error(BadValue(message, layer.pos))


def _check_loss(model: Model, ctx: PassContext) -> None:
    train = model.train
    assert train is not None
    out = model.output_shape
    # an unstated loss has no position: point at the layer that makes the output instead
    where = train.loss.pos if train.loss.pos.line else model.layers[-1].pos
    if train.loss.kind == "softmax_cross_entropy":
        if len(out) != 1:
            ctx.error(
                ShapeProblem(
                    f"softmax_cross_entropy needs (N, classes) logits; the model gives {list(out)}",
                    where,
                )
            )
        elif train.data.classes and out[0] != train.data.classes:
            ctx.error(
                ShapeProblem(
                    f"data {train.data.name} has {train.data.classes} classes; the model outputs {out[0]}",
                    model.layers[-1].pos,
                )
            )
    elif train.data.name not in ("synthetic", "npz"):
        ctx.error(
            BadValue(
                f"{train.loss.kind} needs targets of the output's shape; synthetic and npz "
                f"data give them (not {train.data.name})",
                train.loss.pos,
            )
        )


def _check_outputs(model: Model, ctx: PassContext) -> bool:
    """One output for training: the loss reads one tensor."""
    if len(model.outputs) <= 1:
        return True
    names = ", ".join(model.outputs)
    message = f"several outputs ({names}): training reads one output (the loss has one)"
    ctx.error(Unsupported(message, model.outputs_pos))
    return False


@declare(requires=(RESOLVED, EXPLICIT, SHAPED))
def validate(model: Model, ctx: PassContext) -> Model:
    """Model-wide consistency; the model passes through unchanged."""
    if model.train is not None and model.layers and _check_outputs(model, ctx):
        _check_data(model, ctx)
        if not model.inference:
            _check_loss(model, ctx)
    return model
