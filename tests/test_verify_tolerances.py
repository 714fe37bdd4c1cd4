"""A spec's own verify bounds (`verify = tolerance(...)`): read, refused with a position when
malformed, and used by verify for that spec's checks only (no framework needed)."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.errors import SpecError
from dlspec.frontend.load import build
from dlspec.ir.model import Model
from dlspec.verify import run as V

SPEC = """VERIFY
model small {
    input x: float32[3]
    dense(2)
}
train { optimizer = sgd(lr=0.1) }
"""


def small(verify: str = "") -> Model:
    return build(SPEC.replace("VERIFY", verify), "small.dl").model


def test_the_stated_bounds_are_read_and_the_others_stay_default() -> None:
    assert small().verify_tolerances == {}
    model = small("verify = tolerance(weights=1e-2, forward=2e-5)")
    assert model.verify_tolerances == {"forward": 2e-5, "weights": 1e-2}
    assert V.weights_tolerance(model) == 1e-2
    assert V.forward_tolerance(model) == 2e-5
    assert V.weights_tolerance(small()) == V.WEIGHTS_TOL
    assert V.forward_tolerance(small()) == V.FORWARD_TOL


@pytest.mark.parametrize(
    "verify, message",
    [
        ("verify = tolerance", "1:10: error: verify = tolerance(...) states no bound"),
        ("verify = tolerence(weights=1e-2)", "did you mean 'tolerance'?"),
        ("verify = tolerance(wieghts=1e-2)", "has no bound 'wieghts'; did you mean 'weights'?"),
        ("verify = tolerance(1e-2)", "1:20: error: verify bounds are keywords"),
        ("verify = tolerance(weights=0.5)", "1:28: error: verify: weights must be in (0, 0.1]"),
        ("verify = tolerance(weights=0)", "verify: weights must be in (0, 0.1], not 0"),
        ("verify = tolerance(weights=1e-2, weights=1e-3)", "bound 'weights' given twice"),
        ("verify = 0.01", "1:10: error: verify must be tolerance(forward=..."),
        ("verfy = tolerance(weights=1e-2)", "unknown top-level setting 'verfy'"),
    ],
)
def test_a_malformed_setting_is_refused_with_its_position(verify: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        small(verify)
    assert message in str(info.value)


def test_an_inference_spec_takes_a_forward_bound_only() -> None:
    text = "verify = tolerance(BOUND)\nmodel m { input x: float32[3] dense(2) }\n"
    assert build(text.replace("BOUND", "forward=1e-4"), "m.dl").model.verify_tolerances
    with pytest.raises(SpecError, match="verified by its forward only"):
        build(text.replace("BOUND", "weights=1e-2"), "m.dl")


def _oracle_and_result(model: Model, update_error: float) -> tuple[V.Oracle, dict[str, np.ndarray]]:
    """An oracle run and a runtime's results that agree except for the trained weights, whose
    update is off by `update_error` of itself in every tensor."""
    rng = np.random.default_rng(0)
    start = {p.name: rng.standard_normal(p.shape) for p in model.params}
    trained = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in start.items()}
    forward = rng.standard_normal((4, 2))
    ref = V.Oracle(forward, [1.0, 0.9], [0.1, 0.1], trained, start)
    got = {"forward": forward, "losses": np.array([1.0, 0.9]), "lrs": np.array([0.1, 0.1])}
    for name, value in trained.items():
        got["param:" + name] = value + update_error * (value - start[name])
    return ref, got


def test_verify_uses_the_spec_bound_for_that_spec() -> None:
    for verify, passes in [("", False), ("verify = tolerance(weights=1e-2)", True)]:
        model = small(verify)
        ref, got = _oracle_and_result(model, 3e-3)
        checks = {c.check: c for c in V.compare("small.dl", "pytorch", model, ref, got)}
        weights = checks["trained weights vs oracle"]
        assert 2.9e-3 < weights.rel_err < 3.1e-3
        assert weights.passed is passes
        assert weights.tol == (1e-2 if passes else V.WEIGHTS_TOL)
        assert all(c.passed for name, c in checks.items() if name != "trained weights vs oracle")
        assert checks["forward vs oracle"].tol == V.FORWARD_TOL
        assert checks["step losses vs oracle"].tol == V.LOSS_TOL
        # between runtimes: twice the bound
        _, other = _oracle_and_result(model, 0.0)
        cross = V.cross_checks("small.dl", model, {"pytorch": other, "tensorflow": got}, ref)
        assert [c.tol for c in cross] == [2 * V.FORWARD_TOL_RNN, 2 * weights.tol]
        assert [c.passed for c in cross] == [True, passes]
