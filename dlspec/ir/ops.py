"""THE table of defaults: every op, optimiser, schedule, loss, dataset and initialiser, per profile.

No other module holds a default value. A default is either one value for every profile, a dict
keyed by profile, or a function of the layer's other (already resolved) attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from dlspec.frontend import ast
from dlspec.frontend import values as V
from dlspec.ir.model import InitSpec, Layer
from dlspec.limits import MAX_STACKED

PROFILES = ("dlspec", "pytorch", "keras")
# a per-profile default is an overlay: the root's value, then only where a profile differs from
# its parent's (a profile missing from the dict takes its parent's)
PROFILE_PARENT = {"pytorch": "dlspec", "keras": "dlspec"}
REQUIRED = object()

Default = Union[Any, dict, Callable[[dict], Any]]


@dataclass(frozen=True)
class AttrSpec:
    """One attribute: how to read it, its default per profile, and what it means."""

    convert: Callable[..., Any]
    default: Default = REQUIRED
    doc: str = ""

    def stated_for(self, profile: str) -> Any:
        """The default as `profile` states it, else as its nearest ancestor does: a value, or a
        function of the other attributes."""
        d = self.default
        if not isinstance(d, dict):
            return d
        while profile not in d:
            profile = PROFILE_PARENT[profile]
        return d[profile]

    def derived(self, profile: str) -> bool:
        """Whether the default under `profile` is computed from the other attributes."""
        d = self.stated_for(profile)
        return callable(d) and not isinstance(d, InitSpec)

    def default_for(self, profile: str, attrs: dict) -> Any:
        """The default under a profile, given the attributes resolved so far."""
        d = self.stated_for(profile)
        if callable(d) and not isinstance(d, InitSpec):
            return d(attrs)
        return d


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
}


# ---- converters ------------------------------------------------------------------------------


def pos_int(v: Any, what: str) -> int:
    return V.integer(v, what, 1)


def stack_count(v: Any, what: str) -> int:
    return V.integer(v, what, 1, MAX_STACKED)


def nonneg_int(v: Any, what: str) -> int:
    return V.integer(v, what, 0)


def pair(v: Any, what: str) -> tuple[int, int]:
    return V.int_pair(v, what, 1)


def rate(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, 1.0, high_open=True)


def unit_open(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, 1.0, high_open=True)


def pos_real(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, low_open=True)


def nonneg_real(v: Any, what: str) -> float:
    return V.real(v, what, 0.0)


def any_real(v: Any, what: str) -> float:
    return V.real(v, what)


def one_of(*options: str) -> Callable[[Any, str], str]:
    def convert(v: Any, what: str) -> str:
        return V.choice(v, what, options)

    return convert


def explicit_padding(v: Any, what: str) -> V.Pads:
    """An integer, [ph, pw] or [[top, bottom], [left, right]]; `valid` and `same` are refused,
    since they describe the padding of a window and zeropad2d has none."""
    if isinstance(v, ast.Name):
        raise V.bad(
            f"{what} must be an integer, [ph, pw] or [[top, bottom], [left, right]], not "
            f"{V.show(v)} (valid and same describe a window's padding; there is no window here)",
            v.pos,
        )
    pads = V.padding(v, what)
    assert not isinstance(pads, str)
    return pads


def init_value(v: Any, what: str) -> InitSpec:
    from dlspec.ir.inits import init_spec  # the initialiser table lives in dlspec.ir.inits

    return init_spec(v, what)


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
            "permutable": "a (C, H, W) input's only: whether dense layers alone read the "
            "flattened tensor (through elementwise ops), so a channels-last target may flatten "
            "in its own order and permute their weight rows instead"
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


def fraction(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, 1.0)


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


def having(trait: str) -> frozenset[str]:
    """The ops with this trait (TRAITS)."""
    return frozenset(name for name, spec in OPS.items() if trait in spec.traits)


ELEMENTWISE = having("elementwise")
KINKED = having("kinked")
RECURRENT = having("recurrent")
BATCH_STATISTICS = having("batch_statistics")

# ---- training --------------------------------------------------------------------------------

WEIGHT_DECAY = AttrSpec(nonneg_real, 0.0, "decay coefficient")
WD_MODE = AttrSpec(
    one_of("l2", "decoupled"),
    {"dlspec": "l2", "keras": "decoupled"},
    "l2: g += wd * w before the update; decoupled: w -= lr * wd * w beside it",
)

OPTIMIZERS: dict[str, dict[str, AttrSpec]] = {
    "sgd": {
        "lr": AttrSpec(pos_real, {"dlspec": 0.01, "pytorch": 0.001}, "learning rate"),
        "momentum": AttrSpec(unit_open, 0.0, "momentum coefficient mu"),
        "nesterov": AttrSpec(V.boolean, False, "Nesterov momentum"),
        "momentum_form": AttrSpec(
            one_of("gradient", "update"),
            {"dlspec": "gradient", "keras": "update"},
            "gradient: v = mu*v + g, w -= lr*v; update: v = mu*v - lr*g, w += v",
        ),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
    "adam": {
        "lr": AttrSpec(pos_real, 0.001, "learning rate"),
        "beta1": AttrSpec(unit_open, 0.9, "first-moment decay"),
        "beta2": AttrSpec(unit_open, 0.999, "second-moment decay"),
        "eps": AttrSpec(pos_real, {"dlspec": 1e-8, "keras": 1e-7}, "epsilon"),
        "eps_placement": AttrSpec(
            one_of("corrected", "uncorrected"),
            {"dlspec": "corrected", "keras": "uncorrected"},
            "corrected: w -= lr*mhat/(sqrt(vhat)+eps); uncorrected: eps added to sqrt(v)"
            " before bias correction (TF/Keras 'epsilon hat')",
        ),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
    "rmsprop": {
        "lr": AttrSpec(pos_real, {"dlspec": 0.001, "pytorch": 0.01}, "learning rate"),
        "rho": AttrSpec(unit_open, {"dlspec": 0.9, "pytorch": 0.99}, "decay of E[g^2]"),
        "eps": AttrSpec(pos_real, {"dlspec": 1e-7, "pytorch": 1e-8}, "epsilon"),
        "eps_placement": AttrSpec(
            one_of("outside", "inside"),
            {"dlspec": "outside", "keras": "inside"},
            "outside: g/(sqrt(v)+eps); inside: g/sqrt(v+eps)",
        ),
        "momentum": AttrSpec(unit_open, 0.0, "momentum on the scaled step s = g/(sqrt(v)+eps)"),
        "momentum_form": AttrSpec(
            one_of("gradient", "update"),
            {"dlspec": "gradient", "keras": "update"},
            "gradient: b = mu*b + s, w -= lr*b; update: b = mu*b + lr*s, w -= b",
        ),
        "centered": AttrSpec(V.boolean, False, "subtract the squared mean gradient"),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
    "adadelta": {
        "lr": AttrSpec(pos_real, {"dlspec": 1.0, "keras": 0.001}, "learning rate"),
        "rho": AttrSpec(unit_open, {"dlspec": 0.95, "pytorch": 0.9}, "decay rate"),
        "eps": AttrSpec(pos_real, {"dlspec": 1e-6, "keras": 1e-7}, "epsilon"),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
}

# Keras 2's optimiser argument `decay=` meant lr / (1 + decay * updates); it becomes a schedule.
OPTIMIZER_SUGAR = {"decay": AttrSpec(nonneg_real, 0.0, "Keras 2 inverse-time decay per update")}

SCHEDULES: dict[str, dict[str, AttrSpec]] = {
    "constant": {},
    "step": {
        "every": AttrSpec(pos_int, doc="period, in `unit`s"),
        "gamma": AttrSpec(pos_real, 0.1, "factor applied once per period"),
        "unit": AttrSpec(one_of("epoch", "step"), "epoch", "what `every` counts"),
    },
    "inverse_time": {
        "decay": AttrSpec(nonneg_real, doc="lr_t = lr / (1 + decay * t)"),
        "unit": AttrSpec(one_of("epoch", "step"), "step", "what t counts"),
    },
}

LOSSES = ("softmax_cross_entropy", "binary_cross_entropy", "mse", "mae")
# what each loss's targets are: integer class ids, 0/1 per output element, or reals
LOSS_TARGETS = {
    "softmax_cross_entropy": "sparse",
    "binary_cross_entropy": "multi_label",
    "mse": "real",
    "mae": "real",
}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset provides."""

    attrs: dict[str, AttrSpec]
    classes: int
    train_size: int
    test_size: int
    shape: tuple[int, ...]  # one sample's canonical shape (() : set by the input)
    dtype: str
    doc: str


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        {}, 10, 60000, 10000, (1, 28, 28), "float32", "Fashion-MNIST idx files, scaled to [0, 1]"
    ),
    "synthetic": DatasetSpec(
        {
            "train_size": AttrSpec(pos_int, 50000, "samples per epoch"),
            "test_size": AttrSpec(pos_int, 10000, "evaluation samples"),
        },
        0,
        0,
        0,
        (),
        "",
        "random inputs of the input's shape and dtype; random labels",
    ),
    "mnist": DatasetSpec(
        {},
        10,
        60000,
        10000,
        (1, 28, 28),
        "float32",
        "MNIST digits, scaled to [0, 1] (pickle or idx files)",
    ),
    "cifar10": DatasetSpec(
        {},
        10,
        50000,
        10000,
        (3, 32, 32),
        "float32",
        "CIFAR-10 python batches, scaled to [0, 1], (3, 32, 32)",
    ),
    "npz": DatasetSpec(
        {},
        0,
        0,
        0,
        (),
        "",
        "the user's arrays from one .npz (--data FILE): x_train, x_test (or x_train_<input>, "
        "x_test_<input> per input), y_train, y_test",
    ),
    "imdb": DatasetSpec(
        {
            "vocab": AttrSpec(pos_int, 20000, "keep ids below this; others become oov_char"),
            "pad": AttrSpec(one_of("pre", "post"), "pre", "where short reviews get zeros"),
            "truncate": AttrSpec(one_of("pre", "post"), "pre", "which end long reviews lose"),
            "start_char": AttrSpec(nonneg_int, 1, "id put before every review"),
            "oov_char": AttrSpec(nonneg_int, 2, "id for words at or above vocab"),
            "index_from": AttrSpec(nonneg_int, 3, "offset added to the stored word ids"),
        },
        2,
        25000,
        25000,
        (),
        "int32",
        "IMDB reviews from imdb.npz (Keras format), length from the input shape",
    ),
}

