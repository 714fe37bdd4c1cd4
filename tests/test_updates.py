"""The optimiser updates written once (dlspec.ir.updates) against the float64 oracle, and printed."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from optimizer_forms import LRS, form_id, forms

from dlspec.codegen.updates import NUMPY_OUT, InPlace, Printer, in_place_update
from dlspec.errors import Pos
from dlspec.ir.model import Optimizer
from dlspec.ir.settings import OPTIMIZERS
from dlspec.ir.updates import (
    LR,
    STEP,
    Assign,
    Bin,
    Expr,
    G,
    Let,
    Name,
    Num,
    Sqrt,
    UpdateRule,
    W,
    apply_update,
    evaluate,
    names,
    update_rule,
)
from dlspec.oracle.optim import ReferenceOptimizer

FORMS = forms()
IDS = [form_id(f) for f in FORMS]


# centered RMSprop on random slots takes square roots of negatives (NaN on both sides, compared so)
ROOTS_OF_NEGATIVES = pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")


def test_every_optimiser_has_forms() -> None:
    assert {kind for kind, _ in FORMS} == set(OPTIMIZERS)
    assert len(FORMS) > 100


@pytest.mark.parametrize("kind,attrs", FORMS, ids=IDS)
def test_description_equals_the_oracle(kind: str, attrs: dict[str, Any]) -> None:
    """Six updates of the description evaluated in float64 = the oracle's ReferenceOptimizer."""
    rng = np.random.default_rng(0)
    w0 = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in w0.items()} for _ in LRS]
    oracle = ReferenceOptimizer(Optimizer(kind, attrs, Pos()))
    rule = update_rule(kind, attrs)
    ours, theirs = dict(w0), dict(w0)
    slots: dict[str, dict[str, np.ndarray]] = {k: {} for k in w0}
    for t, (lr, g) in enumerate(zip(LRS, grads, strict=True), start=1):
        theirs = oracle.step(theirs, g, lr)
        ours = {k: apply_update(rule, ours[k], g[k], slots[k], lr, t) for k in w0}
    for k in w0:
        assert np.abs(theirs[k] - w0[k]).max() > 1e-4  # the updates really moved the weights
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-12, atol=1e-15)
    assert {k: set(v) for k, v in slots.items()} == {k: set(rule.slots) for k in w0}


@pytest.mark.parametrize("kind,attrs", FORMS, ids=IDS)
def test_description_is_well_formed(kind: str, attrs: dict[str, Any]) -> None:
    """Per-update scalars read t and numbers only; each statement reads what exists before it;
    slots are set with `=`, the variable moved with `+=`/`-=`; every slot is written."""
    rule = update_rule(kind, attrs)
    defined = {W, G, LR, *rule.slots}
    for let in rule.per_update:
        assert names(let.value) <= {STEP} | {x.name for x in rule.per_update}
        assert let.name not in defined
        defined.add(let.name)
    written = set()
    for statement in rule.per_variable:
        assert STEP not in names(statement.value)
        assert names(statement.value) <= defined, statement
        if isinstance(statement, Let):
            assert statement.name == G or statement.name not in defined | {STEP}
            defined.add(statement.name)
        else:
            assert (statement.target, statement.op) in {(W, "+="), (W, "-=")} or (
                statement.target in rule.slots and statement.op == "="
            )
            written.add(statement.target)
    assert written == {W, *rule.slots}
    assert rule.uses_step == (kind == "adam")


def test_decay_comes_first() -> None:
    base = {"lr": 0.1, "momentum": 0.9, "nesterov": False, "momentum_form": "gradient"}
    l2 = update_rule("sgd", {**base, "weight_decay": 0.1, "weight_decay_mode": "l2"})
    decoupled = update_rule("sgd", {**base, "weight_decay": 0.1, "weight_decay_mode": "decoupled"})
    assert l2.per_variable[0] == Let(G, Name(G) + Num(0.1) * Name(W), l2.per_variable[0].note)
    first = decoupled.per_variable[0]
    assert isinstance(first, Assign) and (first.target, first.op) == (W, "-=")
    none = update_rule("sgd", {**base, "weight_decay": 0.0, "weight_decay_mode": "decoupled"})
    assert len(none.per_variable) == len(l2.per_variable) - 1


