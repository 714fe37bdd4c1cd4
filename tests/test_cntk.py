"""The cntk target: Python 2.7 validity, and the CNTK 2.7 facts its code relies on, measured."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import black
import numpy as np
import pytest
from built_runtimes import py2_syntax_error, ready, run_json
from dataset_files import write_pm25

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import validate_results
from dlspec.codegen.render import BLACK_MODE, PY2_BLACK_MODE
from dlspec.errors import Pos
from dlspec.frontend.load import build, build_file
from dlspec.ir.model import Optimizer
from dlspec.oracle.optim import ReferenceOptimizer
from dlspec.verify.run import matrix, verify_model

ROOT = Path(__file__).resolve().parent.parent
GOLDENS = sorted((ROOT / "generated" / "cntk").glob("*.py"))

# a call black explodes one argument a line; the f-string makes it infer a Python 3.6+ file
EXPLODED = (
    "x = f'{1}'\n"
    "result = some_function_with_a_long_name(first_argument_value, second_argument_value, "
    "third_argument_value_long, *remaining_positional_arguments)\n"
)


def test_the_py2_mode_never_adds_a_trailing_comma_after_star_args() -> None:
    # black's default mode writes `*args,` (a Python 2 syntax error) in a py36+ file
    assert "*remaining_positional_arguments,\n" in black.format_str(EXPLODED, mode=BLACK_MODE)
    py2 = black.format_str(EXPLODED, mode=PY2_BLACK_MODE)  # the stated targets win
    assert "*remaining_positional_arguments\n" in py2


def test_cntk_scripts_are_black_formatted_in_the_py2_mode() -> None:
    spec = (ROOT / "examples" / "imdb_gru.dl").read_text(encoding="utf-8")
    source = compile_model(build(spec, "imdb_gru.dl").model, "cntk").source
    assert black.format_str(source, mode=PY2_BLACK_MODE) == source
    assert source.count("from __future__ import absolute_import, division, print_function") == 1
    assert "time.perf_counter()" not in source and "os.cpu_count()" not in source


def test_there_is_a_cntk_golden_for_every_example() -> None:
    assert len(GOLDENS) == len(list((ROOT / "examples").glob("*.dl")))


@pytest.mark.framework
def test_every_cntk_golden_parses_as_python_2() -> None:
    errors = [error for error in map(py2_syntax_error, GOLDENS) if error]
    assert not errors, errors


# Python 2.7 in the cntk runtime: each fact the emitter relies on, measured in float64
FACTS = """
from __future__ import division, print_function
import json, sys
import numpy as np
import cntk as C

F64 = np.float64
XS = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
W0 = np.array([[0.1], [0.2], [-0.3]])
out = {}


def linear():
    x = C.input_variable((3,), dtype=F64)
    with C.default_options(dtype=F64):
        layer = C.layers.Dense(1, init=0, bias=False)
    y = layer(x)
    layer.W.value = W0.copy()
    # the per-sample criterion sum(y^2): a Trainer sums it over the minibatch
    return x, y, layer, C.reduce_sum(C.square(y), axis=C.Axis.all_static_axes())


def train(learner_of, lrs, reset):
    x, y, layer, loss = linear()
    learner = learner_of(y.parameters)
    trainer = C.Trainer(y, (loss, None), [learner])
    for lr in lrs:
        if reset:
            learner.reset_learning_rate(reset(lr))
        trainer.train_minibatch({x: XS})
    return layer.W.value.tolist()


LRS = [0.1, 0.02, 0.05]
per_sample = lambda lr: C.learning_parameter_schedule_per_sample(lr / len(XS))
for unit_gain in (False, True):
    out["momentum_unit_gain_%s" % unit_gain] = train(
        lambda ps: C.momentum_sgd(ps, lr=per_sample(0.3), momentum=C.momentum_schedule(0.9),
                                  unit_gain=unit_gain), LRS, per_sample)
out["sgd_l2"] = train(
    lambda ps: C.sgd(ps, lr=per_sample(0.1), l2_regularization_weight=0.01), [0.1, 0.1], None)
