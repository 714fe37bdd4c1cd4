"""Data-parallel Keras scripts on the tensorflow backend (tf.distribute's
MultiWorkerMirroredStrategy under model.fit): 2 replicas train the weights of one process, with
per-replica or synchronised batch norm, and a lost replica stops the run with an error."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_data_parallel_keras import (  # the keras[jax] tests: same spec, data and process checks
    ENDLESS,
    FAILURE_TIMEOUT,
    MLP,
    RUN_TIMEOUT,
    STEPS,
    WEIGHTS_TOL,
    outputs,
    relative_error,
    replica,
    script,
    session_processes,
    wait_for,
    write_npz,
)

from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build
from dlspec.runtimes import runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.replicas import run_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework
pytest.importorskip("tensorflow", reason="tensorflow is not installed: keras[tensorflow] skipped")
pytest.importorskip("keras", reason="keras is not installed: keras[tensorflow] tests skipped")

TF = runtime("keras[tensorflow]")
# a tiny CNN whose batch norm is the global batch's (Keras's synchronized=True)
SYNC_CNN = """
model cnn {
    input x: float32[2, 6, 6]
    conv2d(3, kernel=3, bias=false) -> batchnorm -> relu
    flatten
    dense(3)
}
train {
    optimizer = sgd(lr=0.1, momentum=0.9)
    batch = 4
    batchnorm_sync = true
}
"""


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path) -> None:
    """Real data reshuffled each epoch: each replica feeds its half of every global batch."""
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 12, 8))
    runs = {}
    for tag, count in (("single", 1), ("double", 2)):
        argv = [*STEPS, "--data", data, "--results", str(tmp_path / f"{tag}.json")]
        argv += ["--weights-out", str(tmp_path / f"{tag}.npz")]
        done, tail = run_replicas(TF, str(path), count, argv, tmp_path / tag, RUN_TIMEOUT)
        assert done.returncode == 0, tail
        runs[tag] = outputs(tmp_path, tag)
    (single, w_single), (double, w_double) = runs["single"], runs["double"]
    assert relative_error(w_double, w_single) <= WEIGHTS_TOL
    assert validate_results(double) == []
    assert double["runtime"] == "keras[tensorflow]"
    assert (single["replicas"], double["replicas"]) == (1, 2)
    assert double["steps"] == single["steps"] == 6
    assert double["timed_samples"] == single["timed_samples"] == 12 * 2 - 4
    rate = double["samples_per_second"]
    assert double["samples_per_second_per_replica"] == pytest.approx(rate / 2)
    assert double["epoch_losses"] == pytest.approx(single["epoch_losses"], rel=1e-5)
    assert double["test_loss"] == pytest.approx(single["test_loss"], rel=1e-5)
    assert (double["test_samples"], double["test_accuracy"]) == (8, single["test_accuracy"])


@pytest.mark.parametrize("spec", [MLP, SYNC_CNN], ids=["mlp", "sync_batchnorm_cnn"])
def test_verify_two_replicas_against_one_process_and_the_oracle(spec: str, tmp_path: Path) -> None:
    checks = verify_replicas(build(spec, "net.dl").model, ["keras[tensorflow]"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["keras[tensorflow] x2", "trained weights vs 1 process"].rel_err <= WEIGHTS_TOL
    assert rows["keras[tensorflow] x2", "step losses vs 1 process"].rel_err <= WEIGHTS_TOL


def test_a_killed_replica_stops_the_run_with_an_error(tmp_path: Path) -> None:
    """Replica 1 is killed mid-run: the script that started the replicas stops the other and
    exits 1 within the timeout, naming the lost replica; no process of the run is left."""
    path = script(ENDLESS, tmp_path)
    err = tmp_path / "run.err"
    argv = [*TF.python, str(path), *STEPS, "--epochs", "100000", "--replicas", "2"]
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=TF.environment(),
            start_new_session=True,
        )
    try:
        wait_for(err, "epoch 3:", time.monotonic() + RUN_TIMEOUT)
        os.kill(replica(proc.pid, 1), signal.SIGKILL)
        code = proc.wait(timeout=FAILURE_TIMEOUT)
        time.sleep(1)
        left = session_processes(proc.pid)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    tail = err.read_text(errors="replace")[-3000:]
    assert code == 1, tail
    assert "replica 1 of 2 stopped (exit status -9): the other replicas were stopped" in tail
    assert not left, left
