"""How close a batch's non-differentiable decisions come to flipping, measured on the oracle.

A ReLU-family input within float32 noise of 0, or a max-pool window whose top two values are that
close, can go either way in a float32 framework, and the gradient then differs for a reason that
has nothing to do with the model's meaning. `dlspec verify` redraws such training batches.
"""

from __future__ import annotations

import numpy as np

from dlspec import reference as R
from dlspec.ir import Layer, Model

Array = np.ndarray
KINKED = ("relu", "leaky_relu", "elu")


def _kink_margin(x: Array) -> float:
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return float(np.min(np.abs(x))) / scale if scale > 0 else np.inf


def _tie_margin(layer: Layer, x: Array) -> float:
    """Smallest gap between the best and second-best cell of any window, relative to scale."""
    pool, stride, pads = layer["pool"], layer["stride"], layer["padding"]
    out_hw, extra = R.pool_geometry(x, pool, stride, pads, layer["rounding"])
    win = R.windows(R.pad2d(x, pads, -np.inf, extra), pool, stride, (1, 1), out_hw)
    flat = win.reshape(win.shape[0], win.shape[1], -1, *win.shape[4:])
    if flat.shape[2] < 2:
        return np.inf
    top2 = np.sort(flat, axis=2)[:, :, -2:]
    gaps = top2[:, :, 1] - top2[:, :, 0]
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]  # exact ties resolve alike everywhere
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return float(np.min(gaps)) / scale if gaps.size and scale > 0 else np.inf


def decision_margin(model: Model, weights: dict[str, Array], x: Array) -> float:
    """The smallest relative margin of any kink or max-pool tie on training batch `x` (inf if
    none), with batch norm on batch statistics as in a training step."""
    values = R.layer_inputs(model, weights, x, training=True)
    margin = np.inf
    for layer, value in zip(model.layers, values[:-1], strict=True):
        if layer.op in KINKED or (layer.op == "leaky_relu" and layer["alpha"] != 1.0):
            margin = min(margin, _kink_margin(value))
        elif layer.op == "maxpool2d":
            margin = min(margin, _tie_margin(layer, value))
    return margin
