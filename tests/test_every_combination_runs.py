"""Every op, attribute form, optimiser form, schedule, loss and profile gives a script that runs
(or a compile-time Unsupported) on every target and every runtime: a table of small specs."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pytest

from dlspec.backends import TARGETS
from dlspec.backends.base import irrelevant_form
from dlspec.codegen.compile import Compiled, compile_model
from dlspec.codegen.interface import INFERENCE, TRAINING, validate_results
from dlspec.errors import SpecError, Unsupported
from dlspec.frontend import values
from dlspec.frontend.load import build
from dlspec.ir.attrs import PROFILES, AttrSpec
from dlspec.ir.inits import SCHEMES
from dlspec.ir.model import TIME_DISTRIBUTED, InitSpec, Layer, Model, wrapped
from dlspec.ir.ops import DTYPES, OPS
from dlspec.ir.settings import LOSSES, OPTIMIZERS, SCHEDULES
from dlspec.passes.resolve import NOT_WRAPPED
from dlspec.runtimes import RUNTIMES, runtime

RUNNER = Path(__file__).resolve().parent / "run_scripts.py"
DATA = "data = synthetic(train_size=8, test_size=8)"
FLAGS = ["--data", "synthetic", "--max-steps", "1", "--warmup", "0", "--device", "cpu"]
IMAGE = "image: float32[2, 12, 12]"
VECTOR = "features: float32[6]"
TOKENS = "tokens: int32[6]"
FRAMES = "frames: float32[5, 3]"


@dataclass(frozen=True)
class Case:
    """One spec: an input, layers, train settings, and the targets expected to refuse it."""

    name: str
    input: str
    layers: tuple[str, ...]
    train: tuple[str, ...] = ()
    top: str = ""
    refused_by: frozenset[str] = frozenset()
    reload: bool = False  # also evaluate the saved weights in a fresh model (native names)
    inference: bool = False  # no train block: the script times forward passes

    def text(self) -> str:
        """The spec's source text."""
        layers = "".join(f"    {line}\n" for line in self.layers)
        batch = () if any(line.startswith("batch") for line in self.train) else ("batch = 4",)
        train = "".join(f"    {line}\n" for line in (*self.train, DATA, *batch))
        top = f"{self.top}\n" if self.top else ""
        model = f"{top}model {self.name} {{\n    input {self.input}\n{layers}}}\n"
        return model if self.inference else f"{model}train {{\n{train}}}\n"


def opt_case(name: str, optimizer: str, *train: str) -> Case:
    """A small dense model trained by one optimiser form (and schedule)."""
    return Case(
        name, VECTOR, ("dense(4) -> relu", "dense(3)"), (f"optimizer = {optimizer}", *train)
    )


