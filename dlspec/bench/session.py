"""A bench session: compile each spec for each runtime's target, run every job in turn (a failure
is recorded and the rest go on), append each record at once, then write the report and charts."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from dlspec.bench import chart, record, report
from dlspec.bench.progress import Plain
from dlspec.bench.runner import Job, Settings, asked, run_job
from dlspec.codegen.compile import compile_model
from dlspec.codegen.files import write_all
from dlspec.codegen.interface import INFERENCE, TRAINING
from dlspec.errors import SpecError
from dlspec.ir.model import Model
from dlspec.runtimes import RUNTIMES, runtime
from dlspec.verify.replicas import replica_refusal

JSONL, MARKDOWN, CHART, THREAD_CHART = "bench.jsonl", "bench.md", "bench.png", "bench_threads.png"
# the settings a resumed run may differ in: a run that ended ok under one deadline stands
RESUME_IGNORES = ("timeout",)


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
        scripts: dict[str, Optional[tuple[Path, str]]] = {}
        for name in runtimes:
            target = RUNTIMES[name].target
            if target not in scripts:
                scripts[target] = _compile(model, target, out, files)
            script = scripts[target]
            for copies in replicas:
                refusal = _refusal(model, name, script and script[0], copies)
                for count in threads:
                    for again in range(repeat):
                        run = Run(spec, model, kind, name, count, again, copies)
                        if refusal:
                            unsupported.append(_unsupported(run, refusal))
                            continue
                        folder = out / "runs" / _run_name(model.name, name, count, again, copies)
                        assert script is not None
                        path, digest = script
                        job = Job(spec, model.name, kind, name, path, count, again, folder, copies)
                        jobs.append(dataclasses.replace(job, script_sha256=digest))
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


def _compile(model: Model, target: str, out: Path, files: list) -> Optional[tuple[Path, str]]:
    """Where the target's script will be written and the SHA-256 of its text, or None when the
    target cannot express it."""
    try:
        compiled = compile_model(model, target)
    except SpecError:
        return None
    path = out / "scripts" / target / compiled.filename
    files.append((path, compiled.source))
    return path.resolve(), hashlib.sha256(compiled.source.encode("utf-8")).hexdigest()


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


def run_identity(run: dict[str, Any]) -> str:
    """What makes two runs one run for --resume: the fields `asked` gives (the script's digest
    and the host among them), the settings but those in RESUME_IGNORES; a record without a
    field (older records have no script digest) matches no job."""
    settings = {k: v for k, v in (run.get("settings") or {}).items() if k not in RESUME_IGNORES}
    fields = {name: run.get(name) for name in RUN_FIELDS}
    return json.dumps({**fields, "settings": settings}, sort_keys=True)


def last_of_each_run(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The records but those of a run (run_identity) recorded again later in the list, in their
    order, and how many were left out: a run --resume ran again (a timeout, then an ok rerun)
    counts once, as its last record, as --resume itself takes it."""
    identities = [run_identity(r) for r in records]
    last = {identity: index for index, identity in enumerate(identities)}
    kept = [r for index, r in enumerate(records) if last[identities[index]] == index]
    return kept, len(records) - len(kept)


RUN_KEY = ("spec", "model", "runtime", "repeat", "replicas")
RUN_FIELDS = (*RUN_KEY, "script_sha256", "host")


@dataclass(frozen=True)
class Resumed:
    """What --resume found: the jobs left to run, the records of the others, and, for each
    field, how many of the jobs left had an ok record of the same run that differs in it."""

    left: Planned
    kept: list[dict[str, Any]]
    differing: Counter[str]


def resume(planned: Planned, settings: Settings, facts: dict[str, Any], jsonl: Path) -> Resumed:
    """--resume: the planned jobs JSONL holds no ok record of, and the records of the others
    (the last of each run); a missing JSONL holds none."""
    ok = [r for r in record.load(jsonl) if r.get("status") == record.OK] if jsonl.exists() else []
    done = {run_identity(r): r for r in ok}
    same_run = {_run_key(r): r for r in ok}
    jobs, kept, differing = [], [], Counter[str]()
    for job in planned.jobs:
        wanted = asked(job, settings, facts)
        found = done.get(run_identity(wanted))
        if found is not None:
            kept.append(found)
            continue
        jobs.append(job)
        if _run_key(wanted) in same_run:
            differing.update(_differences(wanted, same_run[_run_key(wanted)]))
    return Resumed(Planned(jobs, planned.unsupported), kept, differing)


def _run_key(run: dict[str, Any]) -> str:
    """A run as asked for, whatever its script, settings (but threads) and host."""
    threads = (run.get("settings") or {}).get("threads")
    return json.dumps([run.get(name) for name in RUN_KEY] + [threads])


def _differences(wanted: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """The fields an ok record of the same run differs in from the job: script, host, or the
    settings' names (RESUME_IGNORES aside)."""
    names = [n for n in ("script_sha256", "host") if wanted.get(n) != got.get(n)]
    mine, theirs = wanted["settings"], got.get("settings") or {}
    return names + [
        name
        for name in sorted(set(mine) | set(theirs))
        if name not in RESUME_IGNORES and mine.get(name) != theirs.get(name)
    ]


def run(
    planned: Planned, settings: Settings, out: Path, shown: Plain, facts: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run every job, appending each record to OUT/bench.jsonl as soon as it exists; `facts`:
    host.describe()."""
    out.mkdir(parents=True, exist_ok=True)
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
