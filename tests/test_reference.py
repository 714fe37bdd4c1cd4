"""The NumPy oracle: hand-computed ops, finite-difference gradients, optimiser formulas."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Callable

import numpy as np
import pytest

from dlspec.errors import Pos
from dlspec.frontend.load import build
from dlspec.ir.model import Model, Optimizer, Schedule
from dlspec.oracle import forward as R
from dlspec.oracle import grad as G
from dlspec.oracle import optim as O

Array = np.ndarray


def img(rows: list[list[float]]) -> Array:
    """A (1, 1, H, W) float64 image."""
    return np.array(rows, dtype=np.float64)[None, None]


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


X3 = img([[1, 2, 3], [4, 5, 6], [7, 8, 9]])


# ---- convolution -----------------------------------------------------------------------------


def test_conv2d_asymmetric_pad_and_stride() -> None:
    # pad one row on top and one column on the right, stride 2; padded input:
    # 0 0 0 0 / 1 2 3 0 / 4 5 6 0 / 7 8 9 0; kernel [[1, 2], [3, 4]], bias 0.5
    w = img([[1, 2], [3, 4]])
    out = R.conv2d(X3, w, np.array([0.5]), (2, 2), ((1, 0), (0, 1)), (1, 1))
    # [0,0]: 1*3 + 2*4 = 11; [0,1]: 3*3 = 9; [1,0]: 4+10+21+32 = 67; [1,1]: 6*1 + 9*3 = 33
    np.testing.assert_array_equal(out, img([[11.5, 9.5], [67.5, 33.5]]))


def test_conv2d_dilation() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out = R.conv2d(x, np.ones((1, 1, 2, 2)), None, (1, 1), ((0, 0), (0, 0)), (2, 2))
    # taps two apart: [0,0] = 0 + 2 + 8 + 10 = 20, then 24, 36, 40
    np.testing.assert_array_equal(out, img([[20, 24], [36, 40]]))


def test_conv2d_sums_input_channels_per_output_channel() -> None:
    x = np.array([2.0, 3.0]).reshape(1, 2, 1, 1)
    w = np.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 2, 1, 1)
    out = R.conv2d(x, w, np.array([1.0, 2.0]), (1, 1), ((0, 0), (0, 0)), (1, 1))
    np.testing.assert_array_equal(out.reshape(-1), [2 + 30 + 1, 200 + 3000 + 2])


@pytest.mark.parametrize(
    "size, kernel, stride, pads, rounding, expected",
    [
        (5, 2, 2, (0, 0), "floor", 2),
        (5, 2, 2, (0, 0), "ceil", 3),
        (4, 2, 2, (1, 1), "ceil", 3),
        # a ceil window would start inside the after-padding: dropped
        (2, 3, 2, (0, 2), "ceil", 1),
        (7, 3, 2, (1, 1), "floor", 4),
        (8, 3, 2, (1, 1), "ceil", 5),
    ],
)
def test_window_count(
    size: int, kernel: int, stride: int, pads: tuple[int, int], rounding: str, expected: int
) -> None:
    assert R.window_count(size, kernel, stride, 1, pads, rounding) == expected


# ---- pooling ---------------------------------------------------------------------------------


def test_maxpool_padding_never_wins() -> None:
    x = img([[-5, -2], [-3, -4]])
    out = R.maxpool2d(x, (2, 2), (1, 1), ((1, 0), (1, 0)), "floor")
    # zero padding would give 0, 0, 0, -2
    np.testing.assert_array_equal(out, img([[-5, -2], [-3, -2]]))


def test_maxpool_ceil_clips_the_last_window() -> None:
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    ceil = R.maxpool2d(x, (2, 2), (2, 2), ((0, 0), (0, 0)), "ceil")
    floor = R.maxpool2d(x, (2, 2), (2, 2), ((0, 0), (0, 0)), "floor")
    np.testing.assert_array_equal(ceil, img([[6, 8, 9], [16, 18, 19], [21, 23, 24]]))
    np.testing.assert_array_equal(floor, img([[6, 8], [16, 18]]))


@pytest.mark.parametrize(
    "count_pad, expected",
    [
        # window sums 1, 2+3, 4+7, 5+6+8+9 over 4 cells, or over the 1, 2, 2, 4 real cells
        (True, [[0.25, 1.25], [2.75, 7.0]]),
        (False, [[1.0, 2.5], [5.5, 7.0]]),
    ],
)
def test_avgpool_corner_windows(count_pad: bool, expected: list[list[float]]) -> None:
    out = R.avgpool2d(X3, (2, 2), (2, 2), ((1, 1), (1, 1)), "floor", count_pad)
    np.testing.assert_allclose(out, img(expected), rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "count_pad, expected",
    [
        # padded input is 3x3 (pad before only); the ceil overhang (row/col 3) never counts
        (True, [[1 / 4, 2 / 2], [3 / 2, 4 / 1]]),
        (False, [[1.0, 2.0], [3.0, 4.0]]),
    ],
)
def test_avgpool_ceil_overhang_is_never_counted(
    count_pad: bool, expected: list[list[float]]
) -> None:
    x = img([[1, 2], [3, 4]])
    out = R.avgpool2d(x, (2, 2), (2, 2), ((1, 0), (1, 0)), "ceil", count_pad)
    np.testing.assert_allclose(out, img(expected), rtol=0, atol=1e-15)


def test_avgpool_ceil_without_padding() -> None:
    out = R.avgpool2d(X3, (2, 2), (2, 2), ((0, 0), (0, 0)), "ceil", True)
    np.testing.assert_allclose(out, img([[3.0, 4.5], [7.5, 9.0]]), rtol=0, atol=1e-15)


def test_global_pools_by_hand() -> None:
    x = np.stack([X3[0, 0], -X3[0, 0]])[None]  # (1, 2, 3, 3)
    np.testing.assert_array_equal(R.global_avgpool2d(x), [[5.0, -5.0]])
    np.testing.assert_array_equal(R.global_maxpool2d(x), [[9.0, -1.0]])


def test_global_maxpool_ties_share_the_gradient() -> None:
    x = img([[3, 1], [3, 0]])
    np.testing.assert_array_equal(
        G.global_maxpool2d_backward(x, np.array([[2.0]])), img([[1, 0], [1, 0]])
    )
    np.testing.assert_array_equal(
        G.global_avgpool2d_backward(x, np.array([[2.0]])), img([[0.5, 0.5], [0.5, 0.5]])
    )


def test_zeropad_adds_zeros_before_and_after() -> None:
    out = R.zeropad2d(img([[1, 2]]), ((1, 0), (0, 2)))
    np.testing.assert_array_equal(out, img([[0, 0, 0, 0], [1, 2, 0, 0]]))


def test_repeat_vector_copies_along_a_new_axis() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(R.repeat_vector(x, 3)[1], [[3, 4], [3, 4], [3, 4]])
    dout = np.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_array_equal(G.repeat_vector_backward(dout), [[6, 9], [24, 27]])


# ---- dense, flatten, embedding ---------------------------------------------------------------


def test_dense_uses_out_in_layout() -> None:
    w = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])
    out = R.dense(np.array([[1.0, 1.0, 2.0]]), w, np.array([0.0, 10.0]))
    np.testing.assert_array_equal(out, [[9.0, 10.0]])


def test_flatten_is_channel_major() -> None:
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(R.flatten(x), [[0, 1, 2, 3, 4, 5, 6, 7]])
    assert R.flatten(x)[0, 4] == x[0, 1, 0, 0]


def test_embedding_rows_and_range() -> None:
    table = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    np.testing.assert_array_equal(R.embedding(np.array([[2, 0]]), table), [[[4, 5], [0, 1]]])
    with pytest.raises(R.OracleError, match=r"\[0, 3\)"):
        R.embedding(np.array([[3]]), table)


# ---- recurrent -------------------------------------------------------------------------------

GRU_W_IH = np.array([[0.5], [-0.5], [1.0]])  # rows r, z, n
GRU_W_HH = np.array([[1.0], [1.0], [1.0]])
GRU_B_HH = np.array([0.0, 0.0, 0.5])


def test_gru_one_step_by_hand() -> None:
    # h0 = 0: r = s(0.5), z = s(-0.5), n = tanh(1 + r * 0.5), h = (1 - z) * n
    hs = R.gru_layer(np.ones((1, 1, 1)), GRU_W_IH, GRU_W_HH, np.zeros(3), GRU_B_HH)
    assert hs[0, 0, 0] == pytest.approx(0.5381697616440805, abs=1e-15)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_two_steps_reset_placement(reset_after: bool) -> None:
    x = np.array([1.0, -2.0]).reshape(1, 2, 1)
    hs = R.gru_layer(x, GRU_W_IH, GRU_W_HH, np.zeros(3), GRU_B_HH, reset_after)
    # h0 = 0: reset after keeps r * b_hn, reset before adds b_hn whole (W_hn (r * 0) = 0)
    h1 = (1 - sig(-0.5)) * math.tanh(1 + (sig(0.5) if reset_after else 1.0) * 0.5)
    r, z = sig(0.5 * -2 + h1), sig(-0.5 * -2 + h1)
    if reset_after:
        n = math.tanh(-2 + r * (h1 + 0.5))  # r * (W_hn h + b_hn)
    else:
        n = math.tanh(-2 + r * h1 + 0.5)  # W_hn (r * h) + b_hn
    np.testing.assert_allclose(hs[0, :, 0], [h1, (1 - z) * n + z * h1], rtol=0, atol=1e-15)


def test_lstm_two_steps_by_hand() -> None:
    w_ih = np.array([[0.5], [-0.5], [1.0], [2.0]])  # rows i, f, g, o
    w_hh = np.array([[1.0], [-1.0], [0.5], [0.25]])
    b_ih = np.array([0.0, 1.0, 0.0, 0.0])
    x = np.array([1.0, 0.5]).reshape(1, 2, 1)
    hs = R.lstm_layer(x, w_ih, w_hh, b_ih, np.zeros(4))
    i, g, o = sig(0.5), math.tanh(1.0), sig(2.0)
    c1 = i * g  # f * c0 vanishes
    h1 = o * math.tanh(c1)
    i2, f2 = sig(0.25 + h1), sig(-0.25 + 1.0 - h1)
    g2, o2 = math.tanh(0.5 + 0.5 * h1), sig(1.0 + 0.25 * h1)
    c2 = f2 * c1 + i2 * g2
    np.testing.assert_allclose(hs[0, :, 0], [h1, o2 * math.tanh(c2)], rtol=0, atol=1e-15)
    assert h1 == pytest.approx(0.3888498844368542, abs=1e-15)


RNN_SPEC = """
model r {{
  input x: float32[4, 3]
  {op}(2, layers=2, readout={readout})
}}
train {{ loss = mse }}
"""


@pytest.mark.parametrize("op", ["gru", "lstm"])
def test_stacked_rnn_feeds_its_sequence_up(op: str) -> None:
    seq = build(RNN_SPEC.format(op=op, readout="sequence")).model
    last = build(RNN_SPEC.format(op=op, readout="last")).model
    weights = random_weights(seq, 3)
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    layer_fn = R.gru_layer if op == "gru" else R.lstm_layer
    h = layer_fn(x, *R.rnn_params(seq.layers[0], weights, 0))
    h = layer_fn(h, *R.rnn_params(seq.layers[0], weights, 1))
    np.testing.assert_allclose(R.forward(seq, weights, x), h, rtol=0, atol=1e-15)
    np.testing.assert_allclose(R.forward(last, weights, x), h[:, -1], rtol=0, atol=1e-15)


def test_time_distributed_applies_one_layer_to_every_step() -> None:
    spec = "model t {{ input x: float32[{shape}] {layer} }} train {{ loss = mse }}"
    layer = "lstm(3, readout=sequence)"
    wrapped = build(spec.format(shape="3, 4, 2", layer=f"time_distributed({layer})")).model
    alone = build(spec.format(shape="4, 2", layer=layer)).model
    weights = random_weights(alone, 4)
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 2))
    every_step = np.stack([R.forward(alone, weights, x[:, t]) for t in range(3)], axis=1)
    renamed = {p.name: weights[q.name] for p, q in zip(wrapped.params, alone.params, strict=True)}
    assert list(renamed) == [f"time_distributed_1.{p.role}_l0" for p in alone.params]
    np.testing.assert_allclose(R.forward(wrapped, renamed, x), every_step, rtol=0, atol=1e-15)


# ---- activations and losses ------------------------------------------------------------------


def test_activations_by_hand() -> None:
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(R.relu(x), [0.0, 0.0, 2.0])
    np.testing.assert_allclose(R.sigmoid(x), [sig(-1), 0.5, sig(2)], rtol=1e-15)
    np.testing.assert_allclose(R.elu(x, 0.5), [0.5 * (math.exp(-1) - 1), 0.0, 2.0], rtol=1e-15)
    np.testing.assert_array_equal(R.leaky_relu(x, 0.2), [-0.2, 0.0, 2.0])
    np.testing.assert_allclose(R.tanh(x), np.tanh(x))


def test_sigmoid_does_not_overflow() -> None:
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        np.testing.assert_allclose(R.sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])


def test_softmax_by_hand_and_channel_axis() -> None:
    out = R.softmax(np.array([[1.0, 2.0, 3.0]]), 1)
    expected = [[0.09003057317038046, 0.24472847105479767, 0.6652409557748219]]
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    nchw = R.softmax(np.random.default_rng(1).standard_normal((2, 3, 4, 5)), 1)
    np.testing.assert_allclose(nchw.sum(axis=1), np.ones((2, 4, 5)), rtol=1e-15)


def test_losses_by_hand() -> None:
    assert R.softmax_cross_entropy(np.array([[0.0, 0.0]]), np.array([0])) == pytest.approx(
        math.log(2), abs=1e-15
    )
    both = R.softmax_cross_entropy(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([0, 1]))
    assert both == pytest.approx((math.log(2) + math.log(1 + math.exp(2))) / 2, abs=1e-15)
    assert R.mse(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])) == 2.5


# ---- the model -------------------------------------------------------------------------------

MLP = """
model m {
  input x: float32[3]
  dense(4) -> relu
  dropout(0.5)
  dense(2)
}
"""


def random_weights(model: Model, seed: int) -> dict[str, Array]:
    """Every parameter N(0, 0.5^2): no zero biases, so every gradient path is exercised."""
    rng = np.random.default_rng(seed)
    return {p.name: 0.5 * rng.standard_normal(p.shape) for p in model.params}


def test_forward_chains_layers_and_dropout_is_identity() -> None:
    model = build(MLP).model
    weights = random_weights(model, 0)
    x = np.random.default_rng(1).standard_normal((5, 3))
    hidden = R.relu(R.dense(x, weights["dense_1.weight"], weights["dense_1.bias"]))
    expected = R.dense(hidden, weights["dense_2.weight"], weights["dense_2.bias"])
    np.testing.assert_array_equal(R.forward(model, weights, x), expected)


def test_forward_names_missing_weights_and_bad_shapes() -> None:
    model = build(MLP).model
    weights = random_weights(model, 0)
    del weights["dense_2.bias"]
    with pytest.raises(R.OracleError, match="dense_2.bias"):
        R.forward(model, weights, np.zeros((1, 3)))
    with pytest.raises(R.OracleError, match="expected"):
        R.forward(model, random_weights(model, 0), np.zeros((1, 4)))


# ---- gradients against central finite differences --------------------------------------------

GRAD_SPECS = {
    "cnn": """