CASES: tuple[Case, ...] = (
    # ---- convolutions: every padding form, stride, dilation, activation= sugar -----------------
    Case(
        "conv_padding",
        IMAGE,
        (
            "conv2d(3, kernel=3, padding=valid, activation=relu)",
            "conv2d(3, kernel=3, stride=2, padding=same, activation=tanh)",
            "conv2d(3, kernel=[2, 3], padding=1, activation=sigmoid, init=he_normal)",
            "conv2d(3, kernel=3, padding=[1, 2], bias=false, activation=elu)",
            "conv2d(4, kernel=2, padding=[[1, 0], [0, 1]], activation=leaky_relu)",
            "conv2d(2, kernel=1, activation=none, bias_init=constant(0.1))",
            "softmax",
            "dense(3)",  # over the last axis of a map
            "flatten",
            "dense(3, activation=softmax)",  # the loss must keep it (Keras on TensorFlow)
        ),
        ("optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true, momentum_form=gradient)",),
    ),
    Case(
        "conv_dilation",
        "image: float32[2, 13, 13]",
        (
            "conv2d(3, kernel=3, dilation=2, padding=same)",
            "conv2d(3, kernel=3, dilation=2, padding=[[1, 2], [0, 1]])",
            "conv2d(3, kernel=3, stride=2, dilation=2, padding=same)",  # Keras's Conv2D refuses
            "conv2d(3, kernel=2, stride=[2, 1], dilation=[1, 2], padding=[1, 0])",
            "conv2d(2, kernel=2, stride=2, dilation=2)",
            "flatten",
            "dense(3)",
        ),
        (
            "optimizer = sgd(lr=0.1, momentum=0.9, momentum_form=update)",
            "schedule = step(every=1, gamma=0.5, unit=step)",
        ),
    ),
    # ---- pooling -------------------------------------------------------------------------------
    Case(  # no parameters: torch.optim refuses an empty parameter list
        "pools",
        "image: float32[2, 16, 16]",
        (
            "maxpool2d(2)",
            "maxpool2d(3, stride=1, padding=same)",
            "maxpool2d(2, stride=1, padding=1)",
            "maxpool2d(3, stride=2, padding=[[1, 0], [0, 1]])",
            "avgpool2d(3, stride=1, padding=same)",
            "avgpool2d(3, stride=1, padding=1, count_pad=true)",
            "avgpool2d(2, stride=1, padding=[[0, 1], [1, 0]], count_pad=false)",
            "avgpool2d(3, stride=1, padding=[[1, 1], [0, 2]], count_pad=true)",
            "maxpool2d(2, rounding=ceil)",
        ),
        ("loss = mse", "optimizer = adam(lr=0.01, eps_placement=corrected)"),
    ),
    Case(
        "pools_ceil_overhang",
        "image: float32[2, 7, 7]",
        (
            "maxpool2d(2, rounding=ceil)",
            "avgpool2d(3, stride=2, padding=1, rounding=ceil, count_pad=true)",
            "avgpool2d(2, rounding=ceil, count_pad=false)",
            "flatten",
            "dense(3)",
        ),
    ),
    Case(
        "pools_ceil_asymmetric",
        "image: float32[2, 8, 8]",
        (
            "maxpool2d(3, stride=2, padding=[[1, 0], [1, 0]], rounding=ceil)",
            "avgpool2d(2, stride=2, padding=[[0, 1], [0, 1]], rounding=ceil)",
            "flatten",
            "dense(3)",
        ),
    ),
    # ---- global pooling, zero padding (every padding form), a repeated vector -----------------
    Case(
        "global_pools_zeropad_repeat",
        IMAGE,
        (
            "zeropad2d(1)",
            "conv2d(3, kernel=3) -> relu",
            "zeropad2d([1, 2])",
            "stem: zeropad2d(padding=[[0, 1], [2, 0]])",
            "[stem] -> global_avgpool2d",
            "[stem] -> global_maxpool2d",
            "[global_avgpool2d_1, global_maxpool2d_1] -> add",
            "repeat_vector(4)",
            "gru(3, readout=sequence)",
            "dense(2)",
        ),
        ("loss = mse", "optimizer = sgd(lr=0.1, momentum=0.9)"),
        reload=True,
    ),
    Case(  # a padded map is the model's output: channels-last targets return it in NCHW
        "zeropad_output",
        IMAGE,
        ("conv2d(2, kernel=3)", "zeropad2d([[2, 0], [1, 3]])"),
        ("loss = mse",),
    ),
    # ---- dense, dropout, activations, initialisers --------------------------------------------
    Case(
        "dense_activations",
        VECTOR,
        (
            "dense(5, bias=false, init=he_uniform) -> relu",
            "dropout(0.5)",
            "dense(5, init=lecun_normal, bias_init=constant(0.1)) -> elu",
            "dense(5, init=lecun_uniform, bias_init=orthogonal(2.0)) -> elu(0.5)",  # a vector
            "dense(5, bias_init=ones) -> leaky_relu",
            "leaky_relu(0.2)",
            "tanh",
            "sigmoid",
            "dense(4, init=truncated_normal(0.1), bias_init=normal(0.05)) -> softmax",
            "dense(4, init=orthogonal(0.5), bias_init=uniform(0.1))",
            "dense(3, init=variance_scaling(2.0, fan_out, normal), bias_init=zeros)",
        ),
        ("loss = mse", "optimizer = rmsprop(momentum=0.5, momentum_form=gradient, centered=true)"),
    ),
    # ---- token ids, embedding, recurrent layers -----------------------------------------------
    Case(
        "rnn_tokens",
        TOKENS,
        (
            "embedding(20, 4, init=normal(0.1))",
            "gru(5, layers=2, readout=sequence, recurrent_init=orthogonal(0.5), bias_init=orthogonal)",
            "lstm(4, readout=sequence, forget_bias=0.5, recurrent_bias=false, init=glorot_normal)",
            "gru(3, bias=false, readout=last, init=he_uniform)",
            "dense(2)",
        ),
        (
            "optimizer = adam(lr=0.01, eps_placement=uncorrected)",
            "schedule = inverse_time(decay=0.1, unit=epoch)",
        ),
    ),
    Case(
        "rnn_frames",
        FRAMES,
        (
            "dense(4) -> tanh",
            "lstm(4, layers=2, bias=false, readout=sequence, recurrent_init=orthogonal)",
            "softmax",
            "gru(3, layers=2, readout=sequence, bias_init=uniform(0.1))",
            "flatten",
            "dense(4)",
        ),
        ("loss = mse", "optimizer = adadelta(lr=1.0)", "init = he_normal"),
    ),
    Case(
        "rank4_input",
        "volume: float32[2, 3, 3, 2]",
        ("dense(3) -> softmax", "dropout(0.2)", "flatten", "dense(3)"),
    ),
    Case(
        "gru_reset_before",
        TOKENS,
        ("embedding(20, 4)", "gru(3, reset_after=false, recurrent_bias=false)", "dense(2)"),
    ),
    Case(
        "gru_reset_before_two_biases",
        FRAMES,
        ("gru(3, reset_after=false, recurrent_bias=true)", "dense(2)"),
    ),
    Case(
        "rnn_two_and_one_biases",
        FRAMES,
        (
            "gru(3, readout=sequence, reset_after=true, recurrent_bias=false)",
            "lstm(3, recurrent_bias=true, forget_bias=0.0, bias_init=constant(0.1))",
            "dense(2)",
        ),
    ),
    # ---- profiles --------------------------------------------------------------------------------
    Case(
        "profile_pytorch",
        TOKENS,
        ("embedding(20, 4)", "gru(4)", "flatten", "dense(2)", "leaky_relu"),
        top="defaults = pytorch",
    ),
    Case(
        "profile_pytorch_image",
        IMAGE,
        ("conv2d(3, kernel=3, padding=1)", "avgpool2d(2, padding=1)", "flatten", "dense(2)"),
        ("optimizer = rmsprop", "loss = mse"),
        top="defaults = pytorch",
    ),
    Case(
        "profile_keras",
        "tokens: int64[6]",
        ("embedding(20, 4)", "lstm(4, layers=2)", "leaky_relu", "dense(2)"),
        ("optimizer = adam", "schedule = step(every=1)"),
        top="defaults = keras",
    ),
    Case(
        "profile_keras_sgd",
        IMAGE,
        ("conv2d(3, kernel=3, padding=same)", "avgpool2d(2, padding=same)", "flatten", "dense(2)"),
        ("optimizer = sgd(momentum=0.9, nesterov=true)", "init = glorot_uniform"),
        top="defaults = keras",
    ),
    Case(
        "profile_dlspec",
        IMAGE,
        ("conv2d(3, kernel=3)", "maxpool2d(2)", "flatten", "dense(2)"),
        ("optimizer = sgd(lr=0.1, decay=0.01)",),
        top="defaults = dlspec",
    ),
    # ---- labels a target reserves, or that its helpers would take ----------------------------
    Case(
        "reserved_labels",
        "c1_pad: float32[2, 9, 9]",
        (
            "c1: conv2d(3, kernel=2, padding=[[1, 0], [0, 1]])",
            "forward: conv2d(3, kernel=3, stride=2, dilation=2, padding=same)",
            "forward_pad: relu",
            "forward_subsample: conv2d(3, kernel=1)",
            "training: dropout(0.0)",
            "name: conv2d(2, kernel=1)",
            "name_: leaky_relu(0.0)",
            "parameters: dense(3)",
            "parameters_nchw: sigmoid",
            "variables: flatten",
            "native_variables: dense(4)",
            "to: dense(3)",
            "loss: relu",
            "accuracy: dense(3)",
        ),
        ("seed = 2147483647",),
        reload=True,
    ),
    Case(
        "reserved_labels_rnn",
        "state_dict: int32[6]",
        (
            "cuda: embedding(20, 4)",
            "rnn: gru(3, layers=2, readout=sequence)",
            "rnn_l0: lstm(3, layers=2, recurrent_bias=false, readout=sequence)",
            "rnn_l1: flatten",
            "trainable_variables: dense(2)",
        ),
        reload=True,
    ),
    # ---- graphs: merges, fan-out, tensors named like the forward function's own names ----------
    Case(
        "graph_merges_reserved_tensors",
        "x: float32[2, 6, 6]",
        (
            "self: conv2d(3, kernel=3, padding=same) -> torch: relu",
            "[x] -> tf: conv2d(3, kernel=1)",
            "[torch, tf] -> training: add",
            "[training, x, self] -> layers: concat",
            "[layers, layers] -> data_format: concat(axis=1)",
            "[data_format, data_format] -> F: multiply",
            "inputs: flatten",
            "[inputs] -> keras: dense(4)",
            "[keras, inputs] -> seed: concat(-1)",
            "ops: dense(3) -> dropout: tanh",
            "[ops, dropout] -> channel_axis: add",
            "dense(2)",
        ),
        reload=True,
    ),
    Case(
        "multi_label_unshuffled",
        IMAGE,
        ("conv2d(3, kernel=3, bias=false) -> batchnorm -> relu", "global_avgpool2d -> dense(4)"),
        ("loss = binary_cross_entropy", "shuffle = false"),
    ),
    Case("mae_regression", VECTOR, ("dense(4) -> tanh -> dense(2)",), ("loss = mae",)),
    Case(  # several inputs, each read out of order, one of them ids
        "graph_two_inputs",
        "question: float32[4]\n    input story: int32[6]",
        (
            "[story] -> embedding(20, 4) -> gru(4) -> s: relu",
            "[question] -> dense(4) -> q: tanh",
            "[s, q, question] -> add",
            "[add_1, s] -> concat -> dense(2)",
        ),
        reload=True,
    ),
    Case(
        "batchnorm_forms",
        IMAGE,
        (
            "conv2d(3, kernel=3) -> batchnorm -> relu",
            "batchnorm(0.3, eps=0.01, scale=false, center=true, running_var=biased)",
            "flatten -> dense(4)",
            "batchnorm(scale=true, center=false, running_var=unbiased) -> dense(2)",
        ),
    ),
    # ---- time_distributed: every op it wraps, over (T, ...) sequences of vectors and maps ----
    Case(  # rows: a (T, F, G) tensor, a map to the channels-last targets, in and out
        "time_distributed_rnn",
        "rows: float32[5, 4, 3]",
        (
            "td: time_distributed(lstm(4, recurrent_bias=false))",
            "time_distributed(dense(3, activation=relu))",  # -> time_distributed(relu)
            "time_distributed(layer=repeat_vector(2))",
            "time_distributed(gru(3, layers=2, readout=sequence, reset_after=false))",
            "time_distributed(lstm(3, recurrent_bias=true, bias_init=uniform(0.1)))",
            "time_distributed(softmax) -> time_distributed(dropout(0.5))",
            "time_distributed(tanh) -> time_distributed(sigmoid)",
            "lstm(4)",
            "dense(2)",
        ),
        ("optimizer = adam(lr=0.01)",),
        reload=True,
    ),
    Case(
        "time_distributed_tokens",
        "clips: int32[3, 6]",
        (
            "time_distributed(embedding(20, 4))",
            "time_distributed(flatten)",
            "time_distributed(elu(0.5)) -> time_distributed(leaky_relu(0.2))",
            "time_distributed(relu)",
            "gru(3)",
            "dense(2)",
        ),
    ),
    Case(  # (C, H, W) maps per step: channels-last targets permute the steps for map layers
        "time_distributed_maps",
        "video: float32[3, 2, 6, 6]",
        (
            "time_distributed(conv2d(3, kernel=3, padding=same)) -> relu",
            "time_distributed(zeropad2d([[0, 1], [1, 0]]))",
            "time_distributed(maxpool2d(2, rounding=ceil))",
            "time_distributed(avgpool2d(2, padding=1, count_pad=false))",
            "s: time_distributed(softmax)",
            "[s] -> mean: time_distributed(global_avgpool2d)",
            "[s] -> time_distributed(dense(2)) -> rows: time_distributed(flatten)",
            "[s] -> top: time_distributed(global_maxpool2d)",
            "[mean, rows, top] -> concat",
            "lstm(3)",
            "dense(2)",
        ),
        reload=True,
    ),
    # ---- optimiser forms, schedules ------------------------------------------------------------
    opt_case(
        "sgd_update_nesterov_decoupled",
        "sgd(lr=0.1, momentum=0.9, nesterov=true, momentum_form=update, weight_decay=0.01, "
        "weight_decay_mode=decoupled)",
        "schedule = inverse_time(decay=0.5, unit=step)",
    ),
    opt_case(
        "sgd_gradient_l2",
        "sgd(lr=0.1, momentum=0.9, nesterov=false, momentum_form=gradient, weight_decay=0.01, "
        "weight_decay_mode=l2)",
        "schedule = step(every=2, gamma=0.5, unit=epoch)",
    ),
    # plain SGD, which torch.optim.SGD refuses to be told as nesterov=True
    opt_case("sgd_nesterov_without_momentum", "sgd(lr=0.1, nesterov=true)", "schedule = constant"),
    opt_case(
        "adam_corrected_decoupled",
        "adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7, eps_placement=corrected, "
        "weight_decay=0.01, weight_decay_mode=decoupled)",
    ),
    opt_case(
        "adam_uncorrected_l2",
        "adam(lr=0.01, eps_placement=uncorrected, weight_decay=0.01, weight_decay_mode=l2)",
        "loss = mse",
    ),
    opt_case(
        "rmsprop_inside_update_decoupled",
        "rmsprop(lr=0.01, rho=0.8, eps=1e-6, eps_placement=inside, momentum=0.5, "
        "momentum_form=update, centered=false, weight_decay=0.01, weight_decay_mode=decoupled)",
    ),
    opt_case(
        "rmsprop_outside_centered_l2",
        "rmsprop(lr=0.01, eps_placement=outside, centered=true, weight_decay=0.01, "
        "weight_decay_mode=l2)",
    ),
    opt_case(
        "adadelta_l2",
        "adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01, weight_decay_mode=l2)",
    ),
    opt_case("adadelta_decoupled", "adadelta(weight_decay=0.01, weight_decay_mode=decoupled)"),
    # ---- inference models (no train block): forward passes timed in evaluation mode ------------
    Case(
        "inference_residual",
        IMAGE,
        (
            "conv2d(4, kernel=3, padding=1, bias=false) -> batchnorm -> relu",
            "[image] -> conv2d(4, kernel=1, bias=false) -> shortcut: batchnorm",
            "[relu_1, shortcut] -> add -> relu -> global_avgpool2d",
        ),
        inference=True,
    ),
    Case(
        "inference_tokens",
        TOKENS,
        ("embedding(20, 4)", "lstm(4, readout=sequence)", "dropout(0.5)", "dense(3)"),
        inference=True,
    ),
)

