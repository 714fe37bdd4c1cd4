"""Warm interpreters that fork a fresh process for each verify script (DLSPEC_ZYGOTE=1)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dlspec.runtimes import Runtime

# The framework each target's scripts import first, by target: the zygote imports it once and
# forks a child per script, which then skips that import (4-9 s of every verify run here). No
# framework thread exists before the fork: each of these starts its pools on first use. MXNet
# (2 s, an engine whose threads start at import) and CNTK (Python 2.7) start a process each.
PRELOAD = {"pytorch": ("torch",), "tensorflow": ("tensorflow",), "keras": ("keras",)}
ENABLE = "DLSPEC_ZYGOTE"
# verify runs every script with --device cpu: the variables the Keras script sets for it before
# its import, which the zygote's earlier import must see too
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}

# The zygote: import the modules named, then for each job line on stdin fork a child that runs
# the script as __main__ with the job's argv, environment, folder and output files; answer the
# child's pid, then its exit status, one JSON line each on the channel (fd 1 at start; the
# zygote's own stdout goes to stderr so that nothing an import prints can break the protocol).
CODE = r"""
import importlib, json, os, runpy, sys, traceback
channel = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
for name in sys.argv[1:]:
    importlib.import_module(name)
channel.write('{"ready": true}\n')
channel.flush()

def run(job):
    os.setpgid(0, 0)
    for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    sys.argv = [job["script"], *job["args"]]
    sys.path[0] = os.path.dirname(os.path.abspath(job["script"]))
    try:
        runpy.run_path(job["script"], run_name="__main__")
        return 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = run(job)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    channel.write(json.dumps({"pid": pid}) + "\n")
    channel.flush()
    _, status = os.waitpid(pid, 0)
    channel.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
    channel.flush()
"""
START_TIMEOUT = 120.0  # seconds for the zygote's imports (Keras on TensorFlow: 9 s here)


def enabled(rt: Runtime) -> bool:
    """Whether verify runs `rt`'s scripts through a zygote: asked for (the test suite does) and
    the target has a framework to preload."""
    return os.environ.get(ENABLE) == "1" and rt.target in PRELOAD


@dataclass
class Finished:
    """How a forked script ended: its exit status (negative: the signal), or None on timeout."""

    returncode: Optional[int]
    timed_out: bool


class Zygote:
    """One warm interpreter of a runtime, its imports done."""

    def __init__(self, rt: Runtime, timeout: float = START_TIMEOUT) -> None:
        env = {**rt.environment(), **CPU_ONLY}
        self.process = subprocess.Popen(
            [*rt.python, "-c", CODE, *PRELOAD[rt.target]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.pending = b""
        if self._answer(timeout) != {"ready": True}:
            self.close()
            raise OSError(f"{rt.name}: the zygote did not start")

    def alive(self) -> bool:
        return self.process.poll() is None

    def _answer(self, timeout: float) -> Optional[dict]:
        """The next JSON line from the zygote, or None when none came within `timeout` s or it
        ended."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as wait:
            wait.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or not wait.select(left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def run(
        self, script: str, args: list[str], env: dict[str, str], files: tuple[Path, Path],
        timeout: float, cwd: Optional[Path] = None,
    ) -> Finished:  # fmt: skip
        """Run `script` with `args` in a forked child in folder `cwd` (this process's when None),
        its stdout and stderr to `files`; past `timeout` seconds its process group is killed."""
        folder = str(cwd) if cwd is not None else os.getcwd()
        job = {"script": script, "args": args, "env": {**env, **CPU_ONLY}, "cwd": folder}
        job.update(stdout=str(files[0]), stderr=str(files[1]))
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(job) + "\n").encode())
        self.process.stdin.flush()
        started = time.monotonic()
        answer = self._answer(timeout)
        if answer is None:
            raise OSError("the zygote stopped answering")
        pid = answer["pid"]
        answer = self._answer(max(timeout - (time.monotonic() - started), 0.0))
        if answer is not None:
            return Finished(answer["status"], False)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if self._answer(30.0) is None:
            self.close()
        return Finished(None, True)

    def close(self) -> None:
        """Stop the zygote and whatever it still runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # stdin's buffer may not flush to a dead pipe
                    pipe.close()


_ZYGOTES: dict[tuple, Zygote] = {}


def zygote(rt: Runtime) -> Zygote:
    """This process's zygote of `rt` (started on first use; again if it ended)."""
    key = (rt.name, rt.python, tuple(sorted(rt.env.items())))
    found = _ZYGOTES.get(key)
    if found is None or not found.alive():
        found = _ZYGOTES[key] = Zygote(rt)
    return found


@atexit.register
def _close_all() -> None:
    for found in _ZYGOTES.values():
        found.close()
    _ZYGOTES.clear()
