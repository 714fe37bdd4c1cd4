"""The `dlspec` command line: compile, fmt, summary, targets, check, verify, bench, doctor, weights,
completion."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from dlspec import __version__
from dlspec.backends import TARGETS
from dlspec.codegen.compile import Compiled, compile_model
from dlspec.codegen.files import stale_diff, write_all, write_bytes_atomic
from dlspec.codegen.format_cache import default_directory
from dlspec.codegen.render import use_format_cache
from dlspec.console import color_enabled, diff_text, print_table, problems_text
from dlspec.errors import DlspecError, SpecError, UsageError, display_path
from dlspec.frontend.load import Built, build_file
from dlspec.ir.attrs import PROFILES
from dlspec.summary import summary_json, summary_markdown, summary_rows, summary_text, totals
from dlspec.support import support_table

if TYPE_CHECKING:  # bench's modules load only for `dlspec bench`
    from dlspec.bench.runner import Settings
    from dlspec.bench.session import Planned, Resumed
    from dlspec.verify.run import Check

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_BENCH_OUT = "out/bench"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _targets(name: str, known: Sequence[str] = tuple(TARGETS)) -> list[str]:
    """The names in a comma list (or every target for `all`); an unknown name or an empty list
    is a usage error."""
    if name == "all":
        return list(TARGETS)
    names = [n.strip() for n in name.split(",") if n.strip()]
    if not names:
        raise UsageError(f"no target named in {name!r} (known: {', '.join(known)}, all)")
    for n in names:
        if n not in known:
            from dlspec.runtimes import PENDING  # the runtime table: only for this message

            if n in PENDING:
                raise UsageError(
                    f"target {n!r} has a runtime (see `dlspec doctor`) but no emitter yet"
                )
            raise UsageError(f"unknown target {n!r} (known: {', '.join(known)}, all)")
    return names


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _non_negative(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def _build(path: str, args: argparse.Namespace) -> Built:
    """The spec built under --defaults, its lint warnings printed (with --strict: an error)."""
    if not _is_file(path):
        raise UsageError(f"no such spec file: {display_path(path)}")
    built = build_file(path, args.defaults)
    if built.warnings:
        text = built.model.source.text
        color = color_enabled(sys.stderr)
        print(problems_text(list(built.warnings), path, text, color), file=sys.stderr)
        if args.strict:
            count = len(built.warnings)
            raise DlspecError(
                f"{display_path(path)}: {count} lint warning{'s' if count > 1 else ''} (--strict)"
            )
    return built


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _check_destinations(args: argparse.Namespace) -> None:
    """Usage errors for -o and --out-dir found before anything is compiled."""
    if args.output and args.out_dir:
        raise UsageError("give -o FILE or --out-dir DIR, not both")
    if args.output and Path(args.output).is_dir():
        raise UsageError(f"-o {display_path(args.output)} is a directory; give a file name")
    if args.out_dir and Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
        raise UsageError(f"--out-dir {display_path(args.out_dir)} exists and is not a directory")


def _destination(args: argparse.Namespace, compiled: Compiled) -> Optional[Path]:
    if args.output:
        return Path(args.output)
    if args.out_dir:
        return Path(args.out_dir) / compiled.target / compiled.filename
    return None


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile every spec for every requested target; write nothing unless all succeed."""
    _check_destinations(args)
    targets = _targets(args.target)
    if args.output and len(args.specs) * len(targets) != 1:
        raise UsageError("-o FILE takes exactly one spec and one target; use --out-dir")
    results: list[Compiled] = []
    for spec in args.specs:
        built = _build(spec, args)
        for target in targets:
            results.append(compile_model(built.model, target))
    files = []
    for compiled in results:
        if args.report:
            print(compiled.report, file=sys.stderr)
        path = _destination(args, compiled)
        if path is None:
            sys.stdout.write(compiled.source)
        else:
            files.append((path, compiled.source))
    _write(files)
    return EXIT_OK