# a per-minibatch schedule reset to another minibatch size keeps the first one's reference
out["sgd_reset_minibatch"] = train(
    lambda ps: C.sgd(ps, lr=C.learning_parameter_schedule(0.1, minibatch_size=50)), [0.1],
    lambda lr: C.learning_parameter_schedule(lr, minibatch_size=len(XS)))
out["sgd_minibatch"] = train(
    lambda ps: C.sgd(ps, lr=C.learning_parameter_schedule(0.1, minibatch_size=len(XS))), [0.1],
    None)

# the scripts' learners: the batch mean of the per-sample criterion, a per-sample rate, batches
# of 2, 3 and 1 samples
def adam_on(criterion_of):
    x, y, layer, loss = linear()
    learner = C.adam(y.parameters, lr=C.learning_parameter_schedule_per_sample(0.1),
                     momentum=C.momentum_schedule(0.8), unit_gain=True,
                     variance_momentum=C.momentum_schedule(0.9), epsilon=0.01)
    trainer = C.Trainer(y, (criterion_of(loss), None), [learner])
    for lr, rows in zip(LRS, ([0, 1], [0, 1, 1], [1])):
        learner.reset_learning_rate(C.learning_parameter_schedule_per_sample(lr))
        trainer.train_minibatch({x: XS[rows]})
    return layer.W.value.tolist()


def adadelta_on():
    x, y, layer, loss = linear()
    learner = C.adadelta(y.parameters, lr=C.learning_parameter_schedule_per_sample(1.0),
                         rho=0.8, epsilon=0.01)
    mean = C.reduce_mean(loss, axis=C.Axis.default_batch_axis())
    trainer = C.Trainer(y, (mean, None), [learner])
    for lr, rows in zip((1.0, 0.5, 0.7), ([0, 1], [0, 1, 1], [1])):
        learner.reset_learning_rate(C.learning_parameter_schedule_per_sample(lr))
        trainer.train_minibatch({x: XS[rows]})
    return layer.W.value.tolist()


# the learners with l2 decay at changing rates over batches of 2, 3 and 1 samples: on the batch
# mean at the rate lr (as Adam and AdaDelta run), and on the sum at lr / n (as SGD runs)
def on_batches(learner_of, summed):
    x, y, layer, loss = linear()
    learner = learner_of(y.parameters)
    criterion = loss if summed else C.reduce_mean(loss, axis=C.Axis.default_batch_axis())
    trainer = C.Trainer(y, (criterion, None), [learner])
    lrs = (1.0, 0.5, 0.7) if learner_of is ADADELTA else LRS
    for lr, rows in zip(lrs, ([0, 1], [0, 1, 1], [1])):
        rate = lr / len(rows) if summed else lr
        learner.reset_learning_rate(C.learning_parameter_schedule_per_sample(rate))
        trainer.train_minibatch({x: XS[rows]})
    return layer.W.value.tolist()


PS = C.learning_parameter_schedule_per_sample
LEARNERS = {
    "momentum": lambda ps: C.momentum_sgd(ps, lr=PS(0.1), momentum=C.momentum_schedule(0.9),
                                          unit_gain=False, l2_regularization_weight=0.05),
    "nesterov": lambda ps: C.nesterov(ps, lr=PS(0.1), momentum=C.momentum_schedule(0.9),
                                      unit_gain=False, l2_regularization_weight=0.05),
    "sgd": lambda ps: C.sgd(ps, lr=PS(0.1), l2_regularization_weight=0.05),
    "adam": lambda ps: C.adam(ps, lr=PS(0.1), momentum=C.momentum_schedule(0.8), unit_gain=True,
                              variance_momentum=C.momentum_schedule(0.9), epsilon=0.01,
                              l2_regularization_weight=0.05),
}
ADADELTA = LEARNERS["adadelta"] = lambda ps: C.adadelta(ps, lr=PS(1.0), rho=0.8, epsilon=0.01,
                                                        l2_regularization_weight=0.05)
for name, learner_of in LEARNERS.items():
    out[name + "_l2_mean"] = on_batches(learner_of, False)
    out[name + "_l2_sum"] = on_batches(learner_of, True)
