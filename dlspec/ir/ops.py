"""THE table of layer ops: every op's attributes, their defaults per profile, its traits, and
the initialiser defaults they use.

No other module holds a layer default (dlspec.ir.settings holds those of the training, data and
verify settings). A default is either one value for every profile, a dict keyed by profile, or a
function of the layer's other (already resolved) attributes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Union

from dlspec.frontend import ast
from dlspec.frontend import values as V
from dlspec.ir.attrs import (
    AttrSpec,
    any_real,
    explicit_padding,
    fraction,
    init_value,
    named_elsewhere,
    nonneg_real,
    one_of,
    pair,
    pos_int,
    pos_real,
    rate,
    stack_count,
)
from dlspec.ir.model import InitSpec, Layer, Model, wrapped


@dataclass(frozen=True)
class OpSpec:
    """A layer op: positional argument order, the attribute table, its TRAITS, and the
    attributes the shapes pass derives (never written in a spec: name -> meaning)."""

    name: str
    category: str
    attrs: dict[str, AttrSpec]
    positional: tuple[str, ...] = ()
    doc: str = ""
    params: tuple[str, ...] = field(default=())
    traits: frozenset[str] = frozenset()
    derived: dict[str, str] = field(default_factory=dict)


# what passes, backends and verify ask of an op besides its attributes
TRAITS = {
    "elementwise": "each output element from the input element at its place alone (shape kept)",
    "kinked": "piecewise at 0, where the derivative jumps (elu's unless alpha is 1): verify "
    "measures how near inputs come",
    "recurrent": "a recurrence over the steps axis, with input and recurrent weights",
    "batch_statistics": "in training, statistics over the whole batch: each sample's output "
    "depends on the others' (data-parallel replicas hold only their own rows unless synchronised)",
    "token_ids": "reads integer token ids (an int32 input, ids 0..vocab-1) and gathers its "
    "table's rows by them: a global `init` is not its table's, and its gradient is the rows read "
    "(IndexedSlices on TensorFlow)",
}


# ---- initialiser defaults --------------------------------------------------------------------

GLOROT_UNIFORM = InitSpec("glorot_uniform")
ZEROS = InitSpec("zeros")
ORTHOGONAL = InitSpec("orthogonal")
# PyTorch Linear/Conv: kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)) for weight and bias.
TORCH_LINEAR = InitSpec("variance_scaling", scale=1.0 / 3.0, mode="fan_in", distribution="uniform")
KERAS_EMBEDDING = InitSpec("uniform", limit=0.05)
TORCH_EMBEDDING = InitSpec("normal", std=1.0)


def torch_rnn(attrs: dict) -> InitSpec:
    """PyTorch RNNs draw every weight and bias from U(+-1/sqrt(hidden))."""
    return InitSpec("uniform", limit=1.0 / math.sqrt(attrs["units"]))


KERNEL_INIT = {"dlspec": GLOROT_UNIFORM, "pytorch": TORCH_LINEAR}
BIAS_INIT = {"dlspec": ZEROS, "pytorch": TORCH_LINEAR}

# ---- layer ops -------------------------------------------------------------------------------

_ACT = AttrSpec(
    one_of("none", "relu", "tanh", "sigmoid", "softmax", "elu", "leaky_relu"),
    "none",
    "activation applied after the layer (sugar for a separate activation layer)",
)


def _conv_like() -> dict[str, AttrSpec]:
    return {
        "stride": AttrSpec(pair, (1, 1), "step between windows, per spatial axis"),
        "padding": AttrSpec(
            V.padding,
            "valid",
            "zeros added (top, bottom), (left, right); same = TensorFlow's rule, extra after",
        ),
    }


RNN_ATTRS = {
    "units": AttrSpec(pos_int, doc="hidden size H"),
    "readout": AttrSpec(
        one_of("last", "sequence"),
        {"dlspec": "last", "pytorch": "sequence"},
        "last: output of the final time step (N, H); sequence: every step (N, T, H)",
    ),
    "layers": AttrSpec(
        stack_count, 1, "stacked layers; each feeds its full sequence to the next (at most 64)"
    ),
    "bias": AttrSpec(V.boolean, True, "two bias vectors per layer (input and recurrent)"),
    "init": AttrSpec(
        init_value,
        {"dlspec": GLOROT_UNIFORM, "pytorch": torch_rnn},
        "input kernels weight_ih",
    ),
    "recurrent_init": AttrSpec(
        init_value,
        {"dlspec": ORTHOGONAL, "pytorch": torch_rnn},
        "recurrent kernels weight_hh",
    ),
    "bias_init": AttrSpec(init_value, {"dlspec": ZEROS, "pytorch": torch_rnn}, "both bias vectors"),
}


def recurrent_bias(keras: bool) -> AttrSpec:
    """A second, recurrent bias vector bias_hh (cuDNN form) or only bias_ih. Both get the same
    gradient, so two vectors move their sum twice as fast: it is a training difference. `keras`:
    whether Keras's layer has it too."""
    return AttrSpec(
        V.boolean,
        True if keras else {"dlspec": True, "keras": False},
        "a second bias vector bias_hh beside bias_ih (cuDNN); false: bias_ih only",
    )