def _write(files: list[tuple[Path, str]]) -> None:
    """All files or none; an OS error (a read-only folder, a name too long) is a clear error."""
    try:
        write_all(files)
    except OSError as err:
        where = display_path(err.filename) if isinstance(err.filename, str) else "output"
        raise DlspecError(f"cannot write {where}: {err.strerror or err}") from None


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 1 with a diff when a committed generated file differs from what dlspec generates now."""
    stale = 0
    for spec in args.specs:
        built = _build(spec, args)
        for target in _targets(args.target):
            compiled = compile_model(built.model, target)
            path = Path(args.out_dir) / compiled.target / compiled.filename
            diff = stale_diff(path, compiled.source)
            if diff:
                stale += 1
                sys.stdout.write(diff)
    if stale:
        print(
            f"{stale} generated file(s) are stale or were edited by hand; regenerate with:\n"
            f"  dlspec compile {' '.join(map(display_path, args.specs))} --target {args.target}"
            f" --out-dir {display_path(args.out_dir)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not args.quiet:
        print(f"generated files in {display_path(args.out_dir)} are up to date", file=sys.stderr)
    return EXIT_OK


def _fmt_diff(spec: str, text: str, formatted: str) -> None:
    """Print the unified diff from a spec to its canonical layout (coloured on a terminal)."""
    import difflib

    name = display_path(spec)
    diff = difflib.unified_diff(
        text.splitlines(keepends=True),
        formatted.splitlines(keepends=True),
        f"{name} (original)",
        f"{name} (formatted)",
    )
    sys.stdout.write(diff_text("".join(diff), color_enabled(sys.stdout)))


def _fmt_rewrite(spec: str, formatted: str, quiet: bool) -> None:
    """Replace a spec by its canonical layout at once, keeping its permission bits."""
    import os

    path = Path(spec)
    mode = path.stat().st_mode & 0o7777
    write_bytes_atomic(path, formatted.encode("utf-8"))
    os.chmod(path, mode)
    if not quiet:
        print(f"reformatted {display_path(spec)}", file=sys.stderr)


def cmd_fmt(args: argparse.Namespace) -> int:
    """Lay out specs canonically: rewrite them in place, or (--check, --diff) only report."""
    from dlspec.frontend.fmt import format_source
    from dlspec.frontend.load import read_spec

    failed = changed = 0
    for spec in args.specs:
        if not _is_file(spec):
            raise UsageError(f"no such spec file: {display_path(spec)}")
        try:
            text = read_spec(spec)
            formatted = format_source(text, spec)
        except SpecError as err:
            print(_spec_error(err), file=sys.stderr)
            failed += 1
            continue
        if formatted == text:
            continue
        changed += 1
        if args.diff:
            _fmt_diff(spec, text, formatted)
        if args.check:
            print(f"would reformat {display_path(spec)}", file=sys.stderr)
        elif not args.diff:
            _fmt_rewrite(spec, formatted, args.quiet)
    if failed:
        return EXIT_FAILED
    if args.check and changed:
        print(f"{changed} spec(s) would be reformatted", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the per-layer table for each spec: text (a rich table on a terminal), a GitHub
    Markdown table, or one JSON document for them all."""
    if args.format == "json":
        models = [(display_path(s), _build(s, args).model) for s in args.specs]
        print(summary_json(models))
        return EXIT_OK
    for spec in args.specs:
        model = _build(spec, args).model
        if args.format == "markdown":
            print(summary_markdown(model))
        elif color_enabled(sys.stdout):
            head = ("layer", "op", "output shape", "parameters")
            print_table(sys.stdout, head, summary_rows(model), right=(3,), caption=totals(model))
        else:
            print(summary_text(model))
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the spec's network: DOT text, or SVG / PNG through graphviz's dot."""
    from dlspec import graph

    if Path(args.output).is_dir():
        raise UsageError(f"-o {display_path(args.output)} is a directory; give a file name")
    fmt = graph.format_of(args.output, args.format)
    model = _build(args.spec, args).model
    _write_bytes(Path(args.output), graph.graph_bytes(model, fmt, args.rankdir))
    Path(args.output).chmod(graph.file_mode())
    if not args.quiet:
        print(f"wrote {display_path(args.output)} ({fmt})", file=sys.stderr)
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    """List registered targets, or print the layer x target support table."""
    if args.table:
        print(support_table())
        return EXIT_OK
    for name, cls in TARGETS.items():
        print(f"{name}\t{cls.framework}")
    return EXIT_OK


def _verify_runtimes(spec: str, replicas: int = 1) -> tuple[list[str], list[str]]:
    """(runtimes to run, skip messages): unavailable runtimes are skipped only when not named;
    with replicas, so are those that cannot run data-parallel (_replica_runtimes)."""
    from dlspec import runtimes  # imported here: compile and check need no NumPy

    known = runtimes.target_and_runtime_names(list(TARGETS))
    names = runtimes.expand(_targets(spec, known) if spec != "all" else list(TARGETS))
    names, skipped = _replica_runtimes(names, spec, replicas) if replicas > 1 else (names, [])
    run = []
    for name in names:
        ok, info = runtimes.probe(runtimes.runtime(name))
        if ok:
            run.append(name)
        elif spec == "all":
            skipped.append(f"{name}: skipped, its runtime is not available ({info})")
        else:
            raise DlspecError(f"runtime {name} is not available: {info} (see `dlspec doctor`)")
    return run, skipped


def _replica_runtimes(names: list[str], spec: str, replicas: int) -> tuple[list[str], list[str]]:
    """(runtimes that run data-parallel, skip messages): a runtime that cannot is skipped,
    saying so, where it came with `all` or its target's name (keras: three runtimes); a runtime
    named itself (keras[torch]) is a usage error."""
    from dlspec.runtimes import runtime
    from dlspec.verify.replicas import replica_refusal

    refusals = {name: replica_refusal(runtime(name)) for name in names}
    run = [name for name in names if not refusals[name]]
    others = [f"{name}: {refusals[name]}" for name in names if refusals[name]]
    named = {part.strip() for part in spec.split(",")}
    refused = [f"{name}: {refusals[name]}" for name in names if refusals[name] and name in named]
    if refused:
        raise UsageError(f"--replicas {replicas}: {'; '.join(refused)}")
    if not run:
        raise UsageError(f"--replicas {replicas}: no runtime to run ({'; '.join(others)})")
    return run, [f"skipped, --replicas {replicas}: {other}" for other in others]


def cmd_verify(args: argparse.Namespace) -> int:
    """Run every target on the same weights and batches; compare with the oracle and each other
    (with --replicas N: each as one process and as N data-parallel replicas)."""
    from dlspec.verify import parallel
    from dlspec.verify import run as verify

    if args.json and Path(args.json).is_dir():
        raise UsageError(f"--json {display_path(args.json)} is a directory; give a file name")
    names, skipped = _verify_runtimes(args.targets, args.replicas)
    for line in skipped if not args.quiet else []:
        print(line, file=sys.stderr)
    checks = []
    for spec in args.specs:
        model = _build(spec, args).model
        if args.replicas > 1:
            checks += parallel.verify_replicas(
                model, names, args.replicas, args.steps, precision=args.precision
            )
        else:
            checks += verify.verify_model(model, names, args.steps, precision=args.precision)
    passed = bool(checks) and all(c.passed for c in checks)
    if not (args.quiet and passed):  # --quiet: the matrix only when a check failed
        _print_matrix(checks)
    if args.json:
        _write([(Path(args.json), verify.to_json(checks) + "\n")])
    return EXIT_OK if passed else EXIT_FAILED


def _print_matrix(checks: list[Check]) -> None:
    """verify's matrix: a coloured table on a terminal, the plain one otherwise."""
    from dlspec.console import verify_table
    from dlspec.verify import run as verify

    if color_enabled(sys.stdout):
        verify_table(checks, sys.stdout)
    else:
        print(verify.matrix(checks))


QUICK = {
    "epochs": 1,
    "max_steps": 12,
    "warmup": 3,
    "timeout": 300,
    "threads": [1],
}  # --quick: see docs/benchmarking.md


def _thread_counts(text: str) -> list[int]:
    """An argparse type: a comma list of counts >= 1 (threads, replicas), each once, in the order given."""
    counts = []
    for word in text.split(","):
        try:
            count = _positive(word.strip())
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
        if count not in counts:
            counts.append(count)
    return counts


def _bench_threads(args: argparse.Namespace) -> list[Optional[int]]:
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
        _targets(args.targets, known) if args.targets != "all" else list(TARGETS)
    )
    specs = [(spec, _build(spec, args).model) for spec in _bench_specs(args)]
    out = Path(args.out)
    replicas = list(args.replicas or [1])
    planned = session.plan(specs, names, _bench_threads(args), args.repeat, out, replicas)
    facts = host.describe()
    kept: list[dict] = []
    if args.resume:
        planned, kept = _resumed(planned, settings, facts, out, args.quiet)
    shown = progress.display(len(planned.jobs), quiet=args.quiet)
    records = kept + session.run(planned, settings, out, shown, facts)
    reused = f" ({len(kept)} from before, --resume)" if kept else ""
    return _bench_written(records, out, out / session.JSONL, f"recorded{reused}", args.quiet)


