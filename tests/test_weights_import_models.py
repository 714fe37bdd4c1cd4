"""`dlspec weights import`, proven on library models: torchvision's resnet50 and densenet121 and
keras.applications' DenseNet121, randomly initialised (no download) with realistic batch-norm
statistics (tests/library_models.py). Their weights are saved as a user would save them, imported
with the CLI, and the emitted PyTorch, TensorFlow and Keras scripts (`--verify DIR`: the
evaluation-mode forward from DIR/weights.npz on DIR/batches.npz's evaluation batch), and the float64
oracle, reproduce the library model's evaluation-mode output.

The specs run at 64 x 64 instead of 224 x 224 (the input line is the only change): both networks
end in a global average pool, so the architecture and every weight shape are unchanged, and the
forward passes take a fraction of the time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from library_models import calibrate_keras, calibrate_torch, import_torchvision

from dlspec import runtimes
from dlspec.cli import main
from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import EVAL
from dlspec.frontend.load import build_file
from dlspec.ir.model import Model
from dlspec.oracle import forward as reference
from dlspec.verify.run import errors, run_script
from dlspec.weights.library import import_weights, keras_model_source, read_keras_weights

pytestmark = pytest.mark.framework

ROOT = Path(__file__).resolve().parent.parent
SIZE = 64  # input height and width (the specs say 224; see the module docstring)
BATCH = 2
TOL = 1e-4  # relative error max|ours - library| / max|library|, the bound
SEED = 7
RUNTIMES = ["pytorch", "tensorflow", "keras[tensorflow]", "keras[jax]", "keras[torch]"]


@dataclass
class Case:
    """An imported model: the spec (at SIZE), the folder with weights.npz and batches.npz, and
    the library model's evaluation-mode output on the batch."""

    model: Model
    work: Path
    expected: np.ndarray


def _spec_at_size(spec: str, work: Path) -> Path:
    text = (ROOT / spec).read_text(encoding="utf-8")
    assert "float32[3, 224, 224]" in text
    path = work / Path(spec).name
    path.write_text(text.replace("float32[3, 224, 224]", f"float32[3, {SIZE}, {SIZE}]"), "utf-8")
    return path


def _import(spec: str, library: str, weights: Path, work: Path, x: np.ndarray) -> Model:
    """`dlspec weights import` through the CLI into work/weights.npz; the evaluation batch into
    batches.npz under the script contract's key for the model's input."""
    path = _spec_at_size(spec, work)
    argv = ["weights", "import", str(path), "--from", library, str(weights)]
    assert main([*argv, "-o", str(work / "weights.npz")]) == 0
    model = build_file(str(path)).model
    np.savez(work / "batches.npz", **{EVAL + model.inputs[0].name: x})
    return model


def _inputs() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32)


def _torchvision_case(factory: str, spec: str, work: Path, **kwargs: Any) -> Case:
    import torch

    torchvision = import_torchvision()
    torch.manual_seed(SEED)
    net = getattr(torchvision.models, factory)(weights=None, **kwargs)
    if factory == "resnet50":
        net.fc = torch.nn.Identity()  # the features version: the 2048-d pooled output
    calibration = np.random.default_rng(SEED + 1).standard_normal((8, 3, SIZE, SIZE))
    calibrate_torch(net, calibration.astype(np.float32), SEED)
    x = _inputs()
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    torch.save(net.state_dict(), work / f"{factory}.pt")
    return Case(_import(spec, "torchvision", work / f"{factory}.pt", work, x), work, expected)


@pytest.fixture(scope="module")
def resnet50(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _torchvision_case("resnet50", "examples/resnet50.dl", tmp_path_factory.mktemp("r50"))


@pytest.fixture(scope="module")
def densenet121(tmp_path_factory: pytest.TempPathFactory) -> Case:
    work = tmp_path_factory.mktemp("dn121")
    return _torchvision_case("densenet121", "examples/densenet121_chexnet.dl", work, num_classes=14)


@pytest.fixture(scope="module")
def keras_densenet121(tmp_path_factory: pytest.TempPathFactory) -> Case:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    work = tmp_path_factory.mktemp("kdn121")
    keras.utils.set_random_seed(SEED)
    net = keras.applications.DenseNet121(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    calibration = np.random.default_rng(SEED + 1).standard_normal((8, SIZE, SIZE, 3))
    calibrate_keras(net, calibration.astype(np.float32), SEED)
    x = _inputs()
    expected = np.asarray(net(x.transpose(0, 2, 3, 1), training=False))
    net.save_weights(work / "densenet121.weights.h5")
    spec = "tests/fixtures/zoo/densenet121_keras.dl"
    case = Case(_import(spec, "keras", work / "densenet121.weights.h5", work, x), work, expected)
    # the whole model saved as .keras, and the live model, give the same canonical weights
    net.save(work / "densenet121.keras")
    with np.load(work / "weights.npz") as f:
        imported = {k: f[k] for k in f.files}
    for source in (read_keras_weights(work / "densenet121.keras"), keras_model_source(net)):
        again = import_weights(case.model, source).weights
        assert list(again) == list(imported)
        assert all(np.array_equal(again[k], v) for k, v in imported.items())
    return case


MODELS = ["resnet50", "densenet121", "keras_densenet121"]


@pytest.mark.parametrize("name", MODELS)
def test_the_oracle_reproduces_the_library_model(name: str, request: pytest.FixtureRequest) -> None:
    case: Case = request.getfixturevalue(name)
    with np.load(case.work / "weights.npz") as f:
        weights = {k: f[k] for k in f.files}
    x = np.load(case.work / "batches.npz")[EVAL + case.model.inputs[0].name]
    _, rel = errors(reference.forward(case.model, weights, x), case.expected)
    print(f"{name} oracle: relative error {rel:.2e}")
    assert rel <= TOL
    assert float(np.std(case.expected)) > 0.1  # activations of order one, not vanishing


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", MODELS)
def test_the_emitted_script_reproduces_the_library_model(
    name: str, runtime: str, request: pytest.FixtureRequest
) -> None:
    rt = runtimes.runtime(runtime)
    ok, info = runtimes.probe(rt)
    if not ok:
        pytest.skip(f"{runtime} is not available: {info}")
    case: Case = request.getfixturevalue(name)
    source = compile_model(case.model, rt.target).source
    got = run_script(rt, source, case.work)["forward"]
    abs_err, rel = errors(got, case.expected)
    print(f"{name} {runtime}: max abs {abs_err:.2e}, relative error {rel:.2e}")
    assert rel <= TOL