OPS: dict[str, OpSpec] = {}


def _op(spec: OpSpec) -> None:
    assert spec.traits <= TRAITS.keys(), spec.traits
    OPS[spec.name] = spec


_op(
    OpSpec(
        "conv2d",
        "layer",
        {
            "filters": AttrSpec(pos_int, doc="output channels"),
            "kernel": AttrSpec(pair, doc="window (kh, kw)"),
            **_conv_like(),
            "dilation": AttrSpec(pair, (1, 1), "spacing between kernel taps"),
            "bias": AttrSpec(V.boolean, True, "add a learned bias per output channel"),
            "init": AttrSpec(init_value, KERNEL_INIT, "kernel initialiser"),
            "bias_init": AttrSpec(init_value, BIAS_INIT, "bias initialiser (fans of the kernel)"),
            "activation": _ACT,
        },
        positional=("filters", "kernel"),
        doc="2-D convolution over NCHW input; weight (out, in, kh, kw)",
        params=("weight", "bias"),
    )
)


def _window(attrs: dict) -> tuple[int, int]:
    """the pool window"""
    return attrs["pool"]


_POOL_DOCS = {
    "maxpool2d": "2-D max pooling over NCHW; padded cells never win",
    "avgpool2d": "2-D average pooling over NCHW; count_pad decides the divisor",
}

for _pool in ("maxpool2d", "avgpool2d"):
    _pool_attrs = {
        "pool": AttrSpec(pair, doc="window (ph, pw)"),
        "stride": AttrSpec(pair, _window, "step between windows"),
        "padding": _conv_like()["padding"],
        "rounding": AttrSpec(
            one_of("floor", "ceil"), "floor", "output size rounding (ceil as Caffe, ceil_mode)"
        ),
    }
    if _pool == "avgpool2d":
        _pool_attrs["count_pad"] = AttrSpec(
            V.boolean,
            {"dlspec": False, "pytorch": True},
            "whether padded cells count in the mean's divisor",
        )
    _op(
        OpSpec(
            _pool,
            "layer",
            _pool_attrs,
            positional=("pool",),
            doc=_POOL_DOCS[_pool],
        )
    )

