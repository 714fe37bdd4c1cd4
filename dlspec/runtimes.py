"""Which interpreter (and environment) runs each target's scripts; `dlspec doctor` reports them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Runtime:
    """A place to run one target's script: interpreter argv prefix plus extra environment."""

    name: str
    target: str
    python: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    probe: str = ""

    def command(self, script: str, *args: str) -> list[str]:
        """The argv that runs `script` with `args` here."""
        return [*self.python, script, *args]

    def environment(self) -> dict[str, str]:
        """os.environ plus this runtime's variables."""
        return {**os.environ, **self.env}


def _interpreter(target: str) -> tuple[str, ...]:
    """DLSPEC_PYTHON_<TARGET> (a command line) or the current interpreter."""
    value = os.environ.get(f"DLSPEC_PYTHON_{target.upper()}")
    return tuple(shlex.split(value)) if value else (sys.executable,)


# runtime name -> (target, extra environment, import probe)
_KERAS_PROBE = (
    "import keras; print('keras ' + keras.__version__ + ' on ' + keras.backend.backend())"
)
RUNTIMES: dict[str, tuple[str, dict[str, str], str]] = {
    "pytorch": ("pytorch", {}, "import torch; print(torch.__version__)"),
    "tensorflow": ("tensorflow", {}, "import tensorflow as tf; print(tf.__version__)"),
    "keras[tensorflow]": ("keras", {"KERAS_BACKEND": "tensorflow"}, _KERAS_PROBE),
    "keras[jax]": ("keras", {"KERAS_BACKEND": "jax"}, _KERAS_PROBE),
    "keras[torch]": ("keras", {"KERAS_BACKEND": "torch"}, _KERAS_PROBE),
}


def runtime(name: str) -> Runtime:
    """The runtime called `name` (a target name or e.g. keras[jax])."""
    target, env, probe = RUNTIMES[name]
    return Runtime(name, target, _interpreter(target), env, probe)


def expand(names: list[str]) -> list[str]:
    """Target names to runtime names: a target with several runtimes expands to all of them."""
    out: list[str] = []
    for name in names:
        matches = [r for r, (t, _, _) in RUNTIMES.items() if r == name or t == name]
        out.extend(m for m in matches if m not in out)
    return out


def probe(rt: Runtime) -> tuple[bool, str]:
    """(available, version or error) by importing the framework in that interpreter."""
    try:
        done = subprocess.run(
            [*rt.python, "-c", rt.probe],
            capture_output=True,
            text=True,
            env=rt.environment(),
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return False, last
    return True, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "ok"