out["adadelta_mean"] = adadelta_on()
out["adam_mean"] = adam_on(lambda loss: C.reduce_mean(loss, axis=C.Axis.default_batch_axis()))
out["adam_sum"] = adam_on(lambda loss: loss)

# pad=True: where the window's first tap lands (a kernel whose only 1 is its top-left tap)
def first_taps(k, s, n):
    x = C.input_variable((1, n, n), dtype=F64)
    with C.default_options(dtype=F64):
        conv = C.layers.Convolution2D((k, k), 1, pad=True, strides=s, bias=False, init=0)
    y = conv(x)
    w = np.zeros((1, 1, k, k))
    w[0, 0, 0, 0] = 1.0
    conv.W.value = w
    image = np.arange(1, n * n + 1, dtype=F64).reshape(1, 1, n, n)
    return y.eval({x: image})[0, 0].tolist()


out["pad_true"] = dict(("%d_%d_%d" % k, first_taps(*k)) for k in ((2, 1, 3), (4, 1, 4), (3, 2, 4)))
# pooling with pad=True: the cells outside the input are never taken (max of negatives; the
# mean over the real cells only)
def pooled(pool, image):
    x = C.input_variable((1, 4, 4), dtype=F64)
    return pool(x).eval({x: image.reshape(1, 1, 4, 4)})[0, 0].tolist()


GRID = np.arange(1, 17, dtype=F64).reshape(4, 4)
out["maxpool_pad_true"] = pooled(C.layers.MaxPooling((3, 3), strides=1, pad=True), -GRID)
out["avgpool_pad_true"] = pooled(C.layers.AveragePooling((3, 3), strides=1, pad=True), GRID)
out["maxpool_default_shape"] = list(C.layers.MaxPooling((2, 2))(C.input_variable((1, 4, 4))).shape)

# batch norm with time constant 0: what a training pass leaves in the running statistics
with C.default_options(dtype=F64):
    v = C.input_variable((3,), dtype=F64)
    scale, bias = C.Parameter((3,), init=1), C.Parameter((3,), init=0)
    mean, var = C.Constant(0, shape=(3,)), C.Constant(1, shape=(3,))
    count = C.Constant(0, shape=())
    y = C.batch_normalization(v, scale, bias, mean, var, spatial=False,
                              normalization_time_constant=0, blend_time_constant=0, epsilon=1e-5,
                              use_cudnn_engine=False, running_count=count)
data = np.random.RandomState(0).normal(size=(5, 3))
for _ in range(2):  # twice: the running count does not matter
    C.reduce_sum(y * y).grad({v: data}, wrt=[scale])
out["bn_mean"], out["bn_var"] = mean.value.tolist(), var.value.tolist()
out["bn_data"] = data.tolist()

# a dilated convolution: forward runs, the training pass does not, on the CPU
x = C.input_variable((1, 7, 7))
conv = C.layers.Convolution2D((3, 3), 1, dilation=2)
try:
    conv(x).grad({x: np.ones((1, 1, 7, 7), np.float32)}, wrt=conv(x).parameters)
    out["dilated_grad"] = "ran"
except RuntimeError as err:
    out["dilated_grad"] = str(err).splitlines()[0]

# leaky_relu with alpha > 1 (select vs max), and how reduce_max shares a tie's gradient
x = C.input_variable(3)
out["leaky_relu_alpha_2"] = C.leaky_relu(x, alpha=2.0).eval({x: np.array([[-1.0, 0.0, 2.0]], np.float32)}).tolist()
m = C.input_variable((1, 2, 2), needs_gradient=True)
ties = np.array([[[[1.0, 0.0], [0.0, 1.0]]]], np.float32)
out["reduce_max_tie_grad"] = C.reduce_sum(C.reduce_max(m, axis=(1, 2))).grad({m: ties}).tolist()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_json(ready("cntk"), FACTS, {}, tmp_path_factory.mktemp("cntk_facts"))


def _grad(w: np.ndarray) -> np.ndarray:
    """The gradient of the mean of sum(y^2) over the batch XS, y = x @ w."""
    xs = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    return 2 * xs.T @ (xs @ w) / len(xs)


