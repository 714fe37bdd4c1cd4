"""Time `dlspec compile SPEC --target all` as a whole process, for every example, in the three
states a user meets: a cache folder never used (empty), the spec compiled before and unchanged
(warm), and the spec just edited (edited: its batch size, or for a spec without training its
last block repeat, changed in a copy; the cache holds the previous version's scripts).

    python benchmarks/compile_speed.py [--repeat 7] [--specs examples/a.dl ...]

Prints a markdown table of medians and minima in seconds. Each timed run writes its scripts to
a fresh folder; the cache folders live in a temporary directory, never the user's."""

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


def timed(spec: Path, cache: Path, work: Path) -> float:
    """Seconds for one whole-process compile of spec to every target."""
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "DLSPEC_CACHE_DIR": str(cache)}
    env.pop("DLSPEC_NO_CACHE", None)
    command = [DLSPEC, "compile", str(spec), "--target", "all", "--out-dir", str(out)]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(spec: Path, repeat: int, work: Path) -> dict[str, list[float]]:
    """The three states' times, `repeat` each."""
    times: dict[str, list[float]] = {"empty": [], "warm": [], "edited": []}
    text = spec.read_text(encoding="utf-8")
    copy = work / spec.name
    for step in range(1, repeat + 1):
        cache = work / f"cache-{step}"
        times["empty"].append(timed(spec, cache, work))
        times["warm"].append(timed(spec, cache, work))
        copy.write_text(edited(text, step), encoding="utf-8")
        times["edited"].append(timed(copy, cache, work))
        shutil.rmtree(cache)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--specs", nargs="*", type=Path)
    args = parser.parse_args()
    specs = args.specs or sorted((ROOT / "examples").glob("*.dl"))
    print("| spec | empty cache | warm | edited |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            times = measure(spec, args.repeat, Path(tmp))
            cells = [
                f"{statistics.median(v):.3f} ({min(v):.3f})"
                for v in (times["empty"], times["warm"], times["edited"])
            ]
            print(f"| {spec.stem} | {' | '.join(cells)} |", flush=True)
    print(f"\nmedian (min) of {args.repeat} runs, seconds, whole process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
