"""`dlspec doctor`: target x runtime x interpreter x framework version x runnable, and fixes."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Optional, TextIO

from dlspec import runtimes
from dlspec.errors import display_path
from dlspec.runtimes import Config, Runtime

Probe = Callable[[Runtime], tuple[bool, str]]
HEAD = ("target", "runtime", "interpreter", "version", "runnable", "emitter")


@dataclass(frozen=True)
class Row:
    """One runtime as found here: runnable (its framework imports), the version or the error."""

    runtime: Runtime
    runnable: bool
    info: str
    emitter: bool


def rows(probe: Optional[Probe] = None, config: Optional[Config] = None) -> list[Row]:
    """Every runtime in the table, probed (pending ones too: they have no emitter yet)."""
    probe = probe or runtimes.probe
    config = config or runtimes.load_config()
    out = []
    for name in runtimes.ALL_RUNTIMES:
        rt = runtimes.runtime(name, config)
        ok, info = probe(rt)
        out.append(Row(rt, ok, info, name in runtimes.RUNTIMES))
    return out


def _short(path: str) -> str:
    """A path relative to the current folder when it lies below it."""
    if not os.path.isabs(path):
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _interpreter(rt: Runtime) -> str:
    words = shlex.join([_short(rt.python[0]), *rt.python[1:]])
    return f"{display_path(words)} ({display_path(_short(rt.source))})"


def _cells(row: Row) -> tuple[str, ...]:
    version = display_path(row.info) if row.runnable else "-"
    runnable = "yes" if row.runnable else "no"
    emitter = "yes" if row.emitter else "not yet"
    return (
        row.runtime.target,
        row.runtime.name,
        _interpreter(row.runtime),
        version,
        runnable,
        emitter,
    )


def table(found: list[Row]) -> str:
    """The aligned table, one line per runtime."""
    lines = [HEAD, *(_cells(r) for r in found)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEAD))]
    text = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    return "\n".join(text)


def notes(found: list[Row], config: Optional[Config] = None) -> list[str]:
    """What the table means for the pending targets, and for each missing runtime what fixes it."""
    out = []
    ready = [r.runtime.name for r in found if r.runnable and not r.emitter]
    if ready:
        out.append(
            f"{', '.join(ready)}: runtime ready; no emitter yet "
            "(compile and verify do not offer these targets)"
        )
    for r in found:
        if not r.runnable:
            out.append(f"{r.runtime.name}: not runnable: {display_path(r.info)}")
            out.append(f"  fix: {display_path(runtimes.fix(r.runtime, config))}")
    return out


def report(probe: Optional[Probe] = None, config: Optional[Config] = None) -> str:
    """The whole doctor report: the config file used, the table, the notes."""
    config = config or runtimes.load_config()
    return _text(rows(probe, config), config)


def _where(config: Config) -> str:
    """The report's first line: which runtimes config file was read."""
    where = display_path(_short(str(config.path))) if config.path else "none (built-in defaults)"
    return f"runtimes config: {where}"


def _text(found: list[Row], config: Config) -> str:
    """The plain report of runtimes already probed."""
    return "\n".join([_where(config), table(found), *notes(found, config), graphviz_line(config)])


DOCTOR_SCHEMA = "dlspec.doctor/1"


def _entry(row: Row, config: Optional[Config]) -> dict[str, Any]:
    """One runtime for `dlspec doctor --json`."""
    rt = row.runtime
    return {
        "target": rt.target,
        "runtime": rt.name,
        "interpreter": list(rt.python),
        "source": rt.source,
        "runnable": row.runnable,
        "version": row.info if row.runnable else None,
        "error": None if row.runnable else row.info,
        "fix": None if row.runnable else runtimes.fix(rt, config),
        "emitter": row.emitter,
    }


def report_data(probe: Optional[Probe] = None, config: Optional[Config] = None) -> dict[str, Any]:
    """The doctor report as data: the config file used (null: built-in defaults), each runtime."""
    config = config or runtimes.load_config()
    found = rows(probe, config)
    dot_ok, dot_text = graphviz_status(config)
    return {
        "schema": DOCTOR_SCHEMA,
        "config": str(config.path) if config.path else None,
        "runtimes": [_entry(r, config) for r in found],
        "graphviz": {"runnable": dot_ok, "status": dot_text},
    }


def report_json(probe: Optional[Probe] = None, config: Optional[Config] = None) -> str:
    """`dlspec doctor --json`: report_data as indented JSON."""
    return json.dumps(report_data(probe, config), indent=2)


def print_report(
    stream: TextIO,
    probe: Optional[Probe] = None,
    config: Optional[Config] = None,
    quiet: bool = False,
) -> None:
    """The report on `stream`: a coloured table on a terminal, else report()'s plain text; with
    `quiet` only the notes on runtimes that are not runnable."""
    from dlspec.console import color_enabled, print_table, verdict_style

    config = config or runtimes.load_config()
    found = rows(probe, config)
    if quiet:
        lines = notes([r for r in found if not r.runnable], config)
        dot_ok, dot_text = graphviz_status(config)
        lines += [] if dot_ok else [f"{GRAPHVIZ}: {dot_text}"]
        if lines:
            print("\n".join(lines), file=stream)
        return
    if not color_enabled(stream):
        print(_text(found, config), file=stream)
        return
    print(_where(config), file=stream)
    print_table(stream, HEAD, [_cells(r) for r in found], style=verdict_style(4))
    lines = notes(found, config)
    if lines:
        print("\n".join(lines), file=stream)
    print(graphviz_line(config), file=stream)


GRAPHVIZ = "graphviz (dlspec graph -o FILE.svg|png)"


def graphviz_status(config: Config) -> tuple[bool, str]:
    """(runnable, where `dlspec graph` finds graphviz's dot and its version, or why it cannot
    and the fix)."""
    from dlspec import graph

    dot = graph.find_dot(config.home)
    if dot is None:
        return False, graph.missing_dot_reason(config.home)
    ok, info = graph.dot_version(dot)
    state = info if ok else f"not runnable: {info}; fix: {graph.FIX_DOT}"
    return ok, f"{display_path(_short(dot))}: {state}"


def graphviz_line(config: Config) -> str:
    """The report's line on graphviz, which is no target's runtime."""
    return f"{GRAPHVIZ}: {graphviz_status(config)[1]}"