LR_SCALINGS = ("none", "linear")
TRAIN_SETTINGS: dict[str, AttrSpec] = {
    "loss": AttrSpec(
        one_of(*LOSSES),
        "softmax_cross_entropy",
        "softmax_cross_entropy: logits + integer labels; binary_cross_entropy: logits + 0/1 "
        "targets per output (sigmoid fused, multi-label); mse, mae: real targets",
    ),
    "shuffle": AttrSpec(
        V.boolean, True, "reshuffle the training samples every epoch (false: their stored order)"
    ),
    "batch": AttrSpec(pos_int, 32, "samples per update"),
    "epochs": AttrSpec(pos_int, 1, "passes over the training set"),
    "seed": AttrSpec(nonneg_int, 0, "seed for initialisation, shuffling and synthetic data"),
    # data parallelism: the replica count is a launch-time property (torchrun's WORLD_SIZE), not
    # the spec's; `batch` is the global batch, split evenly over the replicas
    "lr_scaling": AttrSpec(
        one_of(*LR_SCALINGS),
        "none",
        "the learning rate with N data-parallel replicas: none (as stated), linear (times N)",
    ),
    "batchnorm_sync": AttrSpec(
        V.boolean,
        False,
        "with data-parallel replicas, batch norm statistics over the global batch (false: over "
        "each replica's part)",
    ),
}
TRAIN_DEFAULT_OPTIMIZER = "sgd"
TRAIN_DEFAULT_SCHEDULE = "constant"
TRAIN_DEFAULT_DATA = "synthetic"
GLOBAL_INIT_KEYS = ("init", "bias_init", "recurrent_init")
MAX_VERIFY_TOL = 0.1  # a bound above this would prove little


