"""`data = npz`: the generated data section reads the user's arrays, one per input, and checks
every shape, and that token ids and class labels are whole numbers in range (no framework
needed: the data section is NumPy only)."""

from __future__ import annotations

import math
import re
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


TOKENS = """
model tok {
    input words: int32[4]
    input extra: float32[2]
    [words] -> embedding(10, 3) -> gru(2) -> h: relu
    [words] -> embedding(8, 3) -> gru(2) -> g: relu
    [h, g, extra] -> concat -> dense(3)
}
train { data = npz }
"""


def _token_arrays(**changed: np.ndarray) -> dict[str, np.ndarray]:
    """A valid file's arrays for TOKENS (ids 0..7, labels 0..2), with some replaced."""
    rng = np.random.default_rng(0)
    arrays = {
        f"x_{split}_words": rng.integers(0, 8, (n, 4)) for split, n in (("train", 5), ("test", 2))
    }
    arrays |= {f"x_{split}_extra": np.ones((n, 2)) for split, n in (("train", 5), ("test", 2))}
    arrays |= {"y_train": np.array([0, 1, 2, 2, 0]), "y_test": np.array([1, 0])}
    return arrays | changed


def test_token_ids_and_labels_in_range_load(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", **_token_arrays(x_test_words=np.full((2, 4), 7.0)))
    (x_train, y_train), (x_test, _) = data_module(TOKENS).load_npz(str(tmp_path / "ok.npz"))
    assert x_train[0].dtype == np.int32 and x_test[0].max() == 7 and y_train.tolist()[2] == 2


@pytest.mark.parametrize(
    "changed, message",
    [
        # the smaller of the two tables reading `words` has rows 0..7
        ({"x_train_words": np.full((5, 4), 8)}, "x_train_words holds token ids from 8 to 8; "
         "expected 0..7"),
        ({"x_test_words": np.full((2, 4), -1)}, "x_test_words holds token ids from -1 to -1"),
        ({"x_train_words": np.full((5, 4), 1.5)}, "x_train_words holds fractions; token ids"),
        ({"y_train": np.array([0, 1, 3, 2, 0])}, "y_train holds class labels from 0 to 3; "
         "expected 0..2"),
        ({"y_test": np.array([0.0, 0.5])}, "y_test holds fractions; class labels"),
    ],
)  # fmt: skip
def test_token_ids_or_labels_out_of_range_are_named(
    tmp_path: Path, changed: dict, message: str
) -> None:
    np.savez(tmp_path / "bad.npz", **_token_arrays(**changed))
    with pytest.raises(SystemExit, match=re.escape(message)):
        data_module(TOKENS).load_data(str(tmp_path / "bad.npz"), 0)


def test_a_synthetic_run_of_an_npz_spec_has_synthetic_epochs() -> None:
    """`--data synthetic` on a `data = npz` spec (the file's size is unknown when compiling)
    trains epochs as long as `data = synthetic`'s, not zero steps."""
    model = build(ONE_INPUT).model
    constants = dict(contract.constants(model))
    assert (constants["TRAIN_SIZE"], constants["TEST_SIZE"]) == ("50000", "10000")
    assert contract.steps_per_epoch(model) == math.ceil(50000 / model.train.batch)
