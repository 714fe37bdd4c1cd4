"""`dlspec verify`: run every target's script on the same weights and batches, compare to the oracle.

The oracle is dlspec.reference (float64 NumPy forward), dlspec.reference_grad (its gradients) and
dlspec.reference_optim (the canonical optimiser formulas). Each target's generated script runs in
its own runtime with `--verify DIR`: it reads DIR/weights.npz and DIR/batches.npz, and writes
DIR/result_<runtime>.npz with the evaluation-mode forward output, the loss and learning rate of
each training step (dropout off), and the weights after the last step.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from dlspec import reference
from dlspec import weights as W
from dlspec.compile import compile_model
from dlspec.errors import DlspecError
from dlspec.ir import Model
from dlspec.reference_grad import loss_and_grads
from dlspec.reference_optim import ReferenceOptimizer, train_learning_rate
from dlspec.runtimes import Runtime, runtime

Array = np.ndarray

# Tolerances on scale-relative error max|a - b| / max|b| (documented in docs/semantics.md).
FORWARD_TOL = 1e-5
FORWARD_TOL_RNN = 1e-4
LOSS_TOL = 1e-4
WEIGHTS_TOL = 1e-4
# Adam, RMSprop and Adadelta divide by sqrt(E[g^2]): where |g| is near eps, float32 rounding of g
# is magnified into the update, so their trained weights get a documented, looser bound.
WEIGHTS_TOL_ADAPTIVE = 5e-4
VERIFY_BATCH = 4
VERIFY_SEED = 1234


class VerifyError(DlspecError):
    """A runtime failed to produce results (not a numerical mismatch)."""


@dataclass(frozen=True)
class Check:
    """One comparison: what against what, the measured errors, the tolerance and the verdict."""

    spec: str
    runtime: str
    check: str
    abs_err: float
    rel_err: float
    tol: float
    passed: bool
    detail: str = ""


@dataclass
class Oracle:
    """The reference results for one model."""

    forward: Array
    losses: list[float]
    lrs: list[float]
    weights: dict[str, Array]
    start: dict[str, Array] = field(default_factory=dict)


def errors(actual: Array, expected: Array) -> tuple[float, float]:
    """(max abs error, max abs error / max |expected|), element by element, never sorted."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf"), float("inf")
    diff = float(np.max(np.abs(a - e))) if a.size else 0.0
    scale = float(np.max(np.abs(e))) if e.size else 0.0
    return diff, diff / scale if scale > 0 else diff


FLOAT32_ROUNDOFF = 2.0**-24


