"""Which interpreter (and environment) runs each target's scripts; `dlspec doctor` reports them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from dlspec.errors import DlspecError

CONFIG_NAME = "dlspec-runtimes.toml"
CONFIG_ENV = "DLSPEC_RUNTIMES"
RUNTIMES_DIR = ".runtimes"
FIX_BUILT = "make runtimes"


@dataclass(frozen=True)
class Runtime:
    """A place to run one target's script: interpreter argv prefix plus extra environment."""

    name: str
    target: str
    python: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    probe: str = ""
    source: str = "default"

    def command(self, script: str, *args: str) -> list[str]:
        """The argv that runs `script` with `args` here."""
        return [*self.python, script, *args]

    def environment(self) -> dict[str, str]:
        """os.environ plus this runtime's variables."""
        return {**os.environ, **self.env}


@dataclass(frozen=True)
class Entry:
    """A row of the runtime table: its target, fixed environment, import probe, and where the
    interpreter lives when nothing configures it (empty: the current interpreter; else a path
    under the project's .runtimes/ that `make runtimes` builds)."""

    target: str
    env: dict[str, str]
    probe: str
    built: str = ""


_KERAS_PROBE = (
    "import keras; print('keras ' + keras.__version__ + ' on ' + keras.backend.backend())"
)
# runtimes of the targets that compile today: verify, bench and `--targets all` use these
RUNTIMES: dict[str, Entry] = {
    "pytorch": Entry("pytorch", {}, "import torch; print(torch.__version__)"),
    "tensorflow": Entry("tensorflow", {}, "import tensorflow as tf; print(tf.__version__)"),
    "keras[tensorflow]": Entry("keras", {"KERAS_BACKEND": "tensorflow"}, _KERAS_PROBE),
    "keras[jax]": Entry("keras", {"KERAS_BACKEND": "jax"}, _KERAS_PROBE),
    "keras[torch]": Entry("keras", {"KERAS_BACKEND": "torch"}, _KERAS_PROBE),
    "mxnet": Entry(
        "mxnet", {}, "import mxnet; print(mxnet.__version__)", "mxnet/bin/python"
    ),  # MXNet 1.9.1 (Gluon) in its own venv with numpy 1.23.5
    "cntk": Entry(
        "cntk", {}, "import cntk; print(cntk.__version__)", "cntk/python"
    ),  # CNTK 2.7 on Python 2.7 (a Debian bullseye tree): the probe is Python 2 too
}
# runtimes built before their targets' emitters exist: doctor reports them, nothing runs them yet;
# an entry moves to RUNTIMES when its target joins dlspec.backends.TARGETS
PENDING: dict[str, Entry] = {}
ALL_RUNTIMES: dict[str, Entry] = {**RUNTIMES, **PENDING}

# What the targets that run in the current interpreter need (requirements-dev.txt pins them)
FIX_CURRENT = {
    "pytorch": "pip install torch==2.13.0 (CPU; never unpinned), or make venv",
    "tensorflow": "pip install tensorflow-cpu==2.21.0, or make venv",
    "keras": "pip install keras==3.15.1 plus the backend (tensorflow-cpu, jax[cpu], torch), or make venv",
}


@dataclass(frozen=True)
class Config:
    """The runtimes config file's contents: per target, an interpreter and extra variables."""

    path: Optional[Path]
    python: dict[str, tuple[str, ...]]
    env: dict[str, dict[str, str]]

    @property
    def home(self) -> Path:
        """Where relative paths and .runtimes/ live: the file's folder, else the current one."""
        return self.path.parent if self.path else Path.cwd()


def find_config(start: Optional[Path] = None) -> Optional[Path]:
    """$DLSPEC_RUNTIMES, else dlspec-runtimes.toml in `start` (the current folder) or the nearest
    folder above it that has one, else None."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise DlspecError(f"{CONFIG_ENV}={named}: no such runtimes config file")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    return None


def _targets() -> list[str]:
    return sorted({e.target for e in ALL_RUNTIMES.values()})


def _argv(value: Any, where: str, home: Path) -> tuple[str, ...]:
    """A `python` value: a command line or a list of words; a relative path in the first word
    (one with a slash) is relative to the config file's folder."""
    if isinstance(value, str):
        words = shlex.split(value)
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = list(value)
    else:
        raise DlspecError(f"{where}: python must be a string or a list of strings")
    if not words:
        raise DlspecError(f"{where}: python is empty")
    if "/" in words[0] and not os.path.isabs(words[0]):
        words[0] = str(home / words[0])
    return tuple(words)