model g {
  input x: float32[2, 7, 6]
  conv2d(3, kernel=[3, 2], stride=[2, 1], padding=[[1, 0], [2, 1]], dilation=[1, 2]) -> tanh
  maxpool2d(3, stride=2, padding=1, rounding=ceil)
  conv2d(2, kernel=1, bias=false) -> elu(0.7)
  avgpool2d(2, stride=1, padding=[[1, 0], [0, 1]], count_pad=false, rounding=ceil)
  flatten
  dense(5) -> leaky_relu(0.2)
  dropout(0.5)
  dense(3)
}
train { loss = softmax_cross_entropy }
""",
    "pool": """
model h {
  input x: float32[2, 5, 5]
  conv2d(3, kernel=2, padding=same) -> sigmoid
  avgpool2d(3, stride=2, padding=1, count_pad=true, rounding=ceil) -> softmax
  flatten
  dense(4) -> relu
  dense(2)
}
train { loss = mse }
""",
    "gru_reset_before": """
model r {
  input x: float32[4, 3]
  gru(3, layers=2, readout=sequence, reset_after=false)
  dense(2) -> softmax
}
train { loss = mse }
""",
    "gru_reset_after": """
model r {
  input x: float32[4, 3]
  gru(3, readout=last)
  dense(3)
}
train { loss = softmax_cross_entropy }
""",
    "gru_no_bias": """