def _momentum(form: str, gain: float) -> np.ndarray:
    w, v = np.array([[0.1], [0.2], [-0.3]]), np.zeros((3, 1))
    for lr in (0.1, 0.02, 0.05):  # a changing rate tells the two momentum forms apart
        g = gain * _grad(w)
        if form == "update":
            v = 0.9 * v + lr * g
            w = w - v
        else:
            v = 0.9 * v + g
            w = w - lr * v
    return w


@pytest.mark.framework
def test_momentum_sgd_is_the_update_form_and_unit_gain_scales_the_gradient(facts: dict) -> None:
    # lr / n per sample on the summed criterion: the mean's rate for a linear update
    np.testing.assert_allclose(facts["momentum_unit_gain_False"], _momentum("update", 1), 0, 1e-15)
    assert (
        np.abs(np.array(facts["momentum_unit_gain_False"]) - _momentum("gradient", 1)).max() > 0.1
    )
    # CNTK's default unit_gain=True: v = mu * v + (1 - mu) * lr * g
    np.testing.assert_allclose(facts["momentum_unit_gain_True"], _momentum("update", 0.1), 0, 1e-15)


def _adam(batches: list[list[int]]) -> np.ndarray:
    """Uncorrected Adam (b1 0.8, b2 0.9, eps 0.01) on the mean gradient of each batch's rows."""
    xs = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    w, m, v = np.array([[0.1], [0.2], [-0.3]]), np.zeros((3, 1)), np.zeros((3, 1))
    for t, (lr, rows) in enumerate(zip((0.1, 0.02, 0.05), batches, strict=True), 1):
        g = 2 * xs[rows].T @ (xs[rows] @ w) / len(rows)
        m, v = 0.8 * m + 0.2 * g, 0.9 * v + 0.1 * g * g
        w = w - lr * np.sqrt(1 - 0.9**t) / (1 - 0.8**t) * m / (np.sqrt(v) + 0.01)
    return w


@pytest.mark.framework
def test_adam_on_the_batch_mean_is_the_uncorrected_form(facts: dict) -> None:
    # a per-sample rate applies to the gradient given: lr on the batch mean's is the rate, for
    # any batch size
    want = _adam([[0, 1], [0, 1, 1], [1]])
    np.testing.assert_allclose(facts["adam_mean"], want, 0, 1e-15)
    # on the summed criterion eps meets n * sqrt(v): a per-sample rate cannot make it canonical
    assert np.abs(np.array(facts["adam_sum"]) - want).max() > 1e-3


@pytest.mark.framework
def test_adadelta_on_the_batch_mean_is_the_canonical_form(facts: dict) -> None:
    xs = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    w, eg, ed = np.array([[0.1], [0.2], [-0.3]]), np.zeros((3, 1)), np.zeros((3, 1))
    for lr, rows in zip((1.0, 0.5, 0.7), ([0, 1], [0, 1, 1], [1]), strict=True):
        g = 2 * xs[rows].T @ (xs[rows] @ w) / len(rows)
        eg = 0.8 * eg + 0.2 * g * g
        delta = np.sqrt(ed + 0.01) / np.sqrt(eg + 0.01) * g
        ed = 0.8 * ed + 0.2 * delta * delta
        w = w - lr * delta
    np.testing.assert_allclose(facts["adadelta_mean"], w, 0, 1e-15)


@pytest.mark.framework
def test_l2_regularization_weight_is_the_coupled_decay_on_the_mean(facts: dict) -> None:
    w = np.array([[0.1], [0.2], [-0.3]])
    for _ in range(2):
        w = w - 0.1 * (_grad(w) + 0.01 * w)
    np.testing.assert_allclose(facts["sgd_l2"], w, 0, 1e-15)


