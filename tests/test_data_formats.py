"""The generated data loaders read small files written in the real formats, exactly.

Every target's script includes the same data section (templates/common/data.py.j2), which uses
only NumPy and the standard library. These tests render that section for a spec, run it as a
module without any deep-learning framework, and feed it MNIST idx and pickle files, CIFAR-10
python batches and a Keras imdb.npz written here, checking every value that comes back.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from dataset_files import (
    object_array,
    write_cifar,
    write_idx,
    write_imdb,
    write_mnist_idx,
    write_mnist_pickle,
)

from dlspec.codegen import contract
from dlspec.codegen.render import environment
from dlspec.frontend.load import build

# The data section's imports: the standard library and NumPy, nothing else (see its header).
PRELUDE = "import gzip\nimport os\nimport pickle\nimport struct\nimport sys\nimport zipfile\n\nimport numpy as np\n"


def data_module(spec: str) -> types.ModuleType:
    """The data section generated for `spec`, with the constants it reads, as a module."""
    model = build(spec, "<test>").model
    section = (
        environment().get_template("common/data.py.j2").render(data=contract.data_context(model))
    )
    section += environment().get_template("common/files.py.j2").render()  # _error_text
    constants = "".join(f"{name} = {value}\n" for name, value in contract.constants(model))
    module = types.ModuleType(f"data_{model.name}")
    exec(compile(PRELUDE + constants + section, module.__name__, "exec"), module.__dict__)
    module.load_data = _one_input(module.load_data)
    return module


def _one_input(load_data: Callable[..., Any]) -> Callable[..., Any]:
    """load_data gives x as a list, one array per input: these specs have one, unwrapped here."""

    def load(*args: Any) -> Any:
        (x_train, y_train), (x_test, y_test) = load_data(*args)
        assert isinstance(x_train, list) and len(x_train) == 1 and len(x_test) == 1
        return (x_train[0], y_train), (x_test[0], y_test)

    return load


def image_spec(dataset: str, shape: str) -> str:
    layers = "dense(10)" if shape == "[784]" else "flatten\n    dense(10)"
    return f"""
model m {{
    input x: float32{shape}
    {layers}
}}
train {{
    batch = 4
    data = {dataset}
}}
"""


def imdb_spec(maxlen: int, data: str) -> str:
    return f"""
model m {{
    input tokens: int32[{maxlen}]
    embedding(10, 4)
    gru(3)
    dense(2)
}}
train {{
    batch = 2
    data = {data}
}}
"""


# ---- MNIST and Fashion-MNIST idx files ------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_idx_files_flat_input(tmp_path: Path, dataset: str, gz: bool) -> None:
    arrays = write_mnist_idx(tmp_path, gz, np.random.RandomState(0))
    (x_train, y_train), (x_test, y_test) = data_module(image_spec(dataset, "[784]")).load_data(
        str(tmp_path), 0
    )
    assert x_train.shape == (5, 784) and x_test.shape == (3, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    images = arrays["train-images-idx3-ubyte"]
    expected = images.reshape(5, 784).astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(x_train, expected)
    # row-major flattening: pixel (row 3, column 5) of image 1 is feature 3 * 28 + 5
    assert x_train[1, 3 * 28 + 5] == np.float32(images[1, 3, 5]) / np.float32(255.0)
    assert y_train.tolist() == [7, 0, 9, 1, 3]
    assert y_test.tolist() == [2, 8, 5]
    np.testing.assert_array_equal(
        x_test * np.float32(255.0), arrays["t10k-images-idx3-ubyte"].reshape(3, 784)
    )


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_idx_files_image_input(tmp_path: Path, dataset: str) -> None:
    arrays = write_mnist_idx(tmp_path, True, np.random.RandomState(1))
    (x_train, _), (x_test, _) = data_module(image_spec(dataset, "[1, 28, 28]")).load_data(
        str(tmp_path), 0
    )
    assert x_train.shape == (5, 1, 28, 28) and x_test.shape == (3, 1, 28, 28)
    images = arrays["train-images-idx3-ubyte"]
    assert x_train[4, 0, 27, 0] == np.float32(images[4, 27, 0]) / np.float32(255.0)
    np.testing.assert_array_equal(x_train[:, 0] * np.float32(255.0), images)


def test_idx_files_channel_last_input(tmp_path: Path) -> None:
    """[28, 28, 1] (Keras's hierarchical RNN) is the same image with its single channel last:
    row r of the sample is the image's row r, one pixel per step."""
    arrays = write_mnist_idx(tmp_path, True, np.random.RandomState(1))
    (x_train, _), (x_test, _) = data_module(image_spec("mnist", "[28, 28, 1]")).load_data(
        str(tmp_path), 0
    )
    assert x_train.shape == (5, 28, 28, 1) and x_test.shape == (3, 28, 28, 1)
    images = arrays["train-images-idx3-ubyte"]
    assert x_train[4, 27, 3, 0] == np.float32(images[4, 27, 3]) / np.float32(255.0)
    np.testing.assert_array_equal(x_train[..., 0] * np.float32(255.0), images)


def test_idx_header_is_checked(tmp_path: Path) -> None:
    module = data_module(image_spec("mnist", "[784]"))
    bad = tmp_path / "float-idx"
    bad.write_bytes(struct.pack(">IIII", 0x00000D03, 1, 2, 2) + b"\0" * 16)  # 0x0D: float32
    with pytest.raises(ValueError, match="not an unsigned-byte idx file"):
        module.read_idx(str(bad))
    short = tmp_path / "short-idx"
    short.write_bytes(struct.pack(">IIII", 0x00000803, 2, 28, 28) + b"\0" * 784)
    with pytest.raises(ValueError, match=r"need 1568 bytes of data, found 784"):
        module.read_idx(str(short))
    short.write_bytes(b"\0\0")
    with pytest.raises(ValueError, match=r"not an idx file \(2 bytes, shorter than its magic\)"):
        module.read_idx(str(short))
    short.write_bytes(struct.pack(">IIII", 0x00000803, 2, 28, 28)[:10])
    with pytest.raises(ValueError, match=r"the header of 3 dimensions is cut short"):
        module.read_idx(str(short))


def test_idx_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    write_mnist_idx(tmp_path, False, np.random.RandomState(2))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2]), gz=False)
    with pytest.raises(SystemExit, match="t10k: 3 images but 2 labels"):
        data_module(image_spec("mnist", "[784]")).load_data(str(tmp_path), 0)


