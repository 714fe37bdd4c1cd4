"""JAX's persistent compilation cache, which the tests turn on (conftest.py) so that keras[jax]
scripts stop recompiling what an earlier test process compiled: a script loaded from the cache
gives the bytes it gives compiled afresh."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import BATCHES_FILE, WEIGHTS_FILE
from dlspec.frontend.load import build
from dlspec.runtimes import runtime
from dlspec.verify.run import VERIFY_SEED, make_batches
from dlspec.weights import canonical as W

SPEC = """
model cached {
    input x: float32[2, 5, 5]
    conv2d(3, 3) -> relu
    flatten
    repeat_vector(3)
    gru(4, readout=last)
    dense(2)
}
train {
    optimizer = adam(lr=0.01)
    batch = 4
}
"""
CACHE_VARIABLES = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_COMPILATION_CACHE_MAX_SIZE",
)


def entries(cache: Path) -> set[str]:
    """The compiled executables in a cache folder (not its access-time files or lock)."""
    return {p.name for p in cache.glob("*-cache")}


def run(work: Path, name: str, cache: Path | None) -> dict[str, np.ndarray]:
    """The keras[jax] script's verify result, with the cache at `cache` or with none."""
    rt = runtime("keras[jax]")
    env = {k: v for k, v in rt.environment().items() if k not in CACHE_VARIABLES}
    if cache is not None:
        env.update(
            JAX_COMPILATION_CACHE_DIR=str(cache),
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_COMPILATION_CACHE_MAX_SIZE=str(2**30),
        )
    args = ["--verify", str(work), "--verify-name", name, "--device", "cpu"]
    cmd = rt.command(str(work / "script.py"), *args)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(work / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def test_the_conftest_turns_the_cache_on_in_the_clone() -> None:
    assert Path(os.environ["JAX_COMPILATION_CACHE_DIR"]).parent.name == ".cache"
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) == 0
    assert int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]) > 0  # the file lock's switch


@pytest.mark.framework
def test_a_script_from_the_cache_gives_the_bytes_of_one_compiled_afresh(tmp_path: Path) -> None:
    for module in ("keras", "jax"):
        if importlib.util.find_spec(module) is None:
            reason = f"{module} cannot be imported: the JAX cache test skipped"
            print(reason)
            pytest.skip(reason)
    model = build(SPEC, "cached.dl").model
    (tmp_path / "script.py").write_text(compile_model(model, "keras").source, encoding="utf-8")
    W.save_npz(tmp_path / WEIGHTS_FILE, W.draw_weights(model, VERIFY_SEED))
    np.savez(tmp_path / BATCHES_FILE, **make_batches(model, 3))
    cache = tmp_path / "jax-cache"
    fresh = run(tmp_path, "fresh", None)
    cold = run(tmp_path, "cold", cache)
    written = entries(cache)
    assert written, "the first cached run wrote no entry"
    warm = run(tmp_path, "warm", cache)
    assert entries(cache) == written  # every compile of the second run was a cache hit
    assert fresh.keys() == cold.keys() == warm.keys()
    for key in fresh:
        assert fresh[key].tobytes() == cold[key].tobytes() == warm[key].tobytes(), key
