"""The op table's traits agree with what each op does: an elementwise op keeps the shape and maps
each element alone, a kinked one has a derivative that jumps at 0 (in the float64 oracle), a
recurrent one has input and recurrent weights, only a batch-statistics op lets other samples
change a sample's training-mode output, and only a token-ids op reads integer ids, its gradient
the rows it read (framework-free)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from test_every_combination_runs import CASES, Case, model_of

from dlspec.frontend.load import build
from dlspec.ir.model import Layer, Model, uses, wrapped
from dlspec.ir.ops import (
    BATCH_STATISTICS,
    ELEMENTWISE,
    KINKED,
    OPS,
    RECURRENT,
    TOKEN_IDS,
    TRAITS,
)
from dlspec.oracle import forward as R
from dlspec.oracle import grad as G
from dlspec.weights import canonical as W

CALLS = {"dropout": "dropout(0.5)", "embedding": "embedding(5, 2)"}
ACTIVATIONS = sorted(name for name, spec in OPS.items() if spec.category == "activation")


def small_model(op: str, input_shape: str, dtype: str = "float32") -> Model:
    """The explicit IR of a model whose one statement is a layer of `op`."""
    text = f"model m {{\n    input x: {dtype}[{input_shape}]\n    {CALLS.get(op, op)}\n}}\n"
    return build(text, "<traits>").model


def first_layer(op: str, input_shape: str) -> Layer:
    """The explicit layer of `op` as the first statement of a small model."""
    return small_model(op, input_shape).layers[0]


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


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_only_a_token_ids_op_reads_integer_input(case: Case) -> None:
    for layer in model_of(case).layers:
        assert (layer.in_dtype != "float32") == (wrapped(layer).op in TOKEN_IDS), layer.name


def test_the_every_op_table_reads_token_ids() -> None:
    assert any(uses(model_of(case), TOKEN_IDS) for case in CASES)


@pytest.mark.parametrize("op", sorted(TOKEN_IDS))
def test_a_token_ids_ops_gradient_is_the_rows_it_read(op: str) -> None:
    """Ids 1, 1, 3 of a 5-row table: rows 0, 2 and 4 get no gradient, row 1 both reads'."""
    model = small_model(op, "3", "int32")
    layer = model.layers[0]
    weights = {k: v.astype(np.float64) for k, v in W.draw_weights(model, 0).items()}
    ids = np.array([[1, 1, 3]])
    dx, grads = G.BACKWARD[op](layer, weights, ids, np.ones((1, 3, 2)))
    (table,) = grads.values()
    assert dx is None
    assert not table[[0, 2, 4]].any() and table[1].tolist() == [2.0, 2.0]
