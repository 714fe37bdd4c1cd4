"""Time each emitted script against its hand-written twin, interleaved, and print the ratios.

    PYTHONPATH=. python benchmarks/handwritten/compare.py [--models cifar_vgg,imdb_gru]
        [--targets pytorch,keras,...] [--repeat 3] [--max-steps N] [--warmup 10] [--device cpu]
        [--threads 1] [--out out/handwritten] [--timeout 600]

For each model and runtime, the emitted script (generated/<target>/<model>_<target>.py) and the
hand-written one (benchmarks/handwritten/<model>_<target>.py) run with the same flags, each a
child process on one pinned CPU thread, alternately: repeat k runs emitted then hand-written for
even k, hand-written then emitted for odd k, so a drift in the machine's speed falls on both.
The ratio of a pair is emitted samples/s over hand-written samples/s (above 1: emitted faster),
and a row reports the median of its repeats' ratios with their range. Beside it, the same ratio
in CPU time (each script's timed_cpu_seconds per timed sample, hand-written over emitted: above
1, emitted spends less CPU a sample), which time taken by other processes does not move, so it
is the steadier one on a shared machine (and the only one that ignores it: on a GPU, read the
wall-clock one). docs/benchmarking.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from dlspec.bench import host
from dlspec.bench.process import exit_on_sigterm, run_child
from dlspec.bench.record import append, stderr_tail
from dlspec.bench.runner import cold_compile_caches
from dlspec.bench.threads import cpu_set, thread_environment
from dlspec.runtimes import RUNTIMES, Runtime, expand, probe, runtime

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("cifar_vgg", "imdb_gru")
# steps per run by default: 11 to 44 s a run on one thread of the 2-CPU development machine
MAX_STEPS = {"cifar_vgg": 30, "imdb_gru": 50}
EMITTED, HAND = "emitted", "handwritten"
JSONL, MARKDOWN = "compare.jsonl", "compare.md"
Prober = Callable[[Runtime], tuple[bool, str]]


@dataclass(frozen=True)
class Pair:
    """One model in one runtime: its emitted and hand-written scripts."""

    model: str
    runtime: str
    emitted: Path
    hand: Path


@dataclass(frozen=True)
class Row:
    """A pair's summary: medians over its ok runs, the paired ratios, the runs that ended ok."""

    model: str
    runtime: str
    emitted_rate: Optional[float]
    hand_rate: Optional[float]
    ratios: list[float]
    emitted_loss: Optional[float]
    hand_loss: Optional[float]
    ok: int
    runs: int
    cpu_ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> Optional[float]:
        """The median of the repeats' emitted/hand-written ratios."""
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def cpu_ratio(self) -> Optional[float]:
        """The median of the repeats' CPU-time ratios (hand-written over emitted CPU seconds a
        sample: above 1, emitted spends less)."""
        return statistics.median(self.cpu_ratios) if self.cpu_ratios else None


def scripts(model: str, name: str, generated: Path, handwritten: Path) -> tuple[Path, Path]:
    """(emitted script, hand-written script) of `model` for runtime `name`."""
    target = RUNTIMES[name].target
    return generated / target / f"{model}_{target}.py", handwritten / f"{model}_{target}.py"


def plan(
    models: Sequence[str],
    names: Sequence[str],
    generated: Path,
    handwritten: Path,
    prober: Prober = probe,
) -> tuple[list[Pair], list[tuple[str, str, str]]]:
    """The pairs to run, and (model, runtime, reason) for each one skipped: a script missing, or
    the runtime not runnable here (probed once per runtime, only when needed)."""
    pairs: list[Pair] = []
    skipped: list[tuple[str, str, str]] = []
    probed: dict[str, tuple[bool, str]] = {}
    for model in models:
        for name in names:
            emitted, hand = scripts(model, name, generated, handwritten)
            missing = [p for p in (hand, emitted) if not p.is_file()]
            if missing:
                skipped.append((model, name, f"no script {_shown(missing[0])}"))
                continue
            if name not in probed:
                probed[name] = prober(runtime(name))
            ok, info = probed[name]
            if not ok:
                skipped.append((model, name, f"runtime not available: {info}"))
                continue
            pairs.append(Pair(model, name, emitted, hand))
    return pairs, skipped


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def order(repeat: int) -> tuple[str, str]:
    """Which script runs first in repeat `repeat` (from 0): emitted on even, hand-written on odd."""
    return (EMITTED, HAND) if repeat % 2 == 0 else (HAND, EMITTED)


def flags(max_steps: int, warmup: int, device: str, results: Path) -> list[str]:
    """The flags both scripts get (a subset of the emitted scripts' flags)."""
    return [
        "--data",
        "synthetic",
        "--device",
        device,
        "--epochs",
        "1",
        "--max-steps",
        str(max_steps),
        "--warmup",
        str(warmup),
        "--results",
        str(results),
    ]


