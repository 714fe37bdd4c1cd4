"""Edges in the IR: each layer names the tensors it reads, the model names its outputs, and the
shape pass looks a layer's input up by its producer (the first step towards graphs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dlspec.frontend.load import build
from dlspec.ir.model import Model
from dlspec.oracle import forward as R
from dlspec.oracle import grad as G

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


SKIP = """
model m {
    input image: float32[2, 6, 6]
    c: conv2d(3, 3) -> relu
    f: flatten
    dense(2) -> relu
    [f] -> head: dense(2)
    [head, relu_2] -> add
}
"""


def test_shapes_follow_the_named_producer_not_the_statement_order() -> None:
    model = build(SKIP).model
    by_name = {layer.name: layer for layer in model.layers}
    assert by_name["head"].inputs == ("f",)
    assert by_name["head"].in_shape == (48,)
    assert by_name["add_1"].inputs == ("head", "relu_2")
    assert by_name["add_1"].out_shape == (2,)
    assert by_name["head"]["flattened_from"] == (3, 4, 4)


def test_flattened_from_walks_producers_through_elementwise_layers() -> None:
    model = build(SKIP.replace("[f] -> head: dense(2)", "[f] -> relu -> head: dense(2)")).model
    assert {layer.name: layer for layer in model.layers}["head"]["flattened_from"] == (3, 4, 4)


def test_a_chain_reads_the_previous_statement_even_after_a_branch() -> None:
    model = build(SKIP).model
    # dense_1 follows `f: flatten` (the statement before it); head lists f itself
    assert model.producer("dense_1").inputs == ("f",)  # type: ignore[union-attr]


TRAINED = SKIP + "train { loss = mse }\n"


def _weights(model: Model, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {p.name: 0.5 * rng.standard_normal(p.shape) for p in model.params}


def test_oracle_forward_follows_the_producers() -> None:
    model = build(TRAINED).model
    weights = _weights(model, 0)
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    conv = R.conv2d(x, weights["c.weight"], weights["c.bias"], (1, 1), ((0, 0), (0, 0)), (1, 1))
    f = R.flatten(R.relu(conv))
    head = R.dense(f, weights["head.weight"], weights["head.bias"])
    side = R.relu(R.dense(f, weights["dense_1.weight"], weights["dense_1.bias"]))
    np.testing.assert_allclose(R.forward(model, weights, x), head + side, rtol=1e-12)


def test_oracle_gradients_on_a_graph_match_finite_differences() -> None:
    model = build(TRAINED).model
    weights = _weights(model, 2)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((3, 2))
    _, grads = G.loss_and_grads(model, weights, x, y)
    eps = 1e-6
    for name in ("head.weight", "c.bias", "dense_1.weight"):
        w = weights[name]
        for i in [(0,) * w.ndim, tuple(d - 1 for d in w.shape)]:
            keep = w[i]
            w[i] = keep + eps
            up = R.loss(model, R.forward(model, weights, x), y)
            w[i] = keep - eps
            down = R.loss(model, R.forward(model, weights, x), y)
            w[i] = keep
            assert grads[name][i] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_a_dead_branch_in_hand_made_ir_gets_zero_gradients() -> None:
    """The language refuses dead layers; the oracle, given such IR, gives them zero gradients."""
    model = build(CHAIN.replace("dense(4)", "dense(48)") + "train { loss = mse }\n").model
    layers = list(model.layers)
    layers[5] = replace(layers[5], inputs=("flatten_1",))  # head skips dense_1 and relu_2
    model = replace(model, layers=tuple(layers))
    weights = _weights(model, 4)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((3, 2))
    _, grads = G.loss_and_grads(model, weights, x, y)
    assert not grads["dense_1.weight"].any() and not grads["dense_1.bias"].any()
    assert grads["head.weight"].any() and grads["c.weight"].any()


def test_gradients_flowing_into_one_tensor_add_up() -> None:
    douts: dict[str, np.ndarray] = {}
    G._accumulate(douts, "t", np.ones(2))
    G._accumulate(douts, "t", np.full(2, 2.0))
    G._accumulate(douts, "t", None)  # integer ids take no gradient
    np.testing.assert_array_equal(douts["t"], [3.0, 3.0])