def _env(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise DlspecError(f"{where}: env must be a table of strings")
    return dict(value)


def parse_config(text: str, path: Path) -> Config:
    """A config file's text; every mistake (syntax, an unknown target or key, a wrong type) is a
    DlspecError naming the file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise DlspecError(f"{path}: not valid TOML: {err}") from None
    python: dict[str, tuple[str, ...]] = {}
    env: dict[str, dict[str, str]] = {}
    for target, table in data.items():
        where = f"{path}: [{target}]"
        if target not in _targets():
            raise DlspecError(f"{where}: unknown target (known: {', '.join(_targets())})")
        if not isinstance(table, dict):
            raise DlspecError(f"{where}: must be a table with python and/or env")
        unknown = sorted(set(table) - {"python", "env"})
        if unknown:
            raise DlspecError(f"{where}: unknown key {unknown[0]!r} (known: python, env)")
        if "python" in table:
            python[target] = _argv(table["python"], where, path.parent)
        if "env" in table:
            env[target] = _env(table["env"], where)
    return Config(path, python, env)


def load_config() -> Config:
    """The config file that applies here (see find_config), or an empty one."""
    path = find_config()
    if path is None:
        return Config(None, {}, {})
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DlspecError(f"cannot read runtimes config {path}: {err}") from None
    return parse_config(text, path)


def _interpreter(entry: Entry, config: Config) -> tuple[tuple[str, ...], str]:
    """(argv prefix, where it came from): DLSPEC_PYTHON_<TARGET> (a command line), the config
    file, the built runtime's interpreter under .runtimes/, or the current interpreter."""
    variable = f"DLSPEC_PYTHON_{entry.target.upper()}"
    value = os.environ.get(variable)
    if value:
        return tuple(shlex.split(value)), variable
    if entry.target in config.python:
        return config.python[entry.target], str(config.path)
    if entry.built:
        return (str(config.home / RUNTIMES_DIR / entry.built),), f"built by {FIX_BUILT}"
    return (sys.executable,), "current interpreter"


def runtime(name: str, config: Optional[Config] = None) -> Runtime:
    """The runtime called `name` (a target name or e.g. keras[jax]), including pending ones."""
    entry = ALL_RUNTIMES[name]
    config = config or load_config()
    python, source = _interpreter(entry, config)
    env = {**config.env.get(entry.target, {}), **entry.env}
    return Runtime(name, entry.target, python, env, entry.probe, source)


def build_problem(name: str, config: Optional[Config] = None) -> Optional[str]:
    """Why `make runtimes` could not build `name` here (its .unavailable file), or None."""
    config = config or load_config()
    reason = config.home / RUNTIMES_DIR / f"{name}.unavailable"
    try:
        return reason.read_text(encoding="utf-8").strip() or "build failed"
    except OSError:
        return None


def fix(rt: Runtime, config: Optional[Config] = None) -> str:
    """What makes runtime `rt` runnable here, given where its interpreter came from."""
    entry = ALL_RUNTIMES[rt.name]
    if rt.source.startswith("DLSPEC_PYTHON_"):
        return f"{rt.source} names an interpreter without {rt.target}: correct it or unset it"
    if entry.built:
        problem = build_problem(rt.name, config)
        why = f" (the last build failed: {problem})" if problem else ""
        built = f"{FIX_BUILT}{why}"
        if rt.source != f"built by {FIX_BUILT}":
            return f"{built}, or point [{rt.target}] python in {rt.source} at a working one"
        return f"{built}, or point [{rt.target}] python in {CONFIG_NAME} at a working one"
    if rt.source != "current interpreter":
        return f"point [{rt.target}] python in {rt.source} at a working one"
    return FIX_CURRENT[entry.target]


def target_and_runtime_names(targets: list[str]) -> list[str]:
    """The names a --targets list accepts: each target, then each runtime not named as a target."""
    return list(dict.fromkeys([*targets, *RUNTIMES]))


def expand(names: list[str]) -> list[str]:
    """Target names to runtime names: a target with several runtimes expands to all of them."""
    out: list[str] = []
    for name in names:
        matches = [r for r, e in RUNTIMES.items() if r == name or e.target == name]
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
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return False, last
    return True, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "ok"
