"""`dlspec verify`: run every target's script on the same weights and batches, compare to the oracle.

The oracle is dlspec.oracle.forward (float64 NumPy forward), dlspec.oracle.grad (its gradients) and
dlspec.oracle.optim (the canonical optimiser formulas). Each target's generated script runs in
its own runtime with `--verify DIR`: it reads DIR/weights.npz and DIR/batches.npz, and writes
DIR/result_<runtime>.npz with the evaluation-mode forward output, the loss and learning rate of
each training step (dropout off), and the weights after the last step.

A spec stating `verify = precision(float64)` (or `dlspec verify --precision float64`) has each
script run twice: with --verify-precision float32, checked for its forward output at the float32
bounds, and with --verify-precision float64, checked for everything at the float64 bounds.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import (
    BATCHES_FILE,
    EVAL,
    FORWARD,
    LOSSES,
    LRS,
    PARAM,
    TRAIN,
    TRAIN_LABELS,
    WEIGHTS_FILE,
)
from dlspec.errors import DlspecError, display_path
from dlspec.ir.model import Model, wrapped
from dlspec.ir.ops import RECURRENT
from dlspec.oracle import forward as reference
from dlspec.oracle.grad import loss_and_grads
from dlspec.oracle.optim import ReferenceOptimizer, train_learning_rate
from dlspec.runtimes import Runtime, runtime
from dlspec.verify import zygote
from dlspec.verify.margins import decision_margin
from dlspec.weights import canonical as W

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
MIN_MARGIN = 1e-6  # relative distance of every kink/tie from flipping (float32 noise is ~3e-7)
MAX_DRAWS = 16
# float64 runs (`verify = precision(float64)`): bounds on the same measures, and the margin their
# training batches need (float64's unit roundoff is 2^-29 of float32's: 1e-6 scaled is ~2e-15)
FORWARD_TOL_FLOAT64 = 1e-9
LOSS_TOL_FLOAT64 = 1e-9
WEIGHTS_TOL_FLOAT64 = 1e-9
MIN_MARGIN_FLOAT64 = 1e-10
PRECISIONS = ("float32", "float64")


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
    margins: list[float] = field(default_factory=list)


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
FLOAT64_ROUNDOFF = 2.0**-53
ROUNDOFF = {"float32": FLOAT32_ROUNDOFF, "float64": FLOAT64_ROUNDOFF}
MOVEMENT_FLOOR = 1e-3


def weight_errors(
    actual: dict[str, Array],
    expected: dict[str, Array],
    start: dict[str, Array],
    steps: int = 0,
    roundoff: float = FLOAT32_ROUNDOFF,
) -> tuple[float, float, str]:
    """Worst parameter by update error max(||w_a - w_e|| - steps * u * ||w_e||, 0) / ||w_e - w_0||
    (2-norms per tensor; u = `roundoff`, the unit roundoff of the run's weights, float32's by
    default: `steps` updates may each round every element by up to u * |w|, which is no semantic
    difference); the divisor is at least MOVEMENT_FLOOR times the largest movement of any tensor.
    Also returns the largest element-wise absolute error of the final weights."""
    worst_abs, worst_rel, worst_name = 0.0, 0.0, ""
    largest = max(
        (float(np.linalg.norm(np.asarray(e, np.float64) - start[n])) for n, e in expected.items()),
        default=0.0,
    )
    for name, e in expected.items():
        a = actual.get(name)
        if a is None or np.shape(a) != np.shape(e):
            return float("inf"), float("inf"), f"{name} missing or misshapen"
        diff = np.asarray(a, np.float64) - np.asarray(e, np.float64)
        e64 = np.asarray(e, np.float64)
        moved = float(np.linalg.norm(e64 - start[name]))
        budget = steps * roundoff * float(np.linalg.norm(e64))
        beyond = max(float(np.linalg.norm(diff)) - budget, 0.0)
        # a tensor the oracle barely moves (a bias under batch norm has a zero gradient, which
        # float32 computes as noise) is judged against a thousandth of the largest movement
        scale = max(moved, MOVEMENT_FLOOR * largest)
        rel = beyond / scale if scale > 0 else beyond
        worst_abs = max(worst_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
        if rel >= worst_rel:
            worst_rel, worst_name = rel, name
    return worst_abs, worst_rel, worst_name


# a training batch at a step, given the weights then: (inputs, labels, decision margin)
Batch = tuple[dict[str, Array], Array, float]


def _training_batch(
    model: Model,
    weights: dict[str, Array],
    seed: int,
    step: int,
    min_margin: float = MIN_MARGIN,
    size: int = VERIFY_BATCH,
) -> Batch:
    """The first of up to MAX_DRAWS seeded candidate batches whose decision margin at `weights`
    is at least `min_margin` (else the best one): no ReLU kink or (global) max-pool near-tie
    within float32 noise (MIN_MARGIN; float64's for float64 runs), where a framework could take
    the other branch for no semantic reason."""
    best: Batch = ({}, np.empty(0), -1.0)
    for draw in range(MAX_DRAWS):
        batch_seed = seed + 1 + step + 1000 * draw
        x = W.input_batches(model, size, batch_seed)
        y = W.label_batch(model, size, batch_seed)
        # a draw stops measuring once it cannot beat the best so far (the same draw wins)
        margin = decision_margin(model, weights, x, floor=best[2])
        if margin >= min_margin:
            return x, y, margin
        if margin > best[2]:
            best = (x, y, margin)
    return best


def _train(
    model: Model,
    start: dict[str, Array],
    eval_x: dict[str, Array],
    steps: int,
    batch_at: Callable[[dict[str, Array], int], Batch],
) -> tuple[Oracle, list[Batch]]:
    """Float64 forward on the evaluation batch, then one update per training batch."""
    forward = reference.forward(model, start, eval_x)
    current = {k: np.asarray(v, np.float64) for k, v in start.items()}
    opt = ReferenceOptimizer(model.train.optimizer)  # type: ignore[union-attr]
    losses, lrs, seen = [], [], []
    for step in range(steps):
        x, y, margin = batch_at(current, step)
        value, grads = loss_and_grads(model, current, x, y)
        lr = train_learning_rate(model.train, step, 0)  # type: ignore[arg-type]
        losses.append(value)
        lrs.append(lr)
        seen.append((x, y, margin))
        buffers = reference.updated_buffers(model, current, x)
        trained = opt.step({name: current[name] for name in grads}, grads, lr)
        current = {**current, **trained, **buffers}
    start64 = {k: np.asarray(v, np.float64) for k, v in start.items()}
    margins = [margin for _, _, margin in seen]
    return Oracle(forward, losses, lrs, current, start64, margins), seen


def oracle(
    model: Model,
    start: dict[str, Array],
    steps: int,
    seed: int = VERIFY_SEED,
    min_margin: float = MIN_MARGIN,
    size: int = VERIFY_BATCH,
) -> tuple[Oracle, dict[str, Array]]:
    """The oracle over `steps` training batches (of `size` samples) drawn here, each checked at
    that step's weights (a decision margin of `min_margin` wanted), and the batches drawn."""
    names = [inp.name for inp in model.inputs]
    eval_x = W.input_batches(model, size, seed)

    def batch_at(current: dict[str, Array], step: int) -> Batch:
        return _training_batch(model, current, seed, step, min_margin, size)

    ref, seen = _train(model, start, eval_x, steps, batch_at)
    drawn = {EVAL + name: eval_x[name] for name in names}
    if seen:
        drawn.update({TRAIN + name: np.stack([x[name] for x, _, _ in seen]) for name in names})
        drawn[TRAIN_LABELS] = np.stack([y for _, y, _ in seen])
    return ref, drawn


def oracle_on(model: Model, start: dict[str, Array], batches: dict[str, Array]) -> Oracle:
    """The oracle over given batches (as `oracle` returns them), each batch's margin measured."""
    names = [inp.name for inp in model.inputs]
    eval_x = {name: batches[EVAL + name] for name in names}

    def batch_at(current: dict[str, Array], step: int) -> Batch:
        x = {name: batches[TRAIN + name][step] for name in names}
        return x, batches[TRAIN_LABELS][step], decision_margin(model, current, x)

    steps = len(batches.get(TRAIN_LABELS, ()))
    return _train(model, start, eval_x, steps, batch_at)[0]


def make_batches(model: Model, steps: int, seed: int = VERIFY_SEED) -> dict[str, Array]:
    """The batches verify uses for `model` from its canonical starting weights."""
    return oracle(model, W.draw_weights(model, VERIFY_SEED), steps, seed)[1]


def run_script(
    rt: Runtime, source: str, workdir: Path, timeout: int = 900, precision: str = "float32"
) -> dict[str, Array]:
    """Write the script, run it in `rt` with --verify (in `precision`), and read its result npz."""
    script = workdir / f"script_{rt.name.replace('[', '_').replace(']', '')}.py"
    script.write_text(source, encoding="utf-8")
    out_name = f"result_{script.stem[len('script_'):]}"
    args = ["--verify", str(workdir), "--verify-name", out_name, "--device", "cpu"]
    if precision != "float32":
        args[3] = out_name = f"{out_name}_{precision}"
        args += ["--verify-precision", precision]
    returncode, stderr = execute(rt, script, args, timeout)
    if returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise VerifyError(f"{rt.name}: script failed (exit {returncode}):\n{tail}")
    with np.load(workdir / f"{out_name}.npz") as f:
        return {k: f[k] for k in f.files}


def execute(
    rt: Runtime, script: Path, args: list[str], timeout: float, cwd: Optional[Path] = None
) -> tuple[int, str]:
    """Run a generated script in `rt` with `args` in folder `cwd` (this process's when None):
    its exit status and stderr. A child of `rt`'s zygote runs it where one is enabled and
    starts, else a process of its own; past `timeout` seconds, subprocess.TimeoutExpired."""
    forked = _forked(rt, script, args, timeout, cwd) if zygote.enabled(rt) else None
    if forked is not None:
        return forked
    done = subprocess.run(
        rt.command(str(script), *args),
        capture_output=True,
        text=True,
        env=rt.environment(),
        timeout=timeout,
        cwd=cwd,
    )
    return done.returncode, done.stderr


def _forked(
    rt: Runtime, script: Path, args: list[str], timeout: float, cwd: Optional[Path]
) -> Optional[tuple[int, str]]:
    """Run the script in a child of `rt`'s zygote (its framework imported once): its exit
    status and stderr, or None when no zygote starts (then a process of its own runs it); past
    `timeout` seconds, subprocess.TimeoutExpired as subprocess.run raises."""
    files = (script.with_suffix(".stdout"), script.with_suffix(".stderr"))
    try:
        warm = zygote.zygote(rt)
    except OSError:
        return None
    done = warm.run(str(script), args, rt.environment(), files, timeout, cwd)
    stderr = files[1].read_text(encoding="utf-8", errors="replace")
    if done.timed_out:
        raise subprocess.TimeoutExpired(rt.command(str(script), *args), timeout, stderr=stderr)
    assert done.returncode is not None
    return done.returncode, stderr


def weights_tolerance(model: Model, precision: str = "float32") -> float:
    """The trained-weights bound: float64's for a float64 run; else the spec's own
    (`verify = tolerance(weights=...)`), else the one for this model's optimiser."""
    if precision == "float64":
        return WEIGHTS_TOL_FLOAT64
    kind = model.train.optimizer.kind  # type: ignore[union-attr]
    default = WEIGHTS_TOL if kind == "sgd" else WEIGHTS_TOL_ADAPTIVE
    return model.verify_tolerances.get("weights", default)


def forward_tolerance(model: Model, precision: str = "float32") -> float:
    """The forward bound: float64's for a float64 run; else the spec's own, else the one for a
    model with or without an RNN."""
    if precision == "float64":
        return FORWARD_TOL_FLOAT64
    rnn = any(wrapped(layer).op in RECURRENT for layer in model.layers)
    return model.verify_tolerances.get("forward", FORWARD_TOL_RNN if rnn else FORWARD_TOL)


def loss_tolerance(model: Model, precision: str = "float32") -> float:
    """The step-losses bound: float64's for a float64 run; else the spec's own, else LOSS_TOL."""
    if precision == "float64":
        return LOSS_TOL_FLOAT64
    return model.verify_tolerances.get("losses", LOSS_TOL)


def trained_params(result: dict[str, Array]) -> dict[str, Array]:
    return {k[len(PARAM) :]: v for k, v in result.items() if k.startswith(PARAM)}


def compare(
    spec: str,
    rt: str,
    model: Model,
    ref: Oracle,
    got: dict[str, Array],
    precision: str = "float32",
    label: bool = False,
    forward_only: bool = False,
) -> list[Check]:
    """The checks of one runtime's results (a run in `precision`) against the oracle; `label`
    names the precision in each check, `forward_only` leaves the training checks out."""
    name = labeller(precision, label)
    tol = forward_tolerance(model, precision)
    checks = [
        new_check(spec, rt, name("forward vs oracle"), *errors(got[FORWARD], ref.forward), tol)
    ]
    if not ref.losses or forward_only:
        return checks
    lrs = errors(got[LRS], np.array(ref.lrs))
    losses = errors(got[LOSSES], np.array(ref.losses))
    steps, roundoff = len(ref.losses), ROUNDOFF[precision]
    abs_err, rel, worst = weight_errors(
        trained_params(got), ref.weights, ref.start, steps, roundoff
    )
    if rel > weights_tolerance(model, precision) and _barely_moved(ref, worst):
        worst += f" ({INERT_NOTE})"
    return checks + [
        new_check(spec, rt, name("lr schedule"), *lrs, 1e-12),
        new_check(
            spec, rt, name("step losses vs oracle"), *losses, loss_tolerance(model, precision)
        ),
        new_check(
            spec,
            rt,
            name("trained weights vs oracle"),
            abs_err,
            rel,
            weights_tolerance(model, precision),
            worst,
        ),
    ]


def labeller(precision: str, label: bool) -> Callable[[str], str]:
    """A check's name, with the precision its run computed in when `label`."""
    return (lambda what: f"{what} ({precision})") if label else (lambda what: what)


INERT_NOTE = (
    "the oracle barely moves it: its gradient is zero, and float32 noise in that zero is what the "
    "framework's optimiser followed (adaptive ones scale it up); a bias right before a batch norm "
    "is the usual case: bias=false"
)


def _barely_moved(ref: Oracle, name: str) -> bool:
    """Whether the oracle moved tensor `name` by less than MOVEMENT_FLOOR of the most-moved one."""
    moved = {n: float(np.linalg.norm(ref.weights[n] - ref.start[n])) for n in ref.weights}
    return name in moved and moved[name] < MOVEMENT_FLOOR * max(moved.values())


def cross_checks(
    spec: str,
    model: Model,
    results: dict[str, dict[str, Array]],
    ref: Oracle,
    precision: str = "float32",
    label: bool = False,
) -> list[Check]:
    """Every runtime against the first one (forward and trained weights), at twice the bounds
    of runs in `precision` (float32: at least twice the RNN forward bound)."""
    names = list(results)
    name = labeller(precision, label)
    forward_tol = 2 * forward_tolerance(model, precision)
    if precision == "float32":
        forward_tol = max(forward_tol, 2 * FORWARD_TOL_RNN)
    checks = []
    for other in names[1:]:
        a, b = results[other], results[names[0]]
        fwd = errors(a[FORWARD], b[FORWARD])
        checks.append(new_check(spec, other, name(f"forward vs {names[0]}"), *fwd, forward_tol))
        if ref.losses:
            steps, roundoff = len(ref.losses), ROUNDOFF[precision]
            abs_err, rel, worst = weight_errors(
                trained_params(a), trained_params(b), ref.start, steps, roundoff
            )
            what = name(f"trained weights vs {names[0]}")
            tol = 2 * weights_tolerance(model, precision)
            checks.append(new_check(spec, other, what, abs_err, rel, tol, worst))
    return checks


def new_check(
    spec: str, rt: str, what: str, abs_err: float, rel: float, tol: float, detail: str = ""
) -> Check:
    return Check(spec, rt, what, abs_err, rel, tol, bool(rel <= tol), detail)


def training_precision(model: Model, precision: str = "spec") -> str:
    """The precision verify's training checks run in: the spec's (`verify = precision(...)`,
    float32 unless stated) for "spec", else the one given (`dlspec verify --precision`)."""
    if precision == "spec":
        return model.verify_precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not spec, {' or '.join(PRECISIONS)}")
    return precision


def verify_model(
    model: Model,
    runtimes: list[str],
    steps: int = 5,
    sources: Optional[dict[str, str]] = None,
    workdir: Optional[Path] = None,
    precision: str = "spec",
) -> list[Check]:
    """Verify one model on the named runtimes; `sources` may replace a runtime's script text.

    In float32 (training_precision) each script runs once and every check is float32's. In
    float64 each runs twice: in float32 for its forward output at the float32 bound, then in
    float64 for every check at the float64 bounds; runtimes are compared by their float64 runs,
    and the training batches need only float64's decision margin."""
    wide = training_precision(model, precision) == "float64"
    with tempfile.TemporaryDirectory(prefix="dlspec-verify-") as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = W.draw_weights(model, VERIFY_SEED)
        W.save_npz(work / WEIGHTS_FILE, start)
        margin = MIN_MARGIN_FLOAT64 if wide else MIN_MARGIN
        ref, batches = oracle(model, start, 0 if model.inference else steps, min_margin=margin)
        np.savez(work / BATCHES_FILE, **batches)
        results: dict[str, dict[str, Array]] = {}
        checks: list[Check] = []
        spec = display_path(model.source.path)  # one printable line in the matrix and the JSON
        for name in runtimes:
            rt = runtime(name)
            source = (sources or {}).get(name) or compile_model(model, rt.target).source
            results[name] = run_script(rt, source, work)
            checks.extend(
                compare(spec, name, model, ref, results[name], label=wide, forward_only=wide)
            )
            if wide:
                results[name] = run_script(rt, source, work, precision="float64")
                checks.extend(compare(spec, name, model, ref, results[name], "float64", label=True))
        checks.extend(
            cross_checks(spec, model, results, ref, "float64" if wide else "float32", wide)
        )
        return checks


def matrix(checks: list[Check]) -> str:
    """The printed matrix: one line per (spec, runtime, check) with errors, tolerance, verdict;
    the text columns as wide as their longest entry (at least 28, 18 and 30 characters)."""
    sw = max([28, *(len(c.spec) for c in checks)])
    rw = max([18, *(len(c.runtime) for c in checks)])
    cw = max([30, *(len(c.check) for c in checks)])
    head = f"{'spec':<{sw}} {'runtime':<{rw}} {'check':<{cw}} {'max abs':>9} {'rel':>9} {'tol':>7}  result"
    lines = [head, "-" * len(head)]
    for c in checks:
        verdict = "ok" if c.passed else "FAIL"
        extra = f"  (worst: {c.detail})" if c.detail and not c.passed else ""
        lines.append(
            f"{c.spec:<{sw}} {c.runtime:<{rw}} {c.check:<{cw}} {c.abs_err:9.2e} {c.rel_err:9.2e} {c.tol:7.0e}  {verdict}{extra}"
        )
    failed = sum(not c.passed for c in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    """Machine-readable results."""
    return json.dumps([asdict(c) for c in checks], indent=2)
