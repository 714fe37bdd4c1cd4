"""Reverse-mode gradients of the reference loss w.r.t. every parameter, op by op, in float64."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from dlspec.ir.model import TIME_DISTRIBUTED, Layer, Model, wrapped
from dlspec.oracle import forward as R

Array = np.ndarray
Pair = tuple[int, int]
Pads = tuple[Pair, Pair]
Weights = dict[str, Array]
Grads = dict[str, Array]


def crop2d(xp: Array, pads: Pads, size: Pair) -> Array:
    """The unpadded part of a padded NCHW array."""
    top, left = pads[0][0], pads[1][0]
    return xp[:, :, top : top + size[0], left : left + size[1]]


# ---- layer ops -------------------------------------------------------------------------------


def conv2d_backward(
    x: Array, w: Array, dout: Array, stride: Pair, pads: Pads, dilation: Pair
) -> tuple[Array, Array, Array]:
    """(dx, dw, db) of conv2d given dL/dy (N, O, OH, OW)."""
    n, c, h, wd = x.shape
    kernel = (w.shape[2], w.shape[3])
    cols = R.conv_columns(x, kernel, stride, pads, dilation)
    dy = dout.reshape(n, w.shape[0], -1)
    # per-sample products through BLAS, then their sum (einsum here ran 6x slower, unblocked)
    dw = np.matmul(dy, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(w.reshape(w.shape[0], -1).T, dy)
    dwin = dcols.reshape(n, c, kernel[0], kernel[1], dout.shape[2], dout.shape[3])
    padded = (n, c, h + sum(pads[0]), wd + sum(pads[1]))
    dx = crop2d(R.unwindows(dwin, padded, stride, dilation), pads, (h, wd))
    return dx, dw, dout.sum(axis=(0, 2, 3))


def _pool_unwindows(dwin: Array, x: Array, stride: Pair, pads: Pads, extra: Pair) -> Array:
    n, c, h, w = x.shape
    padded = (n, c, h + sum(pads[0]) + extra[0], w + sum(pads[1]) + extra[1])
    return crop2d(R.unwindows(dwin, padded, stride, (1, 1)), pads, (h, w))


def maxpool2d_backward(
    x: Array, dout: Array, pool: Pair, stride: Pair, pads: Pads, rounding: str
) -> Array:
    """dx of maxpool2d: each window's gradient goes to its first maximal cell (row-major)."""
    out_hw, extra = R.pool_geometry(x, pool, stride, pads, rounding)
    win = R.windows(R.pad2d(x, pads, -np.inf, extra), pool, stride, (1, 1), out_hw)
    n, c = x.shape[:2]
    flat = win.reshape(n, c, pool[0] * pool[1], *out_hw)
    first = flat.argmax(axis=2)[:, :, None]
    taps = np.arange(pool[0] * pool[1]).reshape(1, 1, -1, 1, 1)
    dwin = np.where(taps == first, dout[:, :, None], 0.0).reshape(win.shape)
    return _pool_unwindows(dwin, x, stride, pads, extra)


def avgpool2d_backward(
    x: Array,
    dout: Array,
    pool: Pair,
    stride: Pair,
    pads: Pads,
    rounding: str,
    count_pad: bool,
) -> Array:
    """dx of avgpool2d: each window's gradient over its divisor, to every cell it covers."""
    out_hw, extra = R.pool_geometry(x, pool, stride, pads, rounding)
    share = dout / R.pool_divisor(x, pool, stride, pads, rounding, count_pad)
    dwin = np.broadcast_to(share[:, :, None, None], share.shape[:2] + pool + out_hw)
    return _pool_unwindows(np.ascontiguousarray(dwin), x, stride, pads, extra)


def global_avgpool2d_backward(x: Array, dout: Array) -> Array:
    """dx of global_avgpool2d: each map's gradient over its H * W cells, to every cell."""
    cells = x.shape[2] * x.shape[3]
    return np.broadcast_to((dout / cells)[:, :, None, None], x.shape).copy()