# ---- the table covers what the compiler accepts (no framework) ---------------------------------


def choices(spec: AttrSpec) -> tuple[Any, ...]:
    """The values an attribute can take that change the code: both booleans, or every option
    of a one_of converter; () for numbers, shapes and initialisers."""
    if spec.convert is values.boolean:
        return (False, True)
    options = inspect.getclosurevars(spec.convert).nonlocals.get("options")
    return tuple(options) if isinstance(options, tuple) else ()


# spellings the table must contain somewhere, as the IR keeps no trace of them: padding forms
# become pairs, `activation=` becomes a layer, `decay=` a schedule
SPELLINGS = (
    "padding=valid",
    "padding=same",
    "padding=1",
    "padding=[1, 2]",
    "padding=[[1, 0], [0, 1]]",
    "decay=0.01)",
    "zeropad2d(1)",
    "zeropad2d([1, 2])",
    "zeropad2d(padding=[[0, 1], [2, 0]])",
    "schedule = constant",
    "time_distributed(layer=",
    *(f"defaults = {profile}" for profile in PROFILES),
    *(f"activation={value}" for value in choices(OPS["dense"].attrs["activation"])),
)


@cache
def model_of(case: Case) -> Model:
    """The case's explicit IR."""
    return build(case.text(), f"{case.name}.dl").model