model r {
  input x: float32[3, 2]
  gru(2, readout=sequence, bias=false)
  dense(3)
}
train { loss = mse }
""",
    "lstm_embedding": """
model s {
  input ids: int32[5]
  embedding(7, 3)
  lstm(4, layers=2, readout=last)
  dense(3)
}
train { loss = softmax_cross_entropy }
""",
    "residual_fanout": """
model g {
  input x: float32[2, 5, 4]
  stem: conv2d(3, kernel=3, padding=same) -> tanh
  conv2d(3, kernel=3, padding=same) -> tanh
  conv2d(3, kernel=1)
  [conv2d_2, tanh_1] -> add -> sigmoid
  [sigmoid_1, tanh_1, stem] -> multiply
  [multiply_1, x] -> concat
  [concat_1, concat_1] -> concat(axis=-1)
  flatten
  dense(3)
}
train { loss = softmax_cross_entropy }
""",
    "batchnorm_map_and_features": """
model b {
  input x: float32[2, 4, 3]
  conv2d(3, kernel=2, padding=same) -> batchnorm
  tanh -> flatten -> dense(5)
  batchnorm(0.3, eps=0.01, scale=false) -> sigmoid
  dense(4) -> batchnorm(center=false)
  dense(3)
}
train { loss = softmax_cross_entropy }
""",
    "global_pools_zeropad": """
