"""What the commands of the command line share: exit codes, argument types, the target list,
and building a spec with its lint warnings printed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from dlspec.backends import TARGETS
from dlspec.console import color_enabled, problems_text
from dlspec.errors import DlspecError, UsageError, display_path
from dlspec.frontend.load import Built, build_file
from dlspec.ir.attrs import PROFILES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def target_list(name: str, known: Sequence[str] = tuple(TARGETS)) -> list[str]:
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


def _at_least(text: str, low: int) -> int:
    """`text` as an integer >= low, else argparse's error saying why."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, not {value}")
    return value


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _at_least(text, 1)


def non_negative(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _at_least(text, 0)


def thread_counts(text: str) -> list[int]:
    """An argparse type: a comma list of counts >= 1 (threads, replicas), each once, in the order given."""
    counts = []
    for word in text.split(","):
        try:
            count = positive(word.strip())
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
        if count not in counts:
            counts.append(count)
    return counts


def build_spec(path: str, args: argparse.Namespace) -> Built:
    """The spec built under --defaults, its lint warnings printed (with --strict: an error)."""
    if not is_file(path):
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


def is_file(path: str) -> bool:
    """Whether `path` names a file (False for a name the system cannot hold)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def with_specs(p: argparse.ArgumentParser) -> None:
    """The SPEC... arguments and --defaults, as the commands that build specs take them."""
    p.add_argument("specs", nargs="+", metavar="SPEC", help=".dl spec file(s)")
    with_defaults(p)


def with_defaults(p: argparse.ArgumentParser) -> None:
    """--defaults and --strict, as every command that builds a spec takes them."""
    p.add_argument("--defaults", choices=PROFILES, help="override the spec's defaults profile")
    p.add_argument(
        "--strict",
        action="store_true",
        help="lint warnings fail the command (exit 1, nothing written)",
    )
