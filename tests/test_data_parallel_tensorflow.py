"""Data-parallel TensorFlow scripts on tf.distribute: 2 workers of a MultiWorkerMirroredStrategy
(the script starts them itself on --replicas 2, each with its TF_CONFIG) train the weights of
one process, and a lost replica stops the run with an error instead of a hang, leaving no
process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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
    relative_error,
    session_processes,
    stop,
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
tf = pytest.importorskip("tensorflow", reason="tensorflow is not installed: tests skipped")

# batch norm over features, the second with the biased running variance
BATCHNORM = """
model bn {
    input x: float32[6]
    dense(5, bias=false)
    batchnorm -> relu
    dense(4, bias=false)
    batchnorm(running_var=biased) -> tanh
    dense(3)
}
train {
    optimizer = sgd(lr=0.1, momentum=0.9)
    batch = 8
    data = synthetic(train_size=32, test_size=8)
    SYNC
}
"""


def quiet() -> dict[str, str]:
    """The environment now (the session's TMPDIR included), TensorFlow's C++ logs quiet."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


TENSORFLOW = runtime("tensorflow")


def script(text: str, folder: Path, name: str = "net.py") -> Path:
    """The TensorFlow script of a spec text."""
    return replica_runs.script(text, folder, "tensorflow", name)


def run(path: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(path), *flags],
        capture_output=True,
        text=True,
        env=quiet(),
        timeout=RUN_TIMEOUT,
    )


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path) -> None:
    """Real data, reshuffled each epoch, whose last batch (3 samples) splits 1 and 2: each
    replica's mean loss is weighted by its share, so the mean gradient is the global batch's."""
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 11, 5))
    single = replica_runs.run(TENSORFLOW, path, "single", 1, *STEPS, "--data", data)
    double = replica_runs.run(TENSORFLOW, path, "double", 2, *STEPS, "--data", data)
    check_two_replicas(single, double, 11, 5)


def test_synchronised_batchnorm_trains_the_weights_of_one_process(tmp_path: Path) -> None:
    """batchnorm_sync: statistics over the global batch (the sums all-reduced), moving
    statistics included; per-replica statistics train other weights."""
    synced = script(BATCHNORM.replace("SYNC", "batchnorm_sync = true"), tmp_path, "synced.py")
    local = script(BATCHNORM.replace("SYNC", ""), tmp_path, "local.py")
    flags = (*STEPS, "--max-steps", "6")
    _, w_single = replica_runs.run(TENSORFLOW, synced, "single", 1, *flags)
    _, w_synced = replica_runs.run(TENSORFLOW, synced, "synced", 2, *flags)
    results, w_local = replica_runs.run(TENSORFLOW, local, "local", 2, *flags)
    assert relative_error(w_synced, w_single) <= WEIGHTS_TOL
    assert validate_results(results) == []
    assert relative_error(w_local, w_single) > 1e-3  # each replica normalised its own 4 rows


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path: Path) -> None:
    path = script(MLP.replace("batch = 4", "batch = 5"), tmp_path)
    done = run(path, "--device", "cpu", "--replicas", "2")
    assert done.returncode == 1
    assert "batch 5 is the global batch: it must split evenly over the 2 replicas" in done.stderr


def test_a_last_batch_smaller_than_the_replica_count_is_refused(tmp_path: Path) -> None:
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 9, 5))  # batches 4, 4, 1
    rt = runtime("tensorflow")
    done, tail = run_replicas(rt, str(path), 2, [*STEPS, "--data", data], tmp_path / "run", 300)
    assert done.returncode != 0 and not done.timed_out, tail
    message = "the last batch of each epoch has 1 samples, fewer than the 2 replicas"
    assert message in (tmp_path / "run.err").read_text()


def test_an_inference_script_refuses_replicas(tmp_path: Path) -> None:
    path = script("model f {\n input x: float32[6]\n dense(3)\n}\n", tmp_path)
    done = run(path, "--replicas", "2")
    assert done.returncode == 1
    assert "an inference script runs as one process, not 2 replicas" in done.stderr


# ---- a lost replica --------------------------------------------------------------------------


# 16 samples an epoch: rank 0 prints a line per epoch, for as many epochs as it is asked
def worker(launcher: int, rank: int) -> int:
    """The replica the script started as worker `rank` (its TF_CONFIG names that index)."""
    path = Path(f"/proc/{launcher}/task/{launcher}/children")
    for pid in path.read_text().split():
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if entry.startswith(b"TF_CONFIG="):
                if json.loads(entry[len(b"TF_CONFIG=") :])["task"]["index"] == rank:
                    return int(pid)
    raise AssertionError(f"no worker of rank {rank} under {launcher}")


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_a_lost_replica_stops_the_run_with_an_error(tmp_path: Path, fault: str) -> None:
    """Worker 1 is killed (its connections close) or stopped (it never answers: the collectives'
    --replica-timeout runs out): worker 0 exits 1 saying a replica was lost, the launching
    script stops the rest and exits non-zero within the timeout, and no process is left."""
    path = script(ENDLESS, tmp_path)
    err = tmp_path / "run.err"
    argv = [sys.executable, str(path), *STEPS, "--epochs", "100000", "--replicas", "2"]
    argv += ["--replica-timeout", "10"]
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=log, env=quiet(), start_new_session=True
        )
    try:
        wait_for(err, "epoch 3:", time.monotonic() + RUN_TIMEOUT)
        os.kill(worker(proc.pid, 1), signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        code = proc.wait(timeout=FAILURE_TIMEOUT)
        time.sleep(1)  # the launcher's children are reaped before it exits
        left = session_processes(proc.pid)
    finally:
        stop(proc)
    tail = err.read_text(errors="replace")[-4000:]
    assert code != 0, tail
    assert "replica 0 of 2 stopped: its run, or a step shared with the other replicas" in tail
    assert "exited with status" in tail and "stopping the others" in tail
    assert not left, left


# ---- dlspec verify --replicas ------------------------------------------------------------------

SMALL = MLP.replace("data = npz", "").replace("sgd(lr=0.2, momentum=0.9)", "adam(lr=0.01)")
SYNCED_LINEAR = BATCHNORM.replace("SYNC", "batchnorm_sync = true\n    lr_scaling = linear")


def test_verify_two_replicas_against_one_process_and_the_oracle(tmp_path: Path) -> None:
    """An MLP without batch norm: the replicas' steps equal the one process's and the oracle's."""
    checks = verify_replicas(build(SMALL, "mlp.dl").model, ["tensorflow"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["tensorflow x2", "trained weights vs 1 process"].rel_err <= WEIGHTS_TOL
    assert rows["tensorflow x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL


def test_verify_synchronised_batchnorm_with_linear_scaling(tmp_path: Path) -> None:
    """Synchronised batch norm at twice the learning rate (lr_scaling = linear): the replicas
    against the oracle at that rate."""
    checks = verify_replicas(build(SYNCED_LINEAR, "bn.dl").model, ["tensorflow"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["tensorflow x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL
    with np.load(tmp_path / "result_tensorflow_x2_float32.npz") as multi:
        with np.load(tmp_path / "result_tensorflow.npz") as single:
            assert np.allclose(multi["lrs"], 2 * single["lrs"])
