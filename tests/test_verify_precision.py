"""`verify = precision(float64)`: read, refused with a position when malformed, and verify's
bookkeeping for it (two runs per runtime, which checks each run gets, their bounds and labels)
with a NumPy stand-in for a runtime (no framework needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dlspec.errors import SpecError
from dlspec.frontend.load import build
from dlspec.ir.model import Model
from dlspec.runtimes import Runtime
from dlspec.verify import run as V

SPEC = """VERIFY
model small {
    input x: float32[3]
    dense(4) -> tanh
    dense(2)
}
train { optimizer = adam(lr=0.01) }
"""


def small(verify: str = "") -> Model:
    return build(SPEC.replace("VERIFY", verify), "small.dl").model


def test_the_precision_is_read_and_defaults_to_float32() -> None:
    assert small().verify_precision == "float32"
    assert small("verify = precision(float32)").verify_precision == "float32"
    model = small("verify = precision(float64)")
    assert (model.verify_precision, model.verify_tolerances) == ("float64", {})
    both = small("verify = tolerance(weights=1e-2)\nverify = precision(float64)")
    assert (both.verify_precision, both.verify_tolerances) == ("float64", {"weights": 1e-2})
    assert V.training_precision(model) == "float64"
    assert V.training_precision(model, "float32") == "float32"
    assert V.training_precision(small(), "float64") == "float64"
    with pytest.raises(ValueError, match="float16"):
        V.training_precision(model, "float16")


@pytest.mark.parametrize(
    "verify, message",
    [
        ("verify = precision(float16)", "1:20: error: verify precision 'float16' is not float32"),
        ("verify = precision(flaot64)", "did you mean 'float64'?"),
        ("verify = precision", "1:10: error: verify = precision(...) takes one dtype"),
        ("verify = precision(float64, float32)", "1:29: error: verify = precision(...) takes one"),
        ("verify = precision(dtype=float64)", "1:20: error: verify = precision(...) takes one"),
        ("verify = precision(64)", "1:20: error: verify = precision(...) takes one dtype"),
        ("verify = precison(float64)", "1:10: error: unknown verify setting 'precison'; did you"),
        (
            "verify = precision(float64)\nverify = precision(float32)",
            "2:1: error: verify = precision(...) given twice",
        ),
        (
            "verify = tolerance(weights=1e-2)\nverify = tolerance(forward=1e-4)",
            "2:1: error: verify = tolerance(...) given twice",
        ),
        ("verify = 64", "1:10: error: verify must be tolerance(forward=..."),
    ],
)
def test_a_malformed_precision_is_refused_with_its_position(verify: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        small(verify)
    assert message in str(info.value)


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


def test_float64_checks_have_float64_bounds_and_say_so() -> None:
    model = small("verify = tolerance(weights=1e-2)\nverify = precision(float64)")
    ref, got = _oracle_and_result(model, 3e-9)  # fine for float32, not for float64
    wide = {c.check: c for c in V.compare("s", "rt", model, ref, got, "float64", label=True)}
    assert list(wide) == [
        "forward vs oracle (float64)",
        "lr schedule (float64)",
        "step losses vs oracle (float64)",
        "trained weights vs oracle (float64)",
    ]
    assert [c.tol for c in wide.values()] == [1e-9, 1e-12, 1e-9, 1e-9]  # the spec's 1e-2: float32's
    assert not wide["trained weights vs oracle (float64)"].passed
    assert 2.9e-9 < wide["trained weights vs oracle (float64)"].rel_err < 3.1e-9
    narrow = V.compare("s", "rt", model, ref, got, "float32", label=True, forward_only=True)
    assert [(c.check, c.tol, c.passed) for c in narrow] == [
        ("forward vs oracle (float32)", V.FORWARD_TOL, True)
    ]
    # unlabelled float32 checks keep their names, as for every spec without the statement
    assert [c.check for c in V.compare("s", "rt", small(), ref, got)][0] == "forward vs oracle"
    cross = V.cross_checks("s", model, {"a": got, "b": got}, ref, "float64", label=True)
    assert [(c.check, c.tol) for c in cross] == [
        ("forward vs a (float64)", 2e-9),
        ("trained weights vs a (float64)", 2e-9),
    ]


def test_the_rounding_budget_is_the_runs_unit_roundoff() -> None:
    """`steps` roundings of every weight by u * |w| are no error: u = 2^-24 in float32 runs,
    2^-53 in float64 ones, so float32 weights are an error in a float64 run."""
    rng = np.random.default_rng(1)
    start = {"w": rng.standard_normal(1000)}
    expected = {"w": start["w"] + 0.01 * rng.standard_normal(1000)}
    rounded = {"w": expected["w"].astype(np.float32).astype(np.float64)}
    _, rel32, _ = V.weight_errors(rounded, expected, start, 1, V.FLOAT32_ROUNDOFF)
    _, rel64, _ = V.weight_errors(rounded, expected, start, 1, V.FLOAT64_ROUNDOFF)
    assert rel32 == 0.0
    assert rel64 > 1e-6


# A stand-in for a runtime's script: it answers --verify with dlspec's own oracle, computed in
# float64 and rounded to --verify-precision, so verify's plumbing is exercised without a framework.
STAND_IN = """
import argparse, os
import numpy as np
from dlspec.frontend.load import build
from dlspec.verify import run as V
parser = argparse.ArgumentParser()
for flag in ("--verify", "--verify-name", "--device"):
    parser.add_argument(flag)
