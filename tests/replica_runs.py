"""What the data-parallel tests of every target share: a small MLP and its npz data, the script of
a spec text, a run as one process or as replicas and what it wrote, the checks that two replicas
trained the weights of one process, and the /proc reading that finds a run's processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build
from dlspec.runtimes import Runtime
from dlspec.verify.replicas import run_replicas

# on 11 samples (write_npz) its batches are 4, 4, 3: two replicas split the last one 1 and 2
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
# the MLP on synthetic data, run for many epochs until a test stops it
ENDLESS = MLP.replace("data = npz", "data = synthetic(train_size=16, test_size=8)")
STEPS = ["--device", "cpu", "--warmup", "1"]
RUN_TIMEOUT = 300  # seconds for one run: 5-30 s here (each interpreter imports its framework)
FAILURE_TIMEOUT = 60  # seconds the survivors may take to stop once a replica is lost
WEIGHTS_TOL = 1e-5


def script(text: str, folder: Path, target: str, name: str = "net.py") -> Path:
    """`target`'s script of a spec text, written to folder/name."""
    path = folder / name
    path.write_text(compile_model(build(text, "net.dl").model, target).source, encoding="utf-8")
    return path


def write_npz(path: Path, train: int, test: int) -> Path:
    """A small npz dataset for MLP: `train` and `test` samples of 6 features and 3 classes."""
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
    """Run the script in `rt` as one plain process (count 1) or as `count` replicas, writing
    folder/tag.json and folder/tag.npz; the results and the trained weights (rank 0's)."""
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
    return outputs(folder, tag)


def outputs(folder: Path, tag: str) -> tuple[dict, dict]:
    """The results folder/tag.json and the weights folder/tag.npz of a finished run."""
    results = json.loads((folder / f"{tag}.json").read_text())
    with np.load(folder / f"{tag}.npz") as f:
        return results, {k: f[k] for k in f.files}


def relative_error(a: dict, b: dict) -> float:
    """The largest max|a - b| / max|b| over the tensors."""
    return max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in b)


def check_two_replicas(
    single: tuple[dict, dict],
    double: tuple[dict, dict],
    train: int,
    test: int,
    rel: float = 1e-6,
    accuracy: bool = True,
) -> None:
    """Two replicas of MLP (2 epochs, the first step warm-up) against one process on `train`
    and `test` samples: the same trained weights (to WEIGHTS_TOL), steps and timed samples, the
    same losses (to `rel`) and test results (the accuracy too, unless told otherwise), and a rate
    per replica of half the whole."""
    (one, w_one), (two, w_two) = single, double
    assert relative_error(w_two, w_one) <= WEIGHTS_TOL
    assert validate_results(two) == []
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["steps"] == one["steps"] == 6
    assert two["timed_samples"] == one["timed_samples"] == train * 2 - 4
    assert two["samples_per_second_per_replica"] == pytest.approx(two["samples_per_second"] / 2)
    assert two["epoch_losses"] == pytest.approx(one["epoch_losses"], rel=rel)
    assert two["test_loss"] == pytest.approx(one["test_loss"], rel=rel)
    assert two["test_samples"] == one["test_samples"] == test
    if accuracy:
        assert two["test_accuracy"] == one["test_accuracy"]


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


def child_with(parent: int, assignment: str) -> int:
    """The child process of `parent` whose environment holds `assignment` (NAME=value): the
    replica a launcher started."""
    path = Path(f"/proc/{parent}/task/{parent}/children")
    for pid in path.read_text().split():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if assignment.encode() in environ:
            return int(pid)
    raise AssertionError(f"no child of {parent} with {assignment}")


def stop(proc: subprocess.Popen) -> Optional[int]:
    """Kill what is left of a process's session; its exit status."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.wait(timeout=30)
