"""`shuffle = false`: every target's script walks real data in its stored order every epoch;
the default reshuffles it each epoch with RandomState(seed + epoch)."""

from __future__ import annotations

import importlib.util
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
