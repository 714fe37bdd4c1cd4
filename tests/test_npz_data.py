"""`data = npz`: the generated data section reads the user's arrays, one per input, and checks
every shape (no framework needed: the data section is NumPy only)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_data_formats import data_module

from dlspec.codegen import contract
from dlspec.frontend.load import build

TWO_INPUTS = """
model reg {
    input series: float32[6, 3]
    input extra: float32[2]
    [series] -> lstm(5) -> h: relu
    [h, extra] -> concat -> dense(1)
}
train { data = npz
  loss = mae }
"""
ONE_INPUT = """
model cls {
    input x: float32[4]
    dense(3)
}
train { data = npz }
"""


def test_two_inputs_by_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "reg.npz"
    arrays = {
        "x_train_series": rng.standard_normal((5, 6, 3)),
        "x_train_extra": rng.standard_normal((5, 2)),
        "y_train": rng.standard_normal((5, 1)),
        "x_test_series": rng.standard_normal((2, 6, 3)),
        "x_test_extra": rng.standard_normal((2, 2)),
        "y_test": rng.standard_normal((2, 1)),
    }
    np.savez(path, **arrays)
    module = data_module(TWO_INPUTS)
    (x_train, y_train), (x_test, y_test) = module.load_npz(str(path))
    assert [a.dtype for a in x_train] == [np.float32, np.float32]
    np.testing.assert_allclose(x_train[1], arrays["x_train_extra"].astype(np.float32))
    assert y_train.shape == (5, 1) and y_test.dtype == np.float32 and len(x_test[0]) == 2


def test_one_input_keys_and_integer_labels(tmp_path: Path) -> None:
    path = tmp_path / "cls.npz"
    np.savez(
        path,
        x_train=np.ones((3, 4)),
        y_train=np.array([0, 2, 1]),
        x_test=np.ones((1, 4)),
        y_test=[2],
    )
    (x_train, y_train), _ = data_module(ONE_INPUT).load_data(str(path), 0)
    assert x_train.shape == (3, 4) and y_train.dtype == np.int64


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x_train_series": np.ones((5, 6, 3))}, "no array x_train_extra"),
        ({"x_train_series": np.ones((5, 6, 4))}, "x_train_series holds samples of shape (6, 4)"),
    ],
)
def test_missing_or_misshapen_arrays_are_named(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        data_module(TWO_INPUTS).load_data(str(path), 0)


def test_a_synthetic_run_of_an_npz_spec_has_synthetic_epochs() -> None:
    """`--data synthetic` on a `data = npz` spec (the file's size is unknown when compiling)
    trains epochs as long as `data = synthetic`'s, not zero steps."""
    model = build(ONE_INPUT).model
    constants = dict(contract.constants(model))
    assert (constants["TRAIN_SIZE"], constants["TEST_SIZE"]) == ("50000", "10000")
    assert contract.steps_per_epoch(model) == math.ceil(50000 / model.train.batch)
