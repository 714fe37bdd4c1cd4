"""Canonical weights drawn in NumPy from a seed, their npz files, and seeded input batches."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Union

import numpy as np

from dlspec.errors import DlspecError
from dlspec.ir.model import Init, Model, Param, Shape
from dlspec.ir.ops import vocab_of

Array = np.ndarray
Weights = dict[str, Array]
PathLike = Union[str, Path]

# independent streams for the things drawn from one seed (weights use default_rng(seed) itself)
INPUT_STREAM = 1
LABEL_STREAM = 2


class WeightsError(DlspecError):
    """Weights that do not match a model: missing, unexpected or wrongly shaped parameters."""


def _uniform(rng: np.random.Generator, shape: Shape, init: Init) -> Array:
    return rng.uniform(-init.limit, init.limit, size=shape)


def _normal(rng: np.random.Generator, shape: Shape, init: Init) -> Array:
    return rng.normal(init.mean, init.std, size=shape)


def _truncated_normal(rng: np.random.Generator, shape: Shape, init: Init) -> Array:
    """N(mean, std), each value outside mean +- 2 std redrawn until inside."""
    out = rng.normal(init.mean, init.std, size=shape)
    bad = np.abs(out - init.mean) > 2.0 * init.std
    while bad.any():
        out[bad] = rng.normal(init.mean, init.std, size=int(bad.sum()))
        bad = np.abs(out - init.mean) > 2.0 * init.std
    return out


def _constant(rng: np.random.Generator, shape: Shape, init: Init) -> Array:
    return np.full(shape, init.value, dtype=np.float64)


def orthogonal_matrix(rng: np.random.Generator, rows: int, cols: int) -> Array:
    """A (rows, cols) matrix with orthonormal rows or columns (whichever are fewer), via QR."""
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return q.T if rows < cols else q


def _orthogonal(rng: np.random.Generator, shape: Shape, init: Init) -> Array:
    rows = shape[0]
    cols = math.prod(shape[1:])
    return init.gain * orthogonal_matrix(rng, rows, cols).reshape(shape)


DRAW: dict[str, Callable[[np.random.Generator, Shape, Init], Array]] = {
    "uniform": _uniform,
    "normal": _normal,
    "truncated_normal": _truncated_normal,
    "constant": _constant,
    "orthogonal": _orthogonal,
}


def draw_param(rng: np.random.Generator, param: Param) -> Array:
    """One parameter from its Init, then its gate offset added (float64)."""
    if param.init.dist not in DRAW:
        raise WeightsError(f"{param.name}: no way to draw {param.init.dist!r}")
    value = np.asarray(DRAW[param.init.dist](rng, param.shape, param.init), dtype=np.float64)
    if param.gate_offset is not None:
        start, stop, add = param.gate_offset
        value[start:stop] += add
    return value


def draw_weights(model: Model, seed: int, dtype: type = np.float32) -> Weights:
    """Every parameter in model order from default_rng(seed), stored as `dtype` (float32)."""
    rng = np.random.default_rng(seed)
    return {p.name: draw_param(rng, p).astype(dtype) for p in model.params}


def check_weights(model: Model, weights: dict[str, Array], where: str = "weights") -> None:
    """Raise WeightsError unless `weights` has exactly the model's names and shapes."""
    expected = {p.name: tuple(p.shape) for p in model.params}
    missing = [n for n in expected if n not in weights]
    extra = sorted(n for n in weights if n not in expected)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected {', '.join(extra)}")
    for name, shape in expected.items():
        if name in weights and tuple(np.shape(weights[name])) != shape:
            got = list(np.shape(weights[name]))
            problems.append(f"{name} has shape {got}, expected {list(shape)}")
    if problems:
        raise WeightsError(f"{where} do not match model {model.name}: " + "; ".join(problems))


def save_npz(path: PathLike, weights: Weights) -> None:
    """Write the weights to an npz keyed by the IR's parameter names, in the given order."""
    with open(path, "wb") as f:
        np.savez(f, **weights)


def load_npz(path: PathLike, model: Model) -> Weights:
    """Read an npz and check its names and shapes against the model exactly (model order)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as err:
        raise WeightsError(f"cannot read weights {path}: {err}") from err
    check_weights(model, arrays, f"weights {path}")
    return {p.name: arrays[p.name] for p in model.params}


# ---- fixed batches ---------------------------------------------------------------------------


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def input_stream(k: int) -> int:
    """The random stream of input k (the first input keeps the stream it always had)."""
    return INPUT_STREAM if k == 0 else 10 + k


def input_batches(model: Model, n: int, seed: int) -> dict[str, Array]:
    """n samples of every input, by name: float32 N(0, 1), or ids uniform in [0, vocab)."""
    out = {}
    for k, inp in enumerate(model.inputs):
        rng = _rng(seed, input_stream(k))
        shape = (n, *inp.shape)
        vocab = vocab_of(model, inp.name)
        if vocab:
            out[inp.name] = rng.integers(0, vocab, size=shape).astype(inp.dtype)
        else:
            out[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def input_batch(model: Model, n: int, seed: int) -> Array:
    """n samples of a one-input model's input (see input_batches)."""
    return input_batches(model, n, seed)[model.inputs[0].name]


def label_batch(model: Model, n: int, seed: int) -> Array:
    """n targets: int64 class ids over the output's last axis, 0/1 float32 per output element
    (binary_cross_entropy), or float32 N(0, 1) (mse, mae)."""
    rng = _rng(seed, LABEL_STREAM)
    out = model.output_shape
    labels = model.train.loss.labels if model.train is not None else "sparse"
    if labels == "real":
        return rng.standard_normal((n, *out)).astype(np.float32)
    if labels == "multi_label":
        return rng.integers(0, 2, size=(n, *out)).astype(np.float32)
    return rng.integers(0, out[-1], size=(n, *out[:-1])).astype(np.int64)