def _layers(models: list[Model]) -> Iterator[Layer]:
    """Every layer, and the layer every time_distributed wraps."""
    for model in models:
        for layer in model.layers:
            yield layer
            if layer.op == TIME_DISTRIBUTED:
                yield wrapped(layer)


def _layer_values(models: list[Model]) -> Iterator[tuple[str, str, Any]]:
    """(op, "", None), (op, stated key, None) and (op, key, value) of every layer (a wrapped
    layer is a value of its wrapper, counted as a layer itself)."""
    for layer in _layers(models):
        yield layer.op, "", None
        yield from ((layer.op, key, None) for key in layer.stated)
        yield from (
            (layer.op, key, value)
            for key, value in layer.attrs.items()
            if not isinstance(value, Layer)
        )


def wrappable(op: str) -> bool:
    """Whether the language lets time_distributed wrap `op`."""
    return OPS[op].category not in ("merge", "wrapper") and op not in NOT_WRAPPED


def _optimizer_values(models: list[Model]) -> Iterator[tuple[str, str, Any]]:
    """The same for optimisers; a form counts only where it matters (momentum_form needs
    momentum, weight_decay_mode needs decay, nesterov needs momentum)."""
    for model in models:
        opt = model.train.optimizer  # type: ignore[union-attr]
        yield opt.kind, "", None
        yield from ((opt.kind, key, None) for key in opt.stated)
        for key, value in opt.attrs.items():
            if not irrelevant_form(opt, key) and not (key == "nesterov" and opt["momentum"] == 0):
                yield opt.kind, key, value


