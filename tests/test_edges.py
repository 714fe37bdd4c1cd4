"""Edges in the IR: each layer names the tensors it reads, the model names its outputs, and the
shape pass looks a layer's input up by its producer (the first step towards graphs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dlspec import reference as R
from dlspec import reference_grad as G
from dlspec.frontend import build, run_passes
from dlspec.ir import Model
from dlspec.lower import lower
from dlspec.parse import parse

CHAIN = """
model m {
    input image: float32[2, 6, 6]
    c: conv2d(3, 3) -> relu
    flatten
    dense(4) -> relu
    head: dense(2)
}
"""


def test_each_layer_reads_the_previous_statement_and_the_first_reads_the_input() -> None:
    model = build(CHAIN).model
    assert [(layer.name, layer.inputs) for layer in model.layers] == [
        ("c", ("image",)),
        ("relu_1", ("c",)),
        ("flatten_1", ("relu_1",)),
        ("dense_1", ("flatten_1",)),
        ("relu_2", ("dense_1",)),
        ("head", ("relu_2",)),
    ]
    assert model.outputs == ("head",)
    assert model.producer("head") is model.layers[-1]
    assert model.producer("image") is model.inputs[0]
    assert model.producer("nothing") is None


def test_output_shape_is_the_output_tensors_shape() -> None:
    model = build(CHAIN).model
    assert model.output_shape == (2,)
    assert replace(model, outputs=("c",)).output_shape == (3, 4, 4)
    assert replace(model, outputs=("image",)).output_shape == (2, 6, 6)


def _explicit(model: Model) -> Model:
    return run_passes(model).model


def test_shapes_follow_the_named_producer_not_the_statement_order() -> None:
    raw = lower(parse(CHAIN))
    layers = list(raw.layers)
    # the flatten reads the input directly, skipping the convolution and its relu
    layers[2] = replace(layers[2], inputs=("image",))
    model = _explicit(replace(raw, layers=tuple(layers)))
    flatten = model.layers[2]
    assert flatten.in_shape == (2, 6, 6) and flatten.out_shape == (72,)
    assert model.layers[3].in_shape == (72,)
    assert model.layers[3]["flattened_from"] == (2, 6, 6)


def test_flattened_from_walks_producers_through_elementwise_layers() -> None:
    raw = lower(parse(CHAIN))
    layers = list(raw.layers)
    # the second dense reads the flatten, not the relu after the first dense
    layers[5] = replace(layers[5], inputs=(layers[2].name,))
    model = _explicit(replace(raw, layers=tuple(layers)))
    assert model.layers[5]["flattened_from"] == (3, 4, 4)
    assert model.layers[3]["flattened_from"] == (3, 4, 4)


# ---- the oracle walks the graph ----------------------------------------------------------------

TRAINED = CHAIN + "train { loss = mse }\n"


def _skipping_model() -> Model:
    """CHAIN with `head` reading the flatten: dense_1 and relu_2 become a dead branch."""
    raw = lower(parse(TRAINED))
    layers = list(raw.layers)
    layers[5] = replace(layers[5], inputs=(layers[2].name,))
    return _explicit(replace(raw, layers=tuple(layers)))


def _weights(model: Model, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {p.name: 0.5 * rng.standard_normal(p.shape) for p in model.params}


def test_oracle_forward_follows_the_producers() -> None:
    model = _skipping_model()
    weights = _weights(model, 0)
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    conv = R.conv2d(x, weights["c.weight"], weights["c.bias"], (1, 1), ((0, 0), (0, 0)), (1, 1))
    expected = R.dense(R.flatten(R.relu(conv)), weights["head.weight"], weights["head.bias"])
    np.testing.assert_allclose(R.forward(model, weights, x), expected, rtol=1e-12)
    weights["dense_1.weight"] += 1.0  # the dead branch does not reach the output
    np.testing.assert_allclose(R.forward(model, weights, x), expected, rtol=1e-12)


def test_oracle_gradients_on_a_graph_match_finite_differences() -> None:
    model = _skipping_model()
    weights = _weights(model, 2)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((3, 2))
    _, grads = G.loss_and_grads(model, weights, x, y)
    assert not grads["dense_1.weight"].any() and not grads["dense_1.bias"].any()
    eps = 1e-6
    for name in ("head.weight", "c.bias"):
        w = weights[name]
        for i in [(0,) * w.ndim, tuple(d - 1 for d in w.shape)]:
            keep = w[i]
            w[i] = keep + eps
            up = R.loss(model, R.forward(model, weights, x), y)
            w[i] = keep - eps
            down = R.loss(model, R.forward(model, weights, x), y)
            w[i] = keep
            assert grads[name][i] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_gradients_flowing_into_one_tensor_add_up() -> None:
    douts: dict[str, np.ndarray] = {}
    G._accumulate(douts, "t", np.ones(2))
    G._accumulate(douts, "t", np.full(2, 2.0))
    G._accumulate(douts, "t", None)  # integer ids take no gradient
    np.testing.assert_array_equal(douts["t"], [3.0, 3.0])
