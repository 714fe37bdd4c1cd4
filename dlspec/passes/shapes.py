"""Pass: infer every layer's input and output shape, make padding explicit, create parameters."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Optional

from dlspec.errors import Pos, ShapeProblem
from dlspec.ir import inits
from dlspec.ir.model import TIME_DISTRIBUTED, InitSpec, Layer, Model, Param, Shape
from dlspec.ir.ops import ELEMENTWISE, RECURRENT, TOKEN_IDS
from dlspec.limits import MAX_PARAMS, MAX_TENSOR
from dlspec.passes.base import PassContext, declare
from dlspec.passes.facts import EXPLICIT, RESOLVED, SHAPED

Pads = tuple[tuple[int, int], tuple[int, int]]


class _ShapeError(Exception):
    """A shape problem; `pos` when it is not the layer's own position (a wrapped layer's)."""

    def __init__(self, message: str, pos: Optional[Pos] = None) -> None:
        super().__init__(message)
        self.pos = pos


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


def _global_pool(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    """(C, H, W) -> (C,)."""
    _need_rank(shape, 3, f"{layer.op} (C, H, W)")
    return layer, shape[:1]


def _zeropad(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    """(C, H, W) -> (C, H + top + bottom, W + left + right)."""
    _need_rank(shape, 3, "zeropad2d (C, H, W)")
    (top, bottom), (left, right) = layer["padding"]
    return layer, (shape[0], shape[1] + top + bottom, shape[2] + left + right)


def _repeat_vector(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    """(F,) -> (n, F)."""
    _need_rank(shape, 1, "repeat_vector (F,)")
    return layer, (layer["n"], shape[0])


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


def feature_axis(shape: Shape) -> int:
    """The axis a per-feature op works on: channels of a (C, H, W) map, else the last."""
    return 0 if len(shape) == 3 else len(shape) - 1


def _batchnorm(layer: Layer, shape: Shape) -> tuple[Layer, Shape]:
    """The feature axis made explicit (a sample axis)."""
    if not shape:
        raise _ShapeError("batchnorm needs at least one feature axis")
    return layer.with_attrs(axis=feature_axis(shape)), shape


SHAPE_RULES: dict[str, Callable[[Layer, Shape], tuple[Layer, Shape]]] = {
    "batchnorm": _batchnorm,
    "conv2d": _conv,
    "maxpool2d": _pool,
    "avgpool2d": _pool,
    "global_avgpool2d": _global_pool,
    "global_maxpool2d": _global_pool,
    "zeropad2d": _zeropad,
    "flatten": _flatten,
    "repeat_vector": _repeat_vector,
    "dense": _dense,
    "embedding": _embedding,
    "gru": _rnn,
    "lstm": _rnn,
    "softmax": _softmax,
}


def _same_shapes(layer: Layer, shapes: list[Shape]) -> tuple[Layer, Shape]:
    """add, multiply: every tensor of one shape."""
    for name, shape in zip(layer.inputs[1:], shapes[1:], strict=True):
        if shape != shapes[0]:
            raise _ShapeError(
                f"needs tensors of one shape; {layer.inputs[0]} is {list(shapes[0])}, "
                f"{name} is {list(shape)}"
            )
    return layer, shapes[0]


def _concat(layer: Layer, shapes: list[Shape]) -> tuple[Layer, Shape]:
    """The axis made explicit (a sample axis, 0-based); the other axes must agree."""
    rank = len(shapes[0])
    axis = layer["axis"]
    if axis == "features":
        axis = 0 if rank == 3 else rank - 1
    elif axis < 0:
        axis += rank
    if not 0 <= axis < rank:
        raise _ShapeError(
            f"axis {layer['axis']} is outside a sample of rank {rank} {list(shapes[0])}"
        )
    for name, shape in zip(layer.inputs[1:], shapes[1:], strict=True):
        other = [d for i, d in enumerate(shape) if i != axis]
        if len(shape) != rank or other != [d for i, d in enumerate(shapes[0]) if i != axis]:
            raise _ShapeError(
                f"along axis {axis}, {layer.inputs[0]} is {list(shapes[0])} and {name} is "
                f"{list(shape)}: every other axis must agree"
            )
    out = list(shapes[0])
    out[axis] = sum(shape[axis] for shape in shapes)
    return layer.with_attrs(axis=axis), tuple(out)


MERGE_RULES: dict[str, Callable[[Layer, list[Shape]], tuple[Layer, Shape]]] = {
    "add": _same_shapes,
    "multiply": _same_shapes,
    "concat": _concat,
}


def _infer(layer: Layer, shapes: list[Shape], dtypes: list[str]) -> tuple[Layer, Shape]:
    """The layer with its shape-dependent attributes explicit, and its output shape."""
    if layer.op in MERGE_RULES:
        if len(shapes) < 2:
            raise _ShapeError(f"merges two or more tensors; it reads {len(shapes)}")
        for name, dtype in zip(layer.inputs, dtypes, strict=True):
            if dtype != "float32":
                raise _ShapeError(f"needs float tensors; {name} is {dtype}")
        return MERGE_RULES[layer.op](layer, shapes)
    if len(shapes) != 1:
        raise _ShapeError(
            f"reads one tensor; it is given {len(shapes)} ({', '.join(layer.inputs)})"
        )
    if layer.op == TIME_DISTRIBUTED:
        return _time_distributed(layer, shapes[0], dtypes[0])
    _dtype_check(layer, dtypes[0])
    return SHAPE_RULES.get(layer.op, _same)(layer, shapes[0])


def _time_distributed(layer: Layer, shape: Shape, dtype: str) -> tuple[Layer, Shape]:
    """(T, *S) -> (T, *S'): the wrapped layer's own rule on one step S, which also makes its
    attributes explicit (pads, a softmax axis) and its parameters (named as the wrapper)."""
    if len(shape) < 2:
        raise _ShapeError(
            "time_distributed needs (T, ...) input: a time axis, then a step of rank 1 or more "
            f"(batch excluded); got shape {list(shape)}"
        )
    inner, step = layer["layer"], shape[1:]
    try:
        resolved, out = _infer(inner, [step], [dtype])
    except _ShapeError as err:
        where = err.pos if err.pos is not None else inner.pos
        raise _ShapeError(f"{err} (one step of input {list(shape)})", where) from None
    extra: dict[str, object] = {}
    if inner.op == "flatten":
        extra["permutable"] = False  # nothing absorbs a row permutation inside the wrapper
    if inner.op == "dense":
        extra["flattened_from"] = ()
    params = make_params(resolved, step)
    inner = replace(
        resolved.with_attrs(**extra), in_shape=step, out_shape=out, in_dtype=dtype, params=params
    )
    return layer.with_attrs(layer=inner), (shape[0], *out)


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
    if layer.op in RECURRENT:
        return _rnn_params(layer, in_shape)
    if layer.op == "batchnorm":
        return _batchnorm_params(layer, in_shape)
    if layer.op == TIME_DISTRIBUTED:
        return layer["layer"].params  # made with the wrapped layer, for one step
    return ()


def _batchnorm_params(layer: Layer, in_shape: Shape) -> tuple[Param, ...]:
    """gamma (ones) and beta (zeros) if learned; running mean (zeros) and variance (ones),
    which are not trained (PyTorch's names)."""
    width = in_shape[feature_axis(in_shape)]
    fans = (width, width)
    ones, zeros = InitSpec("ones"), InitSpec("zeros")
    params = []
    if layer["scale"]:
        params.append(_param(layer, "weight", (width,), ones, fans))
    if layer["center"]:
        params.append(_param(layer, "bias", (width,), zeros, fans))
    for role, init in (("running_mean", zeros), ("running_var", ones)):
        params.append(replace(_param(layer, role, (width,), init, fans), trainable=False))
    return tuple(params)


def _dtype_check(layer: Layer, dtype: str) -> None:
    takes_ids = layer.op in TOKEN_IDS
    if takes_ids and dtype == "float32":
        raise _ShapeError(f"{layer.op} needs integer token ids; declare the input as int32")
    if not takes_ids and dtype != "float32":
        readers = " or ".join(sorted(TOKEN_IDS))
        raise _ShapeError(f"{layer.op} needs float input, got {dtype} (only {readers} takes ids)")


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


def _consumers(layers: list[Layer]) -> dict[str, list[Layer]]:
    """The layers reading each tensor."""
    readers: dict[str, list[Layer]] = {}
    for layer in layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer)
    return readers


def _only_dense_reads(name: str, readers: dict[str, list[Layer]], outputs: tuple[str, ...]) -> bool:
    """Whether every path from tensor `name` (through elementwise layers) ends in a dense layer
    (and none is a model output): then the order of its features is free to permute."""
    stack = [name]
    while stack:
        tensor = stack.pop()
        if tensor in outputs or not readers.get(tensor):
            return False
        for reader in readers[tensor]:
            if reader.op in ELEMENTWISE:
                stack.append(reader.name)
            elif reader.op != "dense":
                return False
    return True


def _flatten_orders(layers: list[Layer], outputs: tuple[str, ...]) -> list[Layer]:
    """Each flatten states whether its row order is free (`permutable`: a flatten of a (C, H, W)
    map that only dense layers read, which channels-last targets give permuted rows; false for
    any other); a dense layer keeps `flattened_from` only when its flatten is permutable."""
    readers = _consumers(layers)
    free = {
        layer.name: _only_dense_reads(layer.name, readers, outputs)
        for layer in layers
        if layer.op == "flatten" and len(layer.in_shape) == 3
    }
    out = []
    for layer in layers:
        if layer.op == "flatten":  # a flatten of anything but a map keeps its one row order
            layer = layer.with_attrs(permutable=free.get(layer.name, False))
        out.append(layer)
    by_name = {layer.name: layer for layer in out}
    for i, layer in enumerate(out):
        if layer.op == "dense" and layer["flattened_from"]:
            source = by_name[layer.inputs[0]]
            while source.op != "flatten":
                source = by_name[source.inputs[0]]
            if not source["permutable"]:
                out[i] = layer.with_attrs(flattened_from=())
    return out


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


@declare(requires=(RESOLVED, EXPLICIT), ensures=(SHAPED,))
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
        shape, dtype = tensors[layer.inputs[0]] if layer.inputs else ((), "float32")
        try:
            known = [tensors[name] for name in layer.inputs]
            resolved, out = _infer(layer, [k[0] for k in known], [k[1] for k in known])
            if layer.op == "dense":
                resolved = resolved.with_attrs(flattened_from=_flattened_from(made, resolved))
            params = make_params(resolved, shape)
            count += sum(math.prod(p.shape) for p in params)
            _check_sizes(out, batch, count)
        except _ShapeError as err:
            where = err.pos if err.pos is not None else layer.pos
            ctx.error(ShapeProblem(f"{layer.name} ({layer.op}): {err}", where))
            return replace(model, layers=tuple(layers))
        layers.append(
            replace(resolved, in_shape=shape, out_shape=out, in_dtype=dtype, params=params)
        )
        made[layer.name] = layers[-1]
        tensors[layer.name] = (out, "float32")
    return replace(model, layers=tuple(_flatten_orders(layers, model.outputs)))
