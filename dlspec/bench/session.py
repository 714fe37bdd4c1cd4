"""A bench session: compile each spec for each runtime's target, run every job in turn (a failure
is recorded and the rest go on), append each record at once, then write the report and charts."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from dlspec.bench import chart, host, record, report
from dlspec.bench.progress import Plain
from dlspec.bench.runner import Job, Settings, run_job
from dlspec.codegen.compile import compile_model
from dlspec.codegen.files import write_all
from dlspec.codegen.interface import INFERENCE, TRAINING
from dlspec.errors import SpecError
from dlspec.ir.model import Model
from dlspec.runtimes import RUNTIMES, runtime
from dlspec.verify.replicas import replica_refusal

JSONL, MARKDOWN, CHART, THREAD_CHART = "bench.jsonl", "bench.md", "bench.png", "bench_threads.png"


@dataclass(frozen=True)
class Planned:
    """The jobs to run, and the records of those that cannot run (the target cannot express the
    spec), already made."""

    jobs: list[Job]
    unsupported: list[dict[str, Any]]


def plan(
    specs: Sequence[tuple[str, Model]],
    runtimes: Sequence[str],
    threads: Sequence[Optional[int]],
    repeat: int,
    out: Path,
    replicas: Sequence[int] = (1,),
) -> Planned:
    """Compile every spec for every runtime's target into OUT/scripts/; one job per spec,
    runtime, replica count, thread count and repeat, in that order."""
    jobs, unsupported, files = [], [], []
    for spec, model in specs:
        kind = INFERENCE if model.inference else TRAINING
        scripts: dict[str, Optional[Path]] = {}
        for name in runtimes:
            target = RUNTIMES[name].target
            if target not in scripts:
                scripts[target] = _compile(model, target, out, files)
            script = scripts[target]
            for copies in replicas:
                refusal = _refusal(model, name, script, copies)
                for count in threads:
                    for again in range(repeat):
                        run = Run(spec, model, kind, name, count, again, copies)
                        if refusal:
                            unsupported.append(_unsupported(run, refusal))
                            continue
                        folder = out / "runs" / _run_name(model.name, name, count, again, copies)
                        assert script is not None
                        jobs.append(
                            Job(spec, model.name, kind, name, script, count, again, folder, copies)
                        )
    write_all(files)
    return Planned(jobs, unsupported)


def _refusal(model: Model, name: str, script: Optional[Path], replicas: int) -> str:
    """Why the job cannot run ("" when it can): the target cannot express the spec, or the
    runtime has no data-parallel launcher, or an inference script was asked for replicas."""
    target = RUNTIMES[name].target
    if script is None:
        return f"{target} cannot express this spec (dlspec compile says why)"
    if replicas == 1:
        return ""
    if model.inference:
        return f"an inference script runs as one process, not {replicas} replicas"
    return replica_refusal(runtime(name))


def _compile(model: Model, target: str, out: Path, files: list) -> Optional[Path]:
    """Where the target's script will be written, or None when the target cannot express it."""
    try:
        compiled = compile_model(model, target)
    except SpecError:
        return None
    path = out / "scripts" / target / compiled.filename
    files.append((path, compiled.source))
    return path.resolve()


def _run_name(model: str, runtime: str, threads: Optional[int], repeat: int, replicas: int) -> str:
    name = f"{model}-{runtime.replace('[', '-').replace(']', '')}"
    name += f"-x{replicas}" if replicas > 1 else ""
    return name + ("" if threads is None else f"-t{threads}") + (f"-r{repeat}" if repeat else "")


@dataclass(frozen=True)
class Run:
    """What a job that cannot run was asked for."""

    spec: str
    model: Model
    kind: str
    runtime: str
    threads: Optional[int]
    repeat: int
    replicas: int


def _unsupported(run: Run, error: str) -> dict[str, Any]:
    return {
        "record_version": record.RECORD_VERSION,
        "started": _now(),
        "spec": run.spec,
        "model": run.model.name,
        "kind": run.kind,
        "runtime": run.runtime,
        "target": RUNTIMES[run.runtime].target,
        "repeat": run.repeat,
        "replicas": run.replicas,
        "status": record.UNSUPPORTED,
        "error": error,
        "settings": {"threads": run.threads},
        "wall_seconds": None,
        "peak_rss_mb": None,
        "gpu": None,
        "stderr_tail": [],
        **dict.fromkeys(record.measurements({}, 0.0)),
        "versions": {},
        "switches": {},
        "results": None,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run(planned: Planned, settings: Settings, out: Path, shown: Plain) -> list[dict[str, Any]]:
    """Run every job, appending each record to OUT/bench.jsonl as soon as it exists."""
    out.mkdir(parents=True, exist_ok=True)
    facts = host.describe()
    records = []
    for item in planned.unsupported:
        item["settings"] = {**_settings(settings), **item["settings"]}
        item["host"] = facts
        record.append(out / JSONL, item)
        records.append(item)
    with shown:
        for job in planned.jobs:
            shown.start(job)
            done = run_job(job, settings, facts)
            record.append(out / JSONL, done)
            records.append(done)
            shown.finish(job, done)
    return records


def _settings(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def write_reports(records: list[dict[str, Any]], out: Path) -> list[Path]:
    """OUT/bench.md and OUT/bench.png, and OUT/bench_threads.png when runs used two thread
    counts or more; the paths written."""
    groups = report.group(records)
    written = [out / MARKDOWN, out / CHART]
    (out / MARKDOWN).write_text(report.report(records), encoding="utf-8")
    chart.bar_chart(groups, out / CHART)
    if any(report.thread_table(rows) for rows in groups.values()):
        chart.thread_chart(groups, out / THREAD_CHART)
        written.append(out / THREAD_CHART)
    return written
