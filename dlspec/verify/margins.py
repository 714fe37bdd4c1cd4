"""How close a batch's non-differentiable decisions come to flipping, measured on the oracle.

A ReLU-family input within float32 noise of 0, or a max-pool window (or a global max pool's map)
whose top two values are that close, can go either way in a float32 framework, and the gradient
then differs for a reason that has nothing to do with the model's meaning. `dlspec verify` redraws
such training batches.
"""

from __future__ import annotations

import numpy as np

from dlspec.ir.model import TIME_DISTRIBUTED, Layer, Model, wrapped
from dlspec.ir.ops import KINKED
from dlspec.oracle import forward as R

Array = np.ndarray
POOLS = frozenset({"maxpool2d", "global_maxpool2d"})


def _kink_margin(x: Array) -> float:
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return float(np.min(np.abs(x))) / scale if scale > 0 else np.inf


def _top_gap(cells: Array, x: Array) -> float:
    """Smallest gap between the largest value along axis 2 of `cells` and the largest value
    below it, relative to the scale of `x`. Exact ties at the top are no decision (they resolve
    alike everywhere: max pooling's first cell, global max pooling's equal shares); a window
    with one finite value, or of -inf padding below its max, has no gap."""
    top = cells.max(axis=2, keepdims=True)
    below = np.where(cells < top, cells, -np.inf).max(axis=2)
    with np.errstate(invalid="ignore"):
        gaps = top[:, :, 0] - below
    gaps = gaps[np.isfinite(gaps)]
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return float(np.min(gaps)) / scale if gaps.size and scale > 0 else np.inf


def _tie_margin(layer: Layer, x: Array) -> float:
    """Smallest gap between the best and the next-best cell of any max-pool window, relative."""
    pool, stride, pads = layer["pool"], layer["stride"], layer["padding"]
    out_hw, extra = R.pool_geometry(x, pool, stride, pads, layer["rounding"])
    win = R.windows(R.pad2d(x, pads, -np.inf, extra), pool, stride, (1, 1), out_hw)
    return _top_gap(win.reshape(win.shape[0], win.shape[1], -1, *win.shape[4:]), x)


def _global_tie_margin(x: Array) -> float:
    """The same over each whole map of a global max pool."""
    return _top_gap(x.reshape(x.shape[0], x.shape[1], -1), x)


def _checked(model: Model) -> list[tuple[Layer, Layer]]:
    """(layer, the layer whose decision is measured) for every layer that makes one."""
    pairs = [
        (layer, wrapped(layer) if layer.op == TIME_DISTRIBUTED else layer) for layer in model.layers
    ]
    return [(layer, inner) for layer, inner in pairs if inner.op in KINKED | POOLS]


def decision_margin(
    model: Model, weights: dict[str, Array], x: Array, floor: float = -np.inf
) -> float:
    """The smallest relative margin of any kink or (global) max-pool tie on training batch `x`
    (inf if none), with batch norm on batch statistics as in a training step. Only the tensors
    that reach a decision are computed, in layer order, and the walk stops once the margin so far
    is at or below `floor`: what it returns then is no more than `floor`, though not the margin."""
    checked = _checked(model)
    values = R.model_inputs(model, x)
    computed = R.each_tensor(
        model, weights, values, True, [layer.inputs[0] for layer, _ in checked]
    )
    margin = np.inf
    for layer, inner in checked:
        while layer.inputs[0] not in values:
            next(computed)
        margin = min(margin, _layer_margin(layer, inner, values[layer.inputs[0]]))
        if margin <= floor:
            break
    return margin


def _layer_margin(layer: Layer, inner: Layer, value: Array) -> float:
    """The margin of one deciding layer on its input `value`."""
    if layer.op == TIME_DISTRIBUTED:  # the wrapped layer sees every step as a sample
        value = R.steps(value)
    if inner.op == "maxpool2d":
        return _tie_margin(inner, value)
    if inner.op == "global_maxpool2d":
        return _global_tie_margin(value)
    return _kink_margin(value)