def test_numbers_are_validated_reals() -> None:
    with pytest.raises(TypeError):
        Num(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Num(math.inf)
    with pytest.raises(ValueError):
        Bin("%", Num(1.0), Num(2.0))


# ---- the printer keeps the tree -----------------------------------------------------------------

NUMPY = Printer(sqrt="np.sqrt")
a, b, c = Name("a"), Name("b"), Name("c")


@pytest.mark.parametrize(
    "expr,text",
    [
        (a * (b / c), "a * (b / c)"),
        (a * b / c, "a * b / c"),
        (a - (b - c), "a - (b - c)"),
        (a - b - c, "a - b - c"),
        (a + (b + c), "a + (b + c)"),
        ((a + b) * c, "(a + b) * c"),
        (a**b**c, "a ** b ** c"),
        ((a**b) ** c, "(a ** b) ** c"),
        (Num(-2.0) ** a, "(-2.0) ** a"),
        (a * Num(-2.0), "a * -2.0"),
        (1.0 - Num(0.9), "1.0 - 0.9"),
        (Sqrt(a + 1e-08) / b, "np.sqrt(a + 1e-08) / b"),
    ],
)
def test_printer_parenthesises(expr: Expr, text: str) -> None:
    assert NUMPY(expr) == text


def test_printer_power_function() -> None:
    keras = Printer(sqrt="ops.sqrt", power="ops.power")
    assert keras(1.0 - Num(0.9) ** Name(STEP)) == "1.0 - ops.power(0.9, t)"
    assert keras(Sqrt(a) * (b**c)) == "ops.sqrt(a) * ops.power(b, c)"


def _expressions(rule: UpdateRule) -> list[Expr]:
    return [s.value for s in (*rule.per_update, *rule.per_variable)]


@pytest.mark.parametrize("kind,attrs", FORMS, ids=IDS)
def test_printed_updates_compute_the_tree(kind: str, attrs: dict[str, Any]) -> None:
    """Every expression printed as Python, run on float64 NumPy values, gives bit for bit what
    the tree gives: the printer loses no parenthesis that rounding would notice."""
    rng = np.random.default_rng(1)
    rule = update_rule(kind, attrs)
    env: dict[str, Any] = {W: rng.standard_normal(7), G: rng.standard_normal(7), LR: 0.03}
    env[STEP] = 3
    for name in (*rule.slots, *(s.name for s in rule.per_variable if isinstance(s, Let))):
        env[name] = np.abs(rng.standard_normal(7)) + 0.5  # positive: square roots stay real
    for let in rule.per_update:
        env[let.name] = evaluate(let.value, env)
    for expr in _expressions(rule):
        printed = eval(NUMPY(expr), {"np": np}, dict(env))  # noqa: S307 (our own printed text)
        assert np.array_equal(printed, evaluate(expr, env)), NUMPY(expr)


# NumPy's in-place forms: `x op= y` overwrites x's storage, as torch's does
NUMPY_IN_PLACE = InPlace(NUMPY, sqrt="np.sqrt({0}, out={0})", copy="{0}[...] = {1}")


@ROOTS_OF_NEGATIVES
@pytest.mark.parametrize("kind,attrs", FORMS, ids=IDS)
def test_in_place_updates_equal_the_statements(kind: str, attrs: dict[str, Any]) -> None:
    """The in-place lines (the keras torch path), run on float64 NumPy arrays, leave w and every
    slot bit for bit as the statements do, read no input they have overwritten, and allocate
    no more scratch tensors than the statements have operations."""
    rng = np.random.default_rng(2)
    opt = Optimizer(kind, attrs, Pos())
    rule = update_rule(kind, attrs)
    w0, g0 = rng.standard_normal(7), rng.standard_normal(7)
    slots0 = {name: np.abs(rng.standard_normal(7)) + 0.5 for name in rule.slots}
    lines = in_place_update(opt, NUMPY_IN_PLACE)[0]
    want_slots = {k: v.copy() for k, v in slots0.items()}
    want = apply_update(rule, w0.copy(), g0.copy(), want_slots, 0.03, 3)
    env: dict[str, Any] = {W: w0.copy(), G: g0.copy(), LR: 0.03, STEP: 3, "np": np}
    env.update({k: v.copy() for k, v in slots0.items()})
    slots = {k: env[k] for k in rule.slots}
    for let in rule.per_update:
        env[let.name] = evaluate(let.value, env)
    g_before = env[G].copy()
    exec("\n".join(lines), {}, env)  # noqa: S102 (our own generated lines)
    # (centered RMSprop on these random slots takes square roots of negatives: NaN alike)
    assert np.array_equal(env[W], want, equal_nan=True), "\n".join(lines)
    for name in rule.slots:  # updated in their own storage
        assert np.array_equal(slots[name], want_slots[name], equal_nan=True), name
    assert np.array_equal(g0, g_before)  # the gradient is read, never overwritten
    scratch = sum(line.startswith("tmp") and " = " in line for line in lines)
    operations = sum(_operations(s.value) for s in rule.per_variable)
    assert scratch <= operations


def _operations(expr: Expr) -> int:
    if isinstance(expr, Bin):
        return 1 + _operations(expr.left) + _operations(expr.right)
    if isinstance(expr, Sqrt):
        return 1 + _operations(expr.arg)
    return 0


def test_in_place_keeps_a_scalar_operands_grouping() -> None:
    """A scalar expression left of `/` whose right side is a scratch tensor stays grouped."""
    from dlspec.codegen.updates import _InPlaceWriter

    writer = _InPlaceWriter(NUMPY_IN_PLACE, {W, G})
    writer.statement(Assign(W, "-=", (1.0 - Name(LR)) / Sqrt(Name(G) + 1.0)))
    env: dict[str, Any] = {W: np.ones(3), G: np.arange(3.0), LR: 0.25, "np": np}
    exec("\n".join(writer.lines), {}, env)  # noqa: S102 (our own generated lines)
    assert np.array_equal(env[W], 1.0 - (1.0 - 0.25) / np.sqrt(np.arange(3.0) + 1.0))


# CNTK's NumPy form: a value needing a new array is written into a scratch buffer by out=
NUMPY_INTO_BUFFERS = InPlace(
    NUMPY, sqrt="np.sqrt({0}, out={0})", copy="{0}[...] = {1}", out=NUMPY_OUT
)
_ALLOCATES = re.compile(r"^\w+ = (?!tmp\d+(  #.*)?$)")  # an assignment other than naming a buffer


@ROOTS_OF_NEGATIVES
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,attrs", FORMS, ids=IDS)
def test_updates_into_buffers_equal_the_statements(
    kind: str, attrs: dict[str, Any], dtype: type
) -> None:
    """The in-place lines writing into scratch buffers (the cntk path), run on NumPy arrays of
    float64 and of float32 (Python's scalars then round to float32 as in the statements), leave
    w and every slot bit for bit as the statements do, overwrite no input, read no buffer before
    writing it (NaN-filled), allocate no array, and need two buffers beside the locals'."""
    rng = np.random.default_rng(3)
    opt = Optimizer(kind, attrs, Pos())
    rule = update_rule(kind, attrs)
    w0, g0 = rng.standard_normal(7).astype(dtype), rng.standard_normal(7).astype(dtype)
    slots0 = {name: (np.abs(rng.standard_normal(7)) + 0.5).astype(dtype) for name in rule.slots}
    lines, buffers = in_place_update(opt, NUMPY_INTO_BUFFERS)
    want_slots = {k: v.copy() for k, v in slots0.items()}
    want = apply_update(rule, w0.copy(), g0.copy(), want_slots, 0.03, 3)
    assert want.dtype == dtype
    env: dict[str, Any] = {W: w0.copy(), G: g0.copy(), LR: 0.03, STEP: 3, "np": np}
    env.update({k: v.copy() for k, v in slots0.items()})
    env.update({name: np.full(7, np.nan, dtype) for name in buffers})
    slots = {k: env[k] for k in rule.slots}
    w = env[W]
    for let in rule.per_update:
        env[let.name] = evaluate(let.value, env)
    g_before = env[G].copy()
    exec("\n".join(lines), {}, env)  # noqa: S102 (our own generated lines)
    assert env[W] is w  # updated in its own storage, as the slots
    assert np.array_equal(w, want, equal_nan=True), "\n".join(lines)
    for name in rule.slots:
        assert np.array_equal(slots[name], want_slots[name], equal_nan=True), name
    assert np.array_equal(g0, g_before)
    assert not [line for line in lines if _ALLOCATES.match(line)], lines
    assert buffers == [f"tmp{i}" for i in range(len(buffers))]
    assert len(buffers) <= sum(isinstance(s, Let) for s in rule.per_variable) + 2


def test_buffers_are_reused_once_used_up() -> None:
    """Adam's three statements need two buffers: a moment's term is used up by its `+=`."""
    opt = Optimizer(
        "adam",
        {
            "lr": 0.001,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-08,
            "eps_placement": "corrected",
            "weight_decay": 0.0,
            "weight_decay_mode": "l2",
        },
        Pos(),
    )
    lines, buffers = in_place_update(opt, NUMPY_INTO_BUFFERS)
    assert buffers == ["tmp0", "tmp1"]
    assert lines[:3] == ["m *= 0.9", "np.multiply(1.0 - 0.9, g, out=tmp0)", "m += tmp0"]
    assert "np.multiply(1.0 - 0.999, g, out=tmp0)" in lines
    assert (
        in_place_update(opt, NUMPY_IN_PLACE)[0][1] == "tmp0 = (1.0 - 0.9) * g"
    )  # no out: allocates


@pytest.mark.parametrize("kind,attrs", FORMS, ids=IDS)
def test_keras_torch_update_allocates_no_tensor(kind: str, attrs: dict[str, Any]) -> None:
    """The Keras script's torch update: the variables unwrapped, the scratch buffers taken from
    the optimiser (kept between updates), then no line that allocates a tensor."""
    from dlspec.backends.keras_optimizer import optimizer_code

    lines = optimizer_code(Optimizer(kind, attrs, Pos()))["in_place"]
    assert lines[0].endswith(".value.detach()")
    taken = [line for line in lines[1:] if " = self.scratch(" in line]
    assert taken == [f"tmp{k} = self.scratch({k}, w)" for k in range(len(taken))]
    rest = lines[1 + len(taken) :]
    assert not [line for line in rest if _ALLOCATES.match(line)], lines


def test_buffers_hold_one_operation() -> None:
    """Into a buffer goes one operation whose function is known; `**` of a tensor has none."""
    from dlspec.codegen.updates import _InPlaceWriter

    writer = _InPlaceWriter(NUMPY_INTO_BUFFERS, {W, G})
    with pytest.raises(ValueError, match=r"\*\*"):
        writer.statement(Assign(W, "-=", Name(G) ** 2.0))
    with pytest.raises(TypeError):
        writer.fresh(Name(G))