def verify_tol(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, MAX_VERIFY_TOL, low_open=True)


# `verify = tolerance(...)`: a spec's own bounds for `dlspec verify`, each replacing the default
# bound of that check against the oracle (docs/semantics.md, section 10); unstated: the default
VERIFY_TOLERANCES: dict[str, AttrSpec] = {
    "forward": AttrSpec(verify_tol, None, "forward vs oracle (default 1e-5, 1e-4 with an RNN)"),
    "losses": AttrSpec(verify_tol, None, "step losses vs oracle (default 1e-4)"),
    "weights": AttrSpec(
        verify_tol, None, "trained weights vs oracle (default 1e-4, 5e-4 for adaptive optimisers)"
    ),
}
# `verify = precision(float64)`: the dtype verify's training checks run in (docs/semantics.md,
# section 10, "The float64 mode"): each script runs twice, float32 for the forward, float64 for all
VERIFY_PRECISIONS = ("float32", "float64")
# top-level settings (names and meanings; resolve.py reads `defaults`, defaults.py `verify`)
TOP_SETTINGS = {
    "defaults": AttrSpec(one_of(*PROFILES), "dlspec", "what unstated attributes mean"),
    "verify": AttrSpec(
        lambda v, what: v,
        None,
        "the spec's own verify bounds, tolerance(forward=, losses=, weights=), and the dtype "
        "its training checks run in, precision(float64); each at most once",
    ),
}

DTYPES = ("float32", "int32", "int64")
