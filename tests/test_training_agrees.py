"""Every runtime's script, run as users run it (two epochs of real data through its own training
loop: fit, Trainer, train_minibatch...), from the same weights, trains the same weights: the same
batches in the same order, reshuffled each epoch, and exactly the spec's number of updates; for
an MLP, a CNN with batch norm (its running statistics too) and a GRU with Adam.
(verify checks single updates on given batches; this checks the scripts' own data loops.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from built_runtimes import ready
from replica_runs import MLP

from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build
from dlspec.runtimes import RUNTIMES
from dlspec.verify.run import execute

pytestmark = pytest.mark.framework

# 14 samples in batches of 4: 4 batches an epoch, the last of 2 (every target's short last batch)
SPECS = {"mlp": MLP}  # the data-parallel tests' MLP
# batch norm in training mode (batch statistics, running ones updated: both are weights out);
# the convolution before it without a bias, whose gradient batch norm makes exactly zero (each
# framework's rounding noise would move it, by 1e-8)
SPECS["cnn"] = """
model cnn {
    input x: float32[2, 6, 6]
    conv2d(3, kernel=3, padding=1, bias=false) -> batchnorm -> relu
    maxpool2d(2)
    flatten
    dense(3)
}
train {
    optimizer = sgd(lr=0.1, momentum=0.9)
    batch = 4
    epochs = 2
    data = npz
}
"""
# a recurrence, and Adam (written out where the framework's own computes another form)
SPECS["gru"] = """
model gru {
    input x: float32[5, 3]
    gru(4)
    dense(3)
}
train {
    optimizer = adam(lr=0.05)
    batch = 4
    epochs = 2
    data = npz
}
"""
SHAPES = {"mlp": (6,), "cnn": (2, 6, 6), "gru": (5, 3)}
REFERENCE = "pytorch"
TOL = 1e-5  # float32 rounding of 8 updates
# batch norm's backward subtracts means (cancellation): measured up to 1.1e-5 (mxnet's dense
# bias); a wrong batch, step count or running-statistics momentum is off by 1e-3 and more
TOLS = {"cnn": 5e-5}


def _data(path: Path, spec: str, train: int) -> Path:
    rng = np.random.RandomState(5)
    shape = SHAPES[spec]
    np.savez(
        path,
        x_train=rng.randn(train, *shape).astype(np.float32),
        y_train=rng.randint(0, 3, train).astype(np.int64),
        x_test=rng.randn(8, *shape).astype(np.float32),
        y_test=rng.randint(0, 3, 8).astype(np.int64),
    )
    return path


def _train(
    name: str, spec: str, folder: Path, data: Path, start: Path | None, tag: str
) -> tuple[dict, dict]:
    """Run runtime `name`'s script of `spec` on `data` from weights `start`: its results and
    weights."""
    rt = ready(name)
    target = RUNTIMES[name].target
    script = folder / f"{target}_net.py"
    if not script.exists():
        script.write_text(compile_model(build(SPECS[spec], "net.dl").model, target).source, "utf-8")
    argv = ["--device", "cpu", "--warmup", "1", "--data", str(data)]
    argv += ["--results", f"{tag}.json", "--weights-out", f"{tag}.npz"]
    argv += ["--weights-in", str(start)] if start else []
    code, stderr = execute(rt, script, argv, 600, folder)
    assert code == 0, stderr[-3000:]
    with np.load(folder / f"{tag}.npz") as f:
        return json.loads((folder / f"{tag}.json").read_text()), {k: f[k] for k in f.files}


def _relative(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in b)


# the mlp with full batches and with a short last one; the others with the short last batch
CASES = [("mlp", 12), ("mlp", 14), ("cnn", 14), ("gru", 14)]


@pytest.fixture(
    scope="module",
    params=CASES,
    ids=[f"{spec}-{'full' if n % 4 == 0 else 'short'}" for spec, n in CASES],
)
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The spec, folder, data, start weights and the pytorch script's run from them."""
    spec, train = request.param
    folder = tmp_path_factory.mktemp(f"agree-{spec}{train}")
    data = _data(folder / "data.npz", spec, train)
    _train(REFERENCE, spec, folder, data, None, "start")  # any trained weights make a start
    return spec, folder, data, _train(REFERENCE, spec, folder, data, folder / "start.npz", "ref")


@pytest.mark.parametrize("name", [n for n in RUNTIMES if n != REFERENCE])
def test_two_epochs_train_the_weights_of_pytorch(name: str, reference) -> None:
    spec, folder, data, (ref, w_ref) = reference
    results, weights = _train(name, spec, folder, data, folder / "start.npz", name)
    assert results["steps"] == ref["steps"] == 2 * -(-len(np.load(data)["y_train"]) // 4)
    tol = TOLS.get(spec, TOL)
    assert _relative(weights, w_ref) <= tol, name
    assert results["epoch_losses"] == pytest.approx(ref["epoch_losses"], rel=tol), name
