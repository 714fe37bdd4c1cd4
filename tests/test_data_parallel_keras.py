"""Data-parallel Keras scripts on the jax backend (Keras's DataParallel over multi-process JAX):
2 replicas train the weights of one process, and a lost replica stops the run with an error."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import replica_runs
from replica_runs import (
    ENDLESS,
    FAILURE_TIMEOUT,
    MLP,
    RUN_TIMEOUT,
    STEPS,
    WEIGHTS_TOL,
    check_two_replicas,
    child_with,
    run,
    session_processes,
    stop,
    wait_for,
    write_npz,
)

from dlspec.frontend.load import build
from dlspec.runtimes import Runtime, runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework
pytest.importorskip("jax", reason="jax is not installed: keras[jax] data-parallel tests skipped")
pytest.importorskip(
    "keras", reason="keras is not installed: keras[jax] data-parallel tests skipped"
)

JAX = runtime("keras[jax]")


def script(text: str, folder: Path) -> Path:
    """The Keras script of a spec text."""
    return replica_runs.script(text, folder, "keras")


def trains_the_weights_of_one_process(rt: Runtime, tmp_path: Path) -> dict:
    """Two replicas on 12 samples (every batch full: what a keras[jax] replica run needs) against
    one process, real data reshuffled each epoch: each replica feeds its half of every global
    batch. The replicas' results."""
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 12, 8))
    single = run(rt, path, "single", 1, *STEPS, "--data", data)
    double = run(rt, path, "double", 2, *STEPS, "--data", data)
    check_two_replicas(single, double, 12, 8, rel=1e-5)
    return double[0]


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path) -> None:
    assert trains_the_weights_of_one_process(JAX, tmp_path)["runtime"] == "keras[jax]"


def run_as_rank(path: Path, *flags: str) -> subprocess.CompletedProcess:
    """Rank 0 of 2 by its environment: the checks before it joins the others."""
    env = {**JAX.environment(), "KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}
    env.update(KERAS_DISTRIBUTION_PROCESS_ID="0", KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:1")
    argv = [*JAX.python, str(path), "--device", "cpu", *flags]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT)


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path: Path) -> None:
    done = run_as_rank(script(MLP.replace("batch = 4", "batch = 5"), tmp_path))
    assert done.returncode == 1
    assert "batch 5 is the global batch: it must split evenly over the 2 replicas" in done.stderr


def test_the_torch_backend_refuses_replicas(tmp_path: Path) -> None:
    path = script(MLP, tmp_path)
    env = {**os.environ, "KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}
    env.update(KERAS_DISTRIBUTION_PROCESS_ID="0", KERAS_BACKEND="torch")
    argv = [*JAX.python, str(path), "--device", "cpu"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT)
    assert done.returncode == 1
    assert "runs on its jax backend only, and tf.distribute on tensorflow, not torch" in done.stderr


# ---- a lost replica --------------------------------------------------------------------------


def replica(launcher: int, rank: int) -> int:
    """The child the script started for replica `rank`."""
    return child_with(launcher, f"KERAS_DISTRIBUTION_PROCESS_ID={rank}")


def a_killed_replica_stops_the_run(rt: Runtime, tmp_path: Path) -> None:
    """Replica 1 is killed mid-run: the script that started the replicas stops the other and
    exits 1 within the timeout, naming the lost replica; no process of the run is left."""
    path = script(ENDLESS, tmp_path)
    err = tmp_path / "run.err"
    argv = [*rt.python, str(path), *STEPS, "--epochs", "100000", "--replicas", "2"]
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=rt.environment(),
            start_new_session=True,
        )
    try:
        wait_for(err, "epoch 3:", time.monotonic() + RUN_TIMEOUT)
        os.kill(replica(proc.pid, 1), signal.SIGKILL)
        code = proc.wait(timeout=FAILURE_TIMEOUT)
        time.sleep(1)
        left = session_processes(proc.pid)
    finally:
        stop(proc)
    tail = err.read_text(errors="replace")[-3000:]
    assert code == 1, tail
    assert "replica 1 of 2 stopped (exit status -9): the other replicas were stopped" in tail
    assert not left, left


def test_a_killed_replica_stops_the_run_with_an_error(tmp_path: Path) -> None:
    a_killed_replica_stops_the_run(JAX, tmp_path)


def test_verify_two_replicas_against_one_process_and_the_oracle(tmp_path: Path) -> None:
    checks = verify_replicas(build(MLP, "mlp.dl").model, ["keras[jax]"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["keras[jax] x2", "trained weights vs 1 process"].rel_err <= WEIGHTS_TOL
    assert rows["keras[jax] x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL
