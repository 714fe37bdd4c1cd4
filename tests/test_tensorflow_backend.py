"""The TensorFlow target: translation tables (framework-free) and what its scripts compute (TF)."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from example_specs import TRAINED, reports_accuracy

from dlspec.backends.tensorflow import (
    TensorFlowBackend,
    optimizer_context,
    padding_keyword,
)
from dlspec.codegen.compile import compile_model
from dlspec.codegen.contract import SYNTHETIC_POOL_BATCHES
from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build, build_file
from dlspec.ir.model import Layer, Model
from dlspec.runtimes import runtime
from dlspec.verify import run as V

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))
SPECS = sorted((ROOT / "tests" / "specs").glob("*.dl"))
MNIST_DIR = ROOT / ".cache" / "mnist"
BACKEND = TensorFlowBackend()
STDLIB = {"argparse", "contextlib", "gzip", "json", "math", "os", "pickle", "struct", "sys", "time"}
STDLIB |= {"zipfile"}  # imdb.npz's object arrays, read without np.load's pickle
# the data-parallel launcher's: ports, child processes, stopping them, a replica's error
STDLIB |= {"signal", "socket", "subprocess", "traceback"}


MSE = "loss = mse\n    optimizer = sgd(lr=0.1)"


def spec(layers: list[str], input: str, train: str = MSE) -> str:
    """A one-model spec text (mse: any output shape will do)."""
    body = "\n".join(f"    {line}" for line in layers)
    return f"model m {{\n    input x: {input}\n{body}\n}}\ntrain {{\n    {train}\n}}\n"


def model_of(layers: list[str], input: str, train: str = MSE) -> Model:
    return build(spec(layers, input, train), "t.dl").model


def layer_named(model: Model, name: str) -> Layer:
    prepared = BACKEND.prepared(model)
    return next(layer for layer in prepared.layers if layer.name == name)


# ---- per-op translation (no framework) -------------------------------------------------------

MAP = "float32[2, 7, 6]"
# (layers, input, layer, fragments every forward line set must contain, helpers, note fragment)
TRANSLATIONS = [
    pytest.param(
        ["conv2d(4, kernel=3)"],
        MAP,
        "conv2d_1",
        ['tf.nn.conv2d(x, self.conv2d_1.kernel, strides=(1, 1), padding="VALID"', "bias_add"],
        set(),
        None,
        id="conv-valid",
    ),
    pytest.param(
        ["conv2d(4, kernel=3, stride=2, padding=same)"],
        MAP,
        "conv2d_1",
        ['strides=(2, 2), padding="SAME", dilations=(1, 1), data_format=DATA_FORMAT'],
        set(),
        None,
        id="conv-same-odd",
    ),
    pytest.param(
        ["conv2d(4, kernel=3, padding=1)"],
        MAP,
        "conv2d_1",
        ['padding="SAME"'],
        set(),
        None,
        id="conv-explicit-equal-to-same",
    ),
    pytest.param(
        ["conv2d(4, kernel=3, padding=[[0, 1], [1, 1]], bias=false)"],
        MAP,
        "conv2d_1",
        ["padding=explicit_pads(((0, 1), (1, 1)))"],
        {"explicit_pads"},
        "neither VALID nor TensorFlow's SAME",
        id="conv-asymmetric",
    ),
    pytest.param(
        ["conv2d(4, kernel=3, dilation=2, padding=same)"],
        MAP,
        "conv2d_1",
        ['tf.nn.convolution(x, self.conv2d_1.kernel, strides=(1, 1), padding="SAME"'],
        set(),
        None,
        id="conv-dilated",
    ),
    pytest.param(
        ["conv2d(4, kernel=2, stride=2, dilation=2, padding=1)"],
        MAP,
        "conv2d_1",
        ["pad_spatial(x, ((1, 1), (1, 1)), 0.0)", 'padding="VALID"', "subsample(x, (2, 2))"],
        {"pad_spatial", "subsample"},
        "subsampled",
        id="conv-dilated-strided",
    ),
    pytest.param(
        ["maxpool2d(2)"],
        MAP,
        "maxpool2d_1",
        ['tf.nn.max_pool2d(x, ksize=(2, 2), strides=(2, 2), padding="VALID"'],
        set(),
        None,
        id="maxpool-valid",
    ),
    pytest.param(
        ["maxpool2d(2, padding=same)"],
        MAP,
        "maxpool2d_1",
        ['padding="SAME"'],
        set(),
        None,
        id="maxpool-same",
    ),
    pytest.param(
        ["maxpool2d(2, stride=1, padding=[[1, 0], [0, 1]])"],
        MAP,
        "maxpool2d_1",
        ['pad_spatial(x, ((1, 0), (0, 1)), float("-inf"))', 'padding="VALID"'],
        {"pad_spatial"},
        "-inf",
        id="maxpool-explicit",
    ),
    pytest.param(
        ["avgpool2d(3, stride=2, padding=same, count_pad=false)"],
        MAP,
        "avgpool2d_1",
        ['tf.nn.avg_pool2d(x, ksize=(3, 3), strides=(2, 2), padding="SAME"'],
        set(),
        None,
        id="avgpool-same-excluding",
    ),
    pytest.param(
        ["avgpool2d(3, stride=1, padding=1, count_pad=true)"],
        MAP,
        "avgpool2d_1",
        ["pad_spatial(x, ((1, 1), (1, 1)), 0.0)", 'padding="VALID"'],
        {"pad_spatial"},
        "count_pad=true",
        id="avgpool-same-pads-counted",
    ),
    pytest.param(
        ["avgpool2d(2, stride=1, padding=[[1, 0], [0, 1]], count_pad=false)"],
        MAP,
        "avgpool2d_1",
        [
            "avg_pool_explicit(x, (2, 2), (1, 1), ((1, 0), (0, 1)), overhang=(0, 0), "
            "count_pad=False)"
        ],
        {"pad_spatial", "avg_pool_explicit"},
        "count of real cells",
        id="avgpool-explicit-excluding",
    ),
    pytest.param(
        ["global_avgpool2d"],
        MAP,
        "global_avgpool2d_1",
        ["x = tf.reduce_mean(x, axis=(image_axis(1), image_axis(2)))"],
        {"image_axis"},
        None,
        id="global-avgpool",
    ),
    pytest.param(
        ["global_maxpool2d"],
        MAP,
        "global_maxpool2d_1",
        ["x = tf.reduce_max(x, axis=(image_axis(1), image_axis(2)))"],
        {"image_axis"},
        None,
        id="global-maxpool",
    ),
    pytest.param(
        ["zeropad2d([[1, 0], [2, 3]])"],
        MAP,
        "zeropad2d_1",
        ["x = pad_spatial(x, ((1, 0), (2, 3)), 0.0)"],
        {"pad_spatial"},
        None,
        id="zeropad",
    ),
    pytest.param(
        ["repeat_vector(3)"],
        "float32[5]",
        "repeat_vector_1",
        ["x = tf.repeat(tf.expand_dims(x, 1), 3, axis=1)"],
        set(),
        None,
        id="repeat-vector",
    ),
    pytest.param(
        ["maxpool2d(2, rounding=ceil)"],
        MAP,
        "maxpool2d_1",
        ['pad_spatial(x, ((0, 1), (0, 0)), float("-inf"))', 'padding="VALID"'],
        {"pad_spatial"},
        "overhang (1, 0) (rows, columns) is padded",
        id="maxpool-ceil-overhang",
    ),
    pytest.param(
        ["avgpool2d(3, stride=2, padding=1, rounding=ceil, count_pad=true)"],
        MAP,
        "avgpool2d_1",
        [
            "avg_pool_explicit(x, (3, 3), (2, 2), ((1, 1), (1, 1)), overhang=(0, 1), "
            "count_pad=True)"
        ],
        {"pad_spatial", "avg_pool_explicit"},
        "zeros, never counted; sum / count of real and padded cells",
        id="avgpool-ceil-overhang-counted",
    ),
    pytest.param(
        ["dropout(0.25)"],
        "float32[5]",
        "dropout_1",
        ["x = tf.nn.dropout(x, rate=0.25) if training and dropout else x"],
        set(),
        None,
        id="dropout",
    ),
    pytest.param(
        ["flatten", "dropout(0.5)", "dense(3)"],
        MAP,
        "flatten_1",
        ["x = tf.reshape(as_nhwc(x), (-1, 84))"],
        {"layout"},
        None,
        id="flatten-before-dense",
    ),
    pytest.param(
        ["flatten", "softmax", "dense(3)"],
        MAP,
        "flatten_1",
        ["x = tf.reshape(as_nchw(x), (-1, 84))"],
        {"layout"},
        "(C, H, W) order kept",
        id="flatten-before-softmax",
    ),
    pytest.param(
        ["dense(3)", "flatten"],
        "float32[4, 5]",
        "flatten_1",
        ["x = tf.reshape(x, (-1, 12))"],
        set(),
        None,
        id="flatten-sequence",
    ),
    pytest.param(
        ["dense(3)"],
        "float32[5]",
        "dense_1",
        ["x = tf.matmul(x, self.dense_1.kernel)", "x = tf.nn.bias_add(x, self.dense_1.bias)"],
        set(),
        None,
        id="dense",
    ),
    pytest.param(
        ["dense(3, bias=false)"],
        "float32[4, 5]",
        "dense_1",
        ["x = tf.tensordot(x, self.dense_1.kernel, 1)"],
        set(),
        None,
        id="dense-sequence",
    ),
    pytest.param(
        ["dense(3)"],
        MAP,
        "dense_1",
        ["tf.tensordot(as_nchw(x), self.dense_1.kernel, 1)", "x = from_nchw(x)"],
        {"layout"},
        "NCHW order",
        id="dense-over-map-width",
    ),
    pytest.param(
        ["embedding(10, 4)"],
        "int32[6]",
        "embedding_1",
        ["x = tf.gather(self.embedding_1.embeddings, x)"],
        set(),
        None,
        id="embedding",
    ),
    pytest.param(
        ["gru(4, layers=2)"],
        "float32[6, 3]",
        "gru_1",
        [
            "x = gru(x, self.gru_1.kernel_l0, self.gru_1.recurrent_kernel_l0, "
            "self.gru_1.bias_ih_l0, self.gru_1.bias_hh_l0, reset_after=True)",
            "self.gru_1.kernel_l1",
            "x = x[:, -1, :]",
        ],
        {"gru"},
        "canonical gate order",
        id="gru-stacked-last",
    ),
    pytest.param(
        ["gru(4, reset_after=false, recurrent_bias=false, readout=sequence)"],
        "float32[6, 3]",
        "gru_1",
        ["self.gru_1.bias_ih_l0, None, reset_after=False)"],
        {"gru"},
        "canonical gate order",
        id="gru-reset-before",
    ),
    pytest.param(
        ["lstm(4, bias=false)"],
        "float32[6, 3]",
        "lstm_1",
        ["x = lstm(x, self.lstm_1.kernel_l0, self.lstm_1.recurrent_kernel_l0, None, None)"],
        {"lstm"},
        "canonical gate order",
        id="lstm-no-bias",
    ),
    pytest.param(["relu"], "float32[5]", "relu_1", ["x = tf.nn.relu(x)"], set(), None, id="relu"),
    pytest.param(["tanh"], "float32[5]", "tanh_1", ["x = tf.math.tanh(x)"], set(), None, id="tanh"),
    pytest.param(
        ["sigmoid"], "float32[5]", "sigmoid_1", ["x = tf.math.sigmoid(x)"], set(), None, id="sig"
    ),
    pytest.param(
        ["softmax"], "float32[5]", "softmax_1", ["tf.nn.softmax(x, axis=-1)"], set(), None, id="sm"
    ),
    pytest.param(
        ["softmax"],
        MAP,
        "softmax_1",
        ["tf.nn.softmax(x, axis=channel_axis())"],
        {"layout"},
        None,
        id="softmax-map-channels",
    ),
    pytest.param(["elu"], "float32[5]", "elu_1", ["x = tf.nn.elu(x)"], set(), None, id="elu"),
    pytest.param(
        ["elu(0.5)"],
        "float32[5]",
        "elu_1",
        ["x = tf.where(x > 0.0, x, 0.5 * tf.nn.elu(x))"],
        set(),
        None,
        id="elu-alpha",
    ),
    pytest.param(
        ["leaky_relu(0.2)"],
        "float32[5]",
        "leaky_relu_1",
        ["x = tf.nn.leaky_relu(x, alpha=0.2)"],
        set(),
        None,
        id="leaky-relu",
    ),
]


@pytest.mark.parametrize("layers,input,name,fragments,helpers,note", TRANSLATIONS)
def test_layer_translation(
    layers: list[str],
    input: str,
    name: str,
    fragments: list[str],
    helpers: set[str],
    note: Optional[str],
) -> None:
    code = BACKEND.emit(layer_named(model_of(layers, input), name))
    text = "\n".join(code.forward)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert set(code.helpers) == helpers
    if note is None:
        assert not code.notes
    else:
        assert any(note in n for n in code.notes), code.notes


def test_time_distributed_reshapes_around_the_wrapped_code_in_canonical_order() -> None:
    model = BACKEND.prepared(
        model_of(
            ["time_distributed(conv2d(2, 3)) -> time_distributed(flatten)", "flatten"],
            "float32[4, 3, 5, 5]",
        )
    )
    conv, flat = (BACKEND.emit(layer) for layer in model.layers[:2])
    assert conv.forward[:2] == ("x = tf.reshape(x, (-1, 3, 5, 5))", "x = from_nchw(x)")
    assert conv.forward[-2:] == ("x = as_nchw(x)", "x = tf.reshape(x, (-1, 4, 2, 3, 3))")
    assert "tf.nn.conv2d(x, self.time_distributed_1.kernel" in conv.forward[2]
    assert "layout" in conv.helpers
    # a wrapped flatten of a map keeps canonical (C, H, W) order: nothing absorbs a permutation
    assert "x = tf.reshape(as_nchw(x), (-1, 18))" in flat.forward
    rows = BACKEND.emit(model_of(["time_distributed(dense(2))"], "float32[5, 4, 3]").layers[0])
    assert rows.forward[0] == "x = tf.reshape(as_nchw(x), (-1, 4, 3))"  # a (T, F, G) input
    assert rows.forward[-1] == "x = from_nchw(tf.reshape(x, (-1, 5, 4, 2)))"


def test_every_op_has_an_emitter() -> None:
    from dlspec.ir.ops import OPS

    assert all(BACKEND.supports(op) for op in OPS)


# ---- padding decisions -----------------------------------------------------------------------

# (input H, W; window; stride; padding as written) -> keyword
PADDINGS = [
    ((7, 6), 3, 2, "same", "SAME"),
    ((6, 6), 3, 2, "same", "SAME"),
    ((7, 6), 3, 1, "1", "SAME"),
    ((6, 6), 3, 2, "1", None),  # SAME at 6 is (0, 1): symmetric 1 is not TF's rule here
    ((6, 6), 3, 2, "[[0, 1], [0, 1]]", "SAME"),
    ((7, 6), 3, 1, "0", "VALID"),
    ((7, 6), 3, 1, "valid", "VALID"),
    ((7, 6), 3, 1, "2", None),
    ((7, 6), 1, 1, "same", "VALID"),  # a 1x1 window needs no padding: both rules agree
]


@pytest.mark.parametrize("hw,window,stride,padding,expected", PADDINGS)
def test_padding_keyword(
    hw: tuple[int, int], window: int, stride: int, padding: str, expected: Optional[str]
) -> None:
    layers = [f"conv2d(2, kernel={window}, stride={stride}, padding={padding})"]
    layer = model_of(layers, f"float32[1, {hw[0]}, {hw[1]}]").layers[0]
    assert padding_keyword(layer, layer["kernel"]) == expected
    pool = model_of(
        [f"maxpool2d({window}, stride={stride}, padding={padding})"],
        f"float32[1, {hw[0]}, {hw[1]}]",
    ).layers[0]
    assert padding_keyword(pool, pool["pool"]) == expected


def test_ceil_rounding_pads_only_the_overhang() -> None:
    exact = model_of(["maxpool2d(2, rounding=ceil)", "flatten"], "float32[1, 6, 6]")
    assert not BACKEND.unsupported(exact)
    assert BACKEND.emit(exact.layers[0]).forward == (
        'x = tf.nn.max_pool2d(x, ksize=(2, 2), strides=(2, 2), padding="VALID", '
        "data_format=DATA_FORMAT)",
    )
    overhanging = model_of(["avgpool2d(2, rounding=ceil)", "flatten"], MAP)
    assert not BACKEND.unsupported(overhanging)
    assert "overhang=(1, 0), count_pad=False" in compile_model(overhanging, "tensorflow").source


def test_reserved_layer_name_is_escaped() -> None:
    model = model_of(["variables: dense(3)"], "float32[4]")
    assert not BACKEND.unsupported(model)
    assert [p.native for p in BACKEND.native_params(model)] == [
        "variables_/kernel",
        "variables_/bias",
    ]


# ---- weight conversions ----------------------------------------------------------------------

CONVERSIONS = [
    (
        ["conv2d(4, kernel=[3, 2])"],
        MAP,
        [
            ("conv2d_1/kernel", (3, 2, 2, 4), 'c["conv2d_1.weight"].transpose(2, 3, 1, 0)'),
            ("conv2d_1/bias", (4,), 'c["conv2d_1.bias"]'),
        ],
    ),
    (
        ["conv2d(3, kernel=2)", "flatten", "dense(5)"],
        "float32[2, 4, 3]",
        [
            ("conv2d_1/kernel", (2, 2, 2, 3), None),
            ("conv2d_1/bias", (3,), None),
            (
                "dense_1/kernel",
                (18, 5),
                'c["dense_1.weight"].reshape(5, 3, 3, 2).transpose(2, 3, 1, 0).reshape(18, 5)',
            ),
            ("dense_1/bias", (5,), None),
        ],
    ),
    (
        ["embedding(10, 4)", "lstm(3, layers=2, recurrent_bias=false)"],
        "int32[5]",
        [
            ("embedding_1/embeddings", (10, 4), 'c["embedding_1.weight"]'),
            ("lstm_1/kernel_l0", (4, 12), 'c["lstm_1.weight_ih_l0"].T'),
            ("lstm_1/recurrent_kernel_l0", (3, 12), 'c["lstm_1.weight_hh_l0"].T'),
            ("lstm_1/bias_ih_l0", (12,), 'c["lstm_1.bias_ih_l0"]'),
            ("lstm_1/kernel_l1", (3, 12), None),
            ("lstm_1/recurrent_kernel_l1", (3, 12), None),
            ("lstm_1/bias_ih_l1", (12,), None),
        ],
    ),
]


@pytest.mark.parametrize("layers,input,expected", CONVERSIONS)
def test_native_parameters(
    layers: list[str], input: str, expected: list[tuple[str, tuple[int, ...], Optional[str]]]
) -> None:
    natives = BACKEND.native_params(model_of(layers, input))
    assert [(p.native, p.shape) for p in natives] == [(n, s) for n, s, _ in expected]
    for p, (_, _, expr) in zip(natives, expected, strict=True):
        if expr is not None:
            assert p.to_native == expr


def _evaluate(expr: str, arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    return np.asarray(eval(expr, {"np": np, key: arrays}))  # noqa: S307 - our own expressions


@pytest.mark.parametrize("layers,input,_", CONVERSIONS)
def test_conversions_round_trip(layers: list[str], input: str, _: Any) -> None:
    model = model_of(layers, input)
    rng = np.random.default_rng(0)
    canonical = {p.name: rng.standard_normal(p.shape) for p in model.params}
    natives = BACKEND.native_params(model)
    native = {p.native: _evaluate(p.to_native, canonical, "c") for p in natives}
    assert all(native[p.native].shape == p.shape for p in natives)
    back = {name: _evaluate(expr, native, "n") for p in natives for name, expr in p.back}
    assert back.keys() == canonical.keys()
    assert all(np.array_equal(back[k], canonical[k]) for k in canonical)


def test_flatten_permutation_makes_hwc_flatten_equal_canonical_dense() -> None:
    """(H, W, C)-order flatten times the converted kernel = canonical flatten times weight.T."""
    model = model_of(["flatten", "dense(5)"], "float32[3, 4, 2]")
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((5, 24))
    kernel_param = BACKEND.native_params(model)[0]
    kernel = _evaluate(kernel_param.to_native, {"dense_1.weight": weight}, "c")
    x = rng.standard_normal((2, 3, 4, 2))  # NCHW
    canonical = x.reshape(2, -1) @ weight.T
    channels_last = x.transpose(0, 2, 3, 1).reshape(2, -1) @ kernel
    np.testing.assert_allclose(channels_last, canonical, rtol=1e-12)


# ---- optimiser formulas ----------------------------------------------------------------------


def _optimizer(text: str, schedule: str = "constant") -> dict[str, Any]:
    train = f"loss = mse\n    optimizer = {text}\n    schedule = {schedule}"
    return optimizer_context(model_of(["dense(2)"], "float32[3]", train).train.optimizer)


OPTIMIZER_LINES = [
    ("sgd(lr=0.1)", [], ["w.assign_sub(lr * g)"]),
    (
        "sgd(lr=0.1, momentum=0.9)",
        ["v"],
        ["v.assign(0.9 * v + g)", "w.assign_sub(lr * v)"],
    ),
    (
        "sgd(lr=0.1, momentum=0.9, nesterov=true)",
        ["v"],
        ["v.assign(0.9 * v + g)", "w.assign_sub(lr * (g + 0.9 * v))"],
    ),
    (
        "sgd(lr=0.1, momentum=0.9, momentum_form=update)",
        ["v"],
        ["v.assign(0.9 * v - lr * g)", "w.assign_add(v)"],
    ),
    (
        "sgd(lr=0.1, momentum=0.9, momentum_form=update, nesterov=true)",
        ["v"],
        ["v.assign(0.9 * v - lr * g)", "w.assign_add(0.9 * v - lr * g)"],
    ),
    (
        "adam(lr=0.01)",
        ["m", "v"],
        [
            "t = tf.cast(self.t.assign_add(1), tf.float64)",
            "c1 = tf.cast(1.0 - 0.9 ** t, FLOAT)",
            "c2 = tf.cast(1.0 - 0.999 ** t, FLOAT)",
            "m.assign(0.9 * m + (1.0 - 0.9) * g)",
            "w.assign_sub(lr * (m / c1) / (tf.sqrt(v / c2) + 1e-08))",
        ],
    ),
    (
        "adam(lr=0.01, eps_placement=uncorrected, eps=1e-7)",
        ["m", "v"],
        ["w.assign_sub(lr * c * m / (tf.sqrt(v) + 1e-07))"],
    ),
    (
        "rmsprop(lr=0.01, eps_placement=inside, centered=true)",
        ["v", "mean_g"],
        ["d = v - mean_g * mean_g", "q = g / tf.sqrt(d + 1e-07)", "w.assign_sub(lr * q)"],
    ),
    (
        "rmsprop(lr=0.01, momentum=0.5)",
        ["v", "buf"],
        ["q = g / (tf.sqrt(v) + 1e-07)", "buf.assign(0.5 * buf + q)", "w.assign_sub(lr * buf)"],
    ),
    (
        "rmsprop(lr=0.01, momentum=0.5, momentum_form=update)",
        ["v", "buf"],
        ["buf.assign(0.5 * buf + lr * q)", "w.assign_sub(buf)"],
    ),
    (
        "adadelta(weight_decay=0.01)",
        ["acc_g", "acc_d"],
        ["g = g + 0.01 * w", "w.assign_sub(lr * delta)"],
    ),
    (
        "adam(weight_decay=0.1, weight_decay_mode=decoupled)",
        ["m", "v"],
        ["w.assign_sub(lr * 0.1 * w)"],
    ),
]


@pytest.mark.parametrize("text,slots,lines", OPTIMIZER_LINES)
def test_optimizer_lines(text: str, slots: list[str], lines: list[str]) -> None:
    ctx = _optimizer(text)
    assert ctx["slots"] == slots
    body = "\n".join(ctx["head"] + ctx["body"])
    for line in lines:
        assert line in body, f"{line!r} not in:\n{body}"


def test_decoupled_decay_comes_before_the_step() -> None:
    body = _optimizer("sgd(lr=0.1, weight_decay=0.1, weight_decay_mode=decoupled)")["body"]
    assert body == [
        "w.assign_sub(lr * 0.1 * w)  # decoupled: w *= 1 - lr * wd, before the step"
    ] + ["w.assign_sub(lr * g)"]


# ---- whole scripts (no framework) ------------------------------------------------------------


def _imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("path", EXAMPLES + SPECS, ids=lambda p: p.stem)
def test_script_is_standalone(path: Path) -> None:
    source = compile_model(build_file(str(path)).model, "tensorflow").source
    assert _imports(source) <= STDLIB | {"numpy", "tensorflow"}
    nodes = list(ast.walk(ast.parse(source)))
    assert not [n for n in nodes if isinstance(n, ast.Attribute) and n.attr == "keras"]
    assert source.index("# ---- model") < source.index("# ---- canonical weights")
    assert source.index("# ---- canonical weights") < source.index("# ---- data")
    assert source.index("# ---- data") < source.index("# ---- optimisation")
    assert source.index("# ---- optimisation") < source.index("# ---- training and evaluation")


def test_report_names_explicit_code() -> None:
    model = build_file(str(ROOT / "tests/specs/avgpool_padding.dl")).model
    report = compile_model(model, "tensorflow").report
    assert "avgpool2d_4: padding ((1, 0), (0, 1))" in report
    assert "optimizer adam written out" in report


# ---- framework tests: the scripts run ---------------------------------------------------------


def _tensorflow() -> types.ModuleType:
    try:
        import tensorflow as tf
    except ImportError as err:  # pragma: no cover - depends on the environment
        reason = f"tensorflow cannot be imported ({err}): TensorFlow runtime tests skipped"
        print(reason)
        pytest.skip(reason)
    return tf


@pytest.fixture(scope="module")
def tf() -> types.ModuleType:
    return _tensorflow()


def _failed(checks: list[V.Check]) -> set[str]:
    return {c.check for c in checks if not c.passed}


def _verify(model: Model, source: Optional[str] = None) -> list[V.Check]:
    sources = {"tensorflow": source} if source is not None else None
    checks = V.verify_model(model, ["tensorflow"], steps=5, sources=sources)
    print(V.matrix(checks))
    return checks


def _verify_with_flags(model: Model, *flags: str) -> list[V.Check]:
    """verify_model's procedure with extra script flags (--xla, --data-format)."""
    with tempfile.TemporaryDirectory(prefix="dlspec-tf-") as tmp:
        work = Path(tmp)
        start = V.W.draw_weights(model, V.VERIFY_SEED)
        V.W.save_npz(work / "weights.npz", start)
        batches = V.make_batches(model, 5)
        np.savez(work / "batches.npz", **batches)
        script = work / "script.py"
        script.write_text(compile_model(model, "tensorflow").source, encoding="utf-8")
        args = ["--verify", str(work), "--verify-name", "r", "--device", "cpu", *flags]
        code, stderr = V.execute(runtime("tensorflow"), script, args, 900)
        assert code == 0, stderr[-3000:]
        got = dict(np.load(work / "r.npz"))
        name = "tensorflow " + " ".join(flags)
        checks = V.compare(model.source.path, name, model, V.oracle_on(model, start, batches), got)
    print(V.matrix(checks))
    return checks