SGD = {"momentum": 0.9, "nesterov": False, "momentum_form": "update"}
L2 = {"weight_decay": 0.05, "weight_decay_mode": "l2"}
LEARNER_FORMS = {  # the canonical form each measured learner computes, but for its decay
    "momentum": ("sgd", {**SGD, **L2}),
    "nesterov": ("sgd", {**SGD, "nesterov": True, **L2}),
    "sgd": ("sgd", {**SGD, "momentum": 0.0, **L2}),
    "adam": (
        "adam",
        {"beta1": 0.8, "beta2": 0.9, "eps": 0.01, "eps_placement": "uncorrected", **L2},
    ),
    "adadelta": ("adadelta", {"rho": 0.8, "eps": 0.01, **L2}),
}


def _oracle_on_batches(learner: str, decay_per_sample: bool = False) -> np.ndarray:
    """The oracle's update on each batch's mean gradient (batches of 2, 3 and 1 samples); the
    decay wd times the batch's samples with `decay_per_sample`."""
    kind, attrs = LEARNER_FORMS[learner]
    lrs = (1.0, 0.5, 0.7) if kind == "adadelta" else (0.1, 0.02, 0.05)
    xs = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    opt = ReferenceOptimizer(Optimizer(kind, {"lr": lrs[0], **attrs}, Pos()))
    w = {"w": np.array([[0.1], [0.2], [-0.3]])}
    for lr, rows in zip(lrs, ([0, 1], [0, 1, 1], [1]), strict=True):
        opt.attrs["weight_decay"] = attrs["weight_decay"] * (len(rows) if decay_per_sample else 1)
        g = 2 * xs[rows].T @ (xs[rows] @ w["w"]) / len(rows)
        w = opt.step(w, {"w": g}, lr)
    return w["w"]


@pytest.mark.framework
@pytest.mark.parametrize("learner", sorted(LEARNER_FORMS))
def test_l2_regularization_weight_is_weighed_by_the_samples_of_the_minibatch(
    facts: dict, learner: str
) -> None:
    # every learner adds wd * (samples) * w to the gradient it is given (LearnerBase::PreProcess),
    # and CNTK counts the batch mean's samples too: on the mean the decay is n times too strong
    on_mean = facts[learner + "_l2_mean"]
    np.testing.assert_allclose(on_mean, _oracle_on_batches(learner, True), 0, 1e-14)
    assert np.abs(np.array(on_mean) - _oracle_on_batches(learner)).max() > 1e-4


@pytest.mark.framework
@pytest.mark.parametrize("learner", ["momentum", "nesterov", "sgd"])
def test_sgd_learners_on_the_sum_at_lr_over_n_compute_the_canonical_l2_forms(
    facts: dict, learner: str
) -> None:
    # why the scripts' SGD learners train on the summed criterion at the per-sample rate lr / n:
    # (lr / n) * (sum of g + wd * n * w) = lr * (mean g + wd * w), at any batch size; and
    # nesterov(unit_gain=False) is the update form's Nesterov
    np.testing.assert_allclose(facts[learner + "_l2_sum"], _oracle_on_batches(learner), 0, 1e-14)


@pytest.mark.framework
def test_pad_true_pools_never_take_the_cells_outside_the_input(facts: dict) -> None:
    grid = np.arange(1, 17).reshape(4, 4)
    assert facts["maxpool_pad_true"][0][0] == -1  # max over -1, -2, -5, -6: no zero padding
    assert facts["avgpool_pad_true"][0][0] == grid[:2, :2].mean()  # over the 4 real cells
    assert facts["avgpool_pad_true"][1][1] == grid[:3, :3].mean()


@pytest.mark.framework
def test_a_reset_minibatch_schedule_keeps_its_first_reference_size(facts: dict) -> None:
    # why the scripts give per-sample rates: a short last batch would be mis-scaled otherwise
    want = np.array([[0.1], [0.2], [-0.3]]) - 0.1 * _grad(np.array([[0.1], [0.2], [-0.3]]))
    np.testing.assert_allclose(facts["sgd_minibatch"], want, 0, 1e-15)
    assert np.abs(np.array(facts["sgd_reset_minibatch"]) - want).max() > 0.1


