"""A seeded mutation fuzzer for dlspec: hostile spec bytes in, only dlspec's own errors out.

Run it as `python tools/fuzz.py` (tools/ is then on the import path, for its two modules:
fuzz_mutations, the corpus and mutations, and fuzz_oracle, the checks)."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from fuzz_mutations import MUTATORS, ROOT, WEIGHTS, Seed, load_corpus
from fuzz_oracle import CASE_SECONDS, Finding, Outcome, run_case

from dlspec.backends import TARGETS

DEFAULT_FAILURES = ROOT / "out" / "fuzz-failures"
VALID_SHARE = 0.7  # how often a case starts from a spec that compiles rather than a bad fixture

# ---- cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One fuzz input, reproducible from (seed, index)."""

    seed: int
    index: int
    base: str
    mutations: tuple[str, ...]
    data: bytes
    targets: tuple[str, ...]


def case_targets(index: int) -> tuple[str, ...]:
    """A rotating target: each one in turn, and every target at once every few cases."""
    names = tuple(TARGETS)
    turn = index % (len(names) + 1)
    return names if turn == len(names) else (names[turn],)


def make_case(seed: int, index: int, corpus: Sequence[Seed]) -> Case:
    """Derive case `index` of `seed` (for a given corpus): a corpus file, mostly one that
    compiles, and up to four seeded mutations (none one time in ten)."""
    rng = random.Random(f"dlspec-fuzz:{seed}:{index}")
    valid = [s for s in corpus if not s.name.startswith("tests/fixtures/")]
    base = rng.choice(valid if valid and rng.random() < VALID_SHARE else corpus)
    data, applied = base.data, []
    count = rng.choice((0, 1, 1, 1, 1, 2, 2, 2, 3, 4))
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    texts = [s.data for s in corpus]
    for name in rng.choices(names, weights, k=count):
        data = MUTATORS[name](rng, data, texts)
        applied.append(name)
    return Case(seed, index, base.name, tuple(applied), data, case_targets(index))


# ---- the campaign ------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A finding on one case, with what it takes to reproduce it."""

    seed: int
    index: int
    base: str
    mutations: tuple[str, ...]
    finding: Finding

    @property
    def signature(self) -> str:
        """Findings with the same signature very likely share a cause."""
        return f"{self.finding.kind}: {self.finding.key}"


@dataclass
class Stats:
    """Counts of a run: cases, outcomes, failures, time."""

    seed: int
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    slowest: float = 0.0


OUTCOME_NAMES = {0: "ok", 1: "spec error", 2: "usage error"}


def outcome_name(outcome: Outcome) -> str:
    """ok, spec error, usage error, or crashed."""
    if outcome.error is not None:
        return "crashed"
    return OUTCOME_NAMES.get(outcome.rc or 0, f"exit {outcome.rc}")


_CORPUS: list[Seed] = []


def _corpus() -> list[Seed]:
    if not _CORPUS:
        _CORPUS.extend(load_corpus())
    return _CORPUS


def fuzz_one(
    seed: int, index: int, seconds: float = CASE_SECONDS
) -> tuple[str, list[Failure], float]:
    """Run case (seed, index): its outcome name, its failures, and how long it took. The time
    limit is `seconds` per target the case compiles for (every target at once is the case that
    compiles DenseNet-121 five times)."""
    case = make_case(seed, index, _corpus())
    outcome, findings = run_case(case.data, case.targets, seconds=seconds * len(case.targets))
    failures = [Failure(seed, index, case.base, case.mutations, f) for f in findings]
    return outcome_name(outcome), failures, outcome.seconds


