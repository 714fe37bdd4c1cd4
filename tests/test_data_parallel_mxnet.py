"""Data-parallel MXNet scripts on the dist_sync kvstore (--replicas N starts a scheduler, a server
and N workers): 2 replicas train the weights of one process, and a lost replica stops the run
with an error instead of a hang, leaving no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from built_runtimes import ready

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build
from dlspec.runtimes import Runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.replicas import run_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework

# 11 training samples in batches of 4: 4, 4, 3; two replicas split the last one 1 and 2
MLP = """
model mlp {
    input x: float32[6]
    dense(5) -> tanh
    dense(3)
}
train {
    optimizer = sgd(lr=0.2, momentum=0.9)
    batch = 4
    epochs = 2
    data = npz
}
"""
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
# 16 samples an epoch: rank 0 prints a line per epoch, for as many epochs as it is asked
ENDLESS = MLP.replace("data = npz", "data = synthetic(train_size=16, test_size=8)")

STEPS = ["--device", "cpu", "--warmup", "1"]
RUN_TIMEOUT = 300  # seconds for one run: ~10 s here (four interpreters import mxnet)
FAILURE_TIMEOUT = 60  # seconds the run may take to stop once a replica is lost
WEIGHTS_TOL = 1e-5


@pytest.fixture(scope="module")
def mxnet() -> Runtime:
    return ready("mxnet")


def script(text: str, folder: Path, name: str = "net.py") -> Path:
    """The MXNet script of a spec text."""
    path = folder / name
    path.write_text(compile_model(build(text, "net.dl").model, "mxnet").source, encoding="utf-8")
    return path


def write_npz(path: Path, train: int, test: int) -> Path:
    """A small npz dataset for MLP."""
    rng = np.random.RandomState(3)
    arrays = {
        "x_train": rng.randn(train, 6).astype(np.float32),
        "y_train": rng.randint(0, 3, train).astype(np.int64),
        "x_test": rng.randn(test, 6).astype(np.float32),
        "y_test": rng.randint(0, 3, test).astype(np.int64),
    }
    np.savez(path, **arrays)
    return path


def run(rt: Runtime, path: Path, tag: str, count: int, *flags: str) -> tuple[dict, dict]:
    """Run the script as one process (count 1) or as `count` replicas (its own launcher); the
    results and weights (rank 0's)."""
    folder = path.parent
    argv = [*flags, "--results", str(folder / f"{tag}.json")]
    argv += ["--weights-out", str(folder / f"{tag}.npz")]
    if count == 1:
        done = subprocess.run(
            [*rt.python, str(path), *argv],
            capture_output=True,
            text=True,
            env=rt.environment(),
            timeout=RUN_TIMEOUT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        finished, tail = run_replicas(rt, str(path), count, argv, folder / tag, RUN_TIMEOUT)
        assert finished.returncode == 0, tail
    results = json.loads((folder / f"{tag}.json").read_text())
    with np.load(folder / f"{tag}.npz") as f:
        return results, {k: f[k] for k in f.files}


def relative_error(a: dict, b: dict) -> float:
    """The largest max|a - b| / max|b| over the tensors."""
    return max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in b)


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path, mxnet: Runtime) -> None:
    """Real data, reshuffled each epoch, whose last batch (3 samples) splits 1 and 2: the
    replicas' summed gradients divided by the global rows are the global batch's mean."""
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 11, 5))
    single, w_single = run(mxnet, path, "single", 1, *STEPS, "--data", data)
    double, w_double = run(mxnet, path, "double", 2, *STEPS, "--data", data)
    assert relative_error(w_double, w_single) <= WEIGHTS_TOL
    assert validate_results(double) == []
    assert (single["replicas"], double["replicas"]) == (1, 2)
    assert double["steps"] == single["steps"] == 6
    assert double["timed_samples"] == single["timed_samples"] == 11 * 2 - 4
    rate = double["samples_per_second"]
    assert double["samples_per_second_per_replica"] == pytest.approx(rate / 2)
    assert double["epoch_losses"] == pytest.approx(single["epoch_losses"], rel=1e-6)
    assert double["test_loss"] == pytest.approx(single["test_loss"], rel=1e-6)
    assert (double["test_samples"], double["test_accuracy"]) == (5, single["test_accuracy"])


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


def wait_for(path: Path, text: str, deadline: float) -> None:
    """Until `text` is in the file (training has begun)."""
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{path.read_text()[-2000:]}")


def session_processes(sid: int) -> list[int]:
    """The live processes of a session (ours are started in their own), zombies excluded."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


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
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
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
