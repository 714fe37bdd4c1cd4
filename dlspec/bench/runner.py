"""Run one (spec, runtime) job: the script as a child with a deadline, then its bench record."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from dlspec.bench import host, record
from dlspec.bench.process import Finished, GpuSampler, run_child
from dlspec.bench.threads import cpu_set, thread_environment
from dlspec.codegen.interface import validate_results
from dlspec.runtimes import Runtime, probe, runtime
from dlspec.verify.replicas import replica_command

VERSION_FIELDS = (
    "framework",
    "framework_version",
    "backend",
    "backend_version",
    "python_version",
    "device",
    "cuda",
    "cudnn",
)
# the performance switches the script reports as in force
SWITCH_FIELDS = (
    "threads",
    "cpus",
    "jit_compile",
    "data_format",
    "cudnn_benchmark",
    "tf32_matmul",
    "tf32_cudnn",
    "matmul_precision",
)
Prober = Callable[[Runtime], tuple[bool, str]]


@dataclass(frozen=True)
class Settings:
    """What every run of a bench session is asked for (the same for every target)."""

    device: str = "auto"
    epochs: Optional[int] = None  # None: the spec's
    warmup: int = 5
    max_steps: int = 0
    data: str = "synthetic"
    timeout: float = 1800.0
    quick: bool = False

    def flags(self, results: Path) -> list[str]:
        """The script flags these settings become."""
        out = ["--device", self.device, "--data", self.data, "--warmup", str(self.warmup)]
        out += ["--max-steps", str(self.max_steps), "--results", str(results)]
        if self.epochs is not None:
            out += ["--epochs", str(self.epochs)]
        return out


@dataclass(frozen=True)
class Job:
    """One run: a spec's script in one runtime with a thread count (None: the framework's
    default; with replicas, each replica's), the repeat-th time, as `replicas` data-parallel
    processes; its files go to `folder`."""

    spec: str
    model: str
    kind: str
    runtime: str
    script: Path
    threads: Optional[int]
    repeat: int
    folder: Path
    replicas: int = 1
    script_sha256: str = ""  # the script's bytes: a resumed session reuses only the same script's

    @property
    def label(self) -> str:
        """How progress lines name it."""
        replicas = f", {self.replicas} replicas" if self.replicas > 1 else ""
        threads = "" if self.threads is None else f", {self.threads} thread(s)"
        again = f", repeat {self.repeat + 1}" if self.repeat else ""
        return f"{self.model} on {self.runtime}{replicas}{threads}{again}"


def job_command(job: Job, rt: Runtime, flags: list[str]) -> list[str]:
    """The job's argv: the script in its runtime, or its target's launcher of N replicas."""
    if job.replicas > 1:
        return replica_command(rt, str(job.script), job.replicas, *flags)
    return rt.command(str(job.script), *flags)


def job_cpus(job: Job) -> Optional[list[int]]:
    """The CPUs the job is pinned to: its thread count for each replica (see cpu_set)."""
    threads = None if job.threads is None else job.threads * job.replicas
    return cpu_set(threads, sorted(host_cpus()))


def cold_compile_caches(folder: Path) -> dict[str, str]:
    """The variables that make a run compile from nothing, so its warm-up holds the whole
    compilation whatever ran before it (an earlier repeat, the caller's settings):
    torch.compile's Inductor and Triton caches in `folder` (empty, the run's own), JAX's
    persistent compilation cache off."""
    return {
        "TORCHINDUCTOR_CACHE_DIR": str(folder / "inductor"),
        "TRITON_CACHE_DIR": str(folder / "triton"),
        "JAX_ENABLE_COMPILATION_CACHE": "false",
    }


def _gpu_sampling(
    settings: Settings, facts: dict[str, Any]
) -> tuple[Optional[float], Optional[GpuSampler]]:
    """On a GPU run: the GPU memory in use (MB) before the child starts, and the sampler to poll."""
    if not (facts.get("gpus") and settings.device != "cpu"):
        return None, None
    first = host.gpu_sample()
    return (first[0] if first else None), host.gpu_sample


def _launch(
    job: Job,
    rt: Runtime,
    argv: list[str],
    settings: Settings,
    sampler: Optional[GpuSampler],
) -> Finished:
    """Run the child with its runtime's environment, thread settings and cold compile caches."""
    try:
        with tempfile.TemporaryDirectory(prefix="dlspec-bench-caches-") as caches:
            env = {
                **rt.environment(),
                **thread_environment(job.threads),
                **cold_compile_caches(Path(caches)),
            }
            stdout, stderr = job.folder / "stdout.txt", job.folder / "stderr.txt"
            return run_child(argv, env, stdout, stderr, settings.timeout, job_cpus(job), sampler)
    except OSError as err:  # the interpreter is missing or not executable
        (job.folder / "stderr.txt").write_text(f"cannot start {argv[0]}: {err}\n")
        return Finished(None, False, 0.0, None)