@pytest.mark.framework
@pytest.mark.parametrize("path", TRAINED + SPECS, ids=lambda p: p.stem)
def test_verify_against_the_oracle(
    path: Path, tf: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    model = build_file(str(path.relative_to(ROOT))).model
    assert not _failed(_verify(model))


LAYOUT_EDGES = """
model layout_edges {
    input image: float32[3, 7, 6]
    conv2d(4, kernel=3, dilation=2, padding=same) -> softmax
    conv2d(5, kernel=[2, 3], stride=2, dilation=[1, 2], padding=[[1, 0], [2, 1]]) -> leaky_relu(1.5)
    dense(3)
    flatten
    softmax
    dense(4)
}
train { optimizer = sgd(lr=0.5, momentum=0.9) }
"""

MAP_OUTPUT = """
model map_output {
    input image: float32[2, 5, 4]
    conv2d(3, kernel=3, padding=same) -> tanh
    avgpool2d(2, stride=1, padding=same)
    maxpool2d(3, stride=1, padding=1)
    conv2d(2, kernel=[1, 2], padding=[[0, 0], [1, 0]])
}
train {
    loss = mse
    optimizer = sgd(lr=0.1, momentum=0.5, momentum_form=update, nesterov=true)
    schedule = step(every=2, gamma=0.5, unit=step)
}
"""

FLATTEN_OUTPUT = """
model flatten_output {
    input image: float32[2, 3, 4]
    conv2d(3, kernel=2) -> elu(0.5)
    flatten
}
train {
    loss = mse
    optimizer = adam(lr=0.05, eps_placement=uncorrected)
}
"""

SEQUENCES = """
model sequences {
    input tokens: int32[6]
    embedding(11, 4)
    lstm(3, readout=sequence, bias=false)
    gru(5, reset_after=false, recurrent_bias=false, readout=sequence, layers=2)
    dense(2) -> softmax
    flatten
    dense(3)
}
train { optimizer = rmsprop(lr=0.01, centered=true, momentum=0.5) }
"""

# time_distributed over (C, H, W) maps (a step enters the wrapped code in DATA_FORMAT) and over
# a (T, F, G) tensor the script holds as a map (read through as_nchw, written with from_nchw)
TIME_DISTRIBUTED_MAPS = """
model time_distributed_maps {
    input video: float32[3, 2, 6, 5]
    time_distributed(conv2d(3, 3, padding=same, stride=2)) -> relu
    time_distributed(maxpool2d(2, padding=[[0, 1], [0, 0]])) -> time_distributed(softmax)
    time_distributed(dense(2))
    time_distributed(flatten) -> time_distributed(repeat_vector(2))
    time_distributed(gru(3, readout=sequence))
    time_distributed(dense(2))
    flatten
    dense(3)
}
train { optimizer = sgd(lr=0.1, momentum=0.9) }
"""

EDGE_SPECS = {
    "layout_edges": LAYOUT_EDGES,
    "time_distributed_maps": TIME_DISTRIBUTED_MAPS,
    "map_output": MAP_OUTPUT,
    "flatten_output": FLATTEN_OUTPUT,
    "sequences": SEQUENCES,
}


@pytest.mark.framework
@pytest.mark.parametrize("name", list(EDGE_SPECS))
def test_edge_specs_verify(name: str, tf: types.ModuleType) -> None:
    assert not _failed(_verify(build(EDGE_SPECS[name], f"{name}.dl").model))


@pytest.mark.framework
@pytest.mark.parametrize(
    "name,path",
    [
        ("layout_edges", None),
        ("map_output", None),
        ("time_distributed_maps", None),
        ("nonsquare_flatten", "tests/specs/nonsquare_flatten.dl"),
        ("odd_same_stride2", "tests/specs/odd_same_stride2.dl"),
        ("avgpool_padding", "tests/specs/avgpool_padding.dl"),
        ("pool_pad_repeat", "tests/specs/pool_pad_repeat.dl"),
        ("pools_ceil", "tests/specs/pools_ceil.dl"),
        ("mnist_cnn", "examples/mnist_cnn.dl"),
    ],
)
def test_gpu_layout_nchw_through_xla(name: str, path: Optional[str], tf: types.ModuleType) -> None:
    """The GPU layout (NCHW, flatten via NHWC) run on the CPU through XLA, and XLA in NHWC."""
    model = build_file(str(ROOT / path)).model if path else build(EDGE_SPECS[name], name).model
    assert not _failed(_verify_with_flags(model, "--xla", "--data-format", "NCHW"))
    assert not _failed(_verify_with_flags(model, "--xla"))


OPT_SPEC = """
model opt {{
    input x: float32[6]
    dense(5) -> tanh
    dense(3)
}}
train {{
    optimizer = {optimizer}
    schedule  = step(every=2, gamma=0.3, unit=step)
}}
"""
OPTIMIZERS = [
    "sgd(lr=0.2)",
    "sgd(lr=0.2, momentum=0.9, momentum_form=update)",
    "sgd(lr=0.2, momentum=0.9, momentum_form=update, nesterov=true, weight_decay=0.1,"
    " weight_decay_mode=decoupled)",
    "sgd(lr=0.2, momentum=0.9, nesterov=true, weight_decay=0.1)",
    "adam(lr=0.05, eps_placement=uncorrected, eps=1e-3)",
    "adam(lr=0.05, weight_decay=0.1, weight_decay_mode=decoupled)",
    "rmsprop(lr=0.01, centered=true, momentum=0.5)",
    "rmsprop(lr=0.01, centered=true, eps_placement=inside, momentum=0.5, momentum_form=update)",
    "adadelta(lr=1.0, weight_decay=0.01)",
]


@pytest.mark.framework
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_form_verifies(optimizer: str, tf: types.ModuleType) -> None:
    model = build(OPT_SPEC.format(optimizer=optimizer), "opt.dl").model
    assert not _failed(_verify(model))


# ---- fault injection ---------------------------------------------------------------------------

SMALL_CNN = """
model small_cnn {
    input image: float32[2, 7, 5]
    conv2d(3, kernel=3, stride=2, padding=same) -> relu
    dropout(0.5)
    flatten
    dense(4)
}
train { optimizer = sgd(lr=0.05, momentum=0.9) }
"""

SMALL_GRU = """
model small_gru {
    input tokens: int32[9]
    embedding(20, 5)
    gru(4, layers=2)
    dense(3)
}
train { optimizer = sgd(lr=0.1) }
"""


def _inject(source: str, old: str, new: str) -> str:
    assert old in source, f"injection point not found: {old!r}"
    return source.replace(old, new, 1)


FAULTS = [
    pytest.param(
        SMALL_CNN,
        '"conv2d_1/kernel": c["conv2d_1.weight"].transpose(2, 3, 1, 0)',
        '"conv2d_1/kernel": c["conv2d_1.weight"].transpose(3, 2, 1, 0)',
        id="transposed-conv-kernel",
    ),
    pytest.param(
        SMALL_CNN,
        "x = tf.reshape(as_nhwc(x), (-1, 36))",
        "x = tf.reshape(as_nchw(x), (-1, 36))",
        id="flatten-in-nchw-order",
    ),
    pytest.param(
        SMALL_CNN,
        "predict = tf.function(lambda x: model(*x, training=False)",
        "predict = tf.function(lambda x: model(*x, training=True)",
        id="dropout-on-in-evaluation",
    ),
    pytest.param(
        SMALL_GRU,
        "x_r, x_z, x_n = tf.split(xw, 3, axis=-1)",
        "x_z, x_r, x_n = tf.split(xw, 3, axis=-1)",
        id="gru-gate-order",
    ),
]


@pytest.mark.framework
@pytest.mark.parametrize("text,old,new", FAULTS)
def test_injected_fault_fails_forward(text: str, old: str, new: str, tf: types.ModuleType) -> None:
    model = build(text, "fault.dl").model
    source = _inject(compile_model(model, "tensorflow").source, old, new)
    assert "forward vs oracle" in _failed(_verify(model, source))


# ---- the script's contract ---------------------------------------------------------------------


def _public(names: set[str]) -> set[str]:
    """The names a layer label could equal (labels never start with "_")."""
    return {name for name in names if not name.startswith("_")}


@pytest.mark.framework
def test_reserved_names_cover_tf_module_and_the_generated_net(
    tmp_path: Path, tf: types.ModuleType
) -> None:
    """Every attribute of a fresh tf.Module and of the generated Net (its layers' aside) is in
    the static list the backend escapes labels from: a new TensorFlow attribute fails here."""
    module = tf.Module()
    assert _public(set(dir(module)) | set(vars(module))) <= BACKEND.RESERVED_NAMES
    model = model_of(["conv2d(3, kernel=2)", "flatten", "dense(3)"], MAP)
    net = import_script(model, tmp_path).Net()
    layers = {name for name, value in vars(net).items() if isinstance(value, tf.Module)}
    assert layers == {"conv2d_1", "dense_1"}
    assert _public(set(dir(net)) | set(vars(net))) - layers <= BACKEND.RESERVED_NAMES


def import_script(model: Model, folder: Path) -> types.ModuleType:
    """Compile `model` for TensorFlow into `folder` and import it (main() does not run)."""
    compiled = compile_model(model, "tensorflow")
    path = folder / compiled.filename
    path.write_text(compiled.source, encoding="utf-8")
    spec_ = importlib.util.spec_from_file_location(path.stem, path)
    assert spec_ is not None and spec_.loader is not None
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module


def run_script(script: Path, cwd: Path, *args: str) -> dict[str, Any]:
    """Run a script on the CPU in a process of its own (forked from a warm interpreter where
    the suite's zygote is on), in folder `cwd`; its results JSON."""
    argv = ["--device", "cpu", "--results", "r.json", *args]
    code, stderr = V.execute(runtime("tensorflow"), script, argv, 900, cwd)
    assert code == 0, f"{script.name} {' '.join(argv)} failed:\n{stderr[-3000:]}"
    return json.loads((cwd / "r.json").read_text())


@pytest.mark.framework
@pytest.mark.parametrize("path", TRAINED, ids=lambda p: p.stem)
def test_script_trains_and_reports(path: Path, tmp_path: Path, tf: types.ModuleType) -> None:
    model = build_file(str(path)).model
    compiled = compile_model(model, "tensorflow")
    script = tmp_path / compiled.filename
    script.write_text(compiled.source, encoding="utf-8")
    steps = ["--data", "synthetic", "--max-steps", "2", "--warmup", "1"]
    first = run_script(script, tmp_path, *steps, "--weights-out", "w.npz")
    assert validate_results(first) == []
    assert first["steps"] == 2 and first["warmup_steps"] == 1
    assert first["framework"] == "tensorflow" and first["target"] == "tensorflow"
    assert first["framework_version"] == tf.__version__
    assert first["model"] == model.name and first["device"] == "cpu"
    assert first["data_format"] == "NHWC" and first["jit_compile"] is False
    assert first["parameters"] == model.param_count
    assert len(first["epoch_losses"]) == 1 and math.isfinite(first["final_loss"])
    assert first["samples_per_second"] > 0
    assert first["test_samples"] == SYNTHETIC_POOL_BATCHES * model.train.batch
    assert math.isfinite(first["test_loss"]) and reports_accuracy(model, first)
    weights = np.load(tmp_path / "w.npz")
    assert {k: weights[k].shape for k in weights.files} == {p.name: p.shape for p in model.params}
    again = run_script(script, tmp_path, *steps, "--weights-in", "w.npz", "--epochs", "0")
    assert again["steps"] == 0 and again["test_loss"] == pytest.approx(first["test_loss"])


@pytest.mark.framework
def test_weights_errors_and_initialisers(tmp_path: Path, tf: types.ModuleType) -> None:
    text = spec(
        [
            "lstm(8, init=he_uniform, recurrent_init=orthogonal(2.0), bias_init=uniform(0.1))",
            "dense(5, init=truncated_normal(0.1), bias_init=constant(0.5))",
            "dense(3, init=normal(0.2, 1.0))",
        ],
        "float32[4, 6]",
    )
    model = build(text, "inits.dl").model
    module = import_script(model, tmp_path)
    net = module.Net()
    module.init_parameters(net, 3)
    w = dict(module.canonical_weights(net))
    hh = w["lstm_1.weight_hh_l0"] / 2.0  # (32, 8): orthonormal columns, times the gain
    np.testing.assert_allclose(hh.T @ hh, np.eye(8), atol=1e-5)
    assert np.abs(w["lstm_1.weight_ih_l0"]).max() <= math.sqrt(6 / 6)
    forget = w["lstm_1.bias_ih_l0"][8:16]
    assert forget.min() >= 0.9 and forget.max() <= 1.1  # U(+-0.1) + forget_bias 1
    assert np.abs(w["dense_1.weight"]).max() <= 0.2 and np.all(w["dense_1.bias"] == 0.5)
    assert abs(float(w["dense_2.weight"].mean()) - 1.0) < 0.15

    module.save_weights(net, tmp_path / "w.npz")
    arrays = dict(np.load(tmp_path / "w.npz"))
    fresh = module.Net()
    module.load_weights(fresh, tmp_path / "w.npz")
    assert all(np.array_equal(v, w[k]) for k, v in module.canonical_weights(fresh))
    name = module.PARAMETERS[0][0]
    np.savez(tmp_path / "short.npz", **{k: v for k, v in arrays.items() if k != name})
    with pytest.raises(SystemExit, match=f"missing \\['{name}'\\]"):
        module.load_weights(fresh, tmp_path / "short.npz")
    np.savez(tmp_path / "bad.npz", **{**arrays, name: arrays[name][:1]})
    with pytest.raises(SystemExit, match=f"{name} has shape"):
        module.load_weights(fresh, tmp_path / "bad.npz")


@pytest.mark.framework
def test_mnist_mlp_learns_real_mnist_in_one_epoch(tmp_path: Path, tf: types.ModuleType) -> None:
    if not (MNIST_DIR / "mnist.pkl.gz").exists():
        pytest.skip("run `make .cache/mnist/mnist.pkl.gz`")
    model = build_file(str(ROOT / "examples" / "mnist_mlp.dl")).model
    compiled = compile_model(model, "tensorflow")
    script = tmp_path / compiled.filename
    script.write_text(compiled.source, encoding="utf-8")
    started = time.perf_counter()
    results = run_script(script, tmp_path, "--data", str(MNIST_DIR), "--epochs", "1")
    wall = time.perf_counter() - started
    print(
        f"mnist_mlp, TensorFlow, 1 epoch on real MNIST: accuracy {results['test_accuracy']:.4f}, "
        f"epoch {results['epoch_seconds'][0]:.1f} s, {results['samples_per_second']:.0f} samples/s, "
        f"wall {wall:.1f} s"
    )
    assert results["data"] == "mnist" and results["test_samples"] == 10000
    assert results["test_accuracy"] >= 0.95
