"""The pass pipeline: defaults per profile, naming, shapes, parameters, initialisers, training."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any, Optional

import pytest

from dlspec.errors import Pos, SpecError
from dlspec.frontend import ast
from dlspec.frontend.load import build, build_file
from dlspec.frontend.parse import parse
from dlspec.ir import inits
from dlspec.ir.attrs import PROFILE_PARENT, PROFILES, AttrSpec
from dlspec.ir.model import Init, InitSpec, Layer, Model, wrapped
from dlspec.ir.ops import OPS
from dlspec.ir.settings import DATASETS, OPTIMIZERS, SCHEDULES, TRAIN_SETTINGS, VERIFY_TOLERANCES
from dlspec.passes.shapes import same_pads, window_out

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def build_model(
    layers: list[str],
    input: str = "float32[3, 8, 8]",
    train: str = "loss = mse",
    profile: Optional[str] = None,
    top: str = "",
) -> Model:
    """Build a one-model spec; mse on synthetic data accepts any output shape."""
    body = "\n".join(f"    {line}" for line in layers)
    text = f"{top}\nmodel m {{\n    input x: {input}\n{body}\n}}\ntrain {{\n{train}\n}}\n"
    return build(text, "t.dl", profile).model


def layer(model: Model, name: str) -> Layer:
    """The layer called `name`."""
    (found,) = [lay for lay in model.layers if lay.name == name]
    return found


def value_of(source: str) -> ast.Value:
    """Parse `v = <source>` and return the value."""
    return parse(f"v = {source}\n").settings[0].value


# ---- defaults per profile ---------------------------------------------------------------------

GLOROT = InitSpec("glorot_uniform")
ZEROS = InitSpec("zeros")
ORTHO = InitSpec("orthogonal")
TORCH = InitSpec("variance_scaling", scale=1 / 3, mode="fan_in", distribution="uniform")
U05 = InitSpec("uniform", limit=0.05)
N1 = InitSpec("normal", std=1.0)
U8 = InitSpec("uniform", limit=1 / math.sqrt(8))  # PyTorch RNNs with hidden size 8

CONV = ("conv2d(4, kernel=3)", "float32[3, 8, 8]")
DENSE = ("dense(5)", "float32[7]")
EMBEDDING = ("embedding(50, 4)", "int32[6]")
GRU = ("gru(8)", "float32[6, 5]")
LSTM = ("lstm(8)", "float32[6, 5]")
AVGPOOL = ("avgpool2d(2)", "float32[3, 8, 8]")
MAXPOOL = ("maxpool2d(3)", "float32[3, 9, 9]")
LEAKY = ("leaky_relu", "float32[7]")
ELU = ("elu", "float32[7]")

# (layer, input), attribute, {profile: expected}; a single value means every profile
LAYER_DEFAULTS: list[tuple[tuple[str, str], str, Any]] = [
    (CONV, "init", {"dlspec": GLOROT, "pytorch": TORCH, "keras": GLOROT}),
    (CONV, "bias_init", {"dlspec": ZEROS, "pytorch": TORCH, "keras": ZEROS}),
    (CONV, "stride", (1, 1)),
    (CONV, "dilation", (1, 1)),
    (CONV, "padding", ((0, 0), (0, 0))),
    (CONV, "bias", True),
    (CONV, "activation", "none"),
    (DENSE, "init", {"dlspec": GLOROT, "pytorch": TORCH, "keras": GLOROT}),
    (DENSE, "bias_init", {"dlspec": ZEROS, "pytorch": TORCH, "keras": ZEROS}),
    (DENSE, "bias", True),
    (DENSE, "activation", "none"),
    (EMBEDDING, "init", {"dlspec": U05, "pytorch": N1, "keras": U05}),
    (GRU, "init", {"dlspec": GLOROT, "pytorch": U8, "keras": GLOROT}),
    (GRU, "recurrent_init", {"dlspec": ORTHO, "pytorch": U8, "keras": ORTHO}),
    (GRU, "bias_init", {"dlspec": ZEROS, "pytorch": U8, "keras": ZEROS}),
    (GRU, "readout", {"dlspec": "last", "pytorch": "sequence", "keras": "last"}),
    (GRU, "layers", 1),
    (GRU, "bias", True),
    (GRU, "reset_after", True),
    (LSTM, "init", {"dlspec": GLOROT, "pytorch": U8, "keras": GLOROT}),
    (LSTM, "recurrent_init", {"dlspec": ORTHO, "pytorch": U8, "keras": ORTHO}),
    (LSTM, "bias_init", {"dlspec": ZEROS, "pytorch": U8, "keras": ZEROS}),
    (LSTM, "forget_bias", {"dlspec": 1.0, "pytorch": 0.0, "keras": 1.0}),
    (AVGPOOL, "count_pad", {"dlspec": False, "pytorch": True, "keras": False}),
    (AVGPOOL, "stride", (2, 2)),
    (AVGPOOL, "rounding", "floor"),
    (MAXPOOL, "stride", (3, 3)),
    (MAXPOOL, "padding", ((0, 0), (0, 0))),
    (LEAKY, "alpha", {"dlspec": 0.01, "pytorch": 0.01, "keras": 0.3}),
    (ELU, "alpha", 1.0),
]


def _per_profile(rows: list) -> list:
    params = []
    for (stmt, input), attr, expected in rows:
        for profile in PROFILES:
            want = expected[profile] if isinstance(expected, dict) else expected
            params.append(
                pytest.param(profile, stmt, input, attr, want, id=f"{stmt}-{attr}-{profile}")
            )
    return params


@pytest.mark.parametrize("profile, stmt, input, attr, expected", _per_profile(LAYER_DEFAULTS))
def test_layer_defaults(profile: str, stmt: str, input: str, attr: str, expected: Any) -> None:
    model = build_model([stmt], input, profile=profile)
    assert model.profile == profile
    assert model.layers[0][attr] == expected


# optimizer setting, {profile: every attribute}
OPTIMIZER_DEFAULTS: list[tuple[str, dict[str, dict[str, Any]]]] = [
    (
        "sgd",
        {
            "dlspec": {"lr": 0.01, "momentum_form": "gradient", "weight_decay_mode": "l2"},
            "pytorch": {"lr": 0.001, "momentum_form": "gradient", "weight_decay_mode": "l2"},
            "keras": {"lr": 0.01, "momentum_form": "update", "weight_decay_mode": "decoupled"},
        },
    ),
    (
        "adam",
        {
            "dlspec": {"eps": 1e-8, "eps_placement": "corrected", "weight_decay_mode": "l2"},
            "pytorch": {"eps": 1e-8, "eps_placement": "corrected", "weight_decay_mode": "l2"},
            "keras": {
                "eps": 1e-7,
                "eps_placement": "uncorrected",
                "weight_decay_mode": "decoupled",
            },
        },
    ),
    (
        "rmsprop",
        {
            "dlspec": {
                "lr": 0.001,
                "rho": 0.9,
                "eps": 1e-7,
                "eps_placement": "outside",
                "momentum_form": "gradient",
            },
            "pytorch": {
                "lr": 0.01,
                "rho": 0.99,
                "eps": 1e-8,
                "eps_placement": "outside",
                "momentum_form": "gradient",
            },
            "keras": {
                "lr": 0.001,
                "rho": 0.9,
                "eps": 1e-7,
                "eps_placement": "inside",
                "momentum_form": "update",
            },
        },
    ),
    (
        "adadelta",
        {
            "dlspec": {"lr": 1.0, "rho": 0.95, "eps": 1e-6},
            "pytorch": {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
            "keras": {"lr": 0.001, "rho": 0.95, "eps": 1e-7},
        },
    ),
]
COMMON = {
    "sgd": {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0},
    "rmsprop": {"momentum": 0.0, "centered": False, "weight_decay": 0.0},
    "adadelta": {"weight_decay": 0.0},
}
WD_MODE = {"dlspec": "l2", "pytorch": "l2", "keras": "decoupled"}


@pytest.mark.parametrize(
    "profile, name, expected",
    [
        pytest.param(p, name, table[p], id=f"{name}-{p}")
        for name, table in OPTIMIZER_DEFAULTS
        for p in PROFILES
    ],
)
def test_optimizer_defaults(profile: str, name: str, expected: dict[str, Any]) -> None:
    model = build_model(["dense(3)"], "float32[4]", f"loss = mse\noptimizer = {name}", profile)
    optimizer = model.train.optimizer
    want = {"weight_decay_mode": WD_MODE[profile], **COMMON[name], **expected}
    assert optimizer.kind == name
    assert optimizer.attrs == want
    assert optimizer.stated == frozenset()


@pytest.mark.parametrize(
    "setting, attrs, stated",
    [
        ("sgd(lr=0.1, momentum=0.9)", {"lr": 0.1, "momentum": 0.9}, {"lr", "momentum"}),
        ("sgd(0.1, 0.9, true)", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, None),
        ("adam(eps=1e-8)", {"eps": 1e-8, "eps_placement": "uncorrected"}, {"eps"}),
        ("adam(eps_placement=corrected)", {"eps": 1e-7, "eps_placement": "corrected"}, None),
        ("rmsprop(rho=0.5, centered=true)", {"rho": 0.5, "centered": True, "lr": 0.001}, None),
        ("sgd(weight_decay=5e-4, weight_decay_mode=l2)", {"weight_decay": 5e-4}, None),
    ],
)
def test_stated_optimizer_values_beat_the_profile(
    setting: str, attrs: dict[str, Any], stated: Optional[set[str]]
) -> None:
    model = build_model(["dense(3)"], "float32[4]", f"loss = mse\noptimizer = {setting}", "keras")
    optimizer = model.train.optimizer
    assert {k: optimizer[k] for k in attrs} == attrs
    if stated is not None:
        assert optimizer.stated == frozenset(stated)


def test_command_line_profile_beats_the_file() -> None:
    layers = ["dense(3)", "leaky_relu"]
    from_file = build_model(layers, "float32[4]", top="defaults = keras")
    overridden = build_model(layers, "float32[4]", top="defaults = keras", profile="pytorch")
    assert (from_file.profile, from_file.layers[1]["alpha"]) == ("keras", 0.3)
    assert (overridden.profile, overridden.layers[1]["alpha"]) == ("pytorch", 0.01)


def test_defaults_may_sit_in_the_train_block() -> None:
    model = build_model(["leaky_relu"], "float32[4]", "loss = mse\ndefaults = keras")
    assert model.profile == "keras"
    assert model.layers[0]["alpha"] == 0.3


def test_unstated_profile_is_dlspec() -> None:
    assert build_model(["relu"], "float32[4]").profile == "dlspec"


def _per_profile_defaults() -> list[tuple[str, dict]]:
    """Every attribute whose default depends on the profile, across the op table's tables."""
    tables = {f"op {name}": spec.attrs for name, spec in OPS.items()}
    tables |= {f"optimizer {name}": table for name, table in OPTIMIZERS.items()}
    tables |= {f"schedule {name}": table for name, table in SCHEDULES.items()}
    tables |= {f"data {name}": spec.attrs for name, spec in DATASETS.items()}
    tables |= {"train": TRAIN_SETTINGS, "verify": VERIFY_TOLERANCES}
    return [
        (f"{owner}: {key}", spec.default)
        for owner, table in tables.items()
        for key, spec in table.items()
        if isinstance(spec.default, dict)
    ]


