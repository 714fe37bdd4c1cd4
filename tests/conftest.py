"""Shared fixtures: paths of the repository, its examples and its virtualenv's tools."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from dlspec.codegen.format_cache import default_directory
from dlspec.codegen.render import use_format_cache

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))
BIN = Path(sys.executable).parent

os.environ.setdefault("KERAS_HOME", str(ROOT / ".cache" / "keras"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The cache of black's output (dlspec.codegen.format_cache), kept in the clone rather than the
# home folder, used by the command line and by the tests' own compiles (the examples are compiled
# for every runtime by several tests); tests/test_format_cache.py proves a hit is black's bytes.
os.environ.setdefault("DLSPEC_CACHE_DIR", str(ROOT / ".cache" / "dlspec"))
use_format_cache(default_directory())
# Before numpy loads: the float64 oracle multiplies small matrices thousands of times (an RNN step
# each), where OpenBLAS's threads cost more than they save (2 cores: mnist_hierarchical_rnn's
# 5-step oracle took 1.2 s CPU single-threaded, 5 to 14 s threaded). Frameworks keep their pools.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def share_the_cpus_between_test_processes() -> None:
    """Under pytest-xdist, the OpenMP pools of each test process (and of every script it starts:
    PyTorch, MXNet, CNTK) get its share of the CPUs, unless OMP_NUM_THREADS is set. Two
    processes of two OpenMP threads each on 2 cores oversubscribe them and the pools spin: two
    keras[torch] MNIST epochs side by side took 17 s each, 3.5 s each with one thread.
    TensorFlow's and XLA's pools keep their defaults: one thread each made those tests slower
    (they wait well, and use both cores while the other process waits), and XLA's flags are part
    of JAX's compilation cache key (docs/decisions.md)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        os.environ.setdefault("MKL_NUM_THREADS", str(threads))


share_the_cpus_between_test_processes()
# verify's scripts fork from a warm interpreter per runtime (dlspec.verify.zygote): the framework
# import (4-9 s) is paid once per test process, not once per script; tests/test_zygote.py proves
# a forked script gives a fresh process's bytes
os.environ.setdefault("DLSPEC_ZYGOTE", "1")
# keras[jax]'s scripts compile every eager op and step with XLA (about 0.2 s each: 90 compiles to
# verify stacked_rnn, most of them its initialisers), and many tests run the same spec's script in
# new processes: JAX's persistent compilation cache in the clone lets a later process load what an
# earlier one compiled (tests/test_jax_compilation_cache.py proves the results are the same bytes).
# The size cap also turns on JAX's file lock, so the test processes never read a half-written entry.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2**30))


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def examples() -> list[Path]:
    """Every example spec."""
    return EXAMPLES


@pytest.fixture(scope="session", autouse=True)
def temporary_files_in_basetemp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The temporary files of the tests and of every process they start (TensorFlow's autograph
    sources, torchrun's folders, verify's work folders) in pytest's own folder, which pytest
    prunes after a few runs, instead of /tmp, where they stayed."""
    folder = tmp_path_factory.mktemp("t", numbered=False)
    before = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(folder)
    yield folder
    if before[0] is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before[0]
    tempfile.tempdir = before[1]
