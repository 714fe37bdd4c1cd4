"""One bench run as a JSON record: what was asked, how it ended, the measurements; JSONL I/O."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any, Optional

RECORD_VERSION = 1
OK, FAILED, TIMEOUT, INVALID = "ok", "failed", "timeout", "invalid"
UNAVAILABLE, UNSUPPORTED = "unavailable", "unsupported"
STATUSES = (OK, FAILED, TIMEOUT, INVALID, UNAVAILABLE, UNSUPPORTED)
STDERR_LINES = 20


def steady_epoch(results: dict[str, Any], max_steps: int = 0) -> tuple[Optional[float], str]:
    """(seconds of one whole epoch without warm-up, how it was found): the mean of the whole
    epochs after the first (which holds the warm-up steps and compilation); else the first
    epoch's samples at the rate of its timed steps when it is the only one and whole; None for
    inference, untimed runs, and runs whose only epochs were the first or cut by --max-steps."""
    seconds = list(results.get("epoch_seconds") or [])
    if max_steps and results.get("steps", 0) >= max_steps and seconds:
        seconds.pop()  # the last epoch ended at --max-steps: not a whole one
        if not seconds:
            return None, "no whole epoch (--max-steps)"
    if len(seconds) >= 2:
        return statistics.fmean(seconds[1:]), "mean of the epochs after the first"
    rate = results.get("samples_per_second")
    if len(seconds) == 1 and rate:
        return results["steps"] * results["batch_size"] / rate, "first epoch at its timed rate"
    return None, "not timed"


def measurements(
    results: dict[str, Any], wall_seconds: float, max_steps: int = 0
) -> dict[str, Any]:
    """The figures bench reports, from a valid results JSON, the run's wall time and the
    --max-steps it ran with."""
    epoch, method = steady_epoch(results, max_steps)
    epochs = results.get("epoch_seconds") or []
    first = epochs[0] if epochs else None
    return {
        "seconds_per_epoch": epoch,
        "seconds_per_epoch_method": method,
        "first_epoch_seconds": first,
        "warmup_seconds": warmup_seconds(results),
        # start-up, data preparation, evaluation: the run's wall time outside its epochs
        "outside_epochs_seconds": wall_seconds - sum(epochs) if epochs else None,
        "samples_per_second": results.get("samples_per_second"),
        "samples_per_second_per_replica": results.get("samples_per_second_per_replica"),
        "seconds_per_1000_samples": results.get("seconds_per_1000_samples"),
        "final_loss": results.get("final_loss"),
        "test_accuracy": results.get("test_accuracy"),
    }


def warmup_seconds(results: dict[str, Any]) -> Optional[float]:
    """The epochs' time beyond all their steps at the timed rate: what the warm-up steps cost
    over steady ones (tracing, compilation, autotuning); None without a timed rate."""
    seconds = results.get("epoch_seconds") or []
    rate = results.get("samples_per_second")
    if not seconds or not rate:
        return None
    return sum(seconds) - results["steps"] * results["batch_size"] / rate


def timed_window(results: Optional[dict[str, Any]]) -> Optional[tuple[float, float]]:
    """The timed steps' wall-clock span (Unix seconds) from a script's results, if it says."""
    if not results or results.get("timed_until") is None or not results.get("timed_seconds"):
        return None
    end = float(results["timed_until"])
    return end - float(results["timed_seconds"]), end


def gpu_summary(
    samples: list[tuple[float, float, float]],
    baseline: Optional[float],
    window: Optional[tuple[float, float]] = None,
) -> Optional[dict]:
    """Peak GPU memory in MB (above the memory in use before the run), the mean utilisation
    over the child's life and over the samples taken in the timed steps' window."""
    if not samples:
        return None
    timed = [u for t, _, u in samples if window and window[0] <= t <= window[1]]
    return {
        "peak_memory_mb": max(m for _, m, _ in samples) - (baseline or 0.0),
        "mean_utilization_percent": statistics.fmean(u for _, _, u in samples),
        "samples": len(samples),
        "timed_mean_utilization_percent": statistics.fmean(timed) if timed else None,
        "timed_samples": len(timed),
    }


def stderr_tail(text: str, lines: int = STDERR_LINES) -> list[str]:
    """The last non-empty lines of a child's stderr."""
    return [line for line in text.splitlines() if line.strip()][-lines:]


def append(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, flushed and synced before returning: a later crash
    loses nothing already run."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def load(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file (blank lines skipped); a line that is not a JSON object is
    a ValueError naming its line number."""
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON: {err}") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            records.append(record)
    return records


# the fields the report reads from every record
REPORTED_FIELDS = ("spec", "kind", "runtime", "status", "settings", "host", "versions")


def load_runs(path: Path) -> list[dict[str, Any]]:
    """The bench records of a JSONL file, for a report: a ValueError names a line that is not a
    bench record (a missing field), or the file when it holds none."""
    records = load(path)
    for number, found in enumerate(records, 1):
        missing = [name for name in REPORTED_FIELDS if name not in found]
        if missing:
            raise ValueError(
                f"{path}: record {number} is not a bench record (no {', '.join(missing)})"
            )
    if not records:
        raise ValueError(f"{path}: holds no records")
    return records
