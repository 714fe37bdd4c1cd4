"""The oracle: a float64 NumPy forward pass and loss of the explicit IR, op by op."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional, Union

import numpy as np

from dlspec.errors import DlspecError
from dlspec.ir.model import TIME_DISTRIBUTED, Layer, Model, wrapped

Array = np.ndarray
Pair = tuple[int, int]
Pads = tuple[Pair, Pair]
Weights = dict[str, Array]


class OracleError(DlspecError):
    """The reference cannot evaluate a model on these inputs (missing weight, bad ids, unknown op)."""


# ---- window geometry -------------------------------------------------------------------------


def window_count(
    size: int, kernel: int, stride: int, dilation: int, pads: Pair, rounding: str = "floor"
) -> int:
    """Output length of a sliding window; ceil drops a window starting in the after-padding."""
    span = size + pads[0] + pads[1] - (kernel - 1) * dilation - 1
    if span < 0:
        raise OracleError(f"window {kernel} does not fit padded size {size + sum(pads)}")
    if rounding == "floor":
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pads[0]:
        out -= 1
    return out


def overhang(size: int, kernel: int, stride: int, pads: Pair, out: int) -> int:
    """Cells a ceil-rounded last window reaches beyond the padded input (0 under floor)."""
    return max(0, (out - 1) * stride + kernel - (size + pads[0] + pads[1]))


def _tap_slices(kernel: int, stride: int, dilation: int, out: int) -> list[slice]:
    return [
        slice(i * dilation, i * dilation + stride * (out - 1) + 1, stride) for i in range(kernel)
    ]


def windows(xp: Array, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> Array:
    """Every window of a padded NCHW array as (N, C, KH, KW, OH, OW)."""
    rows = _tap_slices(kernel[0], stride[0], dilation[0], out_hw[0])
    cols = _tap_slices(kernel[1], stride[1], dilation[1], out_hw[1])
    out = np.empty((*xp.shape[:2], len(rows), len(cols), *out_hw), dtype=xp.dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[:, :, i, j] = xp[:, :, r, c]
    return out


def unwindows(dwin: Array, padded_shape: tuple[int, ...], stride: Pair, dilation: Pair) -> Array:
    """The adjoint of `windows`: scatter-add (N, C, KH, KW, OH, OW) back onto the padded array."""
    kh, kw, oh, ow = dwin.shape[2:]
    out = np.zeros(padded_shape, dtype=dwin.dtype)
    rows = _tap_slices(kh, stride[0], dilation[0], oh)
    cols = _tap_slices(kw, stride[1], dilation[1], ow)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[:, :, r, c] += dwin[:, :, i, j]
    return out


def pad2d(x: Array, pads: Pads, value: float = 0.0, extra: Pair = (0, 0)) -> Array:
    """Pad the two spatial axes of NCHW: (before, after + extra) per axis with `value`."""
    (top, bottom), (left, right) = pads
    widths = ((0, 0), (0, 0), (top, bottom + extra[0]), (left, right + extra[1]))
    return np.pad(x, widths, mode="constant", constant_values=value)


def _out_hw(
    x: Array, kernel: Pair, stride: Pair, dilation: Pair, pads: Pads, rounding: str
) -> Pair:
    h, w = x.shape[2:]
    return (
        window_count(h, kernel[0], stride[0], dilation[0], pads[0], rounding),
        window_count(w, kernel[1], stride[1], dilation[1], pads[1], rounding),
    )


def pool_geometry(
    x: Array, pool: Pair, stride: Pair, pads: Pads, rounding: str
) -> tuple[Pair, Pair]:
    """(output size, ceil overhang) per spatial axis of a pooling window."""
    out = _out_hw(x, pool, stride, (1, 1), pads, rounding)
    extra = tuple(overhang(x.shape[2 + a], pool[a], stride[a], pads[a], out[a]) for a in range(2))
    return out, (extra[0], extra[1])


# ---- layer ops -------------------------------------------------------------------------------


def conv_columns(x: Array, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair) -> Array:
    """im2col: zero-padded windows as (N, C*KH*KW, OH*OW)."""
    out_hw = _out_hw(x, kernel, stride, dilation, pads, "floor")
    win = windows(pad2d(x, pads), kernel, stride, dilation, out_hw)
    n = x.shape[0]
    return win.reshape(n, -1, out_hw[0] * out_hw[1])


def conv2d(
    x: Array, w: Array, b: Optional[Array], stride: Pair, pads: Pads, dilation: Pair
) -> Array:
    """Cross-correlation of NCHW `x` with (O, C, KH, KW) `w`, explicit (before, after) pads."""
    kernel = (w.shape[2], w.shape[3])
    oh, ow = _out_hw(x, kernel, stride, dilation, pads, "floor")
    y = np.matmul(w.reshape(w.shape[0], -1), conv_columns(x, kernel, stride, pads, dilation))
    y = y.reshape(x.shape[0], w.shape[0], oh, ow)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def maxpool2d(x: Array, pool: Pair, stride: Pair, pads: Pads, rounding: str) -> Array:
    """Max over each window; padding and ceil overhang are -inf, so they never win."""
    out_hw, extra = pool_geometry(x, pool, stride, pads, rounding)
    win = windows(pad2d(x, pads, -np.inf, extra), pool, stride, (1, 1), out_hw)
    return win.max(axis=(2, 3))


def pool_divisor(
    x: Array, pool: Pair, stride: Pair, pads: Pads, rounding: str, count_pad: bool
) -> Array:
    """(OH, OW) cells counted per window: real cells, or real + explicit padding (no overhang)."""
    out_hw, _ = pool_geometry(x, pool, stride, pads, rounding)
    counts = []
    for a in range(2):
        size, (before, after) = x.shape[2 + a], pads[a]
        starts = np.arange(out_hw[a]) * stride[a]
        low, high = (0, before + size + after) if count_pad else (before, before + size)
        counts.append(np.minimum(starts + pool[a], high) - np.maximum(starts, low))
    return np.outer(counts[0], counts[1]).astype(np.float64)


def avgpool2d(
    x: Array, pool: Pair, stride: Pair, pads: Pads, rounding: str, count_pad: bool
) -> Array:
    """Mean over each window; `count_pad` decides whether padded zeros count in the divisor."""
    out_hw, extra = pool_geometry(x, pool, stride, pads, rounding)
    win = windows(pad2d(x, pads, 0.0, extra), pool, stride, (1, 1), out_hw)
    return win.sum(axis=(2, 3)) / pool_divisor(x, pool, stride, pads, rounding, count_pad)


def global_avgpool2d(x: Array) -> Array:
    """(N, C, H, W) -> (N, C): the mean over each map."""
    return x.mean(axis=(2, 3))


def global_maxpool2d(x: Array) -> Array:
    """(N, C, H, W) -> (N, C): the max over each map."""
    return x.max(axis=(2, 3))


def zeropad2d(x: Array, pads: Pads) -> Array:
    """Zeros around the spatial axes of NCHW: ((top, bottom), (left, right))."""
    return pad2d(x, pads)


def repeat_vector(x: Array, n: int) -> Array:
    """(N, F) -> (N, n, F): each vector repeated n times."""
    return np.repeat(x[:, None, :], n, axis=1)


def dense(x: Array, w: Array, b: Optional[Array]) -> Array:
    """Affine map over the last axis with an (out, in) weight."""
    y = x @ w.T
    return y if b is None else y + b


def flatten(x: Array) -> Array:
    """(N, C, H, W) -> (N, C*H*W) in (C, H, W) order."""
    return x.reshape(x.shape[0], -1)


def embedding(ids: Array, w: Array) -> Array:
    """Rows of the (vocab, dim) table; ids outside [0, vocab) are an error."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= w.shape[0]):
        raise OracleError(f"token ids must lie in [0, {w.shape[0]}), got {ids.min()}..{ids.max()}")
    return w[ids.astype(np.int64)]