def _schedule_values(models: list[Model]) -> Iterator[tuple[str, str, Any]]:
    """The same for schedules (every key counts as stated: they are few)."""
    for model in models:
        schedule = model.train.schedule  # type: ignore[union-attr]
        yield schedule.kind, "", None
        for key, value in schedule.attrs.items():
            yield from ((schedule.kind, key, None), (schedule.kind, key, value))


def _missing(table: dict[str, dict[str, AttrSpec]], seen: set[tuple[str, str, Any]]) -> list[str]:
    """What `seen` lacks of `table`: names, stated keys, and every choice of every key."""
    missing = [name for name in table if (name, "", None) not in seen]
    for name, attrs in table.items():
        attrs = {k: v for k, v in attrs.items() if k != "activation"}  # sugar: see SPELLINGS
        missing += [f"{name}.{key}" for key in attrs if (name, key, None) not in seen]
        missing += [
            f"{name}.{key}={value}"
            for key, spec in attrs.items()
            for value in choices(spec)
            if (name, key, value) not in seen
        ]
    return missing


def _init_schemes(models: list[Model]) -> set[str]:
    return {
        value.scheme
        for layer in _layers(models)
        for value in layer.attrs.values()
        if isinstance(value, InitSpec)
    }


def test_every_op_attribute_and_value_has_a_case() -> None:
    """Adding an op, an attribute, an option, an optimiser, a schedule, a loss, an initialiser
    or an input dtype without a case here fails this test."""
    models = [model_of(case) for case in CASES]
    missing = _missing({name: op.attrs for name, op in OPS.items()}, set(_layer_values(models)))
    missing += _missing(OPTIMIZERS, set(_optimizer_values(models)))
    missing += _missing(SCHEDULES, set(_schedule_values(models)))
    missing += [loss for loss in LOSSES if loss not in {m.train.loss.kind for m in models}]
    missing += [f"init {s}" for s in SCHEMES if s not in _init_schemes(models)]
    missing += [f"input {d}" for d in DTYPES if d not in {m.inputs[0].dtype for m in models}]
    texts = "".join(case.text() for case in CASES)
    missing += [f"spelling {s!r}" for s in SPELLINGS if s not in texts]
    inside = {wrapped(layer).op for layer in _layers(models) if layer.op == TIME_DISTRIBUTED}
    missing += [f"time_distributed({op})" for op in OPS if wrappable(op) and op not in inside]
    assert not missing, f"no case in CASES covers: {', '.join(missing)}"