# ---- the MNIST pickle -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["[784]", "[1, 28, 28]"])
def test_mnist_pickle_train_is_train_plus_valid(tmp_path: Path, shape: str) -> None:
    (xt, yt), (xv, yv), (xs, ys) = write_mnist_pickle(tmp_path, np.random.RandomState(3))
    (x_train, y_train), (x_test, y_test) = data_module(image_spec("mnist", shape)).load_data(
        str(tmp_path), 0
    )
    dims = (-1, 784) if shape == "[784]" else (-1, 1, 28, 28)
    # the pickle holds pixel/256; the loader gives pixel/255 like the idx files
    pixels = np.round(np.concatenate([xt, xv]) * 256)
    np.testing.assert_allclose(x_train, (pixels / 255.0).reshape(dims), rtol=1e-7)
    np.testing.assert_allclose(x_test, (np.round(xs * 256) / 255.0).reshape(dims), rtol=1e-7)
    assert x_train.max() <= 1.0
    assert y_train.tolist() == yt.tolist() + yv.tolist()
    assert y_test.tolist() == ys.tolist()
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64


def test_mnist_pickle_wins_over_idx_files(tmp_path: Path) -> None:
    write_mnist_idx(tmp_path, False, np.random.RandomState(4))
    parts = write_mnist_pickle(tmp_path, np.random.RandomState(5))
    (x_train, _), _ = data_module(image_spec("mnist", "[784]")).load_data(str(tmp_path), 0)
    assert len(x_train) == len(parts[0][0]) + len(parts[1][0])


def test_fashion_mnist_never_reads_the_mnist_pickle(tmp_path: Path) -> None:
    """A stray mnist.pkl.gz must not turn Fashion-MNIST into digits."""
    write_mnist_pickle(tmp_path, np.random.RandomState(6))
    with pytest.raises(SystemExit, match=r"missing data file: .*train-images-idx3-ubyte\[\.gz\]"):
        data_module(image_spec("fashion_mnist", "[784]")).load_data(str(tmp_path), 0)


# ---- CIFAR-10 python batches ----------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "cifar-10-batches-py"])
def test_cifar10_batches(tmp_path: Path, nested: bool) -> None:
    folder = tmp_path / "cifar-10-batches-py" if nested else tmp_path
    batches = write_cifar(folder, np.random.RandomState(7))
    # one distinctive pixel: image 1 of data_batch_2, channel G (1), row 2, column 5
    batches["data_batch_2"][b"data"][1, 1 * 1024 + 2 * 32 + 5] = 251
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump(batches["data_batch_2"], f, protocol=2)
    spec = image_spec("cifar10", "[3, 32, 32]")
    (x_train, y_train), (x_test, y_test) = data_module(spec).load_data(str(tmp_path), 0)
    assert x_train.shape == (10, 3, 32, 32) and x_test.shape == (3, 3, 32, 32)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train[3, 1, 2, 5] == np.float32(251) / np.float32(255.0)  # batch 2 starts at row 2
    train_rows = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    np.testing.assert_array_equal(x_train * np.float32(255.0), train_rows.reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(
        x_test * np.float32(255.0), batches["test_batch"][b"data"].reshape(-1, 3, 32, 32)
    )
    labels = [label for i in range(1, 6) for label in batches[f"data_batch_{i}"][b"labels"]]
    assert y_train.tolist() == labels
    assert y_test.tolist() == batches["test_batch"][b"labels"]


def test_cifar10_missing_batch_is_named(tmp_path: Path) -> None:
    write_cifar(tmp_path, np.random.RandomState(8))
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(SystemExit, match=r"data_batch_3.*\n.*data_batch_1\.\.5 and test_batch"):
        data_module(image_spec("cifar10", "[3, 32, 32]")).load_data(str(tmp_path), 0)


# ---- IMDB, Keras's imdb.npz -----------------------------------------------------------------

REVIEWS = [
    [1, 2, 6, 7, 20],  # ids + 3 = [4, 5, 9, 10, 23]; 10 and 23 are >= vocab 10
    [5],  # short: [1, 8]
    [0, 1, 2, 3, 4, 5, 6, 7, 8],  # long: [1, 3, 4, 5, 6, 7, 8, 9, 2, 2] before truncation
]
IMDB_CASES = {
    "pre-pre": (
        "imdb(vocab=10, pad=pre, truncate=pre)",
        [[1, 4, 5, 9, 2, 2], [0, 0, 0, 0, 1, 8], [6, 7, 8, 9, 2, 2]],
    ),
    "post-pre": (
        "imdb(vocab=10, pad=post, truncate=pre)",
        [[1, 4, 5, 9, 2, 2], [1, 8, 0, 0, 0, 0], [6, 7, 8, 9, 2, 2]],
    ),
    "pre-post": (
        "imdb(vocab=10, pad=pre, truncate=post)",
        [[1, 4, 5, 9, 2, 2], [0, 0, 0, 0, 1, 8], [1, 3, 4, 5, 6, 7]],
    ),
    "other-ids": (
        "imdb(vocab=10, start_char=7, oov_char=3, index_from=2)",
        [[7, 3, 4, 8, 9, 3], [0, 0, 0, 0, 7, 7], [5, 6, 7, 8, 9, 3]],
    ),
}


@pytest.mark.parametrize("case", list(IMDB_CASES))
def test_imdb_npz(tmp_path: Path, case: str) -> None:
    data, expected = IMDB_CASES[case]
    write_imdb(tmp_path, REVIEWS, REVIEWS[::-1])
    (x_train, y_train), (x_test, y_test) = data_module(imdb_spec(6, data)).load_data(
        str(tmp_path), 0
    )
    assert x_train.dtype == np.int32 and x_train.shape == (3, 6)
    assert x_train.tolist() == expected
    assert x_test.tolist() == expected[::-1]
    assert y_train.dtype == np.int64 and y_train.tolist() == [0, 1, 0]
    assert y_test.tolist() == [1, 1, 1]


def test_imdb_missing_file(tmp_path: Path) -> None:
    module = data_module(imdb_spec(6, "imdb(vocab=10)"))
    with pytest.raises(SystemExit, match=r"imdb\.npz.*\n.*Keras's format"):
        module.load_data(str(tmp_path), 0)


# ---- files that are not what their format says ----------------------------------------------


def test_labels_past_the_classes_are_refused(tmp_path: Path) -> None:
    """EMNIST letters (labels 1..26) in MNIST's file names: an mnist spec's 10 logits would be
    indexed past their end (PyTorch raises mid-epoch; a TensorFlow GPU reads garbage)."""
    write_mnist_idx(tmp_path, False, np.random.RandomState(9))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 26, 3]), gz=False)
    with pytest.raises(SystemExit, match=r"the test split holds class labels from 1 to 26; "
                       r"expected 0\.\.9\n"):  # fmt: skip
        data_module(image_spec("mnist", "[784]")).load_data(str(tmp_path), 0)


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    "spec, write, cut, message",
    [
        (image_spec("cifar10", "[3, 32, 32]"), write_cifar, "data_batch_2",
         "UnpicklingError|EOFError"),
        (imdb_spec(6, "imdb(vocab=10)"), lambda f, _: write_imdb(f, REVIEWS, REVIEWS),
         "imdb.npz", "BadZipFile|EOFError|ValueError"),
        (image_spec("mnist", "[784]"), write_mnist_pickle, "mnist.pkl.gz",
         "EOFError|BadGzipFile|Compressed file ended"),
    ],
    ids=["cifar10", "imdb", "mnist_pickle"],
)  # fmt: skip
def test_a_truncated_file_is_named_not_a_traceback(
    tmp_path: Path, spec: str, write: Callable[..., Any], cut: str, message: str
) -> None:
    write(tmp_path, np.random.RandomState(10))
    _truncated(tmp_path / cut)
    with pytest.raises(SystemExit, match=rf"^--data {re.escape(str(tmp_path))}: .*({message})"):
        data_module(spec).load_data(str(tmp_path), 0)