parser.add_argument("--verify-precision", default="float32")
args = parser.parse_args()
model = build(TEXT, "small.dl").model
weights = dict(np.load(os.path.join(args.verify, "weights.npz")))
batches = dict(np.load(os.path.join(args.verify, "batches.npz")))
ref = V.oracle_on(model, weights, batches)
dtype = np.dtype(args.verify_precision)
result = {"forward": ref.forward.astype(dtype), "losses": np.array(ref.losses, dtype),
          "lrs": np.array(ref.lrs)}
result.update({"param:" + k: v.astype(dtype) for k, v in ref.weights.items()})
np.savez(os.path.join(args.verify, args.verify_name + ".npz"), **result)
"""


@pytest.mark.parametrize("precision", ["spec", "float32"])
def test_verify_runs_a_float64_spec_twice(
    precision: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = SPEC.replace("VERIFY", "verify = precision(float64)")
    model = build(text, "small.dl").model
    monkeypatch.setattr(V, "runtime", lambda name: Runtime(name, "pytorch", (sys.executable,)))
    source = f"TEXT = {text!r}\n{STAND_IN}"
    sources = {"a": source, "b": source}
    checks = V.verify_model(model, ["a", "b"], 2, sources, tmp_path, precision)
    print(V.matrix(checks))
    found = {(c.runtime, c.check): c for c in checks}
    if precision == "float32":  # forced: one run each, the float32 checks as for any spec
        assert sorted(p.name for p in tmp_path.glob("result_*")) == ["result_a.npz", "result_b.npz"]
        assert ("a", "trained weights vs oracle") in found
        assert not any("float64" in c.check for c in checks)
        return
    assert sorted(p.name for p in tmp_path.glob("result_*")) == [
        "result_a.npz",
        "result_a_float64.npz",
        "result_b.npz",
        "result_b_float64.npz",
    ]
    assert [check for rt, check in found if rt == "a"] == [
        "forward vs oracle (float32)",
        "forward vs oracle (float64)",
        "lr schedule (float64)",
        "step losses vs oracle (float64)",
        "trained weights vs oracle (float64)",
    ]
    assert [check for rt, check in found if rt == "b"][-2:] == [
        "forward vs a (float64)",
        "trained weights vs a (float64)",
    ]
    assert all(c.passed for c in checks)
    # the float32 run answered in float32, the float64 run in float64: the flag reached each
    assert 1e-9 < found[("a", "forward vs oracle (float32)")].rel_err < 1e-6
    assert found[("a", "forward vs oracle (float64)")].rel_err == 0.0
    assert found[("a", "trained weights vs oracle (float64)")].rel_err == 0.0