def _bench_written(
    records: list[dict[str, Any]], out: Path, jsonl: Path, said: str, quiet: bool
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
        print(
            f"bench: {len(records)} run(s) {said} in {display_path(str(jsonl))}; wrote {where}",
            file=sys.stderr,
        )
    return EXIT_OK if ok else EXIT_FAILED


def _bench_report(args: argparse.Namespace) -> int:
    """--report JSONL: the report and charts of every record the file holds, beside it (or in
    --out); nothing runs."""
    from dlspec.bench import record

    if args.specs or args.resume:
        raise UsageError("--report runs nothing: drop the SPEC(s) and --resume")
    jsonl = Path(args.report)
    if not jsonl.is_file():
        raise UsageError(f"--report {display_path(args.report)}: no such file")
    try:
        records = record.load_runs(jsonl)
    except ValueError as err:
        raise UsageError(f"--report: {err}") from None
    out = Path(args.out) if args.out else jsonl.parent
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {display_path(str(out))} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return _bench_written(records, out, jsonl, "reported", args.quiet)


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


def cmd_weights_import(args: argparse.Namespace) -> int:
    """Convert a library model's weights (torchvision state_dict, Keras weights) into the spec's
    canonical npz; every missing, unexpected or mis-shaped tensor is an error, and then nothing
    is written."""
    import numpy as np

    from dlspec.weights import library as importer  # NumPy, and torch or h5py when reading

    library, source = args.source
    if library not in importer.LIBRARIES:
        raise UsageError(
            f"--from {library!r}: unknown library (known: {', '.join(importer.LIBRARIES)})"
        )
    if not _is_file(source):
        raise UsageError(f"no such weights file: {display_path(source)}")
    if Path(args.output).is_dir():
        raise UsageError(f"-o {display_path(args.output)} is a directory; give a file name")
    built = _build(args.spec, args)
    imported = importer.import_weights(built.model, importer.load_source(library, source))
    if args.show_map:
        print(imported.table())
    buffer = io.BytesIO()
    np.savez(buffer, **imported.weights)
    _write_bytes(Path(args.output), buffer.getvalue())
    if not args.quiet:
        print(
            imported.summary(f"{library} {display_path(source)}", display_path(args.output)),
            file=sys.stderr,
        )
    return EXIT_OK


def _write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file atomically (staged beside it, then renamed); an OS error is clear."""
    try:
        write_bytes_atomic(path, data)
    except OSError as err:
        where = display_path(err.filename) if isinstance(err.filename, str) else "output"
        raise DlspecError(f"cannot write {where}: {err.strerror or err}") from None


def cmd_doctor(args: argparse.Namespace) -> int:
    """Show every target's runtimes: interpreter, framework version, runnable, and what fixes a
    missing one (--json: as a document). Exit 0 whatever it finds: it is a report."""
    from dlspec import doctor

    if args.json:
        print(doctor.report_json())
    else:
        doctor.print_report(sys.stdout, quiet=args.quiet)
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the shell's completion script for dlspec (written by shtab from this parser)."""
    from dlspec.completion import script

    sys.stdout.write(script(make_parser(), args.shell))
    return EXIT_OK


def _with_specs(p: argparse.ArgumentParser) -> None:
    """The SPEC... arguments and --defaults, as the commands that build specs take them."""
    p.add_argument("specs", nargs="+", metavar="SPEC", help=".dl spec file(s)")
    _with_defaults(p)


def _with_defaults(p: argparse.ArgumentParser) -> None:
    """--defaults and --strict, as every command that builds a spec takes them."""
    p.add_argument("--defaults", choices=PROFILES, help="override the spec's defaults profile")
    p.add_argument(
        "--strict",
        action="store_true",
        help="lint warnings fail the command (exit 1, nothing written)",
    )


def _add_compile(sub: argparse._SubParsersAction) -> None:
    """`dlspec compile`: its arguments and the function that runs it."""
    p = sub.add_parser("compile", help="generate a script per target")
    _with_specs(p)
    p.add_argument("--target", "-t", default="pytorch", help="target name, a comma list, or all")
    p.add_argument("-o", "--output", help="write to FILE (one spec, one target)")
    p.add_argument("--out-dir", help="write DIR/<target>/<model>_<target>.py")
    p.add_argument("--report", action="store_true", help="print the normalisation report to stderr")
    p.set_defaults(func=cmd_compile)


def _add_check(sub: argparse._SubParsersAction) -> None:
    """`dlspec check`: its arguments and the function that runs it."""
    p = sub.add_parser("check", help="fail when committed generated files are stale")
    _with_specs(p)
    p.add_argument(
        "--target", "-t", default="all", help="target name, a comma list, or all (default)"
    )
    p.add_argument(
        "--out-dir", required=True, help="the committed DIR/<target>/<model>_<target>.py to compare"
    )
    p.set_defaults(func=cmd_check)


def _add_fmt(sub: argparse._SubParsersAction) -> None:
    """`dlspec fmt`: its arguments and the function that runs it."""
    p = sub.add_parser("fmt", help="lay out specs canonically (in place, or --check, --diff)")
    p.add_argument("specs", nargs="+", metavar="SPEC", help=".dl spec file(s)")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 naming the specs fmt would change; write nothing",
    )
    p.add_argument("--diff", action="store_true", help="print a unified diff; write nothing")
    p.set_defaults(func=cmd_fmt)


