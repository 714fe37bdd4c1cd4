"""Run one child process with a deadline: its exit status, wall time, peak RSS and GPU samples."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

POLL_SECONDS = 0.05
GPU_EVERY_SECONDS = 1.0
GpuSampler = Callable[[], Optional[tuple[float, float]]]
# a GPU sample as a run keeps it: (Unix time, memory used in MB, utilisation in percent)
GpuSample = tuple[float, float, float]


@dataclass
class Finished:
    """How a child ended: exit status (None when killed at the deadline), wall seconds, peak
    resident memory in MB (the child's and its waited-for descendants'), GPU samples."""

    returncode: Optional[int]
    timed_out: bool
    wall_seconds: float
    peak_rss_mb: Optional[float]
    gpu_samples: list[GpuSample] = field(default_factory=list)


# Linux hands an exec'ing process the peak RSS of the memory it replaces (exec_mmap's
# setmax_mm_hiwater_rss): a child started straight from a large process (a test worker: 1.7 GB)
# reports that process's peak as its own. So the script runs under a small launcher, which
# spawns it, reaps it with wait4 and writes its ru_maxrss (KB) to the file named first.
LAUNCHER = (
    "import os, sys\n"
    "pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "code = os.waitstatus_to_exitcode(status)\n"
    "sys.exit(128 - code if code < 0 else code)\n"
)


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit(143) in this process, so that run_child's clean-up kills
    the running child's process group (it leads its own session: a plain SIGTERM would leave it
    running)."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def _pin(cpus: Optional[list[int]]) -> Optional[Callable[[], None]]:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _kill_group(pid: int) -> None:
    """SIGKILL the child's process group (it leads its own session)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(
    argv: list[str],
    env: dict[str, str],
    stdout: Path,
    stderr: Path,
    timeout: float,
    cpus: Optional[list[int]] = None,
    gpu_sampler: Optional[GpuSampler] = None,
) -> Finished:
    """Run argv in its own session, output to files; past `timeout` seconds the whole process
    group is killed. The child is reaped with wait4 for its resource usage (ru_maxrss, KB)."""
    if shutil.which(argv[0], path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, "no such program", argv[0])  # as Popen would
    peak_file = Path(str(stderr) + ".maxrss")
    launched = [sys.executable, "-c", LAUNCHER, str(peak_file), *argv]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            launched,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,
            preexec_fn=_pin(cpus),
        )
        try:
            status, _, timed_out, samples = _wait(proc.pid, start + timeout, gpu_sampler)
        except BaseException:  # Ctrl-C, or SIGTERM as SystemExit: the child's group goes too
            _kill_group(proc.pid)
            raise
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    _kill_group(proc.pid)  # what the child left behind in its group
    returncode = None if timed_out else proc.returncode
    return Finished(returncode, timed_out, wall, _peak_mb(peak_file), samples)


def _peak_mb(path: Path) -> Optional[float]:
    """The script's peak RSS in MB as its launcher wrote it; None when it could not (killed)."""
    try:
        kilobytes = int(path.read_text())
    except (OSError, ValueError):
        return None
    finally:
        path.unlink(missing_ok=True)
    return kilobytes / 1024 if kilobytes else None


def _wait(
    pid: int, deadline: float, gpu_sampler: Optional[GpuSampler]
) -> tuple[int, os.struct_rusage, bool, list[GpuSample]]:
    """Poll the child until it exits or the deadline passes (then kill its group and reap it);
    sample the GPUs meanwhile, each sample with its wall-clock time."""
    samples: list[GpuSample] = []
    next_sample = 0.0
    while True:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped == pid:
            return status, usage, False, samples
        now = time.perf_counter()
        if now >= deadline:
            _kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            return status, usage, True, samples
        if gpu_sampler is not None and now >= next_sample:
            sample = gpu_sampler()
            if sample is not None:
                samples.append((time.time(), *sample))
            next_sample = now + GPU_EVERY_SECONDS
        time.sleep(POLL_SECONDS)
