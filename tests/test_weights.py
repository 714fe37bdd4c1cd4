"""Canonical weights: seeded draws, initialiser statistics, npz files and fixed batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlspec.errors import DlspecError
from dlspec.frontend.load import build
from dlspec.ir.model import Init, Model, Param
from dlspec.weights import canonical as W

SPEC = """
model w {
  input x: float32[4, 6]
  lstm(8, layers=2, readout=last)
  dense(300, init=uniform(0.2), bias_init=constant(0.5))
  dense(200, init=normal(std=0.05, mean=1.0), bias_init=truncated_normal(std=0.1, mean=-1.0))
  dense(50, init=orthogonal(2.0), bias=false)
  dense(400, init=orthogonal, bias=false)
}
train { init = glorot_uniform }
"""

EMBEDDING = """
model e {
  input ids: int32[7]
  embedding(11, 4)
  gru(3)
  dense(2)
}
"""


@pytest.fixture(scope="module")
def model() -> Model:
    return build(SPEC).model


def test_same_seed_same_weights_other_seed_other_weights(model: Model) -> None:
    a, b, c = W.draw_weights(model, 3), W.draw_weights(model, 3), W.draw_weights(model, 4)
    assert list(a) == [p.name for p in model.params]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert a[name].dtype == np.float32
    assert not np.array_equal(a["dense_1.weight"], c["dense_1.weight"])


def test_draws_follow_model_order_from_default_rng(model: Model) -> None:
    rng = np.random.default_rng(5)
    expected = {p.name: W.draw_param(rng, p) for p in model.params}
    got = W.draw_weights(model, 5, dtype=np.float64)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)


def test_uniform_and_constant(model: Model) -> None:
    weights = W.draw_weights(model, 0, dtype=np.float64)
    w = weights["dense_1.weight"]
    assert np.abs(w).max() <= 0.2
    assert w.std() == pytest.approx(0.2 / np.sqrt(3), rel=0.02)
    np.testing.assert_array_equal(weights["dense_1.bias"], np.full(300, 0.5))


def test_normal_and_truncated_normal(model: Model) -> None:
    weights = W.draw_weights(model, 0, dtype=np.float64)
    w = weights["dense_2.weight"]
    assert w.mean() == pytest.approx(1.0, abs=0.002)
    assert w.std() == pytest.approx(0.05, rel=0.02)
    rng = np.random.default_rng(1)
    t = W.draw_param(
        rng, Param("t", "weight", (20000,), Init("truncated_normal", 0, -1, 0.1), 1, 1)
    )
    assert np.abs(t + 1.0).max() <= 0.2
    # a N(0, 1) cut at +-2 has std 0.8796
    assert t.std() == pytest.approx(0.1 * 0.87962566, rel=0.02)


def test_glorot_limit_from_fans(model: Model) -> None:
    weights = W.draw_weights(model, 0, dtype=np.float64)
    w_ih = weights["lstm_1.weight_ih_l0"]
    limit = np.sqrt(6.0 / (6 + 32))
    assert np.abs(w_ih).max() <= limit
    assert np.abs(w_ih).max() > 0.9 * limit


@pytest.mark.parametrize(
    "name, gain", [("lstm_1.weight_hh_l0", 1.0), ("dense_3.weight", 2.0), ("dense_4.weight", 1.0)]
)
def test_orthogonal(model: Model, name: str, gain: float) -> None:
    w = W.draw_weights(model, 0, dtype=np.float64)[name]
    rows, cols = w.shape
    small = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(small, gain**2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_views_conv_kernels_as_matrices() -> None:
    param = Param("k", "weight", (4, 2, 3, 3), Init("orthogonal", gain=1.0), 18, 36)
    w = W.draw_param(np.random.default_rng(0), param).reshape(4, 18)
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-12)


def test_gate_offset_adds_the_forget_bias(model: Model) -> None:
    weights = W.draw_weights(model, 0, dtype=np.float64)
    for k in range(2):
        b_ih = weights[f"lstm_1.bias_ih_l{k}"]
        np.testing.assert_array_equal(b_ih[8:16], np.ones(8))
        np.testing.assert_array_equal(np.delete(b_ih, np.s_[8:16]), np.zeros(24))
        np.testing.assert_array_equal(weights[f"lstm_1.bias_hh_l{k}"], np.zeros(32))


def test_npz_round_trip(model: Model, tmp_path: Path) -> None:
    weights = W.draw_weights(model, 0)
    path = tmp_path / "w.npz"
    W.save_npz(path, weights)
    loaded = W.load_npz(path, model)
    assert list(loaded) == list(weights)
    for name in weights:
        np.testing.assert_array_equal(loaded[name], weights[name])
        assert loaded[name].dtype == np.float32


def test_load_names_missing_unexpected_and_misshapen(model: Model, tmp_path: Path) -> None:
    weights = W.draw_weights(model, 0)
    del weights["dense_1.bias"]
    weights["dense_9.weight"] = np.zeros(2)
    weights["dense_2.weight"] = np.zeros((3, 3))
    path = tmp_path / "bad.npz"
    W.save_npz(path, weights)
    with pytest.raises(W.WeightsError) as err:
        W.load_npz(path, model)
    text = str(err.value)
    assert "missing dense_1.bias" in text
    assert "unexpected dense_9.weight" in text
    assert "dense_2.weight has shape [3, 3], expected [200, 300]" in text
    assert isinstance(err.value, DlspecError)


def test_load_unreadable_file(model: Model, tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not an npz")
    with pytest.raises(W.WeightsError, match="cannot read weights"):
        W.load_npz(path, model)


def test_input_and_label_batches(model: Model) -> None:
    x = W.input_batch(model, 5, 0)
    assert x.shape == (5, 4, 6) and x.dtype == np.float32
    np.testing.assert_array_equal(x, W.input_batch(model, 5, 0))
    assert not np.array_equal(x, W.input_batch(model, 5, 1))
    y = W.label_batch(model, 5, 0)
    assert y.shape == (5,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() < 400


def test_embedding_models_get_ids_in_range() -> None:
    model = build(EMBEDDING).model
    x = W.input_batch(model, 50, 2)
    assert x.shape == (50, 7) and x.dtype == np.int32
    assert x.min() == 0 and x.max() == 10


def test_mse_models_get_float_targets() -> None:
    model = build(EMBEDDING.replace("dense(2)", "dense(2)\n}\ntrain { loss = mse ")).model
    y = W.label_batch(model, 3, 0)
    assert y.shape == (3, 2) and y.dtype == np.float32