def test_a_profile_default_states_only_what_differs_from_its_parent() -> None:
    found = _per_profile_defaults()
    assert len(found) > 30
    for where, default in found:
        assert "dlspec" in default and set(default) <= set(PROFILES), where
        for profile, value in default.items():
            if profile != "dlspec":
                parent = default.get(PROFILE_PARENT[profile], default["dlspec"])
                assert value is not parent and value != parent, (where, profile)


def test_a_profile_the_overlay_leaves_out_takes_its_parents_default() -> None:
    spec = AttrSpec(int, {"dlspec": 1, "keras": 2})
    assert [spec.default_for(p, {}) for p in ("dlspec", "pytorch", "keras")] == [1, 1, 2]
    leaky = OPS["leaky_relu"].attrs["alpha"]
    assert [leaky.default_for(p, {}) for p in PROFILES] == [0.01, 0.01, 0.3]


def test_train_defaults() -> None:
    model = build_model(["dense(3)"], "float32[4]", train="")
    train = model.train
    assert (train.loss.kind, train.loss.labels) == ("softmax_cross_entropy", "sparse")
    assert (train.batch, train.epochs, train.seed) == (32, 1, 0)
    assert (train.optimizer.kind, train.schedule.kind, train.schedule.attrs) == (
        "sgd",
        "constant",
        {},
    )
    assert train.data.name == "synthetic"
    assert train.global_inits == {}
    assert (train.lr_scaling, train.batchnorm_sync) == ("none", False)


