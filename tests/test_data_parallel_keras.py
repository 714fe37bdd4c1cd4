"""Data-parallel Keras scripts on the jax backend (Keras's DataParallel over multi-process JAX):
2 replicas train the weights of one process, and a lost replica stops the run with an error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build
from dlspec.runtimes import runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.replicas import run_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework
pytest.importorskip("jax", reason="jax is not installed: keras[jax] data-parallel tests skipped")
pytest.importorskip(
    "keras", reason="keras is not installed: keras[jax] data-parallel tests skipped"
)

JAX = runtime("keras[jax]")
# 12 training samples in batches of 4 (every batch full: what a keras[jax] replica run needs)
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
STEPS = ["--device", "cpu", "--warmup", "1"]
RUN_TIMEOUT = 300  # seconds for one run: ~30 s here (three interpreters import keras and jax)
WEIGHTS_TOL = 1e-5


def script(text: str, folder: Path) -> Path:
    path = folder / "net.py"
    path.write_text(compile_model(build(text, "net.dl").model, "keras").source, encoding="utf-8")
    return path


def write_npz(path: Path, train: int, test: int) -> Path:
    rng = np.random.RandomState(3)
    arrays = {
        "x_train": rng.randn(train, 6).astype(np.float32),
        "y_train": rng.randint(0, 3, train).astype(np.int64),
        "x_test": rng.randn(test, 6).astype(np.float32),
        "y_test": rng.randint(0, 3, test).astype(np.int64),
    }
    np.savez(path, **arrays)
    return path


def outputs(folder: Path, tag: str) -> tuple[dict, dict]:
    results = json.loads((folder / f"{tag}.json").read_text())
    with np.load(folder / f"{tag}.npz") as f:
        return results, {k: f[k] for k in f.files}


def relative_error(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in b)


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path) -> None:
    """Real data reshuffled each epoch: each replica feeds its half of every global batch."""
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 12, 8))
    runs = {}
    for tag, count in (("single", 1), ("double", 2)):
        argv = [*STEPS, "--data", data, "--results", str(tmp_path / f"{tag}.json")]
        argv += ["--weights-out", str(tmp_path / f"{tag}.npz")]
        done, tail = run_replicas(JAX, str(path), count, argv, tmp_path / tag, RUN_TIMEOUT)
        assert done.returncode == 0, tail
        runs[tag] = outputs(tmp_path, tag)
    (single, w_single), (double, w_double) = runs["single"], runs["double"]
    assert relative_error(w_double, w_single) <= WEIGHTS_TOL
    assert validate_results(double) == []
    assert (single["replicas"], double["replicas"]) == (1, 2)
    assert double["steps"] == single["steps"] == 6
    assert double["timed_samples"] == single["timed_samples"] == 12 * 2 - 4
    rate = double["samples_per_second"]
    assert double["samples_per_second_per_replica"] == pytest.approx(rate / 2)
    assert double["epoch_losses"] == pytest.approx(single["epoch_losses"], rel=1e-5)
    assert double["test_loss"] == pytest.approx(single["test_loss"], rel=1e-5)
    assert (double["test_samples"], double["test_accuracy"]) == (8, single["test_accuracy"])


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

ENDLESS = MLP.replace("data = npz", "data = synthetic(train_size=16, test_size=8)")
FAILURE_TIMEOUT = 60


def wait_for(path: Path, text: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{path.read_text()[-2000:]}")


def session_processes(sid: int) -> list[int]:
    """The live processes of a session, zombies excluded."""
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


def replica(launcher: int, rank: int) -> int:
    """The child the script started for replica `rank`."""
    path = Path(f"/proc/{launcher}/task/{launcher}/children")
    for pid in path.read_text().split():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"KERAS_DISTRIBUTION_PROCESS_ID={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no replica {rank} under {launcher}")


def test_a_killed_replica_stops_the_run_with_an_error(tmp_path: Path) -> None:
    """Replica 1 is killed mid-run: the script that started the replicas stops the other and
    exits 1 within the timeout, naming the lost replica; no process of the run is left."""
    path = script(ENDLESS, tmp_path)
    err = tmp_path / "run.err"
    argv = [*JAX.python, str(path), *STEPS, "--epochs", "100000", "--replicas", "2"]
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=JAX.environment(),
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


def test_verify_two_replicas_against_one_process_and_the_oracle(tmp_path: Path) -> None:
    checks = verify_replicas(build(MLP, "mlp.dl").model, ["keras[jax]"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["keras[jax] x2", "trained weights vs 1 process"].rel_err <= WEIGHTS_TOL
    assert rows["keras[jax] x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL
