"""`dlspec doctor`: target x runtime x interpreter x framework version x runnable, and fixes."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Callable, Optional

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
    found = rows(probe, config)
    where = display_path(_short(str(config.path))) if config.path else "none (built-in defaults)"
    return "\n".join([f"runtimes config: {where}", table(found), *notes(found, config)])