# ---- activations -----------------------------------------------------------------------------


def relu(x: Array) -> Array:
    """max(x, 0)."""
    return np.maximum(x, 0.0)


def tanh(x: Array) -> Array:
    """Hyperbolic tangent."""
    return np.tanh(x)


def sigmoid(x: Array) -> Array:
    """1 / (1 + exp(-x)), computed without overflow."""
    return np.exp(-np.logaddexp(0.0, -x))


def softmax(x: Array, axis: int) -> Array:
    """exp(x) / sum(exp(x)) along `axis` (counted with the batch axis)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def elu(x: Array, alpha: float) -> Array:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def leaky_relu(x: Array, alpha: float) -> Array:
    """x where x > 0, else alpha * x (the canonical meaning documented in dlspec.ir.ops)."""
    return np.where(x > 0, x, alpha * x)


# ---- recurrent ops ---------------------------------------------------------------------------


def _bias(b: Optional[Array], rows: int) -> Array:
    return np.zeros(rows) if b is None else b


def gru_gates(
    xt: Array,
    h: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Optional[Array],
    b_hh: Optional[Array],
    reset_after: bool,
) -> tuple[Array, Array, Array, Array]:
    """One GRU step's r, z, n and the recurrent candidate term (before the reset multiply)."""
    units = h.shape[-1]
    gi = xt @ w_ih.T + _bias(b_ih, 3 * units)
    bh = _bias(b_hh, 3 * units)
    gh_rz = h @ w_hh[: 2 * units].T + bh[: 2 * units]
    r = sigmoid(gi[:, :units] + gh_rz[:, :units])
    z = sigmoid(gi[:, units : 2 * units] + gh_rz[:, units:])
    q = h if reset_after else r * h
    gh_n = q @ w_hh[2 * units :].T + bh[2 * units :]
    n = np.tanh(gi[:, 2 * units :] + (r * gh_n if reset_after else gh_n))
    return r, z, n, gh_n