@pytest.mark.parametrize("profile", PROFILES)
def test_replica_settings_are_read(profile: str) -> None:
    train = build_model(
        ["dense(3)"], "float32[4]", "lr_scaling = linear\nbatchnorm_sync = true", profile
    ).train
    assert (train.lr_scaling, train.batchnorm_sync) == ("linear", True)
    assert train.positions["batchnorm_sync"].line == 8


def test_synthetic_data_sizes_are_explicit() -> None:
    model = build_model(
        ["dense(3)"], "float32[4]", "data = synthetic(train_size=640, test_size=64)"
    )
    data = model.train.data
    assert (data["train_size"], data["test_size"]) == (640, 64)
    assert (data.train_size, data.test_size) == (640, 64)


def test_dataset_facts() -> None:
    model = build_file(str(EXAMPLES / "mnist_mlp.dl")).model
    data = model.train.data
    assert (data.name, data.classes, data.train_size, data.test_size) == ("mnist", 10, 60000, 10000)


MNIST_SHAPES = "declare the input as [1, 28, 28] or [784] or [28, 28] or [28, 28, 1], not"


@pytest.mark.parametrize(
    "shape, accepted",
    [
        ((1, 28, 28), True),
        ((784,), True),
        ((28, 28), True),
        ((28, 28, 1), True),  # the single channel moved last: a reshape (Keras's examples)
        ((28, 1, 28), False),
        ((14, 56), False),
    ],
)
def test_mnist_input_shapes(shape: tuple[int, ...], accepted: bool) -> None:
    dims = ", ".join(map(str, shape))
    text = (
        f"model m {{ input x: float32[{dims}]\n flatten -> dense(10) }}\ntrain {{ data = mnist }}"
    )
    if accepted:
        assert build(text, "t.dl").model.inputs[0].shape == shape
    else:
        with pytest.raises(SpecError, match=re.escape(MNIST_SHAPES)):
            build(text, "t.dl")


def test_only_a_single_channel_moves_last() -> None:
    """CIFAR-10's three channels stay first: (32, 32, 3) would be a permutation, not a reshape."""
    text = (
        "model m { input x: float32[32, 32, 3]\n flatten -> dense(10) }\ntrain { data = cifar10 }"
    )
    with pytest.raises(
        SpecError, match=re.escape("declare the input as [3, 32, 32] or [3072], not")
    ):
        build(text, "t.dl")


# ---- global initialisers -------------------------------------------------------------------------

RNN_MODEL = ["embedding(50, 4)", "gru(8)", "dense(2)"]
CNN_MODEL = ["conv2d(4, kernel=3)", "flatten", "dense(5)", "dense(2, init=zeros)"]


PER_PROFILE_TABLE = {"dlspec": U05, "pytorch": N1, "keras": U05}


@pytest.mark.parametrize(
    "layers, input, train, expected",
    [
        (
            CNN_MODEL,
            "float32[3, 8, 8]",
            "init = he_normal",
            {
                ("conv2d_1", "init"): InitSpec("he_normal"),
                ("conv2d_1", "bias_init"): {"dlspec": ZEROS, "pytorch": TORCH, "keras": ZEROS},
                ("dense_1", "init"): InitSpec("he_normal"),
                ("dense_2", "init"): ZEROS,  # the layer's own init= wins
            },
        ),
        (
            RNN_MODEL,
            "int32[6]",
            "init = he_uniform",
            {
                ("embedding_1", "init"): PER_PROFILE_TABLE,  # global init: kernels, not tables
                ("gru_1", "init"): InitSpec("he_uniform"),
                ("gru_1", "recurrent_init"): {"dlspec": ORTHO, "pytorch": U8, "keras": ORTHO},
                ("dense_1", "init"): InitSpec("he_uniform"),
            },
        ),
        (
            RNN_MODEL,
            "int32[6]",
            "bias_init = ones\nrecurrent_init = orthogonal(2)",
            {
                ("gru_1", "bias_init"): InitSpec("ones"),
                ("gru_1", "recurrent_init"): InitSpec("orthogonal", gain=2.0),
                ("gru_1", "init"): {"dlspec": GLOROT, "pytorch": U8, "keras": GLOROT},
                ("dense_1", "bias_init"): InitSpec("ones"),
                ("embedding_1", "init"): PER_PROFILE_TABLE,
            },
        ),
    ],
)
@pytest.mark.parametrize("profile", PROFILES)
def test_global_inits(
    layers: list[str], input: str, train: str, expected: dict, profile: str
) -> None:
    model = build_model(layers, input, "loss = mse\n" + train, profile)
    for (name, attr), want in expected.items():
        want = want[profile] if isinstance(want, dict) else want
        assert layer(model, name)[attr] == want, (name, attr)


def test_global_inits_are_recorded() -> None:
    model = build_model(CNN_MODEL, train="loss = mse\ninit = normal(std=0.02)")
    assert model.train.global_inits == {"init": InitSpec("normal", std=0.02)}


# ---- naming and activation sugar ---------------------------------------------------------------