def save_failure(failure: Failure, folder: Path) -> Path:
    """Write the failing input and a note on how to replay it; return the input's path."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{failure.seed}-{failure.index}"
    spec = folder / f"{stem}.dl"
    if not spec.exists():
        case = make_case(failure.seed, failure.index, _corpus())
        spec.write_bytes(case.data)
    note = folder / f"{stem}.txt"
    with note.open("a", encoding="utf-8", errors="backslashreplace") as f:
        f.write(f"{failure.signature}\n  {failure.finding.detail}\n")
        f.write(f"  base {failure.base}, mutations {', '.join(failure.mutations) or '-'}\n")
        f.write(f"  replay: .venv/bin/python tools/fuzz.py --replay {stem.replace('-', ':')}\n")
    return spec


def _record(stats: Stats, result: tuple[str, list[Failure], float], folder: Optional[Path]) -> None:
    name, failures, seconds = result
    stats.cases += 1
    stats.outcomes[name] += 1
    stats.slowest = max(stats.slowest, seconds)
    for failure in failures:
        stats.failures.append(failure)
        if folder is not None:
            save_failure(failure, folder)


def _crash(seed: int, index: int, err: BaseException) -> tuple[str, list[Failure], float]:
    case = make_case(seed, index, _corpus())
    finding = Finding("worker-crash", type(err).__name__, f"the worker process died: {err}")
    return "crashed", [Failure(seed, index, case.base, case.mutations, finding)], 0.0


def fuzz_serial(
    seed: int, seconds: float, folder: Optional[Path], case_seconds: float = CASE_SECONDS
) -> Stats:
    """Run cases 0, 1, ... in this process until `seconds` have passed."""
    stats, began = Stats(seed), time.monotonic()
    index = 0
    while time.monotonic() - began < seconds:
        _record(stats, fuzz_one(seed, index, case_seconds), folder)
        index += 1
    stats.seconds = time.monotonic() - began
    return stats


def fuzz_parallel(
    seed: int, seconds: float, folder: Optional[Path], jobs: int, case_seconds: float = CASE_SECONDS
) -> Stats:
    """Run cases in `jobs` worker processes until `seconds` have passed."""
    stats, began, index = Stats(seed), time.monotonic(), 0
    pool = ProcessPoolExecutor(jobs)
    pending: dict[Future, int] = {}
    try:
        while True:
            while time.monotonic() - began < seconds and len(pending) < 2 * jobs:
                pending[pool.submit(fuzz_one, seed, index, case_seconds)] = index
                index += 1
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                case = pending.pop(future)
                try:
                    _record(stats, future.result(), folder)
                except BrokenProcessPool as err:
                    _record(stats, _crash(seed, case, err), folder)
                    pool.shutdown(cancel_futures=True)
                    pool = ProcessPoolExecutor(jobs)
                    resubmit = [
                        pool.submit(fuzz_one, seed, i, case_seconds) for i in pending.values()
                    ]
                    pending = dict(zip(resubmit, pending.values(), strict=True))
                    break
    finally:
        pool.shutdown(cancel_futures=True)
    stats.seconds = time.monotonic() - began
    return stats


def summary(stats: Stats, folder: Optional[Path] = None) -> str:
    """The report: counts, throughput, and each distinct failure with its first reproduction."""
    rate = stats.cases / stats.seconds if stats.seconds else 0.0
    outcomes = ", ".join(f"{n} {name}" for name, n in sorted(stats.outcomes.items()))
    lines = [
        f"dlspec fuzz: seed {stats.seed}: {stats.cases} cases in {stats.seconds:.1f} s "
        f"({rate:.2f} cases/s, slowest {stats.slowest:.1f} s): {outcomes or 'none'}; "
        f"{len(stats.failures)} failure(s)"
    ]
    groups: dict[str, list[Failure]] = {}
    for failure in stats.failures:
        groups.setdefault(failure.signature, []).append(failure)
    if groups:
        lines.append(f"{len(groups)} distinct failure(s):")
    for signature, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        first = members[0]
        where = f" -> {folder}/{first.seed}-{first.index}.dl" if folder else ""
        lines.append(f"  {len(members):5d}x {signature}")
        lines.append(f"         e.g. --replay {first.seed}:{first.index}{where}")
        lines.append(f"         {first.finding.detail[:300]!r}")
    return "\n".join(lines)


# ---- replay and shrinking ----------------------------------------------------------------


def signatures(data: bytes, targets: Sequence[str]) -> set[str]:
    """The failure signatures of one input."""
    _, findings = run_case(data, targets)
    return {f"{f.kind}: {f.key}" for f in findings}


def _chunks(data: bytes, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, len(data), size):
        yield start, min(len(data), start + size)


def shrink(data: bytes, targets: Sequence[str], signature: str, budget: float = 60.0) -> bytes:
    """Delete ever smaller chunks while `signature` still reproduces (greedy ddmin, bounded)."""
    deadline = time.monotonic() + budget
    size = max(1, len(data) // 2)
    while size >= 1 and time.monotonic() < deadline:
        changed = False
        for start, end in _chunks(data, size):
            if time.monotonic() >= deadline:
                break
            smaller = data[:start] + data[end:]
            if smaller != data and signature in signatures(smaller, targets):
                data, changed = smaller, True
                break
        if not changed:
            size //= 2
    return data


def replay(seed: int, index: int, do_shrink: bool) -> int:
    """Re-run one case verbosely; print its input, output and findings."""
    case = make_case(seed, index, _corpus())
    outcome, findings = run_case(case.data, case.targets)
    print(f"case {seed}:{index} from {case.base}, mutations {list(case.mutations)}")
    print(f"targets {list(case.targets)}, {len(case.data)} bytes: {case.data[:600]!r}")
    print(f"rc {outcome.rc}, {outcome.seconds:.2f} s, error {outcome.error!r} at {outcome.frame}")
    print("stderr:\n" + outcome.stderr[:3000])
    for finding in findings:
        print(f"FAIL {finding.kind}: {finding.key}\n  {finding.detail}")
        if do_shrink and finding.kind != "timeout":  # a hang costs its whole limit per try
            small = shrink(case.data, case.targets, f"{finding.kind}: {finding.key}")
            print(f"  shrunk to {len(small)} bytes: {small[:600]!r}")
    return 1 if findings else 0


# ---- command line ------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The fuzzer's options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="run this long (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: from the clock)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--case-seconds",
        type=float,
        default=CASE_SECONDS,
        help="a case running longer than this per target it compiles fails",
    )
    parser.add_argument("--failures", type=Path, default=DEFAULT_FAILURES, help="save inputs here")
    parser.add_argument("--replay", metavar="SEED:INDEX", help="re-run one case verbosely")
    parser.add_argument("--shrink", action="store_true", help="with --replay: minimise the input")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Fuzz for --seconds (or replay one case); exit 1 when any property failed."""
    args = parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    if args.replay:
        seed, index = (int(p) for p in args.replay.split(":"))
        return replay(seed, index, args.shrink)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    print(f"dlspec fuzz: seed {seed}, {args.seconds:g} s, {args.jobs} job(s)", flush=True)
    if args.jobs > 1:
        stats = fuzz_parallel(seed, args.seconds, args.failures, args.jobs, args.case_seconds)
    else:
        stats = fuzz_serial(seed, args.seconds, args.failures, args.case_seconds)
    print(summary(stats, args.failures))
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