def test_every_input_rank_has_a_case() -> None:
    ranks = {(m.inputs[0].dtype, len(m.inputs[0].shape)) for m in map(model_of, CASES)}
    assert {("float32", 1), ("float32", 2), ("float32", 3), ("float32", 4), ("int32", 1)} <= ranks


# ---- compile: a script, or Unsupported problems with positions ---------------------------------


@cache
def compiled(case: Case, target: str) -> Optional[Compiled]:
    """The case's script for `target`, or None when the target refuses it (checked here)."""
    try:
        return compile_model(model_of(case), target)
    except SpecError as err:
        lines = case.text().splitlines()
        for problem in err.problems:
            assert isinstance(problem, Unsupported), f"{case.name}/{target}: {problem}"
            assert 1 <= problem.pos.line <= len(lines) and problem.pos.col >= 1, problem
        return None


@pytest.mark.parametrize("target", list(TARGETS))
def test_refused_exactly_where_the_table_says(target: str) -> None:
    """A target refuses a case only with Unsupported problems at a source position, and only
    the cases the table expects it to refuse."""
    refused = {case.name for case in CASES if compiled(case, target) is None}
    assert refused == {case.name for case in CASES if target in case.refused_by}


# ---- run: one interpreter per runtime, every script's main() --------------------------------


