"""Verify's training batches keep every ReLU kink and (global) max-pool near-tie clear of float32
noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlspec.frontend.load import build, build_file
from dlspec.ir.model import TIME_DISTRIBUTED, Layer, Model, wrapped
from dlspec.oracle import forward as R
from dlspec.verify import margins as M
from dlspec.verify import run as V
from dlspec.verify.margins import decision_margin
from dlspec.weights import canonical as W

ROOT = Path(__file__).resolve().parent.parent

TINY = """
model tiny {
    input x: float32[1, 2, 3]
    relu
    maxpool2d([1, 3])
    flatten
    dense(2)
}
"""


def test_kink_margin_is_relative_to_the_layer_scale() -> None:
    model = build(TINY, "t.dl").model
    weights = W.draw_weights(model, 0)
    x = np.array([[[[2.0, -1.0, 1e-9], [4.0, 0.5, -3.0]]]])
    assert decision_margin(model, weights, x) == 1e-9 / 4.0


def test_max_pool_near_ties_count_but_exact_ties_do_not() -> None:
    model = build(TINY.replace("    relu\n", ""), "t.dl").model
    weights = W.draw_weights(model, 0)
    near = np.array([[[[2.0, 2.0 + 1e-8, -1.0], [4.0, 1.0, -3.0]]]])
    assert abs(decision_margin(model, weights, near) - 1e-8 / 4.0) < 1e-15
    exact = np.array([[[[2.0, 2.0, -1.0], [4.0, 1.0, -3.0]]]])
    assert decision_margin(model, weights, exact) == 3.0 / 4.0


def test_an_exact_tie_does_not_hide_a_near_third() -> None:
    model = build(TINY.replace("    relu\n", ""), "t.dl").model
    weights = W.draw_weights(model, 0)
    x = np.array([[[[2.0, 2.0, 2.0 - 1e-8], [4.0, 1.0, -3.0]]]])
    assert abs(decision_margin(model, weights, x) - 1e-8 / 4.0) < 1e-15


GLOBAL_MAX = """
model global_max {
    input x: float32[2, 2, 3]
    global_maxpool2d
    dense(2)
}
"""


def test_global_max_pool_near_ties_count_but_exact_ties_do_not() -> None:
    model = build(GLOBAL_MAX, "g.dl").model
    weights = W.draw_weights(model, 0)
    other = [[1.0, 0.5, -4.0], [0.0, 0.25, 0.0]]  # the second map: its max 1.0 is 0.5 clear
    near = np.array([[[[2.0, -1.0, 0.0], [2.0 + 1e-8, 1.0, -3.0]], other]])
    assert abs(decision_margin(model, weights, near) - 1e-8 / 4.0) < 1e-15
    exact = np.array([[[[2.0, -1.0, 0.0], [2.0, 1.0, -3.0]], other]])
    assert decision_margin(model, weights, exact) == 0.5 / 4.0
    third = np.array([[[[2.0, -1.0, 2.0 - 1e-8], [2.0, 1.0, -3.0]], other]])
    assert abs(decision_margin(model, weights, third) - 1e-8 / 4.0) < 1e-15


def test_verify_batches_clear_the_minimum_margin(monkeypatch) -> None:
    """keras_cifar10_cnn's first-drawn batch at update 3 sat within float32 noise of a kink."""
    monkeypatch.chdir(ROOT)
    model = build_file("examples/keras_cifar10_cnn.dl").model
    ref, batches = V.oracle(model, W.draw_weights(model, V.VERIFY_SEED), 5)
    assert len(ref.margins) == 5 and min(ref.margins) >= V.MIN_MARGIN
    assert batches["train:image"].shape == (5, V.VERIFY_BATCH, 3, 32, 32)
    again, same = V.oracle(model, W.draw_weights(model, V.VERIFY_SEED), 5)
    np.testing.assert_array_equal(batches["train:image"], same["train:image"])


