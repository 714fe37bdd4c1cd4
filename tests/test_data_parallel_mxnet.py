"""Data-parallel MXNet scripts on the dist_sync kvstore (--replicas N starts a scheduler, a server
and N workers): 2 replicas train the weights of one process, and a lost replica stops the run
with an error instead of a hang, leaving no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import replica_runs
from built_runtimes import ready
from replica_runs import (
    ENDLESS,
    FAILURE_TIMEOUT,
    MLP,
    RUN_TIMEOUT,
    STEPS,
    WEIGHTS_TOL,
    check_two_replicas,
    relative_error,
    run,
    session_processes,
    stop,
    wait_for,
    write_npz,
)

from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build
from dlspec.runtimes import Runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.replicas import run_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework

BATCHNORM = """
model bn {
    input x: float32[6]
    dense(5, bias=false)
    batchnorm -> tanh
    dense(3)
}
train {
    optimizer = sgd(lr=0.1)
    batch = 8
    SYNC
}
"""


@pytest.fixture(scope="module")
def mxnet() -> Runtime:
    return ready("mxnet")


def script(text: str, folder: Path, name: str = "net.py") -> Path:
    """The MXNet script of a spec text."""
    return replica_runs.script(text, folder, "mxnet", name)


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path, mxnet: Runtime) -> None:
    """Real data, reshuffled each epoch, whose last batch (3 samples) splits 1 and 2: the
    replicas' summed gradients divided by the global rows are the global batch's mean."""
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 11, 5))
    single = run(mxnet, path, "single", 1, *STEPS, "--data", data)
    check_two_replicas(single, run(mxnet, path, "double", 2, *STEPS, "--data", data), 11, 5)


def test_batchnorm_is_per_replica_and_synchronised_batchnorm_refused(
    tmp_path: Path, mxnet: Runtime
) -> None:
    """Per-replica statistics train (other weights than one process's: each replica normalised
    its own 4 rows); batchnorm_sync = true is refused before any replica starts."""
    local = script(BATCHNORM.replace("SYNC", ""), tmp_path, "local.py")
    synced = script(BATCHNORM.replace("SYNC", "batchnorm_sync = true"), tmp_path, "synced.py")
    flags = (*STEPS, "--max-steps", "4")
    _, w_single = run(mxnet, local, "single", 1, *flags)
    results, w_local = run(mxnet, local, "local", 2, *flags)
    assert validate_results(results) == []
    assert relative_error(w_local, w_single) > 1e-3
    done, tail = run_replicas(mxnet, str(synced), 2, list(flags), tmp_path / "sync", RUN_TIMEOUT)
    assert done.returncode == 1 and not done.timed_out, tail
    assert "batchnorm_sync = true: MXNet synchronises batch norm only over the devices" in tail


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path: Path, mxnet: Runtime) -> None:
    """Refused by the launcher, before any replica starts."""
    path = script(MLP.replace("batch = 4", "batch = 5"), tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 11, 5))
    flags = [*STEPS, "--data", data]
    done, tail = run_replicas(mxnet, str(path), 2, flags, tmp_path / "run", RUN_TIMEOUT)
    assert done.returncode == 1 and not done.timed_out, tail
    assert "batch 5 is the global batch: it must split evenly over the 2 replicas" in tail


def test_an_inference_script_refuses_replicas(tmp_path: Path, mxnet: Runtime) -> None:
    path = script("model f {\n input x: float32[6]\n dense(3)\n}\n", tmp_path)
    done = subprocess.run(
        [*mxnet.python, str(path), "--replicas", "2"],
        capture_output=True,
        text=True,
        env=mxnet.environment(),
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 1
    assert "an inference script runs as one process, not 2 replicas" in done.stderr


# ---- a lost replica --------------------------------------------------------------------------


def workers(launcher: int) -> list[int]:
    """The launcher's worker processes (children whose environment has DMLC_ROLE=worker)."""
    path = Path(f"/proc/{launcher}/task/{launcher}/children")
    found = []
    for pid in path.read_text().split():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if b"DMLC_ROLE=worker" in environ:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_a_lost_replica_stops_the_run_with_an_error(
    tmp_path: Path, mxnet: Runtime, fault: str
) -> None:
    """A worker is killed (the launcher sees it exit) or stopped (the other worker's watchdog
    runs out of --replica-timeout and exits 1): the launcher stops the rest and exits 1 within
    the timeout, naming the replica, and no process of the run is left."""
    path = script(ENDLESS, tmp_path)
    err = tmp_path / "launcher.err"
    argv = [*mxnet.python, str(path), *STEPS, "--epochs", "100000", "--replicas", "2"]
    argv += ["--replica-timeout", "5"]
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=mxnet.environment(),
            start_new_session=True,
        )
    try:
        wait_for(err, "epoch 3:", time.monotonic() + RUN_TIMEOUT)
        os.kill(workers(proc.pid)[-1], signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        code = proc.wait(timeout=FAILURE_TIMEOUT)
        time.sleep(1)  # the launcher's own children are reaped before it exits
        left = session_processes(proc.pid)
    finally:
        stop(proc)
    tail = err.read_text(errors="replace")[-3000:]
    assert code == 1, tail
    if fault == "killed":
        assert "of 2 stopped (killed by signal 9" in tail, tail
    else:
        assert "of 2 stopped: a step shared with the other replicas took longer than" in tail
        assert "of 2 stopped (exit code 1" in tail, tail
    assert not left, left


# ---- dlspec verify --replicas ------------------------------------------------------------------

CNN = """
model cnn {
    input image: float32[2, 7, 7]
    conv2d(3, kernel=3, padding=same) -> tanh
    maxpool2d(2)
    flatten
    dense(4)
}
train { optimizer = adam(lr=0.01) }
"""


@pytest.mark.parametrize("precision", ["spec", "float64"])
def test_verify_two_replicas_against_one_process_and_the_oracle(
    tmp_path: Path, mxnet: Runtime, precision: str
) -> None:
    """A CNN: the replicas' steps equal the one process's and the oracle's; in float64 exactly
    as far as float64 goes (the kvstore's float32 sum is bypassed)."""
    checks = verify_replicas(build(CNN, "cnn.dl").model, ["mxnet"], 2, 3, tmp_path, precision)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check.replace(" (float64)", "")): c for c in checks}
    bound = WEIGHTS_TOL if precision == "spec" else 1e-12
    assert rows["mxnet x2", "trained weights vs 1 process"].rel_err <= bound
    assert rows["mxnet x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL
