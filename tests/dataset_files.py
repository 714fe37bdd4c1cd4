"""Writers for small files in the real dataset formats (MNIST idx and pickle, CIFAR-10, IMDB, and
the npz of examples/pm25_lstm.dl)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """An idx file: two zero bytes, type 0x08 (unsigned byte), ndim, big-endian dims, data."""
    magic = 0x00000800 + array.ndim  # 0x00000803 for images, 0x00000801 for labels
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_mnist_idx(folder: Path, gz: bool, rng: np.random.RandomState) -> dict[str, np.ndarray]:
    """train-* (5 images) and t10k-* (3 images) idx files; returns the arrays written."""
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, size=(5, 28, 28)),
        "train-labels-idx1-ubyte": np.array([7, 0, 9, 1, 3]),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, size=(3, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([2, 8, 5]),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array, gz)
    return arrays


def write_mnist_pickle(folder: Path, rng: np.random.RandomState) -> list[tuple]:
    """mnist.pkl.gz: ((x, y), (x, y), (x, y)) = train, valid, test; float32 in [0, 1)."""
    parts = []
    for count in (4, 2, 3):
        x = (rng.randint(0, 256, size=(count, 784)) / 256.0).astype(np.float32)
        y = rng.randint(0, 10, size=count).astype(np.int64)
        parts.append((x, y))
    with gzip.open(folder / "mnist.pkl.gz", "wb") as f:
        pickle.dump(tuple(parts), f, protocol=2)
    return parts


def write_cifar(folder: Path, rng: np.random.RandomState) -> dict[str, dict]:
    """data_batch_1..5 (2 images each) and test_batch (3 images) as CIFAR-10's python pickles."""
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        count = 3 if name == "test_batch" else 2
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.randint(0, 10, size=count)],
            b"data": rng.randint(0, 256, size=(count, 3072)).astype(np.uint8),
            b"filenames": [b"img_%d.png" % i for i in range(count)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        batches[name] = batch
    return batches


def object_array(reviews: list[list[int]]) -> np.ndarray:
    """A 1-D object array of lists (ragged), as in Keras's imdb.npz."""
    out = np.empty(len(reviews), dtype=object)
    for i, review in enumerate(reviews):
        out[i] = list(review)
    return out


def write_imdb(folder: Path, train: list[list[int]], test: list[list[int]]) -> None:
    np.savez(
        folder / "imdb.npz",
        x_train=object_array(train),
        y_train=np.arange(len(train)) % 2,
        x_test=object_array(test),
        y_test=np.ones(len(test), dtype=np.int64),
    )


def write_pm25(
    path: Path, train: int, test: int, rng: np.random.RandomState
) -> dict[str, np.ndarray]:
    """The arrays examples/pm25_lstm.dl reads with `--data FILE.npz`, as its tutorial prepares
    them: each sample one hour's 8 variables scaled to [0, 1], as (1 time step, 8 features);
    the target the next hour's scaled pollution, (N, 1). Hours run in order through train, then
    test (the target of hour t is variable 0 of hour t + 1)."""
    hours = rng.uniform(0.0, 1.0, size=(train + test + 1, 8)).astype(np.float32)
    x, y = hours[:-1, None, :], hours[1:, :1]
    arrays = {"x_train": x[:train], "y_train": y[:train], "x_test": x[train:], "y_test": y[train:]}
    np.savez(path, **arrays)
    return arrays