@pytest.mark.framework
def test_pad_true_is_same_but_for_odd_kernels_at_stride_2(facts: dict) -> None:
    # even kernels at stride 1: the extra cell after, as TensorFlow's 'same'; a 3-kernel at
    # stride 2 over 4 cells (total 1) pads 1 before where 'same' pads 0: the scripts write C.pad
    image = np.arange(1, 17).reshape(4, 4)
    assert facts["pad_true"]["2_1_3"] == np.arange(1, 10).reshape(3, 3).tolist()  # 0 before
    assert facts["pad_true"]["4_1_4"][1][1:] == [1, 2, 3]  # 1 before, 2 after
    assert facts["pad_true"]["3_2_4"] == [[0, 0], [0, image[1, 1]]]  # windows start at -1, 1


@pytest.mark.framework
def test_max_pooling_strides_default_to_one(facts: dict) -> None:
    assert facts["maxpool_default_shape"] == [1, 3, 3]  # not [1, 2, 2]: stride 1, not the window


@pytest.mark.framework
def test_batch_norm_time_constant_0_leaves_the_batch_mean_and_unbiased_variance(
    facts: dict,
) -> None:
    data = np.array(facts["bn_data"])
    np.testing.assert_allclose(facts["bn_mean"], data.mean(axis=0), 0, 1e-15)
    np.testing.assert_allclose(facts["bn_var"], data.var(axis=0, ddof=1), 0, 1e-14)


@pytest.mark.framework
def test_cntk_has_no_dilated_convolution_on_the_cpu(facts: dict) -> None:
    # why the scripts spread the kernel out themselves (DilatedConv2D)
    assert facts["dilated_grad"].startswith("Dilated convolution on CPU is not yet implemented")


# ---- padding: CNTK's own where its windows are the canonical ones, C.pad elsewhere ------------

PADS = """
model cntk_pads {
    input image: float32[2, 8, 7]
    conv2d(3, kernel=3, padding=same) -> relu
    conv2d(3, kernel=2, padding=same)
    conv2d(4, kernel=3, stride=2, padding=same) -> tanh
    maxpool2d(2, stride=1, padding=same)
    avgpool2d(3, stride=1, padding=same)
    avgpool2d(3, stride=1, padding=1, count_pad=true)
    maxpool2d(3, stride=2, padding=[[1, 1], [0, 0]])
    conv2d(3, kernel=[1, 3], padding=[0, 1]) -> elu
    flatten
    dense(3)
}
train {
    optimizer = sgd(lr=0.05, momentum=0.9, nesterov=true)
    schedule  = step(every=2, gamma=0.5, unit=step)
    batch     = 4
}
"""

# each layer's forward lines and pad= as the cntk script writes them
PAD_FORMS = {
    "conv2d_1": "pad=True",  # 3x3 at stride 1: CNTK's (1, 1) is `same`'s
    "conv2d_2": "C.pad",  # even kernel: CNTK pads (0, 1) too, but asymmetric pads leave MKL
    "conv2d_3": "C.pad",  # 8 rows at stride 2: `same` pads (0, 1), CNTK (1, 0)
    "maxpool2d_1": "pad=True",  # a pool's asymmetric (0, 1) is CNTK's own
    "avgpool2d_1": "pad=True",  # count_pad=false: CNTK never counts the cells outside
    "avgpool2d_2": "average_pool",  # count_pad=true: written out
    "maxpool2d_2": "pad=(True, False)",  # rows padded (1, 1) at stride 2 over 4, columns not
    "conv2d_4": "C.pad",  # a 3-wide window over 1 column: CNTK refuses it unpadded
}


