"""benchmarks/gpu_session.py, the prepared run for a lent GPU: its budget, its steps' statuses,
its headline table, and a smoke run of every step on the CPU (the files a device call brings
back). Its GPU numbers are a benchmark's, not asserted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_session  # noqa: E402


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_step_runs_only_when_its_time_is_left_and_a_failure_does_not_stop_the_next(
    tmp_path: Path,
) -> None:
    clock = Clock()
    session = gpu_session.Session(tmp_path, 100.0, clock)

    def slow() -> str:
        clock.now += 70
        return "ok: done"

    def broken() -> str:
        raise RuntimeError("no GPU")

    session.step("first", 30, slow)
    session.step("second", 60, lambda: "ok: never")
    clock.now = 0
    session.step("third", 10, broken)
    session.log.close()
    assert session.steps == [
        ("first", "ok: done (70 s)"),
        ("second", "not ok: skipped, 30 s left, needs 60"),
        ("third", "not ok: RuntimeError: no GPU (0 s)"),
    ]
    assert "== second: not ok: skipped" in (tmp_path / "session.log").read_text()


def test_the_headline_row_sums_epochs_and_averages_the_later_ones() -> None:
    results = {"epoch_seconds": [3.0, 1.0, 2.0], "samples_per_second": 1e5, "final_loss": 0.5}
    row = gpu_session.headline_row("bf16", ("--amp", "bf16"), results, 9.5)
    assert row["train_seconds"] == 6.0 and row["later_epochs_mean"] == 1.5
    table = gpu_session.headline_table([row])
    assert table[2] == "| bf16 | 3 | 6.00 | 3.00 | 1.500 | 100,000 | 0.5000 | 9.5 |"


def test_the_full_session_times_every_switch_on_the_gpu_runtimes() -> None:
    full = gpu_session.settings(smoke=False)
    assert full.device == "gpu" and full.epochs == 10
    flags = {flag for _, switches in full.variants for flag in switches}
    assert {"--compile", "--cuda-graphs", "--amp"} <= flags
    assert full.targets == "pytorch,keras[torch],keras[jax]"
    with pytest.raises(SystemExit):
        gpu_session.parse_args(["--out", "x", "--steps", "headline,train"])


@pytest.mark.framework
def test_a_smoke_run_ends_ok_and_writes_only_what_a_device_call_brings_back(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [sys.executable, "benchmarks/gpu_session.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert set(written) == set(gpu_session.BROUGHT_BACK) and len(written) <= 8
    report = (tmp_path / "session.md").read_text()
    for step in gpu_session.STEPS:
        assert f"- {step}: ok: " in report
    (row,) = [json.loads(line) for line in (tmp_path / "headline.jsonl").open()]
    assert row["variant"] == "default" and row["results"]["device"] == "cpu"
    assert row["train_seconds"] > 0 and row["results"]["steps"] == 6
    bench = [json.loads(line) for line in (tmp_path / "bench.jsonl").open()]
    assert {r["runtime"] for r in bench} == {"pytorch"}


def test_a_bench_cut_by_the_budget_still_brings_back_the_table_of_what_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench command is stood in for by one that records a run and is killed (exit 124, as
    Session.run says of a timeout); the report of that record is then made by the real
    `dlspec bench --report`."""
    from test_bench import run as bench_record

    from dlspec.bench.record import append

    session = gpu_session.Session(tmp_path, 300.0)
    real_run = session.run
    calls: list[list[str]] = []

    def run(argv: list[str], timeout: float, *rest: object) -> int:
        calls.append(list(argv))
        if "--report" in argv:
            return real_run(argv, timeout)
        append(Path(argv[argv.index("--out") + 1]) / "bench.jsonl", bench_record("pytorch", 90.0))
        return 124

    monkeypatch.setattr(session, "run", run)
    status = gpu_session.bench(session, gpu_session.settings(smoke=True))
    session.log.close()
    assert status.startswith("not ok: exit 124, wrote bench.jsonl, bench.md, bench.png")
    assert "| pytorch | default (2 reported) | ok |" in (tmp_path / "bench.md").read_text()
    assert len(calls) == 2 and calls[1][1:3] == ["bench", "--report"]


def test_the_wheels_for_the_device_are_the_versions_setup_cfg_pins() -> None:
    """tools/gpu_wheels.sh downloads dlspec's dependencies, Keras and pytest (the check step's)
    at a checkout's versions."""
    wheels = (ROOT / "tools" / "gpu_wheels.sh").read_text()
    pins = (ROOT / "setup.cfg").read_text() + (ROOT / "requirements-dev.txt").read_text()
    pinned = dict(re.findall(r"^\s*([a-z0-9_-]+)==([0-9.]+)", pins, re.M))
    downloaded = dict(re.findall(r"([a-z0-9_-]+)==([0-9.]+)", wheels))
    for name in ("lark", "shtab", "rich", "black", "keras", "pytest"):
        assert downloaded[name] == pinned[name], name
    assert "python-version 3.12" in wheels