NAMING = [
    (["conv2d(4, kernel=3)", "relu"], ["conv2d_1", "relu_1"]),
    (
        ["conv2d(4, kernel=3) -> relu", "conv2d(4, kernel=3) -> relu"],
        ["conv2d_1", "relu_1", "conv2d_2", "relu_2"],
    ),
    (["a: conv2d(4, kernel=3) -> relu", "relu"], ["a", "relu_1", "relu_2"]),
    (["relu", "relu_1: relu", "relu"], ["relu_2", "relu_1", "relu_3"]),
    (["relu_2: relu", "relu", "relu"], ["relu_2", "relu_1", "relu_3"]),
    (["conv2d_1: relu", "conv2d(4, kernel=3)"], ["conv2d_1", "conv2d_2"]),
    (["relu: relu", "relu"], ["relu", "relu_1"]),
    (["conv2d(4, kernel=3, activation=relu)", "relu"], ["conv2d_1", "relu_1", "relu_2"]),
    (["top: conv2d(4, kernel=3, activation=tanh)"], ["top", "tanh_1"]),
]


@pytest.mark.parametrize("layers, names", NAMING)
def test_layer_names(layers: list[str], names: list[str]) -> None:
    assert [lay.name for lay in build_model(layers).layers] == names


ACTIVATION_SUGAR = [
    ("dense(5, activation=relu)", [("dense", {}), ("relu", {})]),
    ("dense(5, activation=leaky_relu(0.2))", [("dense", {}), ("leaky_relu", {"alpha": 0.2})]),
    ("dense(5, activation=elu(alpha=0.5))", [("dense", {}), ("elu", {"alpha": 0.5})]),
    ("dense(5, activation=softmax)", [("dense", {}), ("softmax", {})]),
    ("dense(5, activation=relu) -> dropout(0.5)", [("dense", {}), ("relu", {}), ("dropout", {})]),
]


@pytest.mark.parametrize("stmt, expected", ACTIVATION_SUGAR)
def test_activation_keyword_becomes_a_layer(stmt: str, expected: list) -> None:
    model = build_model([stmt], "float32[7]")
    assert [lay.op for lay in model.layers] == [op for op, _ in expected]
    for lay, (_, attrs) in zip(model.layers, expected, strict=True):
        assert {k: lay[k] for k in attrs} == attrs
    dense = model.layers[0]
    assert dense["activation"] == "none"
    assert dense.stated == frozenset({"units"})


def test_activation_none_adds_no_layer() -> None:
    (dense,) = build_model(["dense(5, activation=none)"], "float32[7]").layers
    assert dense["activation"] == "none"
    assert dense.stated == frozenset({"units", "activation"})


def test_activation_layer_points_at_the_activation() -> None:
    model = build_model(["dense(5, activation=relu)"], "float32[7]")
    dense, relu = model.layers
    assert (dense.pos.line, dense.pos.col) == (4, 5)
    assert (relu.pos.line, relu.pos.col) == (4, 25)


# ---- shapes ---------------------------------------------------------------------------------

SAME_PADS = [
    # size, kernel, stride, dilation -> (before, after)
    ((7, 3, 2, 1), (1, 1)),
    ((8, 3, 2, 1), (0, 1)),
    ((8, 3, 1, 1), (1, 1)),
    ((8, 4, 1, 1), (1, 2)),
    ((8, 2, 2, 1), (0, 0)),
    ((8, 3, 1, 2), (2, 2)),
    ((5, 1, 2, 1), (0, 0)),
    ((6, 2, 1, 1), (0, 1)),
    ((1, 5, 1, 1), (2, 2)),
]