_op(
    OpSpec(
        "global_avgpool2d",
        "layer",
        {},
        doc="(C, H, W) -> (C,): the mean over H and W",
    )
)
_op(
    OpSpec(
        "global_maxpool2d",
        "layer",
        {},
        doc="(C, H, W) -> (C,): the max over H and W; tied maxima share the gradient equally",
    )
)
_op(
    OpSpec(
        "zeropad2d",
        "layer",
        {
            "padding": AttrSpec(
                explicit_padding,
                doc="zeros added (top, bottom), (left, right): an integer, [ph, pw] or "
                "[[top, bottom], [left, right]]",
            )
        },
        positional=("padding",),
        doc="zeros around a (C, H, W) map: (C, H + top + bottom, W + left + right)",
    )
)
_op(
    OpSpec(
        "dropout",
        "layer",
        {"rate": AttrSpec(rate, doc="probability of DROPPING a unit")},
        positional=("rate",),
        doc="inverted dropout in training, identity in evaluation",
        traits=frozenset({"elementwise"}),
    )
)
_op(
    OpSpec(
        "flatten",
        "layer",
        {},
        doc="(C, H, W) -> C*H*W in canonical (C, H, W) order",
        derived={
            "permutable": "whether dense layers alone read the flattened (C, H, W) map "
            "(through elementwise ops), so a channels-last target may flatten in its own order "
            "and permute their weight rows instead; false for any other input"
        },
    )
)
_op(
    OpSpec(
        "repeat_vector",
        "layer",
        {"n": AttrSpec(pos_int, doc="copies: the length of the new axis")},
        positional=("n",),
        doc="(F,) -> (n, F): the vector repeated n times along a new axis (Keras RepeatVector)",
    )
)
_op(
    OpSpec(
        "dense",
        "layer",
        {
            "units": AttrSpec(pos_int, doc="output features"),
            "bias": AttrSpec(V.boolean, True, "add a learned bias"),
            "init": AttrSpec(init_value, KERNEL_INIT, "weight initialiser"),
            "bias_init": AttrSpec(init_value, BIAS_INIT, "bias initialiser (fans of the weight)"),
            "activation": _ACT,
        },
        positional=("units",),
        doc="affine map over the last axis; weight (out, in)",
        params=("weight", "bias"),
        derived={
            "flattened_from": "the (C, H, W) map a permutable flatten made its input from, "
            "else (): the weight rows a channels-last target permutes"
        },
    )
)
_op(
    OpSpec(
        "embedding",
        "layer",
        {
            "vocab": AttrSpec(pos_int, doc="number of token ids (ids 0..vocab-1)"),
            "dim": AttrSpec(pos_int, doc="vector size"),
            "init": AttrSpec(
                init_value,
                {"dlspec": KERAS_EMBEDDING, "pytorch": TORCH_EMBEDDING},
                "table initialiser",
            ),
        },
        positional=("vocab", "dim"),
        doc="lookup table (vocab, dim); input int ids (T,) -> (T, dim)",
        params=("weight",),
        traits=frozenset({"token_ids"}),
    )
)
_op(
    OpSpec(
        "gru",
        "layer",
        {
            **RNN_ATTRS,
            "recurrent_bias": recurrent_bias(True),
            "reset_after": AttrSpec(
                V.boolean, True, "apply the reset gate after the recurrent matmul (cuDNN form)"
            ),
        },
        positional=("units",),
        doc="GRU over (N, T, C); gates [r, z, n]; h' = (1 - z) * n + z * h",
        params=("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
        traits=frozenset({"recurrent"}),
    )
)
_op(
    OpSpec(
        "lstm",
        "layer",
        {
            **RNN_ATTRS,
            "recurrent_bias": recurrent_bias(False),
            "forget_bias": AttrSpec(
                any_real,
                {"dlspec": 1.0, "pytorch": 0.0},
                "added to the forget-gate slice of bias_ih after initialisation",
            ),
        },
        positional=("units",),
        doc="LSTM over (N, T, C); gates [i, f, g, o]",
        params=("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
        traits=frozenset({"recurrent"}),
    )
)


_op(
    OpSpec(
        "batchnorm",
        "layer",
        {
            "momentum": AttrSpec(
                fraction,
                {"dlspec": 0.1, "keras": 0.01},
                "weight of the batch statistic: running = (1 - momentum) * running + momentum * "
                "batch (PyTorch's convention; a Keras momentum m is 1 - m here)",
            ),
            "eps": AttrSpec(
                pos_real,
                {"dlspec": 1e-5, "keras": 1e-3},
                "added to the variance under the square root",
            ),
            "running_var": AttrSpec(
                one_of("unbiased", "biased"),
                {"dlspec": "unbiased", "keras": "biased"},
                "the batch variance the running average takes: unbiased (n / (n - 1), PyTorch) "
                "or biased (Keras); normalisation always uses the biased one",
            ),
            "scale": AttrSpec(V.boolean, True, "a learned per-feature scale gamma (weight, ones)"),
            "center": AttrSpec(V.boolean, True, "a learned per-feature shift beta (bias, zeros)"),
        },
        positional=("momentum",),
        doc="normalise each feature (channels of a map, else the last axis) over the batch and "
        "the other axes; training: batch statistics, evaluation: the running ones",
        params=("weight", "bias", "running_mean", "running_var"),
        traits=frozenset({"batch_statistics"}),
        derived={
            "axis": "the feature axis, counted without the batch axis: channels of a (C, H, W) "
            "map, else the last"
        },
    )
)

_op(
    OpSpec(
        "relu",
        "activation",
        {},
        doc="elementwise relu",
        traits=frozenset({"elementwise", "kinked"}),
    )
)
for _act in ("tanh", "sigmoid"):
    _op(
        OpSpec(_act, "activation", {}, doc=f"elementwise {_act}", traits=frozenset({"elementwise"}))
    )
_op(
    OpSpec(
        "softmax",
        "activation",
        {},
        doc="softmax over the feature axis (1 for NCHW, else last)",
        derived={
            "axis": "the feature axis, counted with the batch axis: 1 for a vector or a "
            "(C, H, W) map, else the last"
        },
    )
)
_op(
    OpSpec(
        "elu",
        "activation",
        {"alpha": AttrSpec(pos_real, 1.0, "x < 0: alpha * (exp(x) - 1)")},
        positional=("alpha",),
        doc="exponential linear unit",
        traits=frozenset({"elementwise", "kinked"}),
    )
)
_op(
    OpSpec(
        "leaky_relu",
        "activation",
        {
            "alpha": AttrSpec(
                nonneg_real,
                {"dlspec": 0.01, "keras": 0.3},
                "slope for x < 0",
            )
        },
        positional=("alpha",),
        doc="x if x > 0 else alpha * x",
        traits=frozenset({"elementwise", "kinked"}),
    )
)

# ---- wrappers: a layer applied to every step of a sequence ----------------------------------


def wrapped_layer(v: Any, what: str) -> Any:
    """The wrapped layer: the resolve pass reads its call (`lstm(128)`, `dense(10)`) into a
    Layer whose attributes the defaults pass fills from this table, as any layer's."""
    if isinstance(v, Layer):
        return v
    raise V.bad(
        f"{what} must be a layer call such as lstm(128) or dense(10), not {V.show(v)}", v.pos
    )


_op(
    OpSpec(
        "time_distributed",
        "wrapper",
        {
            "layer": AttrSpec(
                wrapped_layer,
                doc="the layer applied to every step, with its own attributes and defaults: "
                "lstm(128), dense(10), ...",
            )
        },
        positional=("layer",),
        doc="(T, *S) -> (T, *S'): the wrapped layer (S -> S') applied to every step with one "
        "set of weights (Keras TimeDistributed)",
    )
)

# ---- merges: layers that read several tensors ------------------------------------------------


def axis_value(v: Any, what: str) -> Union[str, int]:
    """`features` or a sample axis, negative counting from the end (batch axis excluded)."""
    if isinstance(v, ast.Name):
        return V.choice(v, what, ("features",))
    return V.integer(v, what, -MAX_RANK, MAX_RANK - 1)


MAX_RANK = 8

_op(
    OpSpec(
        "add",
        "merge",
        {},
        doc="elementwise sum of two or more tensors of one shape",
    )
)
_op(
    OpSpec(
        "multiply",
        "merge",
        {},
        doc="elementwise product of two or more tensors of one shape",
    )
)
_op(
    OpSpec(
        "concat",
        "merge",
        {
            "axis": AttrSpec(
                axis_value,
                "features",
                "sample axis (batch excluded, canonical layout, negative from the end); "
                "features: channels of a (C, H, W) map, else the last axis",
            )
        },
        positional=("axis",),
        doc="join two or more tensors along one axis; the others must agree",
    )
)


# layers as other frameworks name them (plain spelling: lower case, no underscores) -> how dlspec
# writes them, for "unknown layer" messages (spellings that differ only by case or underscores,
# MaxPool2d or leaky_relu's LeakyReLU, are matched anyway)
ELSEWHERE = {
    "linear": "dense",
    "fullyconnected": "dense",
    "batchnorm1d": "batchnorm",
    "batchnorm2d": "batchnorm",
    "batchnormalization": "batchnorm",
    "maxpooling2d": "maxpool2d",
    "averagepooling2d": "avgpool2d",
    "globalaveragepooling2d": "global_avgpool2d",
    "globalmaxpooling2d": "global_maxpool2d",
    "adaptiveavgpool2d": "global_avgpool2d (the mean over H and W, shape (C,))",
    "adaptivemaxpool2d": "global_maxpool2d (the maximum over H and W, shape (C,))",
    "zeropadding2d": "zeropad2d",
    "concatenate": "concat",
    "cat": "concat",
    "sum": "add",
    "mul": "multiply",
}


# attributes as other frameworks name them (plain spelling) -> the dlspec attributes that may mean
# them; an "unknown attribute" message suggests those the op has
ATTRS_ELSEWHERE: dict[str, tuple[str, ...]] = {
    "kernelsize": ("kernel", "pool"),
    "poolsize": ("pool",),
    "strides": ("stride",),
    "dilationrate": ("dilation",),
    "usebias": ("bias",),
    "outfeatures": ("units",),
    "hiddensize": ("units",),
    "outchannels": ("filters",),
    "p": ("rate",),
    "kernelinitializer": ("init",),
    "biasinitializer": ("bias_init",),
    "recurrentinitializer": ("recurrent_init",),
    "embeddingsinitializer": ("init",),
    "negativeslope": ("alpha",),
    "epsilon": ("eps",),
    "numlayers": ("layers",),
    "inputdim": ("vocab",),
    "numembeddings": ("vocab",),
    "outputdim": ("dim",),
    "embeddingdim": ("dim",),
    "returnsequences": ("readout",),
    "unitforgetbias": ("forget_bias",),
    "ceilmode": ("rounding",),
    "countincludepad": ("count_pad",),
    "affine": ("scale", "center"),
}
# what a layer cannot state because dlspec says it elsewhere, for the same messages
STATED_ELSEWHERE = {
    **dict.fromkeys(
        ("kernelregularizer", "biasregularizer", "weightdecay"),
        "weight decay on the optimiser: optimizer = sgd(weight_decay=...)",
    ),
    "inputshape": "the input's shape in its declaration: input x: float32[...]",
    "name": "a layer's name as its label: name: op(...)",
}


@functools.cache
def attrs_elsewhere(op: str) -> Mapping[str, str]:
    """For `op`'s "unknown attribute" messages: other frameworks' attribute names (plain) ->
    how dlspec writes them."""
    return MappingProxyType({**named_elsewhere(ATTRS_ELSEWHERE, OPS[op].attrs), **STATED_ELSEWHERE})


def having(trait: str) -> frozenset[str]:
    """The ops with this trait (TRAITS)."""
    return frozenset(name for name, spec in OPS.items() if trait in spec.traits)


ELEMENTWISE = having("elementwise")
KINKED = having("kinked")
RECURRENT = having("recurrent")
BATCH_STATISTICS = having("batch_statistics")
TOKEN_IDS = having("token_ids")


def vocab_of(model: Model, input_name: str = "") -> int:
    """The id range of an integer input (the first one by default): the smallest vocab of the
    layers reading it as token ids, time-distributed ones too (0 when the input is not ids)."""
    name = input_name or model.inputs[0].name
    vocabs = [
        int(wrapped(layer)["vocab"])
        for layer in model.layers
        if wrapped(layer).op in TOKEN_IDS and name in layer.inputs
    ]
    return min(vocabs) if vocabs else 0


DTYPES = ("float32", "int32", "int64")
