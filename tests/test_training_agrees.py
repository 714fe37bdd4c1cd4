"""Every runtime's script, run as users run it (two epochs of real data through its own training
loop: fit, Trainer, train_minibatch...), from the same weights, trains the same weights: the same
batches in the same order, reshuffled each epoch, and exactly the spec's number of updates.
(verify checks single updates on given batches; this checks the scripts' own data loops.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from built_runtimes import ready

from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build
from dlspec.runtimes import RUNTIMES

pytestmark = pytest.mark.framework

# 14 samples in batches of 4: 4 batches an epoch, the last of 2 (every target's short last batch)
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
REFERENCE = "pytorch"
TOL = 1e-5  # float32 rounding of 8 updates


def _data(path: Path, train: int) -> Path:
    rng = np.random.RandomState(5)
    np.savez(
        path,
        x_train=rng.randn(train, 6).astype(np.float32),
        y_train=rng.randint(0, 3, train).astype(np.int64),
        x_test=rng.randn(8, 6).astype(np.float32),
        y_test=rng.randint(0, 3, 8).astype(np.int64),
    )
    return path


def _train(name: str, folder: Path, data: Path, start: Path | None, tag: str) -> tuple[dict, dict]:
    """Run runtime `name`'s script on `data` from weights `start`: its results and weights."""
    rt = ready(name)
    target = RUNTIMES[name].target
    script = folder / f"{target}_net.py"
    if not script.exists():
        script.write_text(compile_model(build(MLP, "net.dl").model, target).source, "utf-8")
    argv = ["--device", "cpu", "--warmup", "1", "--data", str(data)]
    argv += ["--results", f"{tag}.json", "--weights-out", f"{tag}.npz"]
    argv += ["--weights-in", str(start)] if start else []
    done = subprocess.run(
        rt.command(str(script), *argv),
        cwd=folder,
        env=rt.environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(folder / f"{tag}.npz") as f:
        return json.loads((folder / f"{tag}.json").read_text()), {k: f[k] for k in f.files}


def _relative(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in b)


@pytest.fixture(scope="module", params=[12, 14], ids=["full_batches", "short_last_batch"])
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The folder, data, start weights and the pytorch script's run from them."""
    folder = tmp_path_factory.mktemp(f"agree{request.param}")
    data = _data(folder / "data.npz", request.param)
    _train(REFERENCE, folder, data, None, "start")  # any trained weights make a start
    return folder, data, _train(REFERENCE, folder, data, folder / "start.npz", "ref")


@pytest.mark.parametrize("name", [n for n in RUNTIMES if n != REFERENCE])
def test_two_epochs_train_the_weights_of_pytorch(name: str, reference) -> None:
    folder, data, (ref, w_ref) = reference
    results, weights = _train(name, folder, data, folder / "start.npz", name)
    assert results["steps"] == ref["steps"] == 2 * -(-len(np.load(data)["y_train"]) // 4)
    assert _relative(weights, w_ref) <= TOL, name
    assert results["epoch_losses"] == pytest.approx(ref["epoch_losses"], rel=TOL), name