def need(name: str) -> None:
    """Skip when the current interpreter runs this runtime and lacks one of its frameworks."""
    rt = runtime(name)
    if rt.python != (sys.executable,):
        return
    modules = {"pytorch": ["torch"], "tensorflow": ["tensorflow"]}.get(
        name, ["keras", rt.env.get("KERAS_BACKEND", "")]
    )
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} cannot be imported: {name} skipped")


def _jobs(target: str, folder: Path) -> list[dict[str, Any]]:
    """One training job per case the target compiles (and a reload job for `reload` cases)."""
    jobs = []
    for case in CASES:
        script = compiled(case, target)
        if script is None:
            continue
        path = folder / script.filename
        path.write_text(script.source, encoding="utf-8")
        stem = str(folder / case.name)
        argv = [
            *FLAGS,
            "--epochs",
            "1",
            "--weights-out",
            f"{stem}.npz",
            "--results",
            f"{stem}.json",
        ]
        jobs.append({"id": case.name, "script": str(path), "argv": argv})
        if case.reload:
            argv = [*FLAGS, "--epochs", "0", "--weights-in", f"{stem}.npz"]
            argv += ["--results", f"{stem}.reload.json"]
            jobs.append({"id": f"{case.name}.reload", "script": str(path), "argv": argv})
    return jobs


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _run(name: str, jobs: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """Run the jobs in one interpreter of runtime `name`; each job's outcome by id."""
    rt = runtime(name)
    (folder / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    env = {**rt.environment(), "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    command = [*rt.python, str(RUNNER), str(folder / "jobs.json"), str(folder / "out.json")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    print(f"{name}: {len(jobs)} scripts in {time.perf_counter() - start:.1f} s")
    assert (folder / "out.json").exists(), done.stderr[-4000:]
    return json.loads((folder / "out.json").read_text(encoding="utf-8"))


def _results(path: Path, runtime_name: str, kind: str) -> dict[str, Any]:
    """A results JSON, checked against the results schema and the runtime that wrote it."""
    results = json.loads(path.read_text(encoding="utf-8"))
    problems = validate_results(results)
    assert not problems, f"{path.name}: " + "; ".join(problems)
    assert (results["runtime"], results["kind"]) == (runtime_name, kind), path.name
    return results


def _check_results(case: Case, folder: Path, runtime_name: str) -> None:
    """Results that follow the schema; one step, finite losses (or a timed forward pass), the
    canonical weight names; a reload evaluates the same."""
    stem = folder / case.name
    kind = INFERENCE if case.inference else TRAINING
    results = _results(stem.with_suffix(".json"), runtime_name, kind)
    assert results["steps"] == 1, case.name
    if case.inference:
        assert results["timed_samples"] > 0 and results["samples_per_second"] > 0, case.name
    else:
        assert _finite(results["final_loss"]) and _finite(results["test_loss"]), case.name
    with np.load(stem.with_suffix(".npz")) as weights:
        assert sorted(weights.files) == sorted(p.name for p in model_of(case).params), case.name
    if case.reload:
        again = _results(stem.with_suffix(".reload.json"), runtime_name, kind)
        assert again["steps"] == 0, case.name
        assert math.isclose(again["test_loss"], results["test_loss"], rel_tol=1e-5), case.name


@pytest.mark.framework
@pytest.mark.parametrize("name", list(RUNTIMES))
def test_every_script_runs(name: str, tmp_path: Path) -> None:
    """Each compiled case trains one step and evaluates (an inference case times one forward
    batch) on this runtime, writing its results JSON, which follows the results schema, and its
    canonical weights; all in one interpreter (run_scripts.py)."""
    need(name)
    jobs = _jobs(runtime(name).target, tmp_path)
    outcome = _run(name, jobs, tmp_path)
    failures = [
        f"{job['id']}:\n{outcome.get(job['id'], {}).get('error', 'not run')}"
        for job in jobs
        if not outcome.get(job["id"], {}).get("ok")
    ]
    assert not failures, "\n".join(failures)[-12000:]
    ran = {job["id"] for job in jobs}
    for case in CASES:
        if case.name in ran:
            _check_results(case, tmp_path, name)