class _Mkdir:
    """Unpickled, makes a folder: what a hostile data file could run instead."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.path,))


def _hostile_mnist(folder: Path, marker: Path) -> None:
    parts = write_mnist_pickle(folder, np.random.RandomState(11))
    with gzip.open(folder / "mnist.pkl.gz", "wb") as f:
        pickle.dump((parts[0], parts[1], (_Mkdir(marker), parts[2][1])), f, protocol=2)


def _hostile_cifar(folder: Path, marker: Path) -> None:
    batch = write_cifar(folder, np.random.RandomState(12))["data_batch_4"]
    with open(folder / "data_batch_4", "wb") as f:
        pickle.dump({**batch, b"labels": _Mkdir(marker)}, f, protocol=2)


def _hostile_imdb(folder: Path, marker: Path) -> None:
    write_imdb(folder, REVIEWS, REVIEWS)
    with np.load(folder / "imdb.npz", allow_pickle=True) as f:
        arrays = dict(f)
    arrays["x_test"] = object_array([[1, 2], [3], [4]])
    arrays["x_test"][2] = _Mkdir(marker)
    np.savez(folder / "imdb.npz", **arrays)


@pytest.mark.parametrize(
    "spec, write",
    [
        (image_spec("mnist", "[784]"), _hostile_mnist),
        (image_spec("cifar10", "[3, 32, 32]"), _hostile_cifar),
        (imdb_spec(6, "imdb(vocab=10)"), _hostile_imdb),
    ],
    ids=["mnist_pickle", "cifar10", "imdb"],
)
def test_a_pickle_that_calls_code_is_refused_before_the_call(
    tmp_path: Path, spec: str, write: Callable[[Path, Path], None]
) -> None:
    """mnist.pkl.gz, CIFAR's batches and imdb.npz's reviews are pickles, which may name any
    function to call; the loaders take NumPy's array rebuilders only, so the folder is never
    made (np.load(allow_pickle=True) and pickle.load would make it)."""
    marker = tmp_path / "made by the data file"
    write(tmp_path, marker)
    with pytest.raises(
        SystemExit, match=r"it names \w+\.mkdir; a data file may name NumPy's arrays"
    ):
        data_module(spec).load_data(str(tmp_path), 0)
    assert not marker.exists()


# ---- missing files and synthetic data -------------------------------------------------------


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_missing_mnist_files(tmp_path: Path, dataset: str) -> None:
    with pytest.raises(SystemExit) as err:
        data_module(image_spec(dataset, "[784]")).load_data(str(tmp_path), 0)
    message = str(err.value)
    assert message.startswith(f"--data {tmp_path}: missing data file: ")
    assert "train-images-idx3-ubyte[.gz]" in message
    assert ("mnist.pkl.gz" in message) == (dataset == "mnist")


FOLDER_DATASETS = {
    "mnist": lambda: image_spec("mnist", "[784]"),
    "fashion_mnist": lambda: image_spec("fashion_mnist", "[784]"),
    "cifar10": lambda: image_spec("cifar10", "[3, 32, 32]"),
    "imdb": lambda: imdb_spec(6, "imdb(vocab=10)"),
}


@pytest.mark.parametrize("dataset", sorted(FOLDER_DATASETS))
def test_a_data_folder_that_is_no_folder_is_named_so(tmp_path: Path, dataset: str) -> None:
    """Not the first file the loader happens to look for: the folder itself."""
    module = data_module(FOLDER_DATASETS[dataset]())
    (tmp_path / "file").write_text("")
    for name, reason in (("none", "no such folder"), ("file", "not a folder")):
        with pytest.raises(SystemExit) as err:
            module.load_data(str(tmp_path / name), 0)
        assert str(err.value).startswith(f"--data {tmp_path / name}: {reason}\nexpected there: ")


def test_synthetic_tokens_and_labels() -> None:
    module = data_module(imdb_spec(6, "imdb(vocab=10)"))
    (x, y), (x_test, _) = module.load_data("synthetic", 0)
    pool = module.SYNTHETIC_POOL_BATCHES * 2
    assert x.shape == (pool, 6) and x.dtype == np.int32
    assert 0 <= x.min() and x.max() < 10  # ids stay inside the embedding table
    assert set(y.tolist()) <= {0, 1} and y.dtype == np.int64
    assert not np.array_equal(x, x_test)  # the test pool is drawn with another seed