def test_the_recurrent_bias_leaves_the_loop_but_for_a_reset_after_gru_s_b_hn() -> None:
    """The report names each RNN whose bias_hh joins bias_ih outside the loop; the script's GRU
    keeps b_hn alone in the loop with reset_after, none without, reads its two input projections
    as sequences of their own and takes each recurrent product with its own times, and its LSTM
    adds no bias in the loop (verify, above, checks the arithmetic with non-zero biases)."""
    compiled = compile_model(build_file(str(ROOT / "tests/specs/rnn_bias_forms.dl")).model, "cntk")
    notes = [line for line in compiled.report.splitlines() if "bias_hh added" in line]
    assert [line.split(":")[0].strip(" -") for line in notes] == ["gru_1", "lstm_1"]
    assert not any("b_hn stays" in line for line in notes)
    imdb = compile_model(build_file(str(ROOT / "examples/imdb_gru.dl")).model, "cntk")
    assert "b_hn stays in the step" in imdb.report
    source = imdb.source
    gru = source[source.index("def gru(") : source.index("def lstm(")]
    lstm = source[source.index("def lstm(") : source.index("class Net(")]
    # the GRU: b_hn alone in the loop with reset_after, the [r, z] and n input projections apart
    # (no slice of a sequence in the loop), each recurrent product its own times
    assert "b_in if reset_after else summed(b_in, b_hn)" in gru
    assert "gate(rz, 0, u) * summed(C.times(h, w_n), b_hn)" in gru
    assert "rz = C.sigmoid(gi_rz + C.times(h, w_rz))" in gru
    assert "return looped(cell, u, 1, gi_rz, gi_n)" in gru
    assert "a = gi + C.times(h, w_hh)\n" in lstm  # the LSTM: no bias in the loop
    assert "return looped(cell, u, 2, affine(seq, w_ih, summed(b_ih, b_hh)))" in lstm


def test_the_cntk_script_uses_cntk_padding_only_where_its_windows_are_canonical() -> None:
    source = compile_model(build(PADS, "cntk_pads.dl").model, "cntk").source
    body = source[source.index("class Net(object)") : source.index("def parameter(")]
    forward = body[body.index("    def forward(") :].splitlines()
    for name, form in PAD_FORMS.items():
        module = body[body.index(f"self.{name} = ") :]
        module = module[: module.index(f'name="{name}"')]
        at = next(
            i
            for i, line in enumerate(forward)
            if f"self.{name}(" in line or f"self.{name}," in line
        )
        before, call = forward[at - 1], forward[at]  # the line before: a C.pad or not
        if form == "C.pad":
            assert "pad=False" in module and "C.pad(x" in before, name
        elif form == "average_pool":
            assert "pad=False" in module and "average_pool(self" in call, name
        else:
            assert form in module and "C.pad" not in before + call, name


# SGD as the CIFAR VGG, AlexNet and VGG-A examples train: PyTorch's gradient momentum form at a
# constant rate with l2 decay, on C.momentum_sgd (float64: the decay is 1e-5 of a weight per step)
SGD_L2 = """
model cntk_sgd_l2 {
    input image: float32[2, 6, 6]
    conv2d(3, kernel=3, padding=same) -> relu
    maxpool2d(2)
    flatten
    dense(3)
}
train {
    optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=0.01)
    batch     = 4
}
"""
# an RNN mapped over rows (time_distributed: the steps are axis 1), every step read out
ROWS_RNN = """
model rows_rnn {
    input rows: float32[3, 5, 2]
    time_distributed(gru(3, layers=2, readout=sequence))
    time_distributed(lstm(2))
    flatten
    dense(2)
}
train {
    optimizer = sgd(lr=0.1)
    batch = 4
}
"""
VERIFIED = {  # name -> (spec text or file, verify precision)
    "cntk_pads": (PADS, "spec"),
    "rows_rnn": (ROWS_RNN, "spec"),
    "rnn_bias_forms": ("tests/specs/rnn_bias_forms.dl", "spec"),
    "stacked_rnn": ("tests/specs/stacked_rnn.dl", "spec"),
    "cntk_sgd_l2": (SGD_L2, "float64"),
    "odd_same_stride2": ("tests/specs/odd_same_stride2.dl", "spec"),
    "pools_ceil": ("tests/specs/pools_ceil.dl", "spec"),
}


def test_sgd_l2_at_a_constant_rate_runs_on_a_learner() -> None:
    source = compile_model(build(SGD_L2, "cntk_sgd_l2.dl").model, "cntk").source
    assert "class LearnerOptimizer" in source and "class CanonicalOptimizer" not in source
    assert "C.momentum_sgd(" in source and "l2_regularization_weight=0.01" in source