def run_one(
    pair: Pair,
    which: str,
    repeat: int,
    position: int,
    args: argparse.Namespace,
    facts: dict[str, Any],
) -> dict[str, Any]:
    """Run one script as a child with a deadline; its record (a failure is a record too)."""
    rt = runtime(pair.runtime)
    slug = pair.runtime.replace("[", "-").replace("]", "")
    folder = Path(args.out) / "runs" / f"{pair.model}-{slug}-{which}-r{repeat}"
    folder.mkdir(parents=True, exist_ok=True)
    results_path = folder / "results.json"
    results_path.unlink(missing_ok=True)
    max_steps = args.max_steps or MAX_STEPS.get(pair.model, 30)
    script = pair.emitted if which == EMITTED else pair.hand
    argv = rt.command(str(script), *flags(max_steps, args.warmup, args.device, results_path))
    threads = args.threads or None
    cpus = cpu_set(threads, sorted(os.sched_getaffinity(0)))
    base = {
        "model": pair.model,
        "runtime": pair.runtime,
        "script": which,
        "path": _shown(script),
        "repeat": repeat,
        "position": position,
        "command": shlex.join(argv),
        "settings": {
            "device": args.device,
            "max_steps": max_steps,
            "warmup": args.warmup,
            "threads": threads,
            "timeout": args.timeout,
        },
        "thread_environment": thread_environment(threads),
        "cpu_set": cpus,
        "host": facts,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="dlspec-compare-caches-") as caches:
            env = {
                **rt.environment(),
                **thread_environment(threads),
                **cold_compile_caches(Path(caches)),  # each run compiles from nothing, as bench's
            }
            done = run_child(
                argv, env, folder / "stdout.txt", folder / "stderr.txt", args.timeout, cpus
            )
    except OSError as err:  # the interpreter is missing or not executable
        return {**base, **_failed("failed", f"cannot start {argv[0]}: {err}", [])}
    base.update(wall_seconds=done.wall_seconds, peak_rss_mb=done.peak_rss_mb)
    tail = stderr_tail((folder / "stderr.txt").read_text(encoding="utf-8", errors="replace"))
    if done.timed_out:
        return {**base, **_failed("timeout", f"killed after {done.wall_seconds:.0f} s", tail)}
    if done.returncode != 0:
        last = f": {tail[-1]}" if tail else ""
        return {**base, **_failed("failed", f"exit status {done.returncode}{last}", tail)}
    results, problem = read_results(results_path, pair.runtime)
    if problem:
        return {**base, **_failed("invalid", problem, tail)}
    return {
        **base,
        "status": "ok",
        "error": None,
        "stderr_tail": [],
        "samples_per_second": results["samples_per_second"],
        "cpu_seconds_per_sample": cpu_per_sample(results),
        "final_loss": results["final_loss"],
        "steps": results.get("steps"),
        "warmup_steps": results.get("warmup_steps"),
        "threads": results.get("threads"),
        "results": results,
    }


def _failed(status: str, error: str, tail: list[str]) -> dict[str, Any]:
    return {
        "status": status,
        "error": error,
        "stderr_tail": tail,
        "samples_per_second": None,
        "cpu_seconds_per_sample": None,
        "final_loss": None,
        "results": None,
    }


def cpu_per_sample(results: dict[str, Any]) -> Optional[float]:
    """The timed steps' CPU seconds a sample, or None where the script does not report them."""
    cpu, samples = results.get("timed_cpu_seconds"), results.get("timed_samples")
    if not _number(cpu) or cpu <= 0 or not _number(samples) or samples <= 0:
        return None
    return cpu / samples


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_results(path: Path, name: str) -> tuple[dict[str, Any], str]:
    """A script's results JSON and '' when it holds what the comparison reads (a positive rate,
    a finite final loss, the runtime it ran in), else ({}, what is wrong)."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return {}, "the script exited 0 but wrote no results JSON"
    except json.JSONDecodeError as err:
        return {}, f"results JSON does not parse: {err}"
    if not isinstance(results, dict):
        return {}, "results JSON is not an object"
    rate, loss = results.get("samples_per_second"), results.get("final_loss")
    if not _number(rate) or rate <= 0:
        return {}, f"samples_per_second is {rate!r}, not a positive number"
    if not _number(loss):
        return {}, f"final_loss is {loss!r}, not a finite number"
    if results.get("runtime") != name:
        return {}, f"results say runtime {results.get('runtime')!r}, run on {name}"
    return results, ""


def summarise(pairs: Sequence[Pair], records: Sequence[dict[str, Any]]) -> list[Row]:
    """One row per pair, from its records: each side's median rate and loss over its ok runs,
    and one ratio per repeat where both sides ended ok."""
    rows = []
    for pair in pairs:
        mine = [r for r in records if (r["model"], r["runtime"]) == (pair.model, pair.runtime)]
        ok = [r for r in mine if r["status"] == "ok"]
        side = {w: [r for r in ok if r["script"] == w] for w in (EMITTED, HAND)}
        rates = _by_repeat(ok, "samples_per_second")
        ratios = [r[EMITTED] / r[HAND] for r in rates if EMITTED in r and HAND in r]
        cpu = _by_repeat(ok, "cpu_seconds_per_sample")
        cpu_ratios = [c[HAND] / c[EMITTED] for c in cpu if EMITTED in c and HAND in c]
        rows.append(
            Row(
                pair.model,
                pair.runtime,
                _median([r["samples_per_second"] for r in side[EMITTED]]),
                _median([r["samples_per_second"] for r in side[HAND]]),
                ratios,
                _median([r["final_loss"] for r in side[EMITTED]]),
                _median([r["final_loss"] for r in side[HAND]]),
                len(ok),
                len(mine),
                cpu_ratios,
            )
        )
    return rows


def _by_repeat(records: Sequence[dict[str, Any]], key: str) -> list[dict[str, float]]:
    """Per repeat, in order, each side's `key` (where it is not None)."""
    values: dict[int, dict[str, float]] = {}
    for r in records:
        if r.get(key) is not None:
            values.setdefault(r["repeat"], {})[r["script"]] = r[key]
    return [values[k] for k in sorted(values)]