def _add_summary(sub: argparse._SubParsersAction) -> None:
    """`dlspec summary`: its arguments and the function that runs it."""
    p = sub.add_parser("summary", help="per-layer shapes and parameter counts")
    _with_specs(p)
    p.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default="table",
        help="a text table (default), JSON (schema dlspec.summary/1) or a GitHub Markdown table",
    )
    p.set_defaults(func=cmd_summary)


def _add_graph(sub: argparse._SubParsersAction) -> None:
    """`dlspec graph`: its arguments and the function that runs it."""
    p = sub.add_parser("graph", help="draw the network (graphviz): SVG, PNG or DOT")
    p.add_argument("spec", metavar="SPEC", help=".dl spec file")
    _with_defaults(p)
    p.add_argument("-o", "--output", required=True, help="FILE.svg, FILE.png or FILE.dot")
    p.add_argument(
        "--format", choices=("svg", "png", "dot"), help="default: from the output's suffix"
    )
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top-down or left-right")
    p.set_defaults(func=cmd_graph)


def _add_verify(sub: argparse._SubParsersAction) -> None:
    """`dlspec verify`: its arguments and the function that runs it."""
    p = sub.add_parser("verify", help="prove the targets compute the same model as the oracle")
    _with_specs(p)
    p.add_argument(
        "--targets", default="all", help="comma list of targets or runtimes (keras[jax]), or all"
    )
    p.add_argument(
        "--steps", type=_positive, default=5, help="training steps to compare (default 5)"
    )
    p.add_argument(
        "--precision",
        choices=("spec", "float32", "float64"),
        default="spec",
        help="the dtype of the training checks: the spec's (`verify = precision(...)`, float32 "
        "unless stated), or float64 (each script also runs in float64) or float32 for any spec",
    )
    p.add_argument(
        "--replicas",
        type=_positive,
        default=1,
        help="also run each script as N data-parallel replicas on this host (pytorch: torchrun; "
        "tensorflow, mxnet, cntk, keras[jax]: the script's --replicas N) "
        "and check they train the weights of one process and of the oracle",
    )
    p.add_argument("--json", help="also write the checks as JSON to this file")
    p.set_defaults(func=cmd_verify)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    """`dlspec bench`: its arguments and the function that runs it."""
    p = sub.add_parser("bench", help="time the scripts in their runtimes; table, chart, JSONL")
    p.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help=".dl spec file(s); none: the default suite, the seed benchmarks in examples/",
    )
    _with_defaults(p)
    p.add_argument(
        "--targets", default="all", help="comma list of targets or runtimes (keras[jax]), or all"
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="every script's --device (auto: a GPU when the framework sees one)",
    )
    p.add_argument("--epochs", type=_positive, help="epochs per run (default: the spec's)")
    p.add_argument(
        "--threads", type=_thread_counts, metavar="N,N,...", help="CPU thread counts to run each at"
    )
    p.add_argument(
        "--replicas",
        type=_thread_counts,
        metavar="N,N,...",
        help="data-parallel replica counts to run each training script at, on this host "
        "(default 1; a target without a launcher is reported unsupported above 1)",
    )
    p.add_argument("--repeat", type=_positive, default=1, help="runs of each (the median counts)")
    p.add_argument("--warmup", type=_non_negative, help="steps left out of the timing (default 5)")
    p.add_argument(
        "--max-steps", type=_non_negative, help="stop each run after this many steps (0: none)"
    )
    p.add_argument(
        "--data", default="synthetic", help="the spec's dataset folder (default synthetic)"
    )
    p.add_argument(
        "--out",
        help=f"folder of the JSONL, report and charts (default {DEFAULT_BENCH_OUT}; with "
        "--report: the JSONL's folder)",
    )
    p.add_argument(
        "--timeout", type=_positive, help="seconds before a run is killed (default 1800)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="synthetic data, 1 epoch cut at 12 steps (3 of them warm-up), one thread each, "
        "300 s timeout",
    )
    p.add_argument(
        "--report",
        metavar="JSONL",
        help="run nothing: write the report and charts of every record in JSONL (a bench.jsonl)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip the runs OUT/bench.jsonl holds as ok (same script, settings and host); the "
        "report holds them too",
    )
    p.set_defaults(func=cmd_bench)