@pytest.mark.framework
@pytest.mark.parametrize("spec", sorted(VERIFIED))
def test_cntk_padding_learner_and_rnn_forms_pass_verify(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CNTK's own padding and the explicit C.pad fallback (asymmetric and strided `same` pads,
    ceil pools), the SGD learner with l2 decay, and the RNN helpers (both GRU forms, both bias
    forms, stacked, mapped over rows), against the oracle, training included."""
    ready("cntk")
    monkeypatch.chdir(ROOT)
    text, precision = VERIFIED[spec]
    model = build_file(text).model if text.endswith(".dl") else build(text, f"{spec}.dl").model
    checks = verify_model(model, ["cntk"], steps=3, precision=precision)
    print(matrix(checks))
    assert checks and all(c.passed for c in checks)


# ---- real data files read under Python 2.7 -------------------------------------------------------


# mnist.pkl.gz and CIFAR-10's batches were pickled by Python 2 and NumPy 1.x (numpy.core); the
# py3 writers of dataset_files.py pickle NumPy 2 arrays (numpy._core), which NumPy 1.16 cannot
# load, so these are written in the runtime itself, as the originals were
PY2_WRITER = """
import gzip, json, pickle, sys
import numpy as np

folder = json.loads(sys.argv[1])
rng = np.random.RandomState(0)
parts = [((rng.randint(0, 256, size=(n, 784)) / 256.0).astype(np.float32),
          rng.randint(0, 10, size=n).astype(np.int64)) for n in (4, 2, 3)]
with gzip.open(folder + "/mnist.pkl.gz", "wb") as f:
    pickle.dump(tuple(parts), f, protocol=2)
for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
    n = 3 if name == "test_batch" else 2
    batch = {b"labels": [int(v) for v in rng.randint(0, 10, size=n)],
             b"data": rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)}
    with open(folder + "/" + name, "wb") as f:
        pickle.dump(batch, f, protocol=2)
print(json.dumps("ok"))
"""


def _write_py2_pickles(folder: Path) -> None:
    run_json(ready("cntk"), PY2_WRITER, str(folder), folder)


def _write_pm25(folder: Path) -> None:
    write_pm25(folder / "pm25.npz", 6, 3, np.random.RandomState(0))


DATA_CASES = {  # example -> (writer, --data relative to the folder, test samples)
    "mnist_mlp": (_write_py2_pickles, ".", 3),
    "keras_cifar10_cnn": (_write_py2_pickles, ".", 3),
    "pm25_lstm": (_write_pm25, "pm25.npz", 3),
}


@pytest.mark.framework
@pytest.mark.parametrize("example", sorted(DATA_CASES))
def test_the_cntk_scripts_read_real_data_files_under_python_2(example: str, tmp_path: Path) -> None:
    rt = ready("cntk")
    writer, data, samples = DATA_CASES[example]
    writer(tmp_path)
    out = tmp_path / "results.json"
    script = ROOT / "generated" / "cntk" / f"{example}_cntk.py"
    flags = ["--data", str(tmp_path / data), "--epochs", "1", "--max-steps", "1", "--warmup", "0"]
    done = subprocess.run(
        rt.command(str(script), *flags, "--device", "cpu", "--results", str(out)),
        capture_output=True,
        text=True,
        env=rt.environment(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text(encoding="utf-8"))
    assert validate_results(results) == []
    assert results["python_version"].startswith("2.7.") and results["runtime"] == "cntk"
    assert results["data"] != "synthetic" and results["test_samples"] == samples


@pytest.mark.framework
def test_leaky_relu_selects_and_reduce_max_gives_each_tie_the_whole_gradient(facts: dict) -> None:
    # docs/semantics.md: canonical leaky_relu selects (max(x, 2x) would keep -1); canonical
    # global_maxpool2d splits dy over tied maxima, CNTK's reduce_max does not
    assert facts["leaky_relu_alpha_2"] == [[-2.0, 0.0, 2.0]]
    assert facts["reduce_max_tie_grad"] == [[[[1.0, 0.0], [0.0, 1.0]]]]