def _median(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _spread(ratios: Sequence[float]) -> str:
    return f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "-"


def table(rows: Sequence[Row], skipped: Sequence[tuple[str, str, str]], header: str) -> str:
    """The markdown report: a header line, one row per pair, then the skipped pairs and why."""
    lines = [
        header,
        "",
        "| model | runtime | emitted samples/s | hand-written samples/s | emitted/hand "
        "| ratio range | CPU time hand/emitted | CPU range | loss emitted | loss hand | runs ok |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.model} | {row.runtime} | {_fmt(row.emitted_rate, '.1f')} "
            f"| {_fmt(row.hand_rate, '.1f')} | {_fmt(row.ratio, '.2f')} | {_spread(row.ratios)} "
            f"| {_fmt(row.cpu_ratio, '.2f')} | {_spread(row.cpu_ratios)} "
            f"| {_fmt(row.emitted_loss, '.4f')} | {_fmt(row.hand_loss, '.4f')} "
            f"| {row.ok}/{row.runs} |"
        )
    if skipped:
        lines += ["", "Skipped:"]
        lines += [f"- {model} on {name}: {why}" for model, name, why in skipped]
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma list")
    parser.add_argument(
        "--targets",
        default="all",
        help="comma list of targets (keras: its three runtimes) or runtimes (default: all)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs per row")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="steps per run (default: " + ", ".join(f"{m} {n}" for m, n in MAX_STEPS.items()) + ")",
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--threads", type=int, default=1, help="per run, pinned (0: no setting)")
    parser.add_argument("--out", default="out/handwritten", help="folder of the JSONL and table")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--generated", default=str(ROOT / "generated"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--handwritten", default=str(Path(__file__).resolve().parent), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    wanted = [t for t in args.targets.split(",") if t]
    args.runtimes = list(RUNTIMES) if wanted == ["all"] else expand(wanted)
    unknown = [t for t in wanted if t != "all" and not expand([t])]
    if unknown or not args.runtimes:
        parser.error(f"--targets: unknown {unknown or wanted} (known: {', '.join(RUNTIMES)})")
    args.models = [m for m in args.models.split(",") if m]
    if not args.models or set(args.models) - set(MODELS):
        parser.error(f"--models: a comma list of {', '.join(MODELS)}")
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None, prober: Prober = probe) -> int:
    """Run every pair `--repeat` times, interleaved; exit 1 when a run did not end ok."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs, skipped = plan(
        args.models, args.runtimes, Path(args.generated), Path(args.handwritten), prober
    )
    for model, name, why in skipped:
        print(f"skip {model} on {name}: {why}", file=sys.stderr)
    facts = host.describe()
    records: list[dict[str, Any]] = []
    for pair in pairs:
        for repeat in range(args.repeat):
            for position, which in enumerate(order(repeat), 1):
                done = run_one(pair, which, repeat, position, args, facts)
                append(out / JSONL, done)
                records.append(done)
                rate = _fmt(done["samples_per_second"], ".1f")
                what = f"{rate} samples/s" if done["status"] == "ok" else done["error"]
                print(
                    f"{pair.model} on {pair.runtime}, {which}, repeat {repeat + 1}: {what}",
                    file=sys.stderr,
                )
    steps = (
        f"--max-steps {args.max_steps}"
        if args.max_steps
        else "steps " + ", ".join(f"{m} {n}" for m, n in MAX_STEPS.items())
    )
    header = (
        f"Emitted vs hand-written on {facts['cpu_model']} ({facts['cpus']} CPUs), "
        f"device {args.device}, {args.threads or 'default'} thread(s) per run, {steps}, "
        f"--warmup {args.warmup}, {args.repeat} interleaved repeats; emitted/hand above 1: "
        "emitted faster."
    )
    report = table(summarise(pairs, records), skipped, header)
    (out / MARKDOWN).write_text(report, encoding="utf-8")
    print(report, end="")
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    exit_on_sigterm()  # a killed comparison takes its running script with it
    sys.exit(main())