def global_maxpool2d_backward(x: Array, dout: Array) -> Array:
    """dx of global_maxpool2d: each map's gradient shared equally by the cells equal to its max
    (as every framework's reduce-max; a single maximum takes all of it)."""
    winners = x == x.max(axis=(2, 3), keepdims=True)
    return np.where(winners, (dout / winners.sum(axis=(2, 3)))[:, :, None, None], 0.0)


def repeat_vector_backward(dout: Array) -> Array:
    """dx of repeat_vector: the copies' gradients added up, (N, n, F) -> (N, F)."""
    return dout.sum(axis=1)


def dense_backward(x: Array, w: Array, dout: Array) -> tuple[Array, Array, Array]:
    """(dx, dw, db) of dense over the last axis."""
    rows_x = x.reshape(-1, x.shape[-1])
    rows_d = dout.reshape(-1, dout.shape[-1])
    return dout @ w, rows_d.T @ rows_x, rows_d.sum(axis=0)


def embedding_backward(ids: Array, table_shape: tuple[int, ...], dout: Array) -> Array:
    """dw of the embedding table: rows accumulate every lookup's gradient."""
    dw = np.zeros(table_shape)
    np.add.at(dw, np.asarray(ids, dtype=np.int64).reshape(-1), dout.reshape(-1, table_shape[1]))
    return dw


# ---- activations (x is the activation's input) -----------------------------------------------


def relu_backward(x: Array, dout: Array) -> Array:
    """Gradient passes where x > 0."""
    return np.where(x > 0, dout, 0.0)


def tanh_backward(x: Array, dout: Array) -> Array:
    """dout * (1 - tanh(x)^2)."""
    return dout * (1.0 - np.tanh(x) ** 2)


def sigmoid_backward(x: Array, dout: Array) -> Array:
    """dout * s * (1 - s)."""
    s = R.sigmoid(x)
    return dout * s * (1.0 - s)


def softmax_backward(x: Array, dout: Array, axis: int) -> Array:
    """s * (dout - sum(dout * s)) along the softmax axis."""
    s = R.softmax(x, axis)
    return s * (dout - (dout * s).sum(axis=axis, keepdims=True))


def elu_backward(x: Array, dout: Array, alpha: float) -> Array:
    """dout for x > 0, dout * alpha * exp(x) otherwise."""
    return np.where(x > 0, dout, dout * alpha * np.exp(np.minimum(x, 0.0)))


def leaky_relu_backward(x: Array, dout: Array, alpha: float) -> Array:
    """Gradient of (x > 0 ? x : alpha * x)."""
    return np.where(x > 0, dout, alpha * dout)


# ---- recurrent ops (BPTT) --------------------------------------------------------------------


def _bias_grads(b: Optional[Array], db: Array) -> Optional[Array]:
    return None if b is None else db


def gru_layer_backward(
    x: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Optional[Array],
    b_hh: Optional[Array],
    reset_after: bool,
    dhs: Array,
) -> tuple[Array, list[Optional[Array]]]:
    """dx (N, T, C) and [dw_ih, dw_hh, db_ih, db_hh] of one GRU layer given dL/dhs (N, T, H)."""
    hs = R.gru_layer(x, w_ih, w_hh, b_ih, b_hh, reset_after)
    units = w_hh.shape[1]
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    db_ih, db_hh = np.zeros(3 * units), np.zeros(3 * units)
    dx = np.zeros_like(x)
    dh = np.zeros((x.shape[0], units))
    for t in reversed(range(x.shape[1])):
        h = hs[:, t - 1] if t > 0 else np.zeros_like(dh)
        r, z, n, gh_n = R.gru_gates(x[:, t], h, w_ih, w_hh, b_ih, b_hh, reset_after)
        dh = dh + dhs[:, t]
        da_n = dh * (1.0 - z) * (1.0 - n**2)
        da_z = dh * (h - n) * z * (1.0 - z)
        dgh_n = da_n * r if reset_after else da_n
        dq = dgh_n @ w_hh[2 * units :]
        dr = da_n * gh_n if reset_after else dq * h
        da_r = dr * r * (1.0 - r)
        dgi = np.concatenate([da_r, da_z, da_n], axis=1)
        q = h if reset_after else r * h
        dw_ih += dgi.T @ x[:, t]
        dw_hh[: 2 * units] += dgi[:, : 2 * units].T @ h
        dw_hh[2 * units :] += dgh_n.T @ q
        db_ih += dgi.sum(axis=0)
        db_hh += np.concatenate([da_r, da_z, dgh_n], axis=1).sum(axis=0)
        dx[:, t] = dgi @ w_ih
        dh = dh * z + dgi[:, : 2 * units] @ w_hh[: 2 * units] + (dq if reset_after else dq * r)
    return dx, [dw_ih, dw_hh, _bias_grads(b_ih, db_ih), _bias_grads(b_hh, db_hh)]