model p {
  input x: float32[2, 5, 4]
  conv2d(3, kernel=2, padding=[[1, 0], [0, 1]]) -> tanh
  zeropad2d([[1, 2], [0, 1]])
  stem: conv2d(3, kernel=2)
  [stem] -> global_avgpool2d
  [stem] -> global_maxpool2d
  [global_avgpool2d_1, global_maxpool2d_1] -> add
  [stem] -> zeropad2d(1) -> global_maxpool2d
  [add_1, global_maxpool2d_2] -> concat
  dense(3)
}
train { loss = softmax_cross_entropy }
""",
    "batchnorm_sequence_residual": """
model s {
  input x: float32[4, 3]
  gru(3, readout=sequence) -> n: batchnorm
  [n, x] -> add -> flatten -> dense(2)
}
train { loss = mse }
""",
    "repeat_vector": """
model q {
  input x: float32[4]
  dense(3) -> tanh
  rep: repeat_vector(3)
  gru(2, readout=sequence)
  [gru_1, rep] -> concat
  dense(2)
}
train { loss = mse }
""",
    "binary_cross_entropy": """
model l {
  input x: float32[2, 3, 3]
  conv2d(2, kernel=2) -> tanh -> flatten -> dense(4)
}
train { loss = binary_cross_entropy }
""",
    "mae": """
