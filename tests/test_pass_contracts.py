"""Each pass's contract: facts that catch their breaches, a pipeline in an order that meets every
requirement, and a pass that breaks its contract stopped with the pass and the breach named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import pytest

from dlspec.errors import SpecError
from dlspec.frontend.load import build, build_file
from dlspec.frontend.lower import lower
from dlspec.frontend.parse import parse
from dlspec.ir.model import Layer, Model, Param
from dlspec.passes import PIPELINE
from dlspec.passes.base import Pass, PassContext, PassContractError, unmet
from dlspec.passes.facts import EXPLICIT, FACTS, RESOLVED, SHAPED, Fact
from dlspec.passes.resolve import resolve
from dlspec.passes.shapes import shapes

SPEC = Path(__file__).resolve().parent.parent / "examples" / "mnist_cnn.dl"


@pytest.fixture(scope="module")
def model() -> Model:
    return build_file(str(SPEC)).model


def _layer(model: Model, index: int, **changes: object) -> Model:
    layers = list(model.layers)
    layers[index] = replace(layers[index], **changes)
    return replace(model, layers=tuple(layers))


def _attrs(model: Model, index: int, **attrs: object) -> Model:
    return _layer(model, index, attrs={**model.layers[index].attrs, **attrs})


def _without(model: Model, index: int, key: str) -> Model:
    attrs = {k: v for k, v in model.layers[index].attrs.items() if k != key}
    return _layer(model, index, attrs=attrs)


def _param(model: Model, index: int, **changes: object) -> Model:
    first: Param = model.layers[index].params[0]
    return _layer(model, index, params=(replace(first, **changes), *model.layers[index].params[1:]))


BREACHES: list[tuple[Fact, str, Callable[[Model], Model], str]] = [
    (RESOLVED, "no profile", lambda m: replace(m, profile=""), "profile ''"),
    (RESOLVED, "unknown op", lambda m: _layer(m, 1, op="swish"), "unknown op 'swish'"),
    (RESOLVED, "provisional name", lambda m: _layer(m, 0, name="#0"), "'#0' is not"),
    (RESOLVED, "name twice", lambda m: _layer(m, 2, name="conv2d_1"), "'conv2d_1' is not a new"),
    (RESOLVED, "reads later", lambda m: _layer(m, 1, inputs=("conv2d_2",)), "nothing before it"),
    (RESOLVED, "output no layer", lambda m: replace(m, outputs=("image",)), "output 'image'"),
    (RESOLVED, "no output", lambda m: replace(m, outputs=()), "names no output"),
    (EXPLICIT, "attribute missing", lambda m: _without(m, 0, "stride"), "lacks stride"),
    (EXPLICIT, "attribute unset", lambda m: _attrs(m, 0, stride=None), "leaves stride unset"),
    (EXPLICIT, "no training", lambda m: replace(m, train=None), "settings are not filled"),
    (
        EXPLICIT,
        "optimiser attribute missing",
        lambda m: replace(
            m, train=replace(m.train, optimizer=replace(m.train.optimizer, attrs={"lr": 1.0}))
        ),
        "the optimiser has ['lr']",
    ),
    (SHAPED, "no output shape", lambda m: _layer(m, 3, out_shape=()), "no output shape"),
    (SHAPED, "zero size", lambda m: _layer(m, 3, out_shape=(64, 0, 24)), "no output shape"),
    (SHAPED, "wrong input shape", lambda m: _layer(m, 1, in_shape=(1, 28, 28)), "its source"),
    (SHAPED, "padding by name", lambda m: _attrs(m, 0, padding="same"), "padding 'same'"),
    (SHAPED, "parameter role", lambda m: _param(m, 0, role="gamma"), "not its op's"),
    (SHAPED, "parameter name", lambda m: _param(m, 0, name="dense_1.weight"), "not its op's"),
    (SHAPED, "parameter shape", lambda m: _param(m, 0, shape=(32, 0, 3, 3)), "has shape"),
    (SHAPED, "undeclared attribute", lambda m: _attrs(m, 1, axis=1), "holds axis, undeclared"),
    (SHAPED, "flatten order", lambda m: _without(m, 6, "permutable"), "lacks permutable, not"),
    (SHAPED, "dense's source", lambda m: _without(m, 7, "flattened_from"), "lacks flattened_from"),
]


@pytest.mark.parametrize(
    "fact, breach, expected",
    [(f, b, e) for f, _, b, e in BREACHES],
    ids=[n for _, n, _, _ in BREACHES],
)
def test_a_fact_names_each_breach(
    model: Model, fact: Fact, breach: Callable[[Model], Model], expected: str
) -> None:
    assert fact.check(model) == []
    found = fact.check(breach(model))
    assert any(expected in line for line in found), found
    assert all(other.check(model) == [] for other in FACTS)


def test_the_pipeline_meets_every_requirement_in_order() -> None:
    assert unmet(PIPELINE) == []
    assert [p.name for p in PIPELINE] == ["resolve", "defaults", "shapes", "validate", "lint"]


def test_a_pipeline_out_of_order_is_reported() -> None:
    assert unmet((shapes, resolve)) == ["shapes requires resolved", "shapes requires explicit"]


def test_a_pass_given_a_model_it_cannot_read_is_stopped() -> None:
    model, written = lower(parse(SPEC.read_text(), str(SPEC)))
    assert RESOLVED.check(model)  # provisional names, no profile: the lowered model
    with pytest.raises(PassContractError, match=r"pass shapes requires: resolved: "):
        shapes(model, PassContext(written=written))


def test_a_pass_breaking_what_it_ensures_is_stopped(model: Model) -> None:
    def forgetful(m: Model, ctx: PassContext) -> Model:
        return replace(
            m, layers=m.layers[:1] + (replace(m.layers[1], out_shape=()),) + m.layers[2:]
        )

    step = Pass(forgetful, requires=(SHAPED,), ensures=(SHAPED,))
    with pytest.raises(PassContractError, match=r"pass forgetful ensures: shaped: layer 'relu_1'"):
        step(model, PassContext())


def test_a_pass_that_finds_spec_problems_is_not_held_to_its_contract() -> None:
    text = SPEC.read_text().replace("    dense(10)\n", "    dense(10)\n    swish\n")
    model, written = lower(parse(text, "bad.dl"))
    ctx = PassContext(written=written)
    out = resolve(model, ctx)  # the unknown op is dropped: the output names no layer
    assert [p.message for p in ctx.problems] == ["unknown layer 'swish'"]
    assert any("output '#11'" in line for line in RESOLVED.check(out))
    with pytest.raises(SpecError, match="unknown layer 'swish'"):
        build(text, "bad.dl")


def test_each_fact_says_what_it_means() -> None:
    assert len({f.name for f in FACTS}) == len(FACTS)
    assert all(len(f.meaning) > 40 for f in FACTS)


def test_a_wrapped_layer_is_held_to_its_own_op() -> None:
    spec = (
        "model m {\n  input x: float32[5, 3]\n  time_distributed(dense(4))\n}\n"
        "train {\n  loss = mse\n}\n"
    )
    built = build(spec, "td.dl").model
    assert EXPLICIT.check(built) == []
    td = built.layers[0]
    inner: Layer = td["layer"]
    broken = _attrs(built, 0, layer=replace(inner, attrs={"units": 4}))
    assert any("(dense) lacks" in line for line in EXPLICIT.check(broken))