def lstm_layer_backward(
    x: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Optional[Array],
    b_hh: Optional[Array],
    dhs: Array,
) -> tuple[Array, list[Optional[Array]]]:
    """dx (N, T, C) and [dw_ih, dw_hh, db_ih, db_hh] of one LSTM layer given dL/dhs (N, T, H)."""
    hs, cs = R.lstm_states(x, w_ih, w_hh, b_ih, b_hh)
    units = w_hh.shape[1]
    dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(4 * units)
    dx = np.zeros_like(x)
    dh = np.zeros((x.shape[0], units))
    dc = np.zeros_like(dh)
    for t in reversed(range(x.shape[1])):
        h = hs[:, t - 1] if t > 0 else np.zeros_like(dh)
        c = cs[:, t - 1] if t > 0 else np.zeros_like(dh)
        i, f, g, o = R.lstm_gates(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
        dh = dh + dhs[:, t]
        tc = np.tanh(cs[:, t])
        dc = dc + dh * o * (1.0 - tc**2)
        da = np.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c * f * (1 - f),
                dc * i * (1 - g**2),
                dh * tc * o * (1 - o),
            ],
            axis=1,
        )
        dw_ih += da.T @ x[:, t]
        dw_hh += da.T @ h
        db += da.sum(axis=0)
        dx[:, t] = da @ w_ih
        dh = da @ w_hh
        dc = dc * f
    return dx, [dw_ih, dw_hh, _bias_grads(b_ih, db), _bias_grads(b_hh, db.copy())]


# ---- the model -------------------------------------------------------------------------------

LayerGrads = tuple[Optional[Array], Grads]


