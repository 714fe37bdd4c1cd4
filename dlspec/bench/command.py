"""`dlspec bench` on the command line: its arguments, the runs' settings from them, and the
command (a session, a resumed one, or the report of a JSONL)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from dlspec.backends import TARGETS
from dlspec.cliargs import (
    EXIT_FAILED,
    EXIT_OK,
    build_spec,
    non_negative,
    positive,
    target_list,
    thread_counts,
    with_defaults,
)
from dlspec.errors import UsageError, display_path

if TYPE_CHECKING:  # bench's modules load only for `dlspec bench`
    from dlspec.bench.runner import Settings
    from dlspec.bench.session import Planned, Resumed


DEFAULT_BENCH_OUT = "out/bench"
QUICK = {
    "epochs": 1,
    "max_steps": 12,
    "warmup": 3,
    "timeout": 300,
    "threads": [1],
}  # --quick: see docs/benchmarking.md


def bench_threads(args: argparse.Namespace) -> list[Optional[int]]:
    """The thread counts to run: --threads, else one thread under --quick (a busy sibling core
    stalls OpenMP's barriers: measured 29x slower for PyTorch's two threads), else untouched."""
    if args.threads:
        return list(args.threads)
    return list(QUICK["threads"]) if args.quick else [None]


def _bench_settings(args: argparse.Namespace) -> Settings:
    """The runs' settings from the flags; --quick fills what was not given."""
    if args.quick and args.data != "synthetic":
        raise UsageError("--quick runs on synthetic data; drop --data or --quick")
    if args.data != "synthetic" and not Path(args.data).exists():
        raise UsageError(f"--data {display_path(args.data)}: no such file or folder")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {display_path(args.out)} exists and is not a directory")
    quick = QUICK if args.quick else {}
    from dlspec.bench.runner import Settings

    return Settings(
        device=args.device,
        epochs=args.epochs if args.epochs is not None else quick.get("epochs"),
        warmup=args.warmup if args.warmup is not None else quick.get("warmup", 5),
        max_steps=args.max_steps if args.max_steps is not None else quick.get("max_steps", 0),
        data=str(Path(args.data).resolve()) if args.data != "synthetic" else "synthetic",
        timeout=float(args.timeout or quick.get("timeout", 1800)),
        quick=args.quick,
    )


def _bench_specs(args: argparse.Namespace) -> list[str]:
    """The specs named, else the default suite (the seed benchmarks in a checkout's examples/)."""
    if args.specs:
        return list(args.specs)
    from dlspec.bench.suite import DEFAULT_SUITE, default_specs

    specs = default_specs()
    if not specs:
        names = ", ".join(f"{n}.dl" for n in DEFAULT_SUITE)
        raise UsageError(
            f"no SPEC given and no examples/ folder holding the default suite ({names})"
        )
    return specs


def cmd_bench(args: argparse.Namespace) -> int:
    """Run every spec's script in every runtime asked for; record, report and chart the runs
    (--report: only the report and charts of the records a JSONL file holds)."""
    from dlspec import runtimes
    from dlspec.bench import host, progress, session

    if args.report:
        return _bench_report(args)
    args.out = args.out or DEFAULT_BENCH_OUT
    settings = _bench_settings(args)
    known = runtimes.target_and_runtime_names(list(TARGETS))
    names = runtimes.expand(
        target_list(args.targets, known) if args.targets != "all" else list(TARGETS)
    )
    specs = [(spec, build_spec(spec, args).model) for spec in _bench_specs(args)]
    out = Path(args.out)
    replicas = list(args.replicas or [1])
    planned = session.plan(specs, names, bench_threads(args), args.repeat, out, replicas)
    facts = host.describe()
    kept: list[dict] = []
    if args.resume:
        planned, kept = _resumed(planned, settings, facts, out, args.quiet)
    shown = progress.display(len(planned.jobs), quiet=args.quiet)
    records = kept + session.run(planned, settings, out, shown, facts)
    reused = f" ({len(kept)} from before, --resume)" if kept else ""
    return _bench_written(records, out, [out / session.JSONL], f"recorded{reused}", args.quiet)