TWO_TOWERS = """
model two_towers {
    input image: float32[2, 4, 4]
    input words: int32[5]
    [image] -> conv2d(3, 3, padding=same) -> relu
    maxpool2d(2) -> pictured: flatten
    [words] -> embedding(7, 3)
    told: lstm(4)
    [pictured, told] -> concat
    dense(2) -> leaky_relu(alpha=0.1)
    dense(3)
}
"""


def _whole_forward_margin(model: Model, weights: dict[str, np.ndarray], x: object) -> float:
    """The margin as it was measured before decision_margin pruned its forward: every layer."""
    values = R.layer_inputs(model, weights, x, training=True)
    margin = np.inf
    for layer, value in zip(model.layers, values[:-1], strict=True):
        if layer.op == TIME_DISTRIBUTED:
            layer, value = wrapped(layer), R.steps(value)
        if layer.op in M.KINKED:
            margin = min(margin, M._kink_margin(value))
        elif layer.op == "maxpool2d":
            margin = min(margin, M._tie_margin(layer, value))
        elif layer.op == "global_maxpool2d":
            margin = min(margin, M._global_tie_margin(value))
    return margin


def test_only_the_tensors_a_decision_reads_are_computed_with_the_same_values() -> None:
    model = build(TWO_TOWERS, "t.dl").model
    weights = W.draw_weights(model, 0)
    x = W.input_batches(model, 3, 1)
    whole = R.tensors(model, weights, x, training=True)
    wanted = [layer.inputs[0] for layer in model.layers if layer.op in ("relu", "maxpool2d")]
    part = R.tensors(model, weights, x, True, wanted)
    assert "told" not in part and "pictured" not in part  # the question tower is left out
    assert set(wanted) <= set(part)
    for name, value in part.items():
        np.testing.assert_array_equal(value, whole[name])


def test_the_pruned_margin_is_the_whole_forwards_margin() -> None:
    for spec in ("tests/specs/graph_merges.dl", "tests/specs/time_distributed_maps.dl"):
        model = build_file(str(ROOT / spec)).model
        weights = W.draw_weights(model, 0)
        x = W.input_batches(model, 3, 1)
        assert decision_margin(model, weights, x) == _whole_forward_margin(model, weights, x)
    model = build(TWO_TOWERS, "t.dl").model
    weights = W.draw_weights(model, 0)
    x = W.input_batches(model, 3, 1)
    assert decision_margin(model, weights, x) == _whole_forward_margin(model, weights, x) < np.inf


def test_a_margin_at_or_below_the_floor_stops_the_forward(monkeypatch) -> None:
    """TINY's relu input has margin 1e-9/4: with a floor above that, the max pool (the next
    decision) is never measured; below it, both are."""
    model = build(TINY, "t.dl").model
    weights = W.draw_weights(model, 0)
    x = np.array([[[[2.0, -1.0, 1e-9], [4.0, 0.5, -3.0]]]])
    measured: list[str] = []
    real = M._layer_margin

    def counted(layer: Layer, inner: Layer, value: np.ndarray) -> float:
        measured.append(layer.op)
        return real(layer, inner, value)

    monkeypatch.setattr(M, "_layer_margin", counted)
    assert decision_margin(model, weights, x, floor=1e-6) == 1e-9 / 4.0
    assert measured == ["relu"]
    measured.clear()
    assert decision_margin(model, weights, x, floor=1e-12) == 1e-9 / 4.0
    assert measured == ["relu", "maxpool2d"]


def test_a_bounded_draw_picks_the_batch_an_unbounded_one_picks(monkeypatch) -> None:
    """Every draw measured whole or cut short at the best so far: the same batches, the same
    margins, for a model whose draws never clear the minimum (all 16 are tried)."""
    model = build(TWO_TOWERS, "t.dl").model
    start = W.draw_weights(model, V.VERIFY_SEED)
    bounded, drawn = V.oracle(model, start, 3, min_margin=1.0)
    monkeypatch.setattr(V, "decision_margin", lambda m, w, x, floor: decision_margin(m, w, x))
    whole, again = V.oracle(model, start, 3, min_margin=1.0)
    assert bounded.margins == whole.margins
    for name, batch in drawn.items():
        np.testing.assert_array_equal(batch, again[name])