def _base_record(
    job: Job,
    rt: Runtime,
    argv: list[str],
    settings: Settings,
    finished: Finished,
    facts: dict[str, Any],
    started: str,
) -> dict[str, Any]:
    """What a record says about the run itself, whatever its outcome."""
    return {
        "record_version": record.RECORD_VERSION,
        "started": started,
        **asked(job, settings, facts),
        "kind": job.kind,
        "target": rt.target,
        "command": shlex.join(argv),
        "thread_environment": thread_environment(job.threads),
        "cpu_set": job_cpus(job),
        "wall_seconds": finished.wall_seconds,
        "peak_rss_mb": finished.peak_rss_mb,
    }


def asked(job: Job, settings: Settings, facts: dict[str, Any]) -> dict[str, Any]:
    """The fields of a job's record that say which run it is: spec, model, runtime, repeat,
    replicas, the script's digest, the settings (threads included) and the host."""
    return {
        "spec": job.spec,
        "model": job.model,
        "runtime": job.runtime,
        "repeat": job.repeat,
        "replicas": job.replicas,
        "script_sha256": job.script_sha256,
        "settings": {**dataclasses.asdict(settings), "threads": job.threads},
        "host": facts,
    }


def run_job(
    job: Job,
    settings: Settings,
    facts: dict[str, Any],
    prober: Prober = probe,
) -> dict[str, Any]:
    """Run the job and return its record (a failure or a timeout is a record too)."""
    rt = runtime(job.runtime)
    job.folder.mkdir(parents=True, exist_ok=True)
    results_path = job.folder / "results.json"
    results_path.unlink(missing_ok=True)
    argv = job_command(job, rt, settings.flags(results_path))
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    baseline, sampler = _gpu_sampling(settings, facts)
    finished = _launch(job, rt, argv, settings, sampler)
    base = _base_record(job, rt, argv, settings, finished, facts, started)
    outcome = _outcome(job, rt, finished, results_path, prober, settings.max_steps)
    window = record.timed_window(outcome.get("results"))
    gpu = record.gpu_summary(finished.gpu_samples, baseline, window)
    return {**base, "gpu": gpu, **outcome}


def host_cpus() -> set[int]:
    """The CPUs bench itself may run on."""
    return os.sched_getaffinity(0)


def _outcome(
    job: Job,
    rt: Runtime,
    finished: Finished,
    results_path: Path,
    prober: Prober,
    max_steps: int,
) -> dict[str, Any]:
    """status, error, stderr's tail, and the measurements, versions and switches of a run."""
    tail = record.stderr_tail(_read(job.folder / "stderr.txt"))
    if finished.returncode is None and not finished.timed_out:
        return _failure(record.UNAVAILABLE, f"runtime not available: {tail[-1]}", tail)
    if finished.timed_out:
        return _failure(record.TIMEOUT, f"killed after {finished.wall_seconds:.0f} s", tail)
    if finished.returncode != 0:
        ok, info = prober(rt)
        if not ok:
            return _failure(record.UNAVAILABLE, f"runtime not available: {info}", tail)
        why = f"exit status {finished.returncode}" + (f": {tail[-1]}" if tail else "")
        return _failure(record.FAILED, why, tail, {"probe": info})
    results, problem = _results(results_path, job.runtime)
    if problem:
        return _failure(record.INVALID, problem, tail)
    return {
        "status": record.OK,
        "error": None,
        "stderr_tail": [],
        **record.measurements(results, finished.wall_seconds, max_steps),
        "versions": {name: results[name] for name in VERSION_FIELDS},
        "switches": {name: results[name] for name in SWITCH_FIELDS},
        "results": results,
    }


def _failure(
    status: str, error: str, tail: list[str], versions: Optional[dict] = None
) -> dict[str, Any]:
    return {
        "status": status,
        "error": error,
        "stderr_tail": tail,
        **dict.fromkeys(record.measurements({}, 0.0)),
        "versions": versions or {},
        "switches": {},
        "results": None,
    }


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _results(path: Path, name: str) -> tuple[dict[str, Any], str]:
    """The script's results JSON and '' when it is valid, else ({}, what is wrong)."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return {}, "the script exited 0 but wrote no results JSON"
    except json.JSONDecodeError as err:
        return {}, f"results JSON does not parse: {err}"
    problems = validate_results(results)
    if not problems and results["runtime"] != name:
        problems = [f"runtime: {results['runtime']!r}, run on {name}"]
    if problems:
        return {}, "results break the schema: " + "; ".join(problems)
    return results, ""
