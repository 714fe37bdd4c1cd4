"""`shuffle = false`: every target's script walks real data in its stored order every epoch;
the default reshuffles it each epoch with RandomState(seed + epoch)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build

SPEC = """
model s {
    input x: float32[4]
    dense(10)
}
train {
    data = mnist
    SETTING
}
""".replace("float32[4]", "float32[784]")


def _script(target: str, setting: str, tmp_path: Path) -> ModuleType:
    source = compile_model(build(SPEC.replace("SETTING", setting)).model, target).source
    path = tmp_path / f"{target}_{abs(hash(setting))}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.framework
@pytest.mark.parametrize("target", ["pytorch", "tensorflow"])
def test_batch_order_follows_the_shuffle_setting(target: str, tmp_path: Path) -> None:
    ordered = _script(target, "shuffle = false", tmp_path)
    batches = ordered.batch_order(10, 4, 1, False, 0)
    np.testing.assert_array_equal(np.concatenate(batches), np.arange(10))
    shuffled = _script(target, "seed = 0", tmp_path)
    batches = shuffled.batch_order(10, 4, 1, False, 0)
    np.testing.assert_array_equal(np.concatenate(batches), np.random.RandomState(1).permutation(10))


@pytest.mark.framework
def test_keras_batches_follow_the_shuffle_setting(tmp_path: Path) -> None:
    ordered = _script("keras", "shuffle = false", tmp_path)
    assert ordered.SHUFFLE is False
    x, y = [np.arange(10.0)], np.arange(10)
    batches = ordered.Batches(x, y, 3, "ordered")
    assert [int(b) for i in range(3) for b in batches[i][1]] == list(range(10))
    assert _script("keras", "seed = 0", tmp_path).SHUFFLE is True


STATIC_DRIVER = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("script", sys.argv[1])
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
x, y = [np.arange(256 * 784, dtype="float32").reshape(256, 784)], np.arange(256) % 10
batches = script.Batches(x, y, 2, "shuffle", seed=3)
reference = script.Batches(x, y, 2, "shuffle", seed=3)
assert batches.full()
data = script.tensor_batches(batches)
assert data.element_spec[1].shape.as_list() == [script.BATCH_SIZE], data.element_spec
for epoch in range(2):  # the same batches, reshuffled per epoch, as the PyDataset gives
    got = [b[1].numpy() for b in data]
    want = [reference[i][1] for i in range(len(reference))]
    reference.on_epoch_end()
    assert len(got) == len(want) == 2 and all(np.array_equal(a, b) for a, b in zip(got, want))
short = script.Batches(x, y[:200], 2, "shuffle", seed=3)  # 128 + 72: a short last batch
assert not short.full()
got = [b[1].numpy() for b in script.tensor_batches(short)]
assert [len(b) for b in got] == [128, 72]
assert np.array_equal(np.concatenate(got), y[np.random.RandomState(3).permutation(200)])
print("ok")
"""


@pytest.mark.framework
def test_keras_tensorflow_tensor_batches_are_the_pydatasets(tmp_path: Path) -> None:
    """On TensorFlow, fit gets the batches gathered from tensors (a static batch dimension when
    every batch is full): the same batches in the same order each epoch as the PyDataset."""
    source = compile_model(build(SPEC.replace("SETTING", "batch = 128")).model, "keras").source
    (tmp_path / "script.py").write_text(source, encoding="utf-8")
    (tmp_path / "driver.py").write_text(STATIC_DRIVER, encoding="utf-8")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "script.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
