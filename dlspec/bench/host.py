"""Facts about the machine a benchmark runs on: CPU model, CPUs, GPUs, operating system."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any, Optional

GPU_QUERY = "name,driver_version,memory.total"
GPU_SAMPLE = "memory.used,utilization.gpu"


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The first `model name` in /proc/cpuinfo, else platform.processor(), else 'unknown'."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def nvidia_smi(query: str) -> Optional[list[list[str]]]:
    """`nvidia-smi --query-gpu=QUERY` as rows of fields, one per GPU; None without a working
    nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [[f.strip() for f in line.split(",")] for line in done.stdout.splitlines() if line]


def gpus() -> list[dict[str, Any]]:
    """Each GPU nvidia-smi sees: name, driver, total memory in MB (empty without one)."""
    rows = nvidia_smi(GPU_QUERY) or []
    out = []
    for row in rows:
        if len(row) == 3:
            out.append({"name": row[0], "driver": row[1], "memory_mb": _number(row[2])})
    return out


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def gpu_sample() -> Optional[tuple[float, float]]:
    """(memory used in MB, utilisation in percent) summed and averaged over the GPUs, or None."""
    rows = nvidia_smi(GPU_SAMPLE)
    if not rows:
        return None
    values = [(_number(r[0]), _number(r[1])) for r in rows if len(r) == 2]
    memory = [m for m, _ in values if m is not None]
    busy = [u for _, u in values if u is not None]
    if not memory or not busy:
        return None
    return sum(memory), sum(busy) / len(busy)


def describe() -> dict[str, Any]:
    """The host's facts as a bench record keeps them."""
    return {
        "cpu_model": cpu_model(),
        "cpus": cpus(),
        "gpus": gpus(),
        "system": f"{platform.system()} {platform.release()}",
        "hostname": platform.node(),
    }
