"""Pass: infer every layer's input and output shape, make padding explicit, create parameters."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Optional

from dlspec import inits
from dlspec.errors import ShapeProblem
from dlspec.ir import InitSpec, Layer, Model, Param, Shape
from dlspec.limits import MAX_PARAMS, MAX_TENSOR
from dlspec.passes.base import PassContext

Pads = tuple[tuple[int, int], tuple[int, int]]


class _ShapeError(Exception):
    pass


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same': out = ceil(size/stride); the odd extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def window_out(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    pads: tuple[int, int],
    rounding: str = "floor",
) -> int:
    """Output length of a sliding window; ceil never starts a window inside the after-padding."""
    span = size + pads[0] + pads[1] - (kernel - 1) * dilation - 1
    if span < 0:
        raise _ShapeError(
            f"window {kernel} (dilation {dilation}) is larger than padded size {size + sum(pads)}"
        )
    if rounding == "floor":
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pads[0]:
        out -= 1
    return out


def _explicit_pads(
    layer: Layer, shape: Shape, kernel: tuple[int, int], dilation: tuple[int, int]
) -> Pads:
    padding = layer["padding"]
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return (
            same_pads(shape[1], kernel[0], layer["stride"][0], dilation[0]),
            same_pads(shape[2], kernel[1], layer["stride"][1], dilation[1]),
        )
    return padding


def _need_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise _ShapeError(
            f"{what} needs input of rank {rank} (batch excluded), got shape {list(shape)}"
        )


def _windowed(
    layer: Layer,
    shape: Shape,
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    channels: int,
    rounding: str,
) -> tuple[Layer, Shape]:
    _need_rank(shape, 3, f"{layer.op} (C, H, W)")
    pads = _explicit_pads(layer, shape, kernel, dilation)
    stride = layer["stride"]
    hw = tuple(
        window_out(shape[1 + i], kernel[i], stride[i], dilation[i], pads[i], rounding)
        for i in range(2)
    )
    if min(hw) < 1:
        raise _ShapeError(f"output would be empty ({list(hw)})")
    return layer.with_attrs(padding=pads), (channels, hw[0], hw[1])


def _conv(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    _need_rank(shape, 3, "conv2d (C, H, W)")
    return _windowed(layer, shape, layer["kernel"], layer["dilation"], layer["filters"], "floor")


def _pool(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    layer, out = _windowed(
        layer, shape, layer["pool"], (1, 1), shape[0] if shape else 0, layer["rounding"]
    )
    for axis in range(2):
        before, after = layer["padding"][axis]
        if max(before, after) >= layer["pool"][axis]:
            raise _ShapeError("pool padding must be smaller than the window on each side")
    return layer, out


def _flatten(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    return layer, (math.prod(shape),)


def _dense(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    if not shape:
        raise _ShapeError("dense needs at least one feature axis")
    return layer, shape[:-1] + (layer["units"],)


def _embedding(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    _need_rank(shape, 1, "embedding (T,)")
    return layer, shape + (layer["dim"],)


def _rnn(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    _need_rank(shape, 2, f"{layer.op} (T, C)")
    units = layer["units"]
    return layer, (units,) if layer["readout"] == "last" else (shape[0], units)


def _same(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    return layer, shape


def _softmax(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    """The feature axis, counted with the batch axis: channels for (C, H, W), else the last."""
    return layer.with_attrs(axis=1 if len(shape) in (1, 3) else len(shape)), shape


SHAPE_RULES: dict[str, Callable[[Layer, Shape], tuple[Layer, Shape]]] = {
    "conv2d": _conv,
    "maxpool2d": _pool,
    "avgpool2d": _pool,
    "flatten": _flatten,
    "dense": _dense,
    "embedding": _embedding,
    "gru": _rnn,
    "lstm": _rnn,
    "softmax": _softmax,
}


def _param(
    layer: Layer,
    role: str,
    shape: Shape,
    spec: InitSpec,
    fans: tuple[int, int],
    suffix: str = "",
    gate: Optional[tuple[int, int, float]] = None,
) -> Param:
    name = f"{layer.name}.{role}{suffix}"
    init = inits.resolve(spec, *fans)
    return Param(name, role, shape, init, fans[0], fans[1], gate)


def _rnn_params(layer: Layer, shape: Shape) -> tuple[Param, ...]:
    gates = 3 if layer.op == "gru" else 4
    units = layer["units"]
    params = []
    for k in range(layer["layers"]):
        width = shape[1] if k == 0 else units
        g = gates * units
        sfx = f"_l{k}"
        params.append(_param(layer, "weight_ih", (g, width), layer["init"], (width, g), sfx))
        params.append(
            _param(layer, "weight_hh", (g, units), layer["recurrent_init"], (units, g), sfx)
        )
        if layer["bias"]:
            forget = layer.attrs.get("forget_bias", 0.0)
            gate = (units, 2 * units, forget) if forget else None
            params.append(_param(layer, "bias_ih", (g,), layer["bias_init"], (width, g), sfx, gate))
            if layer["recurrent_bias"]:
                params.append(_param(layer, "bias_hh", (g,), layer["bias_init"], (units, g), sfx))
    return tuple(params)


def make_params(layer: Layer, in_shape: Shape) -> tuple[Param, ...]:
    """The layer's parameters in canonical (PyTorch/cuDNN) layout, with fans and inits."""
    if layer.op == "conv2d":
        kh, kw = layer["kernel"]
        cin, cout = in_shape[0], layer["filters"]
        fans = (cin * kh * kw, cout * kh * kw)
        weight = _param(layer, "weight", (cout, cin, kh, kw), layer["init"], fans)
        bias = (_param(layer, "bias", (cout,), layer["bias_init"], fans),) if layer["bias"] else ()
        return (weight,) + bias
    if layer.op == "dense":
        fans = (in_shape[-1], layer["units"])
        weight = _param(layer, "weight", (layer["units"], in_shape[-1]), layer["init"], fans)
        bias = (
            (_param(layer, "bias", (layer["units"],), layer["bias_init"], fans),)
            if layer["bias"]
            else ()
        )
        return (weight,) + bias
    if layer.op == "embedding":
        fans = (layer["vocab"], layer["dim"])
        return (_param(layer, "weight", (layer["vocab"], layer["dim"]), layer["init"], fans),)
    if layer.op in ("gru", "lstm"):
        return _rnn_params(layer, in_shape)
    return ()


