"""`dlspec verify --replicas N`: N data-parallel replicas against one process and the oracle.

Each runtime's script runs twice on the same weights and batches: as one process, and as N
replicas under its target's launcher (PyTorch: torchrun; TensorFlow: the script's own
--replicas N, tf.distribute workers), each replica stepping on its part of
every batch. Both are compared with the float64 oracle's full-batch steps (at the learning rate
each trains with: `lr_scaling = linear` multiplies it by N), and the replicas with the one process.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import BATCHES_FILE, LOSSES, WEIGHTS_FILE
from dlspec.errors import display_path
from dlspec.ir.model import Model, uses
from dlspec.ir.ops import BATCH_STATISTICS
from dlspec.runtimes import Runtime, runtime
from dlspec.verify.replicas import run_replicas
from dlspec.verify.run import (
    MIN_MARGIN,
    MIN_MARGIN_FLOAT64,
    ROUNDOFF,
    VERIFY_BATCH,
    VERIFY_SEED,
    Array,
    Check,
    Oracle,
    VerifyError,
    compare,
    errors,
    labeller,
    new_check,
    oracle,
    oracle_on,
    run_script,
    trained_params,
    training_precision,
    weight_errors,
    weights_tolerance,
)
from dlspec.weights import canonical as W

# replicas against one process differ only in the rounding of the gradient's mean over the
# replicas: a tenth of the trained-weights bound against the oracle (float32: 1e-5 with SGD,
# 5e-5 with the adaptive optimisers, which magnify float32 rounding of g; float64: 1e-10)
REPLICA_SHARE = 0.1


def replica_tolerance(model: Model, precision: str) -> float:
    """The bound on the replicas' step losses and trained weights against one process's."""
    return REPLICA_SHARE * weights_tolerance(model, precision)


def replica_batch(replicas: int) -> int:
    """Verify's batch with N replicas: VERIFY_BATCH rounded up to a multiple of N, so that every
    replica takes as many rows."""
    return -(-VERIFY_BATCH // replicas) * replicas


def check_replicable(model: Model) -> None:
    """Raise VerifyError where N replicas cannot equal one process: no training, or batch norm on
    each replica's own rows (which differs from the global batch's by design)."""
    spec = display_path(model.source.path)
    if model.inference or model.train is None:
        raise VerifyError(f"{spec}: an inference spec has no training to split over replicas")
    if uses(model, BATCH_STATISTICS) and not model.train.batchnorm_sync:
        raise VerifyError(
            f"{spec}: batch norm takes each replica's own statistics (batchnorm_sync = false), "
            "which differ from the global batch's by design; verify --replicas needs "
            "batchnorm_sync = true"
        )


def scaled(model: Model, replicas: int) -> Model:
    """The model with the learning rate N replicas train with (times N when lr_scaling is
    linear; every schedule is proportional to it)."""
    train = model.train
    assert train is not None
    if train.lr_scaling == "none":
        return model
    opt = train.optimizer
    faster = replace(opt, attrs={**opt.attrs, "lr": opt["lr"] * replicas})
    return replace(model, train=replace(train, optimizer=faster))


def run_replica_script(
    rt: Runtime, source: str, workdir: Path, replicas: int, precision: str
) -> dict[str, Array]:
    """Run the script as `replicas` replicas with --verify (in `precision`); rank 0's result."""
    stem = rt.name.replace("[", "_").replace("]", "")
    script = workdir / f"script_{stem}.py"
    script.write_text(source, encoding="utf-8")
    name = f"result_{stem}_x{replicas}_{precision}"
    args = ["--verify", str(workdir), "--verify-name", name, "--device", "cpu"]
    args += ["--verify-precision", precision]
    done, tail = run_replicas(rt, str(script), replicas, args, workdir / name)
    if done.timed_out:
        raise VerifyError(f"{rt.name} x{replicas}: killed after {done.wall_seconds:.0f} s:\n{tail}")
    if done.returncode != 0:
        raise VerifyError(f"{rt.name} x{replicas}: failed (exit {done.returncode}):\n{tail}")
    with np.load(workdir / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def against_one_process(
    spec: str,
    label: str,
    model: Model,
    runs: tuple[dict[str, Array], dict[str, Array]],
    ref: Oracle,
    precision: str,
    named: bool,
) -> list[Check]:
    """The replicas' step losses and trained weights against the one process's (`runs`: the
    replicas', the one process's)."""
    multi, single = runs
    name = labeller(precision, named)
    tol = replica_tolerance(model, precision)
    steps = len(ref.losses)
    abs_err, rel, worst = weight_errors(
        trained_params(multi), trained_params(single), ref.start, steps, ROUNDOFF[precision]
    )
    losses = errors(multi[LOSSES], single[LOSSES])
    return [
        new_check(spec, label, name("step losses vs 1 process"), *losses, tol),
        new_check(spec, label, name("trained weights vs 1 process"), abs_err, rel, tol, worst),
    ]


def verify_replicas(
    model: Model,
    runtimes: list[str],
    replicas: int,
    steps: int = 5,
    workdir: Optional[Path] = None,
    precision: str = "spec",
) -> list[Check]:
    """Verify one model's scripts as one process and as `replicas` replicas, in the training
    precision (the spec's, or `precision`); every runtime named must have a launcher."""
    check_replicable(model)
    prec = training_precision(model, precision)
    named = prec == "float64"
    spec = display_path(model.source.path)
    with tempfile.TemporaryDirectory(prefix="dlspec-verify-") as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = W.draw_weights(model, VERIFY_SEED)
        W.save_npz(work / WEIGHTS_FILE, start)
        margin = MIN_MARGIN_FLOAT64 if named else MIN_MARGIN
        ref, batches = oracle(model, start, steps, min_margin=margin, size=replica_batch(replicas))
        np.savez(work / BATCHES_FILE, **batches)
        faster = scaled(model, replicas)
        ref_multi = ref if faster is model else oracle_on(faster, start, batches)
        checks: list[Check] = []
        for name in runtimes:
            source = compile_model(model, runtime(name).target).source
            single = run_script(runtime(name), source, work, precision=prec)
            multi = run_replica_script(runtime(name), source, work, replicas, prec)
            label = f"{name} x{replicas}"
            checks += compare(spec, name, model, ref, single, prec, label=named)
            checks += compare(spec, label, faster, ref_multi, multi, prec, label=named)
            if faster is model:
                checks += against_one_process(spec, label, model, (multi, single), ref, prec, named)
        return checks
