"""The op table's traits agree with what each op does: an elementwise op keeps the shape and maps
each element alone, a kinked one has a derivative that jumps at 0 (in the float64 oracle), a
recurrent one has input and recurrent weights, and only a batch-statistics op lets other samples
change a sample's training-mode output (framework-free)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from test_every_combination_runs import CASES, Case, model_of

from dlspec.frontend.load import build
from dlspec.ir.model import Layer, Model, uses
from dlspec.ir.ops import BATCH_STATISTICS, ELEMENTWISE, KINKED, OPS, RECURRENT, TRAITS
from dlspec.oracle import forward as R
from dlspec.weights import canonical as W

CALLS = {"dropout": "dropout(0.5)"}
ACTIVATIONS = sorted(name for name, spec in OPS.items() if spec.category == "activation")


def first_layer(op: str, input_shape: str) -> Layer:
    """The explicit layer of `op` as the first statement of a small model."""
    text = f"model m {{\n    input x: float32[{input_shape}]\n    {CALLS.get(op, op)}\n}}\n"
    return build(text, "<traits>").model.layers[0]


def test_every_trait_is_described_and_held_by_some_op() -> None:
    assert set(TRAITS) == {t for spec in OPS.values() for t in spec.traits}


@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_ops_keep_the_shape(op: str) -> None:
    layer = first_layer(op, "2, 5, 3")
    assert layer.out_shape == layer.in_shape == (2, 5, 3)


def oracle(op: str) -> Callable[[R.Array], R.Array]:
    """The float64 oracle's activation `op` on a vector (alpha 0.5 where it takes one: elu's
    derivative is continuous at alpha 1, leaky_relu is linear there)."""
    fn = getattr(R, op)
    if "alpha" in OPS[op].attrs:
        return lambda x: fn(x, 0.5)
    return (lambda x: fn(x, -1)) if op == "softmax" else fn


@pytest.mark.parametrize("op", ACTIVATIONS)
def test_an_elementwise_activation_changes_only_its_own_element(op: str) -> None:
    x = np.array([0.7, -0.5, 0.3, 1.5, -1.0, 2.0])
    nudged = x.copy()
    nudged[0] += 1e-3
    changed = oracle(op)(nudged) != oracle(op)(x)
    assert changed[0] and bool(changed[1:].any()) == (op not in ELEMENTWISE)


@pytest.mark.parametrize("op", ACTIVATIONS)
def test_kinked_ops_have_a_derivative_that_jumps_at_zero(op: str) -> None:
    """One-sided slopes at 0 in the float64 oracle."""
    fn, h = oracle(op), 1e-6
    zero = fn(np.array([0.0, 0.0]))[0]
    left = (zero - fn(np.array([-h, 0.0]))[0]) / h
    right = (fn(np.array([h, 0.0]))[0] - zero) / h
    assert (abs(left - right) > 1e-3) == (op in KINKED)


@pytest.mark.parametrize("op", sorted(n for n, s in OPS.items() if s.params))
def test_recurrent_ops_have_input_and_recurrent_weights(op: str) -> None:
    assert ("weight_hh" in OPS[op].params) == (op in RECURRENT)


def test_the_oracle_switches_mode_for_exactly_the_batch_statistics_ops() -> None:
    assert set(R.MODE_FORWARD) == BATCH_STATISTICS == {"batchnorm"}


def _other_samples_matter(model: Model) -> bool:
    """Whether, in a training-mode forward in the oracle, changing samples 1-2 of a batch of 3
    changes sample 0's output."""
    weights = {k: v.astype(np.float64) for k, v in W.draw_weights(model, 0).items()}
    batch = W.input_batches(model, 3, seed=1)
    other = W.input_batches(model, 3, seed=2)
    moved = {name: np.concatenate([x[:1], other[name][1:]]) for name, x in batch.items()}
    before = R.forward(model, weights, batch, training=True)[0]
    after = R.forward(model, weights, moved, training=True)[0]
    return not np.allclose(before, after, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_only_a_batch_statistics_op_lets_other_samples_change_a_samples_output(case: Case) -> None:
    model = model_of(case)
    assert _other_samples_matter(model) == uses(model, BATCH_STATISTICS)


def test_the_every_op_table_has_models_with_and_without_batch_statistics() -> None:
    assert {uses(model_of(case), BATCH_STATISTICS) for case in CASES} == {True, False}