def _dtype_check(layer: Layer, dtype: str) -> None:
    if layer.op == "embedding" and dtype == "float32":
        raise _ShapeError("embedding needs integer token ids; declare the input as int32")
    if layer.op != "embedding" and dtype != "float32":
        raise _ShapeError(f"{layer.op} needs float input, got {dtype} (only embedding takes ids)")


ELEMENTWISE = ("dropout", "relu", "tanh", "sigmoid", "elu", "leaky_relu")


def _flattened_from(made: dict[str, Layer], layer: Layer) -> tuple[int, ...]:
    """For a dense layer: the (C, H, W) map its input features were flattened from, or (),
    found by walking back from its input through elementwise producers."""
    if layer.op != "dense":
        return ()
    producer = made.get(layer.inputs[0])
    while producer is not None:
        if producer.op == "flatten":
            return producer.in_shape if len(producer.in_shape) == 3 else ()
        if producer.op not in ELEMENTWISE:
            return ()
        producer = made.get(producer.inputs[0])
    return ()


def _check_sizes(shape: Shape, batch: int, params: int) -> None:
    """The limits of dlspec.limits: one sample's tensor, a batch of it, the parameters so far."""
    elements = math.prod(shape)
    if elements > MAX_TENSOR:
        raise _ShapeError(
            f"output {list(shape)} has {elements} elements; the limit is {MAX_TENSOR}"
        )
    if elements * batch > MAX_TENSOR:
        raise _ShapeError(
            f"a batch of {batch} outputs {list(shape)} has {elements * batch} elements; the limit"
            f" is {MAX_TENSOR} (frameworks index tensors with int32)"
        )
    if params > MAX_PARAMS:
        raise _ShapeError(f"the model has {params} parameters so far; the limit is {MAX_PARAMS}")


def shapes(model: Model, ctx: PassContext) -> Model:
    """Every layer gets in_shape, out_shape, explicit pads and its parameters; a dense layer
    after a flatten records the (C, H, W) map it reads (`flattened_from`), for channels-last
    targets that must permute its weight rows. Each layer's input shape is looked up by the
    name of the tensor it reads (its producer's)."""
    batch = model.train.batch if model.train else 1
    tensors: dict[str, tuple[Shape, str]] = {}
    for inp in model.inputs:
        try:
            _check_sizes(inp.shape, batch, 0)
        except _ShapeError as err:
            ctx.error(ShapeProblem(f"input {inp.name}: {err}", inp.pos))
            return model
        tensors[inp.name] = (inp.shape, inp.dtype)
    layers: list[Layer] = []
    made: dict[str, Layer] = {}
    count = 0
    for layer in model.layers:
        shape, dtype = tensors[layer.inputs[0]]
        try:
            _dtype_check(layer, dtype)
            rule = SHAPE_RULES.get(layer.op, _same)
            resolved, out = rule(layer, shape)
            if layer.op == "dense":
                resolved = resolved.with_attrs(flattened_from=_flattened_from(made, resolved))
            params = make_params(resolved, shape)
            count += sum(math.prod(p.shape) for p in params)
            _check_sizes(out, batch, count)
        except _ShapeError as err:
            ctx.error(ShapeProblem(f"{layer.name} ({layer.op}): {err}", layer.pos))
            return replace(model, layers=tuple(layers))
        layers.append(
            replace(resolved, in_shape=shape, out_shape=out, in_dtype=dtype, params=params)
        )
        made[layer.name] = layers[-1]
        tensors[layer.name] = (out, "float32")
    return replace(model, layers=tuple(layers))
