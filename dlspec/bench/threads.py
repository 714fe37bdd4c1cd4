"""How bench sets a run's CPU thread count: environment variables and the CPUs it may use."""

from __future__ import annotations

from typing import Optional

# Set for every runtime: each framework reads the ones it knows before its pools start
#   OMP_NUM_THREADS: PyTorch's intra-op pool, MXNet's and CNTK's OpenMP operators
#   MKL_NUM_THREADS, OPENBLAS_NUM_THREADS: the BLAS libraries under NumPy, MXNet, CNTK
#   TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS: TensorFlow's (and Keras on TensorFlow's) pools
#   XLA_FLAGS: JAX on the CPU; XLA has no thread-count flag, only one that turns Eigen's
#   multithreading off, set for one thread; above one the CPU set limits it (see cpu_set)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def thread_environment(threads: Optional[int]) -> dict[str, str]:
    """The variables bench sets for a run with `threads` CPU threads (none when None)."""
    if threads is None:
        return {}
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env["TF_NUM_INTEROP_THREADS"] = "1"
    if threads == 1:
        env["XLA_FLAGS"] = SINGLE_THREAD_XLA
    return env


def cpu_set(threads: Optional[int], available: list[int]) -> Optional[list[int]]:
    """The CPUs a run with `threads` threads is pinned to: the first `threads` of those this
    process may use; None (no pinning) without a thread count or when fewer CPUs are there."""
    if threads is None or threads > len(available):
        return None
    return sorted(available)[:threads]