def _conv2d(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    w, b = R.layer_params(layer, weights)
    dx, dw, db = conv2d_backward(x, w, dout, layer["stride"], layer["padding"], layer["dilation"])
    return dx, _weight_bias(layer, dw, db if b is not None else None)


def _dense(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    w, b = R.layer_params(layer, weights)
    dx, dw, db = dense_backward(x, w, dout)
    return dx, _weight_bias(layer, dw, db if b is not None else None)


def _weight_bias(layer: Layer, dw: Array, db: Optional[Array]) -> Grads:
    out = {f"{layer.name}.weight": dw}
    if db is not None:
        out[f"{layer.name}.bias"] = db
    return out


def _maxpool2d(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    a = layer.attrs
    return maxpool2d_backward(x, dout, a["pool"], a["stride"], a["padding"], a["rounding"]), {}


def _avgpool2d(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    a = layer.attrs
    args = (a["pool"], a["stride"], a["padding"], a["rounding"], a["count_pad"])
    return avgpool2d_backward(x, dout, *args), {}


def _zeropad2d(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    return crop2d(dout, layer["padding"], (x.shape[2], x.shape[3])), {}


def _embedding(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    table = R.param(weights, f"{layer.name}.weight")
    return None, {f"{layer.name}.weight": embedding_backward(x, table.shape, dout)}


def _rnn_layer_backward(
    layer: Layer, weights: Weights, x: Array, k: int, dhs: Array
) -> tuple[Array, Grads]:
    params = R.rnn_params(layer, weights, k)
    if layer.op == "gru":
        dx, grads = gru_layer_backward(x, *params, layer["reset_after"], dhs)
    else:
        dx, grads = lstm_layer_backward(x, *params, dhs)
    roles = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    present = zip(roles, grads, params, strict=True)
    return dx, {
        f"{layer.name}.{r}_l{k}": g for r, g, p in present if g is not None and p is not None
    }


def _rnn(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    inputs = [x]
    for k in range(layer["layers"] - 1):
        inputs.append(R.rnn_layer(layer, weights, inputs[-1], k))
    dhs = dout
    if layer["readout"] == "last":
        dhs = np.zeros((x.shape[0], x.shape[1], layer["units"]))
        dhs[:, -1] = dout
    grads: Grads = {}
    for k in reversed(range(layer["layers"])):
        dhs, layer_grads = _rnn_layer_backward(layer, weights, inputs[k], k, dhs)
        grads.update(layer_grads)
    return dhs, grads


def _act(fn: Callable[..., Array], *keys: str) -> Callable[..., LayerGrads]:
    def backward(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
        return fn(x, dout, *(layer[k] for k in keys)), {}

    return backward


# ---- batch normalisation (training mode: batch statistics) --------------------------------------


def batchnorm_backward(
    x: Array, gamma: Optional[Array], eps: float, axis: int, dout: Array
) -> tuple[Array, Array, Array]:
    """(dx, dgamma, dbeta) of batch normalisation with batch statistics, whose mean and
    variance depend on every element of the batch."""
    over, shape = R._per_feature(x, axis)
    mean, var = R.batch_stats(x, axis)
    inv = 1.0 / np.sqrt(var.reshape(shape) + eps)
    xhat = (x - mean.reshape(shape)) * inv
    count = x.size // mean.size
    dxhat = dout if gamma is None else dout * gamma.reshape(shape)
    dx = (
        inv
        / count
        * (
            count * dxhat
            - dxhat.sum(axis=over, keepdims=True)
            - xhat * (dxhat * xhat).sum(axis=over, keepdims=True)
        )
    )
    return dx, (dout * xhat).sum(axis=over), dout.sum(axis=over)


def _batchnorm(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    gamma, beta = R.bn_affine(layer, weights)
    dx, dgamma, dbeta = batchnorm_backward(x, gamma, layer["eps"], layer["axis"], dout)
    grads: Grads = {}
    if gamma is not None:
        grads[f"{layer.name}.weight"] = dgamma
    if beta is not None:
        grads[f"{layer.name}.bias"] = dbeta
    return dx, grads


def _time_distributed(layer: Layer, weights: Weights, x: Array, dout: Array) -> LayerGrads:
    """The wrapped layer's backward over every step as one batch, (N, T, *S) -> (N*T, *S): the
    gradients of the one set of weights add up over the steps in that batch."""
    inner = wrapped(layer)
    dx, grads = BACKWARD[inner.op](inner, weights, R.steps(x), R.steps(dout))
    return (None if dx is None else dx.reshape(x.shape)), grads


LayerBackward = Callable[[Layer, Weights, Array, Array], LayerGrads]

BACKWARD: dict[str, LayerBackward] = {
    "batchnorm": _batchnorm,
    "conv2d": _conv2d,
    "maxpool2d": _maxpool2d,
    "avgpool2d": _avgpool2d,
    "global_avgpool2d": _act(global_avgpool2d_backward),
    "global_maxpool2d": _act(global_maxpool2d_backward),
    "zeropad2d": _zeropad2d,
    "dense": _dense,
    "flatten": lambda layer, weights, x, dout: (dout.reshape(x.shape), {}),
    "repeat_vector": lambda layer, weights, x, dout: (repeat_vector_backward(dout), {}),
    "embedding": _embedding,
    "gru": _rnn,
    "lstm": _rnn,
    "dropout": lambda layer, weights, x, dout: (dout, {}),
    "relu": _act(relu_backward),
    "tanh": _act(tanh_backward),
    "sigmoid": _act(sigmoid_backward),
    "softmax": _act(softmax_backward, "axis"),
    "elu": _act(elu_backward, "alpha"),
    "leaky_relu": _act(leaky_relu_backward, "alpha"),
    TIME_DISTRIBUTED: _time_distributed,
}


# ---- merges ----------------------------------------------------------------------------------


def multiply_backward(xs: list[Array], dout: Array) -> list[Array]:
    """d(x_0 * ... * x_k)/d x_i = dout * (the product of the others)."""
    return [dout * np.prod(xs[:i] + xs[i + 1 :], axis=0) for i in range(len(xs))]


def concat_backward(xs: list[Array], dout: Array, axis: int) -> list[Array]:
    """Each input's slice of dout along the joined sample axis."""
    ends = np.cumsum([x.shape[axis + 1] for x in xs])[:-1]
    return np.split(dout, ends, axis=axis + 1)


MERGE_BACKWARD: dict[str, Callable[[Layer, list[Array], Array], list[Array]]] = {
    "add": lambda layer, xs, dout: [dout] * len(xs),
    "multiply": lambda layer, xs, dout: multiply_backward(xs, dout),
    "concat": lambda layer, xs, dout: concat_backward(xs, dout, layer["axis"]),
}


# ---- losses ----------------------------------------------------------------------------------


def softmax_cross_entropy_backward(logits: Array, labels: Array) -> Array:
    """d(mean CE)/d logits = (softmax - one_hot) / positions."""
    labels = np.asarray(labels, dtype=np.int64)
    grad = R.softmax(logits, -1)
    np.put_along_axis(
        grad,
        labels[..., None],
        np.take_along_axis(grad, labels[..., None], axis=-1) - 1.0,
        axis=-1,
    )
    return grad / labels.size


def mse_backward(output: Array, target: Array) -> Array:
    """d(mean squared error)/d output = 2 (output - target) / elements."""
    return 2.0 * (output - np.asarray(target, dtype=np.float64)) / output.size


def binary_cross_entropy_backward(logits: Array, target: Array) -> Array:
    """d(mean BCE)/d logits = (sigmoid(z) - t) / elements."""
    return (R.sigmoid(logits) - np.asarray(target, dtype=np.float64)) / logits.size


def mae_backward(output: Array, target: Array) -> Array:
    """d(mean |o - t|)/d o = sign(o - t) / elements (0 where they are equal)."""
    return np.sign(output - np.asarray(target, dtype=np.float64)) / output.size


LOSS_BACKWARD: dict[str, Callable[[Array, Array], Array]] = {
    "binary_cross_entropy": binary_cross_entropy_backward,
    "mae": mae_backward,
    "softmax_cross_entropy": softmax_cross_entropy_backward,
    "mse": mse_backward,
}


def loss_and_grads(model: Model, weights: Weights, x: R.Batch, y: Array) -> tuple[float, Grads]:
    """The loss on (x, y) and its gradient w.r.t. every trainable parameter, by name, in training
    mode as verify's steps run (dropout off, batch norm on batch statistics).

    Layers are visited in reverse (topological) order; a tensor read by several layers gets the
    sum of their gradients, and a layer whose output does not reach the loss gets zero ones."""
    values = R.tensors(model, weights, x, training=True)
    out = R.output_name(model)
    value = R.loss(model, values[out], y)
    douts: dict[str, Array] = {out: LOSS_BACKWARD[model.train.loss.kind](values[out], y)}  # type: ignore
    grads: Grads = {}
    for layer in reversed(model.layers):
        dout = douts.pop(layer.name, None)
        if dout is None:
            grads.update({p.name: np.zeros(p.shape) for p in layer.params if p.trainable})
            continue
        if layer.op in MERGE_BACKWARD:
            xs = [values[name] for name in layer.inputs]
            for name, dx in zip(
                layer.inputs, MERGE_BACKWARD[layer.op](layer, xs, dout), strict=True
            ):
                _accumulate(douts, name, dx)
            continue
        if layer.op not in BACKWARD:
            raise R.OracleError(f"{layer.name}: the reference has no gradient for {layer.op!r}")
        dx, layer_grads = BACKWARD[layer.op](layer, weights, values[layer.inputs[0]], dout)
        grads.update(layer_grads)
        _accumulate(douts, layer.inputs[0], dx)
    return value, {p.name: grads[p.name] for p in model.trainable_params}


def _accumulate(douts: dict[str, Array], name: str, dx: Optional[Array]) -> None:
    """Add a gradient flowing into tensor `name` (None: integer ids, which take none)."""
    if dx is not None:
        douts[name] = douts[name] + dx if name in douts else dx


def grads(model: Model, weights: Weights, x: R.Batch, y: Array) -> Grads:
    """The gradient of the loss on (x, y) w.r.t. every parameter, keyed by the IR's names."""
    return loss_and_grads(model, weights, x, y)[1]
