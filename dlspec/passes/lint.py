"""Pass: warn about known traps that still compile (they came from real hand-written benchmarks)."""

from __future__ import annotations

from dlspec.errors import LintWarning
from dlspec.ir.model import Layer, Model, uses, wrapped
from dlspec.ir.ops import BATCH_STATISTICS, RECURRENT
from dlspec.passes.base import PassContext, declare
from dlspec.passes.facts import EXPLICIT, RESOLVED, SHAPED

# by loss: an activation on the logits that the loss applies again, or that bounds them
LOGIT_TRAPS = {
    "softmax_cross_entropy": {
        "softmax": "softmax is applied twice",
        "sigmoid": "they stay in (0, 1), so no class gets a high probability",
        "tanh": "they stay in (-1, 1), so no class gets a high probability",
        "relu": "no logit can go below 0",
    },
    "binary_cross_entropy": {
        "sigmoid": "sigmoid is applied twice",
        "softmax": "they stay in (0, 1), so every prediction in (0.5, 0.73)",
        "tanh": "they stay in (-1, 1), so every prediction in (0.27, 0.73)",
        "relu": "no logit can go below 0, so no prediction below 0.5",
    },
}


def _activation_before_logits_loss(model: Model, ctx: PassContext) -> None:
    """`dense(10, activation=softmax)` trained by softmax_cross_entropy, which takes logits, and
    the other activations that apply its own function twice or bound the logits."""
    if model.train is None or len(model.outputs) != 1:
        return
    last = next(layer for layer in model.layers if layer.name == model.outputs[0])
    loss = model.train.loss.kind
    effect = LOGIT_TRAPS.get(loss, {}).get(last.op)
    if effect:
        message = f"{last.op} before {loss}, which takes logits: {effect}"
        ctx.warn(LintWarning(message, last.pos, "warning"))


def _last_step_of_post_padded(model: Model, ctx: PassContext) -> None:
    data = model.train.data if model.train else None
    if data is None or data.name != "imdb" or data["pad"] != "post":
        return
    for layer in model.layers:
        if layer.op in RECURRENT and layer["readout"] == "last":
            ctx.warn(
                LintWarning(
                    f"{layer.name} reads the last time step but imdb sequences are post-padded: "
                    "it reads padding; use pad=pre",
                    layer.pos,
                    "warning",
                )
            )


def _dropout_last(model: Model, ctx: PassContext) -> None:
    last = model.layers[-1]
    if last.op == "dropout":
        ctx.warn(
            LintWarning(
                "dropout is the last layer: it perturbs the logits in training only",
                last.pos,
                "warning",
            )
        )


def _bias_before_batchnorm(model: Model, ctx: PassContext) -> None:
    """A conv or dense bias read only by a centring batch norm: it has no effect (its gradient is
    zero), and adaptive optimisers turn float32 noise in that zero into updates."""
    readers: dict[str, list[Layer]] = {}
    for layer in model.layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer)
    for layer in model.layers:
        if layer.op not in ("conv2d", "dense") or not layer["bias"]:
            continue
        after = readers.get(layer.name, [])
        if after and all(r.op == "batchnorm" for r in after) and layer.name not in model.outputs:
            ctx.warn(
                LintWarning(
                    f"{layer.name}'s bias has no effect: batch norm subtracts the mean right "
                    "after it (use bias=false)",
                    layer.pos,
                    "warning",
                )
            )


def _batchnorm_sync_without_batchnorm(model: Model, ctx: PassContext) -> None:
    """`batchnorm_sync = true` in a model with no batch norm: it changes nothing."""
    train = model.train
    if train is None or not train.batchnorm_sync:
        return
    if not uses(model, BATCH_STATISTICS):
        ctx.warn(
            LintWarning(
                "batchnorm_sync = true, but the model has no batchnorm layer: it changes nothing",
                train.positions.get("batchnorm_sync", model.pos),
                "warning",
            )
        )


def _early_labels(model: Model, ctx: PassContext) -> None:
    """`a: dense(64) -> relu` names the dense: a later `[h, a]` reads it before the relu."""
    for early in ctx.written.early_labels:
        ctx.warn(early.warning())


def _dense_over_map_rows(model: Model, ctx: PassContext) -> None:
    """A dense reading a (C, H, W) map works over its last axis, W, as everywhere; Keras's Dense
    on its channels-last maps works over the channels, so a Keras model carried over changes."""
    for layer in model.layers:
        inner = wrapped(layer)
        if inner.op == "dense" and len(inner.in_shape) == 3:
            ctx.warn(
                LintWarning(
                    f"dense over a (C, H, W) map {list(inner.in_shape)} works along each row (its "
                    "last axis, W), not across the channels as Keras's Dense does on its "
                    "channels-last maps: flatten first to read the whole map, or write "
                    f"conv2d({inner['units']}, 1) for a dense layer per pixel",
                    layer.pos,
                    "warning",
                )
            )


LINTS = (
    _activation_before_logits_loss,
    _last_step_of_post_padded,
    _dropout_last,
    _bias_before_batchnorm,
    _batchnorm_sync_without_batchnorm,
    _early_labels,
    _dense_over_map_rows,
)


@declare(requires=(RESOLVED, EXPLICIT, SHAPED))
def lint(model: Model, ctx: PassContext) -> Model:
    """Record warnings; the model passes through unchanged."""
    if model.layers:
        for check in LINTS:
            check(model, ctx)
    return model
