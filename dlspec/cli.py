"""The `dlspec` command line: compile, fmt, summary, targets, check, verify, bench, doctor, weights,
completion."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from dlspec import __version__
from dlspec.backends import TARGETS
from dlspec.bench.command import add_bench
from dlspec.cliargs import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    build_spec,
    is_file,
    positive,
    target_list,
    with_defaults,
    with_specs,
)
from dlspec.codegen.compile import Compiled, compile_model
from dlspec.codegen.files import stale_diff, write_all, write_bytes_atomic
from dlspec.codegen.format_cache import default_directory
from dlspec.codegen.render import use_format_cache
from dlspec.console import color_enabled, diff_text, print_table, problems_text
from dlspec.errors import DlspecError, SpecError, UsageError, display_path
from dlspec.summary import summary_json, summary_markdown, summary_rows, summary_text, totals
from dlspec.support import support_table

if TYPE_CHECKING:  # verify's modules load only for `dlspec verify`
    from dlspec.verify.run import Check


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


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
    targets = target_list(args.target)
    if args.output and len(args.specs) * len(targets) != 1:
        raise UsageError("-o FILE takes exactly one spec and one target; use --out-dir")
    results: list[Compiled] = []
    for spec in args.specs:
        built = build_spec(spec, args)
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
        built = build_spec(spec, args)
        for target in target_list(args.target):
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
        if not is_file(spec):
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
        models = [(display_path(s), build_spec(s, args).model) for s in args.specs]
        print(summary_json(models))
        return EXIT_OK
    for spec in args.specs:
        model = build_spec(spec, args).model
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
    model = build_spec(args.spec, args).model
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
    names = runtimes.expand(target_list(spec, known) if spec != "all" else list(TARGETS))
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
        model = build_spec(spec, args).model
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
    if not is_file(source):
        raise UsageError(f"no such weights file: {display_path(source)}")
    if Path(args.output).is_dir():
        raise UsageError(f"-o {display_path(args.output)} is a directory; give a file name")
    built = build_spec(args.spec, args)
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


def _add_compile(sub: argparse._SubParsersAction) -> None:
    """`dlspec compile`: its arguments and the function that runs it."""
    p = sub.add_parser("compile", help="generate a script per target")
    with_specs(p)
    p.add_argument("--target", "-t", default="pytorch", help="target name, a comma list, or all")
    p.add_argument("-o", "--output", help="write to FILE (one spec, one target)")
    p.add_argument("--out-dir", help="write DIR/<target>/<model>_<target>.py")
    p.add_argument("--report", action="store_true", help="print the normalisation report to stderr")
    p.set_defaults(func=cmd_compile)


def _add_check(sub: argparse._SubParsersAction) -> None:
    """`dlspec check`: its arguments and the function that runs it."""
    p = sub.add_parser("check", help="fail when committed generated files are stale")
    with_specs(p)
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
    with_specs(p)
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
    with_defaults(p)
    p.add_argument("-o", "--output", required=True, help="FILE.svg, FILE.png or FILE.dot")
    p.add_argument(
        "--format", choices=("svg", "png", "dot"), help="default: from the output's suffix"
    )
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top-down or left-right")
    p.set_defaults(func=cmd_graph)


def _add_verify(sub: argparse._SubParsersAction) -> None:
    """`dlspec verify`: its arguments and the function that runs it."""
    p = sub.add_parser("verify", help="prove the targets compute the same model as the oracle")
    with_specs(p)
    p.add_argument(
        "--targets", default="all", help="comma list of targets or runtimes (keras[jax]), or all"
    )
    p.add_argument(
        "--steps", type=positive, default=5, help="training steps to compare (default 5)"
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
        type=positive,
        default=1,
        help="also run each script as N data-parallel replicas on this host (pytorch: torchrun; "
        "tensorflow, mxnet, cntk, keras[jax]: the script's --replicas N) "
        "and check they train the weights of one process and of the oracle",
    )
    p.add_argument("--json", help="also write the checks as JSON to this file")
    p.set_defaults(func=cmd_verify)


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
    with_defaults(p)
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
    add_bench,
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