def _add_weights(sub: argparse._SubParsersAction) -> None:
    """`dlspec weights`: its arguments and the function that runs it."""
    p = sub.add_parser("weights", help="canonical weights: import a library model's")
    weights = p.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    p = weights.add_parser(
        "import", help="convert torchvision or Keras weights into the spec's canonical npz"
    )
    p.add_argument("spec", metavar="SPEC", help=".dl spec file")
    p.add_argument(
        "--from",
        dest="source",
        nargs=2,
        required=True,
        metavar=("LIBRARY", "FILE"),
        help="torchvision STATE_DICT.pt, or keras FILE.weights.h5 | FILE.keras",
    )
    p.add_argument("-o", "--output", required=True, help="the npz to write")
    _with_defaults(p)
    p.add_argument(
        "--show-map", action="store_true", help="print which library layer fills which spec layer"
    )
    p.set_defaults(func=cmd_weights_import)


def _add_doctor(sub: argparse._SubParsersAction) -> None:
    """`dlspec doctor`: its arguments and the function that runs it."""
    p = sub.add_parser(
        "doctor", help="every target's runtimes: interpreter, version, runnable, and the fix"
    )
    p.add_argument("--json", action="store_true", help="print JSON (schema dlspec.doctor/1)")
    p.set_defaults(func=cmd_doctor)


def _add_targets(sub: argparse._SubParsersAction) -> None:
    """`dlspec targets`: its arguments and the function that runs it."""
    p = sub.add_parser("targets", help="list the registered targets")
    p.add_argument("--table", action="store_true", help="print the layer x target support table")
    p.set_defaults(func=cmd_targets)


def _add_completion(sub: argparse._SubParsersAction) -> None:
    """`dlspec completion`: its arguments and the function that runs it."""
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh, tcsh)")
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete for")
    p.set_defaults(func=cmd_completion)


COMMANDS = (
    _add_compile,
    _add_check,
    _add_fmt,
    _add_summary,
    _add_graph,
    _add_verify,
    _add_bench,
    _add_weights,
    _add_doctor,
    _add_targets,
    _add_completion,
)


def make_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the CLI in the README)."""
    parser = _Parser(prog="dlspec", description="Compile one network spec for many frameworks.")
    parser.add_argument("--version", action="version", version=f"dlspec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only errors, failures and what was asked for (no progress, no tables on success)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    _quiet_everywhere(sub)
    return parser


def _quiet_everywhere(sub: argparse._SubParsersAction) -> None:
    """-q/--quiet also after the command (`dlspec verify x.dl -q`); SUPPRESS keeps the global
    flag's value when it is not given there."""
    for p in sub.choices.values():
        p.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            default=argparse.SUPPRESS,
            help="as dlspec --quiet",
        )
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _quiet_everywhere(action)


def _spec_error(err: SpecError) -> str:
    """A SpecError as printed on stderr: its source lines highlighted when stderr takes colour."""
    if not color_enabled(sys.stderr) or not err.problems:
        return str(err)
    return problems_text(err.problems, err.path, err.text, color=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 spec errors or failed checks, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    previous_cache = use_format_cache(default_directory())
    try:
        args = make_parser().parse_args(argv)
        return int(args.func(args))
    except SpecError as err:
        if debug:
            raise
        print(_spec_error(err), file=sys.stderr)
        return EXIT_FAILED
    except UsageError as err:
        if debug:
            raise
        print(f"dlspec: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DlspecError as err:
        if debug:
            raise
        print(f"dlspec: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:  # a path the system refuses (too long, not a folder, no permission)
        if debug:
            raise
        where = f" {display_path(err.filename)}" if isinstance(err.filename, str) else ""
        print(f"dlspec: error:{where}: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        use_format_cache(previous_cache)


if __name__ == "__main__":
    sys.exit(main())