model l {
  input x: float32[5]
  dense(4) -> tanh -> dense(3)
}
train { loss = mae }
""",
    "lstm_sequence": """
model s {
  input x: float32[4, 2]
  lstm(3, readout=sequence, bias=false)
  dense(2)
}
train { loss = mse }
""",
    "time_distributed_dense": """
model t {
  input x: float32[3, 2, 4]
  time_distributed(dense(3)) -> tanh
  time_distributed(dense(2, bias=false))
  time_distributed(flatten) -> flatten
  dense(3)
}
train { loss = softmax_cross_entropy }
""",
    "time_distributed_lstm": """
model t {
  input x: float32[3, 4, 2]
  time_distributed(lstm(3, readout=sequence, recurrent_bias=true))
  time_distributed(gru(2, layers=2, reset_after=false))
  lstm(2)
  dense(3)
}
train { loss = mse }
""",
}


def batch(model: Model, n: int, seed: int) -> tuple[Array, Array]:
    """A float64 input batch (ids for embedding models) and labels or targets."""
    rng = np.random.default_rng(seed)
    shape = (n, *model.inputs[0].shape)
    if model.layers[0].op == "embedding":
        x = rng.integers(0, model.layers[0]["vocab"], size=shape)
    else:
        x = rng.standard_normal(shape)
    out = model.output_shape
    labels = model.train.loss.labels if model.train is not None else "sparse"
    if labels == "real":
        return x, rng.standard_normal((n, *out))
    if labels == "multi_label":
        return x, rng.integers(0, 2, size=(n, *out)).astype(np.float64)
    return x, rng.integers(0, out[-1], size=(n, *out[:-1]))


def numeric_grad(f: Callable[[], float], w: Array, eps: float = 1e-6) -> Array:
    """Central differences of f() w.r.t. every element of w (modified in place, restored)."""
    out = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        keep = w[i]
        w[i] = keep + eps
        up = f()
        w[i] = keep - eps
        down = f()
        w[i] = keep
        out[i] = (up - down) / (2 * eps)
    return out


@pytest.mark.parametrize("name", sorted(GRAD_SPECS))
def test_grads_match_finite_differences(name: str) -> None:
    model = build(GRAD_SPECS[name]).model
    weights = random_weights(model, 7)
    x, y = batch(model, 3, 8)
    value, analytic = G.loss_and_grads(model, weights, x, y)
    assert value == pytest.approx(R.loss(model, R.forward(model, weights, x, True), y), abs=1e-15)
    assert list(analytic) == [p.name for p in model.trainable_params]

    def f() -> float:
        return R.loss(model, R.forward(model, weights, x, training=True), y)

    for p in model.trainable_params:
        assert analytic[p.name].shape == p.shape
        np.testing.assert_allclose(
            analytic[p.name], numeric_grad(f, weights[p.name]), rtol=1e-6, atol=1e-9, err_msg=p.name
        )


def test_conv_and_pool_input_grads_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 6, 5))
    w = rng.standard_normal((3, 2, 2, 3))
    pads = ((0, 2), (1, 1))
    dout = rng.standard_normal(R.conv2d(x, w, None, (2, 1), pads, (1, 2)).shape)
    dx, _, _ = G.conv2d_backward(x, w, dout, (2, 1), pads, (1, 2))
    np.testing.assert_allclose(
        dx,
        numeric_grad(lambda: float((R.conv2d(x, w, None, (2, 1), pads, (1, 2)) * dout).sum()), x),
        rtol=1e-6,
        atol=1e-9,
    )
    pool = ((3, 2), (2, 2), ((1, 0), (0, 1)), "ceil")
    dpool = rng.standard_normal(R.maxpool2d(x, *pool).shape)
    np.testing.assert_allclose(
        G.maxpool2d_backward(x, dpool, *pool),
        numeric_grad(lambda: float((R.maxpool2d(x, *pool) * dpool).sum()), x),
        rtol=1e-6,
        atol=1e-9,
    )


# ---- optimisers ------------------------------------------------------------------------------


def optimizer(text: str) -> Optimizer:
    """The explicit optimiser that `optimizer = text` resolves to."""
    spec = f"model m {{ input x: float32[1] dense(1) }} train {{ optimizer = {text} }}"
    train = build(spec).model.train
    assert train is not None
    return train.optimizer


def run(text: str, grads: list[float], lrs: list[float], w0: float = 1.0) -> list[float]:
    """The weight after each update of a scalar parameter."""
    opt = O.ReferenceOptimizer(optimizer(text))
    weights = {"w": np.array([w0])}
    seen = []
    for g, lr in zip(grads, lrs, strict=True):
        weights = opt.step(weights, {"w": np.array([g])}, lr)
        seen.append(float(weights["w"][0]))
    return seen


GRADS = [1.0, -0.5, 2.0, 0.3, 1.0]


@pytest.mark.parametrize("nesterov", ["false", "true"])
def test_momentum_forms_agree_at_constant_lr(nesterov: str) -> None:
    base = f"sgd(lr=0.1, momentum=0.9, nesterov={nesterov}, momentum_form="
    a = run(base + "gradient)", GRADS, [0.1] * 5)
    b = run(base + "update)", GRADS, [0.1] * 5)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


def test_momentum_forms_differ_after_an_lr_change() -> None:
    # gradient form: v = 1, w = 0.9; v = 1.9, w = 0.9 - 0.01 * 1.9 = 0.881
    # update form:   v = -0.1, w = 0.9; v = -0.09 - 0.01 = -0.1, w = 0.8
    base = "sgd(lr=0.1, momentum=0.9, momentum_form="
    assert run(base + "gradient)", [1, 1], [0.1, 0.01]) == pytest.approx([0.9, 0.881], abs=1e-15)
    assert run(base + "update)", [1, 1], [0.1, 0.01]) == pytest.approx([0.9, 0.8], abs=1e-15)


@pytest.mark.parametrize("form", ["gradient", "update"])
def test_nesterov_by_hand(form: str) -> None:
    # v = 1; w = 1 - 0.1 * (1 + 0.9 * 1) = 0.81; v = 1.9; w = 0.81 - 0.1 * (1 + 1.71) = 0.539
    text = f"sgd(lr=0.1, momentum=0.9, nesterov=true, momentum_form={form})"
    assert run(text, [1, 1], [0.1, 0.1]) == pytest.approx([0.81, 0.539], abs=1e-15)


def test_sgd_weight_decay_coupling() -> None:
    base = "sgd(lr=0.1, momentum=0.9, weight_decay=0.5, weight_decay_mode="
    # l2: g = 2, v = 2, w = 1.8; g = 1 + 0.9, v = 3.7, w = 1.43
    assert run(base + "l2)", [1, 1], [0.1, 0.1], 2.0) == pytest.approx([1.8, 1.43], abs=1e-14)
    # decoupled: w = 1.9 then 1.8; w = 1.8 * 0.95 = 1.71, v = 1.9, w = 1.52
    assert run(base + "decoupled)", [1, 1], [0.1, 0.1], 2.0) == pytest.approx(
        [1.8, 1.52], abs=1e-14
    )


@pytest.mark.parametrize(
    "placement, expected",
    [
        # m = 0.05, v = 0.00025; mhat = 0.5, vhat = 0.25: 1 - 0.1 * 0.5 / (0.5 + 0.1)
        ("corrected", 0.9166666666666666),
        # alpha = 0.1 * sqrt(0.001) / 0.1; 1 - alpha * 0.05 / (sqrt(0.00025) + 0.1)
        ("uncorrected", 0.9863472940504185),
    ],
)
def test_adam_eps_placement_first_step(placement: str, expected: float) -> None:
    text = f"adam(lr=0.1, beta1=0.9, beta2=0.999, eps=0.1, eps_placement={placement})"
    assert run(text, [0.5], [0.1]) == pytest.approx([expected], abs=1e-15)


def test_adam_weight_decay_coupling() -> None:
    # g = 0: l2 feeds wd * w = 1 through Adam (a full lr-sized step); decoupled only shrinks w
    base = "adam(lr=0.1, eps=1e-12, weight_decay=0.5, weight_decay_mode="
    assert run(base + "l2)", [0.0], [0.1], 2.0) == pytest.approx([1.9], abs=1e-10)
    assert run(base + "decoupled)", [0.0], [0.1], 2.0) == pytest.approx([1.9], abs=1e-15)
    assert run(base + "l2)", [0.0, 0.0], [0.1, 0.1], 2.0)[1] != pytest.approx(1.805, abs=1e-6)
    assert run(base + "decoupled)", [0.0, 0.0], [0.1, 0.1], 2.0)[1] == pytest.approx(1.805)


@pytest.mark.parametrize(
    "options, expected",
    [
        # v = 0.1 * 0.25 = 0.025: 1 - 0.1 * 0.5 / (sqrt(0.025) + 0.1)
        ("eps_placement=outside", [0.8062870566386034]),
        # 1 - 0.1 * 0.5 / sqrt(0.025 + 0.1)
        ("eps_placement=inside", [0.8585786437626906]),
        # mean g = 0.05: 1 - 0.1 * 0.5 / (sqrt(0.025 - 0.0025) + 0.1) = 1 - 0.05 / 0.25
        ("centered=true", [0.8]),
        ("momentum=0.5", [0.8062870566386034, 0.5521706553885269]),
    ],
)
def test_rmsprop_by_hand(options: str, expected: list[float]) -> None:
    text = f"rmsprop(lr=0.1, rho=0.9, eps=0.1, {options})"
    steps = len(expected)
    assert run(text, [0.5] * steps, [0.1] * steps) == pytest.approx(expected, abs=1e-15)


def test_adadelta_by_hand() -> None:
    # acc_g = 0.025; d = sqrt(0.01) / sqrt(0.035) * 0.5; acc_d = 0.1 d^2; and once more
    text = "adadelta(lr=1.0, rho=0.9, eps=0.01)"
    assert run(text, [0.5, 0.5], [1.0, 1.0]) == pytest.approx(
        [0.7327387580875756, 0.4597293049716015], abs=1e-15
    )


def test_optimizer_needs_every_gradient() -> None:
    opt = O.ReferenceOptimizer(optimizer("sgd(lr=0.1)"))
    with pytest.raises(O.OptimizerError, match="no gradient for b"):
        opt.step({"a": np.zeros(1), "b": np.zeros(1)}, {"a": np.zeros(1)}, 0.1)


@pytest.mark.parametrize(
    "kind, attrs, step, epoch, expected",
    [
        ("constant", {}, 9, 3, 1.0),
        ("step", {"every": 2, "gamma": 0.5, "unit": "step"}, 5, 0, 0.25),
        ("step", {"every": 1, "gamma": 0.1, "unit": "epoch"}, 5, 2, 0.01),
        ("inverse_time", {"decay": 0.5, "unit": "epoch"}, 100, 2, 0.5),
        ("inverse_time", {"decay": 0.25, "unit": "step"}, 4, 0, 0.5),
    ],
)
def test_learning_rate_schedules(
    kind: str, attrs: dict, step: int, epoch: int, expected: float
) -> None:
    schedule = Schedule(kind, attrs, Pos())
    assert O.learning_rate(schedule, 1.0, step, epoch) == pytest.approx(expected, abs=1e-15)


def test_train_steps_follow_the_schedule_and_lower_the_loss() -> None:
    spec = MLP + "train { optimizer = sgd(lr=0.1, momentum=0.9, decay=0.5) }"
    model = build(spec).model
    weights = random_weights(model, 0)
    x, y = batch(build(MLP + "train { }").model, 8, 1)
    final, losses = O.train_steps(model, weights, x, y, 3)
    assert losses[-1] < losses[0]
    opt = O.ReferenceOptimizer(model.train.optimizer)  # type: ignore[union-attr]
    current = weights
    for step, lr in enumerate([0.1, 0.1 / 1.5, 0.1 / 2.0]):
        value, g = G.loss_and_grads(model, current, x, y)
        assert value == pytest.approx(losses[step], abs=1e-15)
        current = opt.step(current, g, lr)
    for name in final:
        np.testing.assert_allclose(final[name], current[name], rtol=0, atol=1e-15)


def test_window_count_agrees_with_shape_inference() -> None:
    from dlspec.passes.shapes import window_out

    for size in range(1, 9):
        for kernel in range(1, 5):
            for stride in range(1, 4):
                for pads in ((0, 0), (1, 0), (0, 1), (1, 2), (2, 2)):
                    if size + sum(pads) < kernel:
                        continue
                    for rounding in ("floor", "ceil"):
                        args = (size, kernel, stride, 1, pads, rounding)
                        assert R.window_count(*args) == window_out(*args), args


def test_oracle_imports_no_parser_template_or_framework() -> None:
    code = (
        "import sys, dlspec.oracle.optim, dlspec.weights.canonical\n"
        "bad = [m for m in ('lark', 'jinja2', 'black', 'torch', 'tensorflow', 'mxnet')"
        " if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- batch normalisation ------------------------------------------------------------------------

BN = """
model b {
  input x: float32[2, 2, 2]
  n: batchnorm(0.25, eps=0.5)
  flatten
}
train { loss = mse }
"""


def test_batchnorm_training_uses_batch_stats_and_evaluation_the_running_ones() -> None:
    model = build(BN).model
    assert [(p.name, p.trainable) for p in model.params] == [
        ("n.weight", True),
        ("n.bias", True),
        ("n.running_mean", False),
        ("n.running_var", False),
    ]
    assert model.param_count == 4 and model.buffer_count == 4
    x = np.arange(16, dtype=np.float64).reshape(2, 2, 2, 2)  # channel 0: 0..3 and 8..11
    w = {
        "n.weight": np.array([2.0, 1.0]),
        "n.bias": np.array([0.0, 1.0]),
        "n.running_mean": np.array([1.0, -1.0]),
        "n.running_var": np.array([3.5, 0.5]),
    }
    ch0 = np.array([0, 1, 2, 3, 8, 9, 10, 11], dtype=np.float64)
    mean, var = ch0.mean(), ch0.var()  # 5.5 and 16.25 (biased)
    train = R.forward(model, w, x, training=True).reshape(2, 2, 4)[:, 0]
    np.testing.assert_allclose(train.ravel(), 2.0 * (ch0 - mean) / np.sqrt(var + 0.5))
    evaluation = R.forward(model, w, x).reshape(2, 2, 4)[:, 0]
    np.testing.assert_allclose(evaluation.ravel(), 2.0 * (ch0 - 1.0) / np.sqrt(3.5 + 0.5))
    new = R.updated_buffers(model, w, x)
    assert new["n.running_mean"][0] == pytest.approx(0.75 * 1.0 + 0.25 * 5.5)
    assert new["n.running_var"][0] == pytest.approx(0.75 * 3.5 + 0.25 * var * 8 / 7)  # unbiased
    biased = build(BN.replace("eps=0.5", "eps=0.5, running_var=biased")).model
    assert R.updated_buffers(biased, w, x)["n.running_var"][0] == pytest.approx(
        0.75 * 3.5 + 0.25 * var
    )


def test_batchnorm_defaults_per_profile() -> None:
    for profile, (momentum, eps, running_var) in {
        "dlspec": (0.1, 1e-5, "unbiased"),
        "pytorch": (0.1, 1e-5, "unbiased"),
        "keras": (0.01, 1e-3, "biased"),
    }.items():
        layer = build(f"defaults = {profile}\n" + BN.replace("(0.25, eps=0.5)", "")).model.layers[0]
        assert (layer["momentum"], layer["eps"], layer["running_var"]) == (
            momentum,
            eps,
            running_var,
        )
