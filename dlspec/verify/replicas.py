"""Run a generated script as N data-parallel replicas, under its target's own launcher."""

from __future__ import annotations

import re
from pathlib import Path

from dlspec.backends import TARGETS
from dlspec.bench.process import Finished, run_child
from dlspec.errors import DlspecError
from dlspec.runtimes import Runtime

# a 2-replica verify of a small model takes ~15 s on 2 cores (three interpreters import torch)
REPLICA_TIMEOUT = 600
# a fatal line of absl's log: F, the month and day, the time ("F1207 05:53:18.486408 ...")
_ABSL_FATAL = re.compile(r"F\d{4} \d\d:\d\d:\d\d")


class NotSupported(DlspecError):
    """The target's scripts run as one process only (no data-parallel launcher yet)."""


def replica_refusal(rt: Runtime) -> str:
    """Why `rt` cannot run a script as data-parallel replicas; "" when it can."""
    return TARGETS[rt.target].replica_refusal(rt.name)


def supports_replicas(rt: Runtime) -> bool:
    """Whether `rt` runs scripts as data-parallel replicas."""
    return not replica_refusal(rt)


def replica_command(rt: Runtime, script: str, replicas: int, *args: str) -> list[str]:
    """The argv that starts `replicas` replicas of `script` (with `args`) on this host in `rt`:
    the target's launcher module before the script, or the script's own flags after it."""
    refusal = replica_refusal(rt)
    if refusal:
        raise NotSupported(f"{rt.name}: {refusal}")
    target = TARGETS[rt.target]
    launcher = [part.format(replicas=replicas) for part in target.replica_launcher]
    flags = [part.format(replicas=replicas) for part in target.replica_flags]
    return [*rt.python, *launcher, script, *flags, *args]


def run_replicas(
    rt: Runtime,
    script: str,
    replicas: int,
    args: list[str],
    logs: Path,
    timeout: float = REPLICA_TIMEOUT,
) -> tuple[Finished, str]:
    """Run the replicas in a session of their own with a deadline (then the whole process group
    is killed, as is whatever it leaves behind on exit); returns how it ended and the tail of
    its stderr. `logs` is the prefix of the stdout and stderr files. A replica killed by a signal
    (an abort in a framework's C++) prints its Python stacks there (faulthandler)."""
    out, err = Path(f"{logs}.out"), Path(f"{logs}.err")
    argv = replica_command(rt, script, replicas, *args)
    env = {**rt.environment(), "PYTHONFAULTHANDLER": "1"}
    done = run_child(argv, env, out, err, timeout)
    return done, stderr_tail(err.read_text(encoding="utf-8", errors="replace"))


def stderr_tail(text: str, last: int = 15, first: int = 8) -> str:
    """The last lines of a replicas' stderr, after the first lines above them that say what went
    wrong (a launcher's closing summary would otherwise hide the replica's own message)."""
    lines = text.strip().splitlines()
    earlier = [line for line in lines[:-last] if _telling(line)][:first]
    return "\n".join([*earlier, *(["..."] if earlier else []), *lines[-last:]])


def _telling(line: str) -> bool:
    """Whether a stderr line reports a failure: Python's and C++'s words for one, or a fatal
    line of absl's log (what XLA and TensorFlow print before they abort: "F1207 05:53:18...")."""
    words = ("Error", "error:", "terminate called", "Traceback", "Signal", "Fatal Python")
    return any(word in line for word in words) or bool(_ABSL_FATAL.match(line))