def gru_layer(
    x: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Optional[Array],
    b_hh: Optional[Array],
    reset_after: bool = True,
) -> Array:
    """One GRU layer over (N, T, C) from h0 = 0; every step's h as (N, T, H)."""
    h = np.zeros((x.shape[0], w_hh.shape[1]))
    hs = []
    for t in range(x.shape[1]):
        _, z, n, _ = gru_gates(x[:, t], h, w_ih, w_hh, b_ih, b_hh, reset_after)
        h = (1.0 - z) * n + z * h
        hs.append(h)
    return np.stack(hs, axis=1)


def lstm_gates(
    xt: Array,
    h: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Optional[Array],
    b_hh: Optional[Array],
) -> tuple[Array, Array, Array, Array]:
    """One LSTM step's gates i, f, g, o (order [i, f, g, o])."""
    units = h.shape[-1]
    a = xt @ w_ih.T + _bias(b_ih, 4 * units) + h @ w_hh.T + _bias(b_hh, 4 * units)
    i, f, g, o = (a[:, k * units : (k + 1) * units] for k in range(4))
    return sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)


def lstm_states(
    x: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Optional[Array],
    b_hh: Optional[Array],
) -> tuple[Array, Array]:
    """One LSTM layer over (N, T, C) from h0 = c0 = 0; (hs, cs), each (N, T, H)."""
    h = np.zeros((x.shape[0], w_hh.shape[1]))
    c = np.zeros_like(h)
    hs, cs = [], []
    for t in range(x.shape[1]):
        i, f, g, o = lstm_gates(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


def lstm_layer(
    x: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Optional[Array],
    b_hh: Optional[Array],
) -> Array:
    """One LSTM layer over (N, T, C); every step's h as (N, T, H)."""
    return lstm_states(x, w_ih, w_hh, b_ih, b_hh)[0]


def rnn_params(
    layer: Layer, weights: Weights, k: int
) -> tuple[Array, Array, Optional[Array], Optional[Array]]:
    """Layer k's (weight_ih, weight_hh, bias_ih, bias_hh) of a gru/lstm; a bias is None if off."""
    names = [f"{layer.name}.{role}_l{k}" for role in ("weight_ih", "weight_hh")]
    w_ih, w_hh = (param(weights, n) for n in names)
    if not layer["bias"]:
        return w_ih, w_hh, None, None
    b_ih = param(weights, f"{layer.name}.bias_ih_l{k}")
    b_hh = param(weights, f"{layer.name}.bias_hh_l{k}") if layer["recurrent_bias"] else None
    return w_ih, w_hh, b_ih, b_hh


def rnn_layer(layer: Layer, weights: Weights, x: Array, k: int) -> Array:
    """Stacked layer k of a gru/lstm layer: (N, T, C) -> (N, T, H)."""
    params = rnn_params(layer, weights, k)
    if layer.op == "gru":
        return gru_layer(x, *params, reset_after=layer["reset_after"])
    return lstm_layer(x, *params)


def readout(layer: Layer, hs: Array) -> Array:
    """The last step (N, H) or the whole sequence (N, T, H)."""
    return hs[:, -1] if layer["readout"] == "last" else hs


# ---- the model -------------------------------------------------------------------------------


def param(weights: Weights, name: str) -> Array:
    """A weight as float64, or an OracleError naming the missing parameter."""
    if name not in weights:
        raise OracleError(f"no weight named {name!r}")
    return np.asarray(weights[name], dtype=np.float64)


def layer_params(layer: Layer, weights: Weights) -> tuple[Array, Optional[Array]]:
    """(weight, bias or None) of a conv2d or dense layer."""
    bias = param(weights, f"{layer.name}.bias") if layer["bias"] else None
    return param(weights, f"{layer.name}.weight"), bias


def _conv2d(layer: Layer, weights: Weights, x: Array) -> Array:
    w, b = layer_params(layer, weights)
    return conv2d(x, w, b, layer["stride"], layer["padding"], layer["dilation"])


def _maxpool2d(layer: Layer, weights: Weights, x: Array) -> Array:
    return maxpool2d(x, layer["pool"], layer["stride"], layer["padding"], layer["rounding"])


def _avgpool2d(layer: Layer, weights: Weights, x: Array) -> Array:
    a = layer.attrs
    return avgpool2d(x, a["pool"], a["stride"], a["padding"], a["rounding"], a["count_pad"])


def _dense(layer: Layer, weights: Weights, x: Array) -> Array:
    return dense(x, *layer_params(layer, weights))


def _embedding(layer: Layer, weights: Weights, x: Array) -> Array:
    return embedding(x, param(weights, f"{layer.name}.weight"))


def _rnn(layer: Layer, weights: Weights, x: Array) -> Array:
    for k in range(layer["layers"]):
        x = rnn_layer(layer, weights, x, k)
    return readout(layer, x)


def steps(x: Array) -> Array:
    """(N, T, *S) -> (N*T, *S): every step of every sample, as one batch."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def _time_distributed(layer: Layer, weights: Weights, x: Array) -> Array:
    """The wrapped layer on every step at once: (N, T, *S) -> (N*T, *S) -> (N*T, *S') ->
    (N, T, *S'); its parameters are the wrapper's, one set for every step."""
    y = layer_forward(wrapped(layer), weights, steps(x))
    return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])


LayerForward = Callable[[Layer, Weights, Array], Array]

FORWARD: dict[str, LayerForward] = {
    "conv2d": _conv2d,
    "maxpool2d": _maxpool2d,
    "avgpool2d": _avgpool2d,
    "global_avgpool2d": lambda layer, weights, x: global_avgpool2d(x),
    "global_maxpool2d": lambda layer, weights, x: global_maxpool2d(x),
    "zeropad2d": lambda layer, weights, x: zeropad2d(x, layer["padding"]),
    "dense": _dense,
    "flatten": lambda layer, weights, x: flatten(x),
    "repeat_vector": lambda layer, weights, x: repeat_vector(x, layer["n"]),
    "embedding": _embedding,
    "gru": _rnn,
    "lstm": _rnn,
    "dropout": lambda layer, weights, x: x,
    "relu": lambda layer, weights, x: relu(x),
    "tanh": lambda layer, weights, x: tanh(x),
    "sigmoid": lambda layer, weights, x: sigmoid(x),
    "softmax": lambda layer, weights, x: softmax(x, layer["axis"]),
    "elu": lambda layer, weights, x: elu(x, layer["alpha"]),
    "leaky_relu": lambda layer, weights, x: leaky_relu(x, layer["alpha"]),
    TIME_DISTRIBUTED: _time_distributed,
}


# ---- batch normalisation ---------------------------------------------------------------------


def _per_feature(x: Array, axis: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(the axes a feature's statistics run over, the shape that broadcasts a (C,) vector)."""
    feature = axis + 1
    over = tuple(a for a in range(x.ndim) if a != feature)
    shape = tuple(x.shape[a] if a == feature else 1 for a in range(x.ndim))
    return over, shape


def batch_stats(x: Array, axis: int) -> tuple[Array, Array]:
    """Per-feature mean and biased variance over the batch and the other sample axes."""
    over, _ = _per_feature(x, axis)
    return x.mean(axis=over), x.var(axis=over)


def batchnorm(
    x: Array,
    mean: Array,
    var: Array,
    gamma: Optional[Array],
    beta: Optional[Array],
    eps: float,
    axis: int,
) -> Array:
    """(x - mean) / sqrt(var + eps) * gamma + beta, per feature along sample axis `axis`."""
    _, shape = _per_feature(x, axis)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    return y if beta is None else y + beta.reshape(shape)


def bn_affine(layer: Layer, weights: Weights) -> tuple[Optional[Array], Optional[Array]]:
    """(gamma, beta) of a batchnorm layer; None where not learned."""
    gamma = param(weights, f"{layer.name}.weight") if layer["scale"] else None
    beta = param(weights, f"{layer.name}.bias") if layer["center"] else None
    return gamma, beta


def batchnorm_layer(layer: Layer, weights: Weights, x: Array, training: bool) -> Array:
    """Batch statistics in training, the running ones in evaluation."""
    if training:
        mean, var = batch_stats(x, layer["axis"])
    else:
        mean = param(weights, f"{layer.name}.running_mean")
        var = param(weights, f"{layer.name}.running_var")
    return batchnorm(x, mean, var, *bn_affine(layer, weights), layer["eps"], layer["axis"])


def running_stats(layer: Layer, weights: Weights, x: Array) -> dict[str, Array]:
    """A batchnorm layer's running mean and variance after one training-mode forward on `x`:
    running = (1 - momentum) * running + momentum * batch, the variance unbiased (n / (n - 1))
    or biased as `running_var` says."""
    mean, var = batch_stats(x, layer["axis"])
    count = x.size // mean.size
    if layer["running_var"] == "unbiased":
        var = var * count / max(count - 1, 1)
    m = layer["momentum"]
    names = [f"{layer.name}.running_mean", f"{layer.name}.running_var"]
    return {
        name: (1.0 - m) * param(weights, name) + m * stat
        for name, stat in zip(names, (mean, var), strict=True)
    }


def concat(xs: list[Array], axis: int) -> Array:
    """Join along a sample axis (batch excluded)."""
    return np.concatenate(xs, axis=axis + 1)


MERGE_FORWARD: dict[str, Callable[[Layer, list[Array]], Array]] = {
    "add": lambda layer, xs: np.sum(xs, axis=0),
    "multiply": lambda layer, xs: np.prod(xs, axis=0),
    "concat": lambda layer, xs: concat(xs, layer["axis"]),
}

# Ops whose forward depends on the mode (batch statistics in training, running ones in
# evaluation), and the buffers one training-mode forward of each updates.
MODE_FORWARD: dict[str, Callable[[Layer, Weights, Array, bool], Array]] = {
    "batchnorm": batchnorm_layer,
}
BUFFER_UPDATES: dict[str, Callable[[Layer, Weights, Array], dict[str, Array]]] = {
    "batchnorm": running_stats,
}


def layer_forward(layer: Layer, weights: Weights, x: Array) -> Array:
    """One layer in evaluation mode (dropout is the identity)."""
    rule = FORWARD.get(layer.op)
    if rule is None:
        raise OracleError(f"{layer.name}: the reference has no op {layer.op!r}")
    return rule(layer, weights, x)


Batch = Union[Array, dict[str, Array]]


def model_inputs(model: Model, x: Batch) -> dict[str, Array]:
    """Each input's batch (`x` alone for a one-input model, else keyed by input name): int64 ids
    for an integer input, float64 otherwise."""
    given = x if isinstance(x, dict) else {model.inputs[0].name: x}
    values = {}
    for inp in model.inputs:
        if inp.name not in given:
            raise OracleError(f"no batch for input {inp.name!r}")
        arr = np.asarray(given[inp.name])
        if tuple(arr.shape[1:]) != tuple(inp.shape):
            raise OracleError(
                f"input {inp.name} batch has shape {list(arr.shape)}, expected [N, *{list(inp.shape)}]"
            )
        values[inp.name] = arr.astype(np.float64 if inp.dtype == "float32" else np.int64)
    return values


def output_name(model: Model) -> str:
    """The tensor the loss reads: the model's first output."""
    return model.outputs[0] if model.outputs else model.layers[-1].name


def ancestors(model: Model, names: Iterable[str]) -> set[str]:
    """The tensors `names` and every tensor they are computed from (inputs included)."""
    needed = set(names)
    for layer in reversed(model.layers):
        if layer.name in needed:
            needed.update(layer.inputs)
    return needed


def each_tensor(
    model: Model,
    weights: Weights,
    values: dict[str, Array],
    training: bool = False,
    wanted: Optional[Iterable[str]] = None,
) -> Iterator[str]:
    """Compute into `values` (the model's inputs at first) each layer's output in layer order,
    which is topological (a layer reads only earlier tensors), yielding each layer's name once
    its output is there: a caller may stop as soon as it has read enough. `training`: batch norm
    uses batch statistics (dropout stays off: verify's training steps run without it).
    `wanted`: only those tensors and what they are computed from (the same values)."""
    needed = None if wanted is None else ancestors(model, wanted)
    for layer in model.layers:
        if needed is not None and layer.name not in needed:
            continue
        if layer.op in MODE_FORWARD:
            x_in = values[layer.inputs[0]]
            values[layer.name] = MODE_FORWARD[layer.op](layer, weights, x_in, training)
        elif layer.op in MERGE_FORWARD:
            values[layer.name] = MERGE_FORWARD[layer.op](layer, [values[n] for n in layer.inputs])
        else:
            values[layer.name] = layer_forward(layer, weights, values[layer.inputs[0]])
        yield layer.name


def tensors(
    model: Model,
    weights: Weights,
    x: Batch,
    training: bool = False,
    wanted: Optional[Iterable[str]] = None,
) -> dict[str, Array]:
    """Every named tensor for batch `x` (float64): the inputs, then each layer's output
    (`each_tensor` to the end)."""
    values = model_inputs(model, x)
    for _ in each_tensor(model, weights, values, training, wanted):
        pass
    return values


def layer_inputs(model: Model, weights: Weights, x: Batch, training: bool = False) -> list[Array]:
    """Every layer's input in layer order, then the model's output (len(model.layers) + 1)."""
    values = tensors(model, weights, x, training)
    return [values[layer.inputs[0]] for layer in model.layers] + [values[output_name(model)]]


def forward(model: Model, weights: Weights, x: Batch, training: bool = False) -> Array:
    """The model's output for batch `x` in float64 (evaluation mode unless `training`)."""
    return tensors(model, weights, x, training)[output_name(model)]


def updated_buffers(model: Model, weights: Weights, x: Batch) -> dict[str, Array]:
    """Every non-trainable parameter after one training-mode forward on `x` (the running
    statistics of each batchnorm, from the tensors at `weights`)."""
    updating = [layer for layer in model.layers if layer.op in BUFFER_UPDATES]
    if not updating:
        return {}
    values = tensors(model, weights, x, True, [layer.inputs[0] for layer in updating])
    out: dict[str, Array] = {}
    for layer in updating:
        out.update(BUFFER_UPDATES[layer.op](layer, weights, values[layer.inputs[0]]))
    return out


# ---- losses ----------------------------------------------------------------------------------


def softmax_cross_entropy(logits: Array, labels: Array) -> float:
    """Mean over every labelled position of -log softmax(logits)[label]; classes on the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, np.asarray(labels, dtype=np.int64)[..., None], axis=-1)
    return float(-picked.mean())


def mse(output: Array, target: Array) -> float:
    """Mean over all elements of (output - target)^2."""
    return float(np.mean((output - np.asarray(target, dtype=np.float64)) ** 2))


def binary_cross_entropy(logits: Array, target: Array) -> float:
    """Mean over every element of -(t log s(z) + (1 - t) log(1 - s(z))), s the sigmoid, computed
    from the logits without overflow: max(z, 0) - z t + log(1 + exp(-|z|))."""
    t = np.asarray(target, dtype=np.float64)
    return float(np.mean(np.maximum(logits, 0.0) - logits * t + np.log1p(np.exp(-np.abs(logits)))))


def mae(output: Array, target: Array) -> float:
    """Mean over all elements of |output - target|."""
    return float(np.mean(np.abs(output - np.asarray(target, dtype=np.float64))))


LOSSES: dict[str, Callable[[Array, Array], float]] = {
    "binary_cross_entropy": binary_cross_entropy,
    "mae": mae,
    "softmax_cross_entropy": softmax_cross_entropy,
    "mse": mse,
}


def loss(model: Model, output: Array, y: Array) -> float:
    """The model's training loss (its `train.loss` kind) for an output and its labels/targets."""
    if model.train is None or model.train.loss.kind not in LOSSES:
        raise OracleError(f"{model.name}: no loss the reference knows")
    return LOSSES[model.train.loss.kind](output, y)
