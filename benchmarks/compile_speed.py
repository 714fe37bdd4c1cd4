"""Time `dlspec compile SPEC --target all` as a whole process, for every example, in the three
states a user meets: a cache folder never used (empty), the spec compiled before and unchanged
(warm), and the spec just edited (edited: its batch size, or for a spec without training its
last block repeat, changed in a copy; the cache holds the previous version's scripts).

    python benchmarks/compile_speed.py [--repeat 7] [--specs examples/a.dl ...] [--filled]
        [--baseline REV]

Prints a markdown table of medians and minima in seconds. Each timed run writes its scripts to
a fresh folder; the cache folders live in a temporary directory, never the user's.
--filled: each cache folder starts holding every other example's scripts (compiled untimed), as
a repository of specs fills it; the first column is then a spec new to that cache.
--baseline REV: also times dlspec as committed at git revision REV (its package, grammar and
templates taken out with `git archive`, with what its install would ship beside the templates,
run by this interpreter), interleaved with this checkout run by run, and prints both medians and their ratio (baseline over this checkout: above 1, this
checkout is faster)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
DLSPEC = str(Path(sys.executable).parent / "dlspec")
_BATCH = re.compile(r"^(\s*batch\s*=\s*)(\d+)", re.MULTILINE)
_REPEAT = re.compile(r"(\*\s*)(\d+)(\s*)$", re.MULTILINE)


def edited(text: str, step: int) -> str:
    """The spec with one number changed (a new value each step)."""
    match = _BATCH.search(text)
    if match:
        value = int(match.group(2)) + step
        return text[: match.start(2)] + str(value) + text[match.end(2) :]
    last = list(_REPEAT.finditer(text))[-1]
    value = max(1, int(last.group(2)) - 1 - step % 2)
    return text[: last.start(2)] + str(value) + text[last.end(2) :]


_SHIM = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, {root!r})
from dlspec.cli import main
sys.exit(main())
"""
# what a wheel of that revision ships beside its templates, made in the extracted copy: the
# compiled templates and the formatter's memo (dlspec.codegen.shipped), or before that module
# the compiled templates alone, or nothing
_SHIP = """import os, sys, tempfile
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, {root!r})
os.environ["DLSPEC_CACHE_DIR"] = tempfile.mkdtemp()
try:
    from dlspec.codegen.shipped import main
except ImportError:
    try:
        from dlspec.codegen.templating import precompile
    except ImportError:
        sys.exit(0)
    from dlspec.resources import templates_dir
    precompile(templates_dir())
    sys.exit(0)
sys.exit(main(sys.argv[1:]))
"""