def weight_errors(
    actual: dict[str, Array], expected: dict[str, Array], start: dict[str, Array], steps: int = 0
) -> tuple[float, float, str]:
    """Worst parameter by update error max(||w_a - w_e|| - steps * u * ||w_e||, 0) / ||w_e - w_0||
    (2-norms per tensor; u = float32 unit roundoff: `steps` updates of float32 weights may each
    round every element by up to u * |w|, which is no semantic difference); also returns the
    largest element-wise absolute error of the final weights."""
    worst_abs, worst_rel, worst_name = 0.0, 0.0, ""
    for name, e in expected.items():
        a = actual.get(name)
        if a is None or np.shape(a) != np.shape(e):
            return float("inf"), float("inf"), f"{name} missing or misshapen"
        diff = np.asarray(a, np.float64) - np.asarray(e, np.float64)
        e64 = np.asarray(e, np.float64)
        moved = float(np.linalg.norm(e64 - start[name]))
        budget = steps * FLOAT32_ROUNDOFF * float(np.linalg.norm(e64))
        beyond = max(float(np.linalg.norm(diff)) - budget, 0.0)
        rel = beyond / moved if moved > 0 else beyond
        worst_abs = max(worst_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
        if rel >= worst_rel:
            worst_rel, worst_name = rel, name
    return worst_abs, worst_rel, worst_name


def make_batches(model: Model, steps: int, seed: int = VERIFY_SEED) -> dict[str, Array]:
    """A fixed evaluation batch and one training batch per step (inputs and labels)."""
    n = VERIFY_BATCH
    train_x = (
        np.stack([W.input_batch(model, n, seed + 1 + k) for k in range(steps)]) if steps else None
    )
    train_y = (
        np.stack([W.label_batch(model, n, seed + 1 + k) for k in range(steps)]) if steps else None
    )
    batches = {"eval_x": W.input_batch(model, n, seed)}
    if steps:
        batches.update(train_x=train_x, train_y=train_y)
    return batches


def oracle(model: Model, start: dict[str, Array], batches: dict[str, Array]) -> Oracle:
    """Float64 forward on the evaluation batch, then one update per training batch."""
    forward = reference.forward(model, start, batches["eval_x"])
    current = {k: np.asarray(v, np.float64) for k, v in start.items()}
    opt = ReferenceOptimizer(model.train.optimizer)  # type: ignore[union-attr]
    losses, lrs = [], []
    for step in range(len(batches.get("train_x", ()))):
        value, grads = loss_and_grads(
            model, current, batches["train_x"][step], batches["train_y"][step]
        )
        lr = train_learning_rate(model.train, step, 0)  # type: ignore[arg-type]
        losses.append(value)
        lrs.append(lr)
        current = opt.step(current, grads, lr)
    start64 = {k: np.asarray(v, np.float64) for k, v in start.items()}
    return Oracle(forward, losses, lrs, current, start64)


def run_script(rt: Runtime, source: str, workdir: Path, timeout: int = 900) -> dict[str, Array]:
    """Write the script, run it in `rt` with --verify, and read its result npz."""
    script = workdir / f"script_{rt.name.replace('[', '_').replace(']', '')}.py"
    script.write_text(source, encoding="utf-8")
    out_name = f"result_{script.stem[len('script_'):]}"
    cmd = rt.command(
        str(script), "--verify", str(workdir), "--verify-name", out_name, "--device", "cpu"
    )
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=rt.environment(), timeout=timeout
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise VerifyError(f"{rt.name}: script failed (exit {done.returncode}):\n{tail}")
    with np.load(workdir / f"{out_name}.npz") as f:
        return {k: f[k] for k in f.files}


def weights_tolerance(model: Model) -> float:
    """The trained-weights bound for this model's optimiser."""
    kind = model.train.optimizer.kind  # type: ignore[union-attr]
    return WEIGHTS_TOL if kind == "sgd" else WEIGHTS_TOL_ADAPTIVE


def _params(result: dict[str, Array]) -> dict[str, Array]:
    return {k[len("param:") :]: v for k, v in result.items() if k.startswith("param:")}


def compare(spec: str, rt: str, model: Model, ref: Oracle, got: dict[str, Array]) -> list[Check]:
    """The checks of one runtime's results against the oracle."""
    rnn = any(layer.op in ("gru", "lstm") for layer in model.layers)
    tol = FORWARD_TOL_RNN if rnn else FORWARD_TOL
    checks = [_check(spec, rt, "forward vs oracle", *errors(got["forward"], ref.forward), tol)]
    if not ref.losses:
        return checks
    lrs = errors(got["lrs"], np.array(ref.lrs))
    losses = errors(got["losses"], np.array(ref.losses))
    abs_err, rel, name = weight_errors(_params(got), ref.weights, ref.start, len(ref.losses))
    return checks + [
        _check(spec, rt, "lr schedule", *lrs, 1e-12),
        _check(spec, rt, "step losses vs oracle", *losses, LOSS_TOL),
        _check(spec, rt, "trained weights vs oracle", abs_err, rel, weights_tolerance(model), name),
    ]


def cross_checks(
    spec: str, model: Model, results: dict[str, dict[str, Array]], ref: Oracle
) -> list[Check]:
    """Every runtime against the first one (forward and trained weights), at twice the bounds."""
    names = list(results)
    checks = []
    for other in names[1:]:
        a, b = results[other], results[names[0]]
        fwd = errors(a["forward"], b["forward"])
        checks.append(_check(spec, other, f"forward vs {names[0]}", *fwd, 2 * FORWARD_TOL_RNN))
        if ref.losses:
            abs_err, rel, name = weight_errors(_params(a), _params(b), ref.start, len(ref.losses))
            what = f"trained weights vs {names[0]}"
            checks.append(
                _check(spec, other, what, abs_err, rel, 2 * weights_tolerance(model), name)
            )
    return checks


def _check(
    spec: str, rt: str, what: str, abs_err: float, rel: float, tol: float, detail: str = ""
) -> Check:
    return Check(spec, rt, what, abs_err, rel, tol, bool(rel <= tol), detail)


def verify_model(
    model: Model,
    runtimes: list[str],
    steps: int = 5,
    sources: Optional[dict[str, str]] = None,
    workdir: Optional[Path] = None,
) -> list[Check]:
    """Verify one model on the named runtimes; `sources` may replace a runtime's script text."""
    with tempfile.TemporaryDirectory(prefix="dlspec-verify-") as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = W.draw_weights(model, VERIFY_SEED)
        W.save_npz(work / "weights.npz", start)
        batches = make_batches(model, steps)
        np.savez(work / "batches.npz", **batches)
        ref = oracle(model, start, batches)
        results: dict[str, dict[str, Array]] = {}
        checks: list[Check] = []
        for name in runtimes:
            rt = runtime(name)
            source = (sources or {}).get(name) or compile_model(model, rt.target).source
            results[name] = run_script(rt, source, work)
            checks.extend(compare(model.source.path, name, model, ref, results[name]))
        checks.extend(cross_checks(model.source.path, model, results, ref))
        return checks


def matrix(checks: list[Check]) -> str:
    """The printed matrix: one line per (spec, runtime, check) with errors, tolerance, verdict."""
    head = (
        f"{'spec':<28} {'runtime':<18} {'check':<30} {'max abs':>9} {'rel':>9} {'tol':>7}  result"
    )
    lines = [head, "-" * len(head)]
    for c in checks:
        verdict = "ok" if c.passed else "FAIL"
        extra = f"  (worst: {c.detail})" if c.detail and not c.passed else ""
        lines.append(
            f"{c.spec:<28} {c.runtime:<18} {c.check:<30} {c.abs_err:9.2e} {c.rel_err:9.2e} {c.tol:7.0e}  {verdict}{extra}"
        )
    failed = sum(not c.passed for c in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    """Machine-readable results."""
    return json.dumps([asdict(c) for c in checks], indent=2)
