"""Pass: warn about known traps that still compile (they came from real hand-written benchmarks)."""

from __future__ import annotations

from dlspec.errors import LintWarning
from dlspec.ir import Model
from dlspec.passes.base import PassContext


def _softmax_before_logits_loss(model: Model, ctx: PassContext) -> None:
    last = model.layers[-1]
    if last.op == "softmax" and model.train and model.train.loss.kind == "softmax_cross_entropy":
        ctx.warn(
            LintWarning(
                "softmax before softmax_cross_entropy, which takes logits: softmax is applied twice",
                last.pos,
                "warning",
            )
        )


def _last_step_of_post_padded(model: Model, ctx: PassContext) -> None:
    data = model.train.data if model.train else None
    if data is None or data.name != "imdb" or data["pad"] != "post":
        return
    for layer in model.layers:
        if layer.op in ("gru", "lstm") and layer["readout"] == "last":
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


LINTS = (_softmax_before_logits_loss, _last_step_of_post_padded, _dropout_last)


def lint(model: Model, ctx: PassContext) -> Model:
    """Record warnings; the model passes through unchanged."""
    if model.layers:
        for check in LINTS:
            check(model, ctx)
    return model