def baseline_command(revision: str, folder: Path) -> list[str]:
    """A command running dlspec as committed at `revision`: its package with the grammar and
    templates inside it (where an installed wheel has them), before this checkout's editable
    install on the path."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "dlspec", "grammar", "templates"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    for data in ("grammar", "templates"):
        (folder / data).rename(folder / "dlspec" / data)
    ship = folder / "ship_baseline.py"
    ship.write_text(_SHIP.format(root=str(folder)), encoding="utf-8")
    specs = [str(path) for path in sorted((ROOT / "examples").glob("*.dl"))]
    subprocess.run([sys.executable, str(ship), *specs], check=True, capture_output=True)
    shim = folder / "dlspec_baseline.py"
    shim.write_text(_SHIM.format(root=str(folder)), encoding="utf-8")
    return [sys.executable, str(shim)]


def timed(spec: Path, cache: Path, work: Path, dlspec: list[str]) -> float:
    """Seconds for one whole-process compile of spec to every target."""
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "DLSPEC_CACHE_DIR": str(cache)}
    env.pop("DLSPEC_NO_CACHE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # both sides' modules as installed: compiled once
    command = [*dlspec, "compile", str(spec), "--target", "all", "--out-dir", str(out)]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


STATES = ("empty", "warm", "edited")


def filled(spec: Path, work: Path, dlspec: list[str]) -> Path:
    """A cache folder holding every other example's scripts (as a repository of specs
    fills it), compiled by `dlspec`, untimed."""
    cache = work / "filled"
    shutil.rmtree(cache, ignore_errors=True)
    others = [str(p) for p in sorted((ROOT / "examples").glob("*.dl")) if p.name != spec.name]
    env = {**os.environ, "DLSPEC_CACHE_DIR": str(cache)}
    env.pop("DLSPEC_NO_CACHE", None)
    command = [*dlspec, "compile", *others, "--target", "all", "--out-dir", str(work / "out")]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return cache


def measure(
    spec: Path, repeat: int, work: Path, commands: dict[str, list[str]], fill: bool = False
) -> dict[str, dict[str, list[float]]]:
    """Each command's three states' times, `repeat` each, the commands taking turns (and
    turns about which goes first); fill: the cache starts with the other examples in it."""
    times = {name: {state: [] for state in STATES} for name in commands}
    text = spec.read_text(encoding="utf-8")
    copy = work / spec.name
    seeds = (
        {name: filled(spec, work / name, dlspec) for name, dlspec in commands.items()}
        if fill
        else {}
    )
    for step in range(1, repeat + 1):
        names = list(commands) if step % 2 else list(reversed(commands))
        for name in names:
            cache = work / f"cache-{step}-{name}"
            if fill:
                shutil.copytree(seeds[name], cache)
            times[name]["empty"].append(timed(spec, cache, work, commands[name]))
            times[name]["warm"].append(timed(spec, cache, work, commands[name]))
            copy.write_text(edited(text, step), encoding="utf-8")
            times[name]["edited"].append(timed(copy, cache, work, commands[name]))
            shutil.rmtree(cache)
    return times


def _cell(values: list[float], baseline: Optional[list[float]]) -> str:
    cell = f"{statistics.median(values):.3f} ({min(values):.3f})"
    if baseline is not None:
        ratio = statistics.median(baseline) / statistics.median(values)
        cell = f"{statistics.median(baseline):.3f} -> {cell}, x{ratio:.2f}"
    return cell


def missing_shipped_memo(templates: Optional[Path] = None) -> Optional[Path]:
    """The formatter memo an install ships for this checkout's formatter (in the templates
    folder, named by the formatter's fingerprint), where it is missing: after a change to
    the formatter, until `make generate` writes it, a first compile here formats what an
    install's would find there. main() writes it then, as `make generate` would."""
    from dlspec.codegen.item_cache import shipped_path

    path = shipped_path(templates)
    return None if path.exists() else path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--specs", nargs="*", type=Path)
    parser.add_argument("--baseline", metavar="REV", help="also time dlspec at this git revision")
    parser.add_argument(
        "--filled",
        action="store_true",
        help="start from a cache holding every other example (the first column: a new spec)",
    )
    args = parser.parse_args()
    specs = args.specs or sorted((ROOT / "examples").glob("*.dl"))
    missing = missing_shipped_memo()
    if missing is not None:  # as `make generate` writes it; else the first column is wrong
        examples = [str(path) for path in sorted((ROOT / "examples").glob("*.dl"))]
        subprocess.run([sys.executable, "-m", "dlspec.codegen.shipped", *examples], check=True)
        print(f"compile_speed: wrote {missing} (the formatter changed since)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        commands = {"this": [DLSPEC]}
        if args.baseline:
            folder = Path(tmp) / "baseline"
            folder.mkdir()
            commands["baseline"] = baseline_command(args.baseline, folder)
            print(f"baseline {args.baseline} -> this checkout: median (min), x baseline/this")
        for command in commands.values():  # untimed: bytecode compiled, files read once
            timed(specs[0], Path(tmp) / "warm-up", Path(tmp), command)
        first = "new spec, cache filled" if args.filled else "empty cache"
        print(f"| spec | {first} | warm | edited |")
        print("|---|---|---|---|")
        for spec in specs:
            times = measure(spec, args.repeat, Path(tmp), commands, args.filled)
            before = times.get("baseline")
            cells = [
                _cell(times["this"][state], before[state] if before else None) for state in STATES
            ]
            print(f"| {spec.stem} | {' | '.join(cells)} |", flush=True)
    print(f"\nmedian (min) of {args.repeat} runs, seconds, whole process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