def _bench_written(
    records: list[dict[str, Any]], out: Path, jsonl: list[Path], said: str, quiet: bool
) -> int:
    """Write OUT's report and charts of `records`, print the report (--quiet: only when a run
    was not ok) and where it went; exit 1 when a run was not ok."""
    from dlspec.bench import session

    written = session.write_reports(records, out)
    ok = all(r["status"] == "ok" for r in records)
    if not (quiet and ok):
        sys.stdout.write((out / session.MARKDOWN).read_text(encoding="utf-8"))
    if not quiet:
        where = ", ".join(display_path(str(p)) for p in written)
        files = ", ".join(display_path(str(p)) for p in jsonl)
        print(f"bench: {len(records)} run(s) {said} in {files}; wrote {where}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def _bench_report(args: argparse.Namespace) -> int:
    """--report JSONL (once or more): the report and charts of the runs the files hold (the last
    record of a run a file holds twice, as --resume appends a rerun), in
    --out (by default the folder of the one file; several files need --out, so that no
    session's own report is overwritten by the combined one); nothing runs."""
    from dlspec.bench import record, session

    if args.specs or args.resume:
        raise UsageError("--report runs nothing: drop the SPEC(s) and --resume")
    files = [Path(name) for name in args.report]
    resolved = [f.resolve() for f in files]
    twice = next((f for f, r in zip(files, resolved, strict=True) if resolved.count(r) > 1), None)
    if twice is not None:
        raise UsageError(f"--report {display_path(str(twice))} is named twice")
    records, replaced = [], 0
    for jsonl in files:
        if not jsonl.is_file():
            raise UsageError(f"--report {display_path(str(jsonl))}: no such file")
        try:
            last, earlier = session.last_of_each_run(record.load_runs(jsonl))
        except ValueError as err:
            raise UsageError(f"--report: {err}") from None
        records, replaced = records + last, replaced + earlier
    if len(files) > 1 and not args.out:
        raise UsageError("--report of several files: name the folder of their report with --out")
    out = Path(args.out) if args.out else files[0].parent
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {display_path(str(out))} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    said = (
        f"reported ({replaced} earlier record(s) of runs recorded again left out)"
        if replaced
        else "reported"
    )
    return _bench_written(records, out, files, said, args.quiet)


def _resumed(
    planned: Planned,
    settings: Settings,
    facts: dict[str, Any],
    out: Path,
    quiet: bool,
) -> tuple[Planned, list[dict[str, Any]]]:
    """--resume: the jobs left to run and the records of those OUT/bench.jsonl holds, said."""
    from dlspec.bench import session

    jsonl = out / session.JSONL
    try:
        found = session.resume(planned, settings, facts, jsonl)
    except ValueError as err:
        raise UsageError(f"--resume: {err} (mend or delete that line)") from None
    if not quiet:
        print(
            f"bench: --resume: {len(found.kept)} of {len(planned.jobs)} run(s) already ok in "
            f"{display_path(str(jsonl))}; running {len(found.left.jobs)}{_differing(found)}",
            file=sys.stderr,
        )
    return found.left, found.kept


def _differing(found: Resumed) -> str:
    """Why runs recorded ok before run again: each differing field and how many runs it held."""
    if not found.differing:
        return ""
    named = ", ".join(f"{name} ({count})" for name, count in sorted(found.differing.items()))
    return f" (ok before, but their records differ in: {named})"


def add_bench(sub: argparse._SubParsersAction) -> None:
    """`dlspec bench`: its arguments and the function that runs it."""
    p = sub.add_parser("bench", help="time the scripts in their runtimes; table, chart, JSONL")
    p.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help=".dl spec file(s); none: the default suite, the seed benchmarks in examples/",
    )
    with_defaults(p)
    p.add_argument(
        "--targets", default="all", help="comma list of targets or runtimes (keras[jax]), or all"
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="every script's --device (auto: a GPU when the framework sees one)",
    )
    p.add_argument("--epochs", type=positive, help="epochs per run (default: the spec's)")
    p.add_argument(
        "--threads", type=thread_counts, metavar="N,N,...", help="CPU thread counts to run each at"
    )
    p.add_argument(
        "--replicas",
        type=thread_counts,
        metavar="N,N,...",
        help="data-parallel replica counts to run each training script at, on this host "
        "(default 1; a target without a launcher is reported unsupported above 1)",
    )
    p.add_argument("--repeat", type=positive, default=1, help="runs of each (the median counts)")
    p.add_argument("--warmup", type=non_negative, help="steps left out of the timing (default 5)")
    p.add_argument(
        "--max-steps", type=non_negative, help="stop each run after this many steps (0: none)"
    )
    p.add_argument(
        "--data", default="synthetic", help="the spec's dataset folder (default synthetic)"
    )
    p.add_argument(
        "--out",
        help=f"folder of the JSONL, report and charts (default {DEFAULT_BENCH_OUT}; with "
        "--report: the JSONL's folder, and needed with several)",
    )
    p.add_argument("--timeout", type=positive, help="seconds before a run is killed (default 1800)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="synthetic data, 1 epoch cut at 12 steps (3 of them warm-up), one thread each, "
        "300 s timeout",
    )
    p.add_argument(
        "--report",
        metavar="JSONL",
        action="append",
        help="run nothing: write the report and charts of every record in JSONL (a bench.jsonl; "
        "repeat it to report several sessions together, each host and settings a setup of its own)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip the runs OUT/bench.jsonl holds as ok (same script, settings and host); the "
        "report holds them too",
    )
    p.set_defaults(func=cmd_bench)