@pytest.mark.parametrize("args, pads", SAME_PADS)
def test_same_pads(args: tuple[int, int, int, int], pads: tuple[int, int]) -> None:
    assert same_pads(*args) == pads
    size, kernel, stride, dilation = args
    assert window_out(size, kernel, stride, dilation, pads) == -(-size // stride)


WINDOW_OUT = [
    # size, kernel, stride, dilation, pads, rounding -> out
    ((8, 3, 1, 1, (0, 0), "floor"), 6),
    ((8, 3, 2, 1, (0, 0), "floor"), 3),
    ((8, 3, 2, 1, (0, 0), "ceil"), 4),
    ((5, 2, 2, 1, (0, 0), "floor"), 2),
    ((5, 2, 2, 1, (0, 0), "ceil"), 3),
    # ceil would give 4, but the 4th window would start in the right padding: PyTorch drops it
    ((5, 2, 2, 1, (1, 1), "ceil"), 3),
    ((6, 3, 2, 1, (1, 1), "ceil"), 4),
    ((8, 3, 1, 2, (0, 0), "floor"), 4),
    ((3, 3, 1, 1, (0, 0), "floor"), 1),
]


@pytest.mark.parametrize("args, out", WINDOW_OUT)
def test_window_out(args: tuple, out: int) -> None:
    assert window_out(*args) == out


WINDOWED = [
    # input, layer, explicit padding, output shape
    (
        "float32[3, 7, 8]",
        "conv2d(4, kernel=3, stride=2, padding=same)",
        ((1, 1), (0, 1)),
        (4, 4, 4),
    ),
    (
        "float32[3, 8, 8]",
        "conv2d(4, kernel=3, stride=2, padding=same)",
        ((0, 1), (0, 1)),
        (4, 4, 4),
    ),
    ("float32[1, 8, 8]", "conv2d(2, kernel=4, padding=same)", ((1, 2), (1, 2)), (2, 8, 8)),
    (
        "float32[1, 8, 8]",
        "conv2d(2, kernel=3, dilation=2, padding=same)",
        ((2, 2), (2, 2)),
        (2, 8, 8),
    ),
    ("float32[1, 8, 8]", "conv2d(2, kernel=3, dilation=2)", ((0, 0), (0, 0)), (2, 4, 4)),
    ("float32[3, 8, 8]", "conv2d(4, kernel=3, padding=1)", ((1, 1), (1, 1)), (4, 8, 8)),
    ("float32[3, 8, 8]", "conv2d(4, kernel=3, padding=[1, 0])", ((1, 1), (0, 0)), (4, 8, 6)),
    ("float32[3, 8, 8]", "conv2d(4, kernel=3, padding=[[0, 1], 2])", ((0, 1), (2, 2)), (4, 7, 10)),
    (
        "float32[3, 9, 12]",
        "conv2d(4, kernel=[3, 5], stride=[2, 3], padding=same)",
        ((1, 1), (1, 1)),
        (4, 5, 4),
    ),
    ("float32[3, 8, 8]", "conv2d(4, kernel=3, padding=valid)", ((0, 0), (0, 0)), (4, 6, 6)),
    ("float32[1, 5, 5]", "maxpool2d(2)", ((0, 0), (0, 0)), (1, 2, 2)),
    ("float32[1, 5, 5]", "maxpool2d(2, rounding=ceil)", ((0, 0), (0, 0)), (1, 3, 3)),
    ("float32[1, 5, 5]", "maxpool2d(2, padding=1, rounding=ceil)", ((1, 1), (1, 1)), (1, 3, 3)),
    ("float32[2, 7, 7]", "maxpool2d(3, stride=2)", ((0, 0), (0, 0)), (2, 3, 3)),
    ("float32[2, 7, 7]", "avgpool2d(3, stride=2, padding=same)", ((1, 1), (1, 1)), (2, 4, 4)),
    ("float32[2, 6, 6]", "avgpool2d(2, stride=1, padding=same)", ((0, 1), (0, 1)), (2, 6, 6)),
    ("float32[2, 4, 5]", "zeropad2d(1)", ((1, 1), (1, 1)), (2, 6, 7)),
    ("float32[2, 4, 5]", "zeropad2d([1, 2])", ((1, 1), (2, 2)), (2, 6, 9)),
    ("float32[2, 4, 5]", "zeropad2d(padding=[[0, 3], [2, 0]])", ((0, 3), (2, 0)), (2, 7, 7)),
]


@pytest.mark.parametrize("input, stmt, padding, out", WINDOWED)
def test_windowed_shapes(input: str, stmt: str, padding: tuple, out: tuple) -> None:
    (lay,) = build_model([stmt], input).layers
    assert lay["padding"] == padding
    assert lay.out_shape == out


FLOWS = [
    # input, layers, out_shape per layer
    ("float32[3, 4, 5]", ["flatten"], [(60,)]),
    ("float32[3, 6, 9]", ["conv2d(2, kernel=3)", "flatten", "dense(7)"], [(2, 4, 7), (56,), (7,)]),
    ("float32[784]", ["dense(512) -> relu", "dropout(0.2)"], [(512,), (512,), (512,)]),
    ("int32[12]", ["embedding(10, 4)", "gru(8)"], [(12, 4), (8,)]),
    ("int32[12]", ["embedding(10, 4)", "gru(8, readout=sequence)"], [(12, 4), (12, 8)]),
    ("int32[12]", ["embedding(10, 4)", "lstm(6, readout=last)"], [(12, 4), (6,)]),
    (
        "int32[12]",
        ["embedding(10, 4)", "lstm(6, readout=sequence)", "dense(3)"],
        [(12, 4), (12, 6), (12, 3)],
    ),
    ("float32[12, 5]", ["gru(8, readout=sequence)", "gru(4)"], [(12, 8), (4,)]),
    ("float32[3, 4, 4]", ["softmax"], [(3, 4, 4)]),
    (
        "float32[3, 4, 5]",
        ["zeropad2d([[1, 0], [2, 3]])", "global_avgpool2d", "repeat_vector(2)", "gru(4)"],
        [(3, 5, 10), (3,), (2, 3), (4,)],
    ),
    ("float32[3, 4, 5]", ["global_maxpool2d", "repeat_vector(n=6)"], [(3,), (6, 3)]),
]


@pytest.mark.parametrize("input, layers, shapes", FLOWS)
def test_shapes_flow_through(input: str, layers: list[str], shapes: list[tuple]) -> None:
    model = build_model(layers, input)
    assert [lay.out_shape for lay in model.layers] == shapes
    ins = [lay.in_shape for lay in model.layers]
    assert ins == [model.inputs[0].shape] + shapes[:-1]


def test_input_dtype_reaches_only_the_first_layer() -> None:
    model = build_model(["embedding(10, 4)", "gru(8)"], "int64[12]")
    assert [lay.in_dtype for lay in model.layers] == ["int64", "float32"]


@pytest.mark.parametrize(
    "input, axis", [("float32[10]", 1), ("float32[3, 4, 4]", 1), ("float32[6, 5]", 2)]
)
def test_softmax_axis_counts_the_batch(input: str, axis: int) -> None:
    assert build_model(["softmax"], input).layers[0]["axis"] == axis


STACKED = [
    (
        "gru(8, layers=2)",
        [
            ("gru_1.weight_ih_l0", (24, 5)),
            ("gru_1.weight_hh_l0", (24, 8)),
            ("gru_1.bias_ih_l0", (24,)),
            ("gru_1.bias_hh_l0", (24,)),
            ("gru_1.weight_ih_l1", (24, 8)),
            ("gru_1.weight_hh_l1", (24, 8)),
            ("gru_1.bias_ih_l1", (24,)),
            ("gru_1.bias_hh_l1", (24,)),
        ],
    ),
    (
        "lstm(6, layers=2, bias=false)",
        [
            ("lstm_1.weight_ih_l0", (24, 5)),
            ("lstm_1.weight_hh_l0", (24, 6)),
            ("lstm_1.weight_ih_l1", (24, 6)),
            ("lstm_1.weight_hh_l1", (24, 6)),
        ],
    ),
    (
        "gru(3)",
        [
            (f"gru_1.{r}_l0", s)
            for r, s in [
                ("weight_ih", (9, 5)),
                ("weight_hh", (9, 3)),
                ("bias_ih", (9,)),
                ("bias_hh", (9,)),
            ]
        ],
    ),
]


@pytest.mark.parametrize("stmt, params", STACKED)
def test_rnn_parameters(stmt: str, params: list[tuple[str, tuple]]) -> None:
    (rnn,) = build_model([stmt], "float32[12, 5]").layers
    assert [(p.name, p.shape) for p in rnn.params] == params


@pytest.mark.parametrize(
    "stmt, input, params",
    [
        (
            "conv2d(4, kernel=[3, 5])",
            "float32[2, 8, 8]",
            [("weight", (4, 2, 3, 5)), ("bias", (4,))],
        ),
        ("conv2d(4, kernel=3, bias=false)", "float32[2, 8, 8]", [("weight", (4, 2, 3, 3))]),
        ("dense(5)", "float32[7]", [("weight", (5, 7)), ("bias", (5,))]),
        ("dense(5, bias=false)", "float32[7]", [("weight", (5, 7))]),
        ("embedding(50, 4)", "int32[6]", [("weight", (50, 4))]),
        ("maxpool2d(2)", "float32[2, 8, 8]", []),
    ],
)
def test_layer_parameters(stmt: str, input: str, params: list) -> None:
    (lay,) = build_model([stmt], input).layers
    assert [(p.role, p.shape) for p in lay.params] == params
    assert all(p.name == f"{lay.name}.{p.role}" for p in lay.params)


PARAM_COUNTS = {
    "alexnet": 61_100_840,  # torchvision alexnet
    "babi_rnn": 45_836,  # Keras count_params of the original (tests/test_zoo_keras_originals.py)
    "cifar_vgg": 3_441_592,
    "comparison_mnist_cnn": 3_274_634,  # its Keras 3 build (tests/test_zoo_models.py)
    "daquar_vqa": 6_280_659,  # its Keras 3 build (tests/test_zoo_models.py)
    "densenet121_chexnet": 6_968_206,  # torchvision densenet121(num_classes=14)
    "imdb_gru": 3_818_302,
    "keras_cifar10_cnn": 1_250_858,
    "mnist_cnn": 1_199_882,
    "mnist_hierarchical_rnn": 199_434,  # Keras count_params of the original
    "mnist_mlp": 669_706,
    "pm25_lstm": 11_851,  # Keras count_params of the original
    "resnet50": 23_508_032,  # torchvision resnet50 without its fc
    "vgg_a": 132_863_336,  # torchvision vgg11
}


@pytest.mark.parametrize("name, count", sorted(PARAM_COUNTS.items()))
def test_example_parameter_counts(name: str, count: int) -> None:
    model = build_file(str(EXAMPLES / f"{name}.dl")).model
    assert model.name == name
    assert model.param_count == count
    assert sum(math.prod(p.shape) for p in model.trainable_params) == count


def test_every_example_has_a_count() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.dl")) == sorted(PARAM_COUNTS)


# ---- initialiser resolution -----------------------------------------------------------------

RESOLVE = [
    # spec, fan_in, fan_out -> expected Init fields
    (InitSpec("glorot_uniform"), 75, 150, {"dist": "uniform", "limit": math.sqrt(6 / 225)}),
    (InitSpec("glorot_normal"), 10, 30, {"dist": "normal", "std": math.sqrt(2 / 40)}),
    (InitSpec("he_uniform"), 8, 1, {"dist": "uniform", "limit": math.sqrt(6 / 8)}),
    (InitSpec("he_normal"), 50, 20, {"dist": "normal", "std": math.sqrt(2 / 50)}),
    (InitSpec("lecun_uniform"), 12, 5, {"dist": "uniform", "limit": math.sqrt(3 / 12)}),
    (InitSpec("lecun_normal"), 16, 5, {"dist": "normal", "std": 0.25}),
    (TORCH, 75, 150, {"dist": "uniform", "limit": 1 / math.sqrt(75)}),
    (
        InitSpec("variance_scaling", scale=2.0, mode="fan_out", distribution="normal"),
        4,
        9,
        {"dist": "normal", "std": math.sqrt(2 / 9)},
    ),
    (
        InitSpec("variance_scaling", scale=1.0, mode="fan_in", distribution="truncated_normal"),
        16,
        1,
        {"dist": "truncated_normal", "std": 0.25 / 0.87962566103423978},
    ),
    (U05, 100, 8, {"dist": "uniform", "limit": 0.05}),
    (InitSpec("normal", std=0.01, mean=0.5), 3, 3, {"dist": "normal", "std": 0.01, "mean": 0.5}),
    (InitSpec("truncated_normal", std=0.1), 3, 3, {"dist": "truncated_normal", "std": 0.1}),
    (ZEROS, 3, 3, {"dist": "constant", "value": 0.0}),
    (InitSpec("ones"), 3, 3, {"dist": "constant", "value": 1.0}),
    (InitSpec("constant", value=0.3), 3, 3, {"dist": "constant", "value": 0.3}),
    (InitSpec("orthogonal", gain=2.0), 3, 3, {"dist": "orthogonal", "gain": 2.0}),
]


@pytest.mark.parametrize("spec, fan_in, fan_out, expected", RESOLVE)
def test_resolve_initialiser(spec: InitSpec, fan_in: int, fan_out: int, expected: dict) -> None:
    init = inits.resolve(spec, fan_in, fan_out)
    assert init.spec == spec
    for key, want in expected.items():
        got = getattr(init, key)
        assert got == pytest.approx(want, rel=1e-12) if isinstance(want, float) else got == want


INIT_SPECS = [
    ("glorot_uniform", InitSpec("glorot_uniform")),
    ("normal(std=0.01)", InitSpec("normal", std=0.01, mean=0.0)),
    ("normal(0.01, mean=1)", InitSpec("normal", std=0.01, mean=1.0)),
    ("uniform(0.1)", InitSpec("uniform", limit=0.1)),
    ("constant(-1)", InitSpec("constant", value=-1.0)),
    ("orthogonal", InitSpec("orthogonal", gain=1.0)),
    (
        "variance_scaling",
        InitSpec("variance_scaling", scale=1.0, mode="fan_in", distribution="truncated_normal"),
    ),
    (
        "variance_scaling(2, fan_out, normal)",
        InitSpec("variance_scaling", scale=2.0, mode="fan_out", distribution="normal"),
    ),
]


@pytest.mark.parametrize("source, expected", INIT_SPECS)
def test_read_initialiser(source: str, expected: InitSpec) -> None:
    assert inits.init_spec(value_of(source), "init") == expected


def _init(model: Model, name: str) -> Init:
    (param,) = [p for p in model.params if p.name == name]
    return param.init


def test_conv_fans_include_the_window() -> None:
    model = build_model(["conv2d(6, kernel=5)"], "float32[3, 32, 32]")
    weight, bias = model.layers[0].params
    assert (weight.fan_in, weight.fan_out) == (75, 150)
    assert weight.init.dist == "uniform"
    assert weight.init.limit == pytest.approx(math.sqrt(6 / (75 + 150)), rel=1e-12)
    assert (bias.init.dist, bias.init.value) == ("constant", 0.0)


def test_he_normal_dense() -> None:
    model = build_model(["dense(20, init=he_normal)"], "float32[50]")
    init = _init(model, "dense_1.weight")
    assert (init.dist, init.mean) == ("normal", 0.0)
    assert init.std == pytest.approx(math.sqrt(2 / 50), rel=1e-12)


def test_pytorch_profile_conv_weight_and_bias() -> None:
    model = build_model(["conv2d(6, kernel=5)"], "float32[3, 32, 32]", profile="pytorch")
    for name in ("conv2d_1.weight", "conv2d_1.bias"):
        init = _init(model, name)
        assert init.dist == "uniform"
        assert init.limit == pytest.approx(1 / math.sqrt(75), rel=1e-12)


def test_pytorch_profile_rnn_and_embedding() -> None:
    model = build_model(["embedding(50, 4)", "gru(8)"], "int32[6]", profile="pytorch")
    table = _init(model, "embedding_1.weight")
    assert (table.dist, table.mean, table.std) == ("normal", 0.0, 1.0)
    gru = layer(model, "gru_1")
    assert len(gru.params) == 4
    for param in gru.params:
        assert param.init.dist == "uniform"
        assert param.init.limit == pytest.approx(1 / math.sqrt(8), rel=1e-12)


@pytest.mark.parametrize(
    "profile, stmt, offset",
    [
        ("keras", "lstm(8, layers=2)", (8, 16, 1.0)),
        ("dlspec", "lstm(8, layers=2)", (8, 16, 1.0)),
        ("pytorch", "lstm(8, layers=2)", None),
        ("dlspec", "lstm(8, layers=2, forget_bias=2.5)", (8, 16, 2.5)),
        ("keras", "gru(8, layers=2)", None),
    ],
)
def test_forget_gate_bias_offset(profile: str, stmt: str, offset: Optional[tuple]) -> None:
    (rnn,) = build_model([stmt], "float32[6, 5]", profile=profile).layers
    offsets = {p.name.split(".")[1]: p.gate_offset for p in rnn.params}
    assert offsets["bias_ih_l0"] == offset
    assert offsets["bias_ih_l1"] == offset
    assert offsets.get("bias_hh_l0") is None
    assert offsets.get("bias_hh_l1") is None
    assert offsets["weight_ih_l0"] is None


@pytest.mark.parametrize(
    "profile, stmt, has_recurrent_bias",
    [
        ("keras", "lstm(8)", False),
        ("keras", "gru(8)", True),
        ("pytorch", "lstm(8)", True),
        ("dlspec", "lstm(8)", True),
        ("dlspec", "lstm(8, recurrent_bias=false)", False),
        ("dlspec", "lstm(8, bias=false)", False),
    ],
)
def test_recurrent_bias_vector(profile: str, stmt: str, has_recurrent_bias: bool) -> None:
    """Keras's LSTM has one bias vector; cuDNN/PyTorch two (they train differently)."""
    (rnn,) = build_model([stmt], "float32[6, 5]", profile=profile).layers
    names = {p.name.split(".")[1] for p in rnn.params}
    assert ("bias_hh_l0" in names) == has_recurrent_bias


def test_rnn_fans() -> None:
    (gru,) = build_model(["gru(8, layers=2)"], "float32[6, 5]").layers
    fans = {p.name.split(".")[1]: (p.fan_in, p.fan_out) for p in gru.params}
    assert fans["weight_ih_l0"] == (5, 24)
    assert fans["weight_hh_l0"] == (8, 24)
    assert fans["weight_ih_l1"] == (8, 24)


# ---- time_distributed ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_a_wrapped_layer_takes_its_own_defaults_and_the_wrappers_name(profile: str) -> None:
    model = build_model(
        ["td: time_distributed(lstm(4, readout=sequence))", "time_distributed(dense(3))"],
        "float32[5, 6, 2]",
        "loss = mse\ninit = he_uniform",
        profile,
    )
    td, dense = model.layers
    inner = wrapped(td)
    assert (inner.name, inner.op, inner.stated) == ("td", "lstm", {"units", "readout"})
    assert inner["forget_bias"] == {"dlspec": 1.0, "pytorch": 0.0, "keras": 1.0}[profile]
    assert inner["init"] == InitSpec("he_uniform")  # the train block's global init reaches it
    assert (td.in_shape, td.out_shape) == ((5, 6, 2), (5, 6, 4))
    assert (inner.in_shape, inner.out_shape) == ((6, 2), (6, 4))
    names = ["td.weight_ih_l0", "td.weight_hh_l0", "td.bias_ih_l0"]
    names += [] if profile == "keras" else ["td.bias_hh_l0"]  # Keras's LSTM: one bias vector
    assert [p.name for p in td.params] == names == [p.name for p in inner.params]
    assert td.params[0].shape == (16, 2)
    assert [p.name for p in dense.params] == [
        "time_distributed_1.weight",
        "time_distributed_1.bias",
    ]
    assert dense.out_shape == (5, 6, 3) and wrapped(dense)["flattened_from"] == ()
    assert model.param_count == td.param_count + dense.param_count


def test_a_wrapped_layer_gets_its_shape_dependent_attributes_per_step() -> None:
    model = build_model(
        ["time_distributed(conv2d(2, 3, padding=same, stride=2))", "time_distributed(softmax)"],
        "float32[4, 3, 5, 5]",
    )
    conv, softmax = map(wrapped, model.layers)
    assert conv["padding"] == ((1, 1), (1, 1)) and conv.out_shape == (2, 3, 3)
    assert softmax["axis"] == 1  # channels of a step (C, H, W), batch counted
    assert model.layers[-1].out_shape == (4, 2, 3, 3)


def test_activation_inside_a_wrapped_call_becomes_a_wrapped_layer_after_the_wrapper() -> None:
    model = build_model(
        [
            "time_distributed(dense(3, activation=leaky_relu(0.2)))",
            "time_distributed(layer=conv2d(2, 1, activation=softmax))",
        ],
        "float32[5, 1, 2, 2]",
    )
    td, act, conv, softmax = model.layers
    assert [layer.op for layer in model.layers] == ["time_distributed"] * 4
    assert [wrapped(layer).op for layer in model.layers] == [
        "dense",
        "leaky_relu",
        "conv2d",
        "softmax",
    ]
    assert "activation" not in wrapped(td).stated and wrapped(td)["activation"] == "none"
    assert wrapped(act)["alpha"] == 0.2 and act.inputs == ("time_distributed_1",)
    assert (act.pos.line, act.pos.col) == (4, 42)  # the activation's own position
    assert wrapped(softmax)["axis"] == 1  # a step's channels, not the sequence's last axis


def test_time_distributed_embedding_reads_ids_per_step() -> None:
    model = build_model(["time_distributed(embedding(9, 2, init=zeros))"], "int32[3, 4]")
    (td,) = model.layers
    assert td.out_shape == (3, 4, 2) and wrapped(td).in_dtype == "int32"
    assert wrapped(td)["init"] == ZEROS


# ---- schedules ------------------------------------------------------------------------------


def test_keras_decay_becomes_an_inverse_time_schedule() -> None:
    model = build_model(
        ["dense(3)"],
        "float32[4]",
        "loss = mse\noptimizer = rmsprop(lr=0.0001, decay=1e-6)",
        "keras",
    )
    train = model.train
    assert (train.schedule.kind, train.schedule.attrs) == (
        "inverse_time",
        {"decay": 1e-6, "unit": "step"},
    )
    assert train.schedule.pos.line == 8  # the optimizer setting
    assert train.optimizer.kind == "rmsprop"
    assert "decay" not in train.optimizer.attrs
    assert train.optimizer["lr"] == 0.0001
    assert train.optimizer.stated == frozenset({"lr"})


def test_keras_cifar10_example_decays_per_update() -> None:
    train = build_file(str(EXAMPLES / "keras_cifar10_cnn.dl")).model.train
    assert (train.schedule.kind, train.schedule.attrs) == (
        "inverse_time",
        {"decay": 1e-6, "unit": "step"},
    )
    assert "decay" not in train.optimizer.attrs


@pytest.mark.parametrize(
    "train, kind, attrs",
    [
        ("optimizer = sgd(decay=0.01)", "inverse_time", {"decay": 0.01, "unit": "step"}),
        ("optimizer = sgd(decay=0)", "constant", {}),
        ("schedule = step(every=3)", "step", {"every": 3, "gamma": 0.1, "unit": "epoch"}),
        ("schedule = step(5, 0.5, step)", "step", {"every": 5, "gamma": 0.5, "unit": "step"}),
        (
            "schedule = inverse_time(decay=0.5, unit=epoch)",
            "inverse_time",
            {"decay": 0.5, "unit": "epoch"},
        ),
        ("schedule = constant", "constant", {}),
    ],
)
def test_schedules(train: str, kind: str, attrs: dict) -> None:
    model = build_model(["dense(3)"], "float32[4]", "loss = mse\n" + train)
    assert (model.train.schedule.kind, model.train.schedule.attrs) == (kind, attrs)


# ---- the explicit IR ------------------------------------------------------------------------

EXPLICIT_CASES = [
    pytest.param(EXAMPLES / f"{name}.dl", profile, id=f"{name}-{profile or 'own'}")
    for name in sorted(PARAM_COUNTS)
    for profile in (None, "dlspec", "keras")
] + [pytest.param(EXAMPLES / "cifar_vgg.dl", "pytorch", id="cifar_vgg-pytorch")]


SYNTAX_NODES = tuple(
    kind
    for kind in vars(ast).values()
    if isinstance(kind, type) and kind.__module__ == ast.__name__
)


def syntax_in(value: Any, where: str = "model") -> list[str]:
    """Where a syntax-tree node sits anywhere inside an IR value (fields, dicts, sequences)."""
    if isinstance(value, SYNTAX_NODES):
        return [where]
    if dataclasses.is_dataclass(value):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        items = [(repr(k), v) for k, v in value.items()]
    elif isinstance(value, (tuple, list, frozenset)):
        items = list(enumerate(value))
    else:
        return []
    return [hit for key, item in items for hit in syntax_in(item, f"{where}.{key}")]


def test_syntax_in_finds_a_node_deep_inside() -> None:
    hidden = Layer("a", "dense", {"units": (1, {"x": ast.Name("y", Pos())})}, Pos())
    assert syntax_in((hidden,)) == ["model.0.attrs.'units'.1.'x'"]


@pytest.mark.parametrize("path, profile", EXPLICIT_CASES)
def test_ir_is_explicit(path: Path, profile: Optional[str]) -> None:
    model = build_file(str(path), profile).model
    assert syntax_in(model) == []
    assert model.profile in PROFILES
    names = [lay.name for lay in model.layers]
    assert len(set(names)) == len(names)
    assert all(name.isidentifier() for name in names)
    for lay in model.layers:
        missing = set(OPS[lay.op].attrs) - set(lay.attrs)
        assert not missing, (lay.name, missing)
        assert None not in lay.attrs.values(), lay.name
        assert lay.in_shape and lay.out_shape
        if "padding" in lay.attrs:
            (top, bottom), (left, right) = lay["padding"]
            assert all(isinstance(p, int) for p in (top, bottom, left, right))
        assert not any(isinstance(v, ast.Value.__args__) for v in lay.attrs.values())
    train = model.train
    assert train is not None
    assert set(train.optimizer.attrs) == set(OPTIMIZERS[train.optimizer.kind])
    assert set(train.schedule.attrs) == set(SCHEDULES[train.schedule.kind])
    assert set(train.data.attrs) == set(DATASETS[train.data.name].attrs)
    params = [p.name for p in model.params]
    assert len(set(params)) == len(params)
