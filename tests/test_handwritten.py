"""The hand-written benchmark scripts parse, and their runner interleaves, times and reports."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from built_runtimes import py2_syntax_error

from dlspec.bench.record import load
from dlspec.runtimes import Runtime

ROOT = Path(__file__).resolve().parent.parent
HANDWRITTEN = ROOT / "benchmarks" / "handwritten"
SCRIPTS = sorted(p for p in HANDWRITTEN.glob("*_*.py"))


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("handwritten_compare", HANDWRITTEN / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


compare = _load()

# A stand-in for a training script: takes the scripts' flags, appends "<kind> <runtime>" to
# $FAKE_LOG, and writes a results JSON whose rate and loss are fixed per file (a plain Python
# child process, run by the runner exactly as a real script is).
FAKE = """
import argparse, json, os, sys, time
parser = argparse.ArgumentParser()
for flag in ("--data", "--device", "--epochs", "--max-steps", "--warmup", "--results"):
    parser.add_argument(flag)
args = parser.parse_args()
backend = os.environ.get("KERAS_BACKEND")
runtime = "keras[%s]" % backend if {target!r} == "keras" else {target!r}
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write("{kind} %s\\n" % runtime)
if {fail!r}:
    sys.stderr.write("Traceback: something broke\\n")
    sys.exit(3)
time.sleep({sleep!r})
results = {{
    "runtime": runtime, "samples_per_second": {rate!r}, "final_loss": {loss!r},
    "timed_samples": 100, "timed_cpu_seconds": {cpu!r},
    "steps": int(args.max_steps), "warmup_steps": int(args.warmup),
    "threads_env": os.environ.get("OMP_NUM_THREADS"), "cpus": sorted(os.sched_getaffinity(0)),
    "argv": sys.argv[1:],
}}
with open(args.results, "w") as f:
    json.dump(results, f)
"""


def fake(
    folder: Path,
    kind: str,
    model: str,
    target: str,
    rate: float,
    loss: float = 0.5,
    fail: bool = False,
    sleep: float = 0.0,
    cpu: float | None = None,
) -> Path:
    """Write a fake script where the runner looks for `kind` (emitted or handwritten)."""
    where = folder / "generated" / target if kind == "emitted" else folder / "handwritten"
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{model}_{target}.py"
    code = FAKE.format(
        kind=kind, target=target, rate=rate, loss=loss, fail=fail, sleep=sleep, cpu=cpu
    )
    path.write_text(code, encoding="utf-8")
    return path


def available(rt: Runtime) -> tuple[bool, str]:
    """A prober that finds every runtime runnable (the fakes need no framework)."""
    return True, "fake 1.0"


def argv(folder: Path, *more: str) -> list[str]:
    return [
        "--generated",
        str(folder / "generated"),
        "--handwritten",
        str(folder / "handwritten"),
        "--out",
        str(folder / "out"),
        "--warmup",
        "2",
        "--max-steps",
        "5",
        *more,
    ]


def record(
    kind: str,
    repeat: int,
    rate: float,
    status: str = "ok",
    loss: float = 0.5,
    cpu: float | None = None,
) -> dict[str, Any]:
    return {
        "model": "imdb_gru",
        "runtime": "pytorch",
        "script": kind,
        "repeat": repeat,
        "status": status,
        "samples_per_second": rate if status == "ok" else None,
        "cpu_seconds_per_sample": cpu if status == "ok" else None,
        "final_loss": loss if status == "ok" else None,
    }


PAIR = compare.Pair("imdb_gru", "pytorch", Path("e.py"), Path("h.py"))


# ---- the hand-written scripts ------------------------------------------------------------------
def test_the_pytorch_tensorflow_and_keras_scripts_are_there_and_say_what_they_follow() -> None:
    for model in compare.MODELS:
        for target in ("pytorch", "tensorflow", "keras"):
            text = (HANDWRITTEN / f"{model}_{target}.py").read_text(encoding="utf-8")
            assert text.startswith('"""') and "hand-written after" in text.split('"""')[1]


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_every_handwritten_script_parses_as_python_3(path: Path) -> None:
    compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.framework
def test_the_cntk_scripts_parse_as_python_2() -> None:
    cntk = [p for p in SCRIPTS if p.name.endswith("_cntk.py")]
    if not cntk:
        pytest.skip("no hand-written CNTK script yet")
    assert [e for e in map(py2_syntax_error, cntk) if e] == []


# ---- the runner's logic ------------------------------------------------------------------------
def test_repeats_alternate_which_script_runs_first() -> None:
    assert [compare.order(k) for k in range(4)] == [
        ("emitted", "handwritten"),
        ("handwritten", "emitted"),
        ("emitted", "handwritten"),
        ("handwritten", "emitted"),
    ]


def test_a_row_has_medians_and_one_ratio_per_repeat_where_both_ran() -> None:
    records = [
        record("emitted", 0, 200.0, loss=0.7),
        record("handwritten", 0, 100.0, loss=0.6),
        record("handwritten", 1, 100.0, loss=0.6),
        record("emitted", 1, 150.0, loss=0.7),
        record("emitted", 2, 90.0, loss=0.8),
        record("handwritten", 2, 0.0, status="failed"),
    ]
    (row,) = compare.summarise([PAIR], records)
    assert row.ratios == [2.0, 1.5]  # repeat 2 has no hand-written rate
    assert row.ratio == 1.75
    assert row.emitted_rate == 150.0 and row.hand_rate == 100.0
    assert row.emitted_loss == 0.7 and row.hand_loss == 0.6
    assert (row.ok, row.runs) == (5, 6)


def test_the_cpu_ratio_is_hand_over_emitted_cpu_a_sample_where_both_report_it() -> None:
    records = [
        record("emitted", 0, 200.0, cpu=0.002),
        record("handwritten", 0, 100.0, cpu=0.003),
        record("handwritten", 1, 100.0, cpu=0.004),
        record("emitted", 1, 150.0, cpu=0.005),
        record("emitted", 2, 150.0, cpu=0.001),
        record("handwritten", 2, 150.0),  # an older script: no CPU time
    ]
    (row,) = compare.summarise([PAIR], records)
    assert row.cpu_ratios == pytest.approx([1.5, 0.8])
    assert row.cpu_ratio == pytest.approx(1.15)
    assert compare.cpu_per_sample({"timed_cpu_seconds": 3.0, "timed_samples": 600}) == 0.005
    assert compare.cpu_per_sample({"timed_cpu_seconds": 0.0, "timed_samples": 600}) is None
    assert compare.cpu_per_sample({"timed_samples": 600}) is None


def test_a_row_without_a_pair_of_ok_runs_has_no_ratio() -> None:
    (row,) = compare.summarise([PAIR], [record("emitted", 0, 0.0, status="timeout")])
    assert row.ratio is None and row.emitted_rate is None and (row.ok, row.runs) == (0, 1)


def test_the_table_shows_ratio_range_losses_and_skips() -> None:
    rows = [
        compare.Row(
            "imdb_gru", "pytorch", 150.0, 100.0, [2.0, 1.5, 0.9], 0.7, 0.6, 6, 6, [1.1, 0.95, 1.0]
        ),
        compare.Row("cifar_vgg", "keras[jax]", 50.0, None, [], 2.3, None, 3, 6),
    ]
    text = compare.table(rows, [("imdb_gru", "cntk", "runtime not available: no cntk")], "Head")
    lines = text.splitlines()
    assert lines[0] == "Head"
    assert (
        "| imdb_gru | pytorch | 150.0 | 100.0 | 1.50 | 0.90-2.00 | 1.00 | 0.95-1.10 | 0.7000 "
        "| 0.6000 | 6/6 |" in lines
    )
    assert "| cifar_vgg | keras[jax] | 50.0 | - | - | - | - | - | 2.3000 | - | 3/6 |" in lines
    assert lines[-2:] == ["Skipped:", "- imdb_gru on cntk: runtime not available: no cntk"]


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "wrote no results JSON"),
        ("{not json", "does not parse"),
        ("[1]", "not an object"),
        ('{"runtime": "pytorch", "samples_per_second": 0, "final_loss": 1}', "not a positive"),
        ('{"runtime": "pytorch", "samples_per_second": 5, "final_loss": NaN}', "not a finite"),
        ('{"runtime": "keras[jax]", "samples_per_second": 5, "final_loss": 1}', "run on pytorch"),
    ],
)
def test_results_that_cannot_be_compared_are_invalid(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    results, why = compare.read_results(path, "pytorch")
    assert results == {} and problem in why


def test_plan_skips_missing_scripts_and_runtimes_probing_each_once(tmp_path: Path) -> None:
    fake(tmp_path, "emitted", "imdb_gru", "pytorch", 1.0)
    fake(tmp_path, "handwritten", "imdb_gru", "pytorch", 1.0)
    fake(tmp_path, "emitted", "cifar_vgg", "pytorch", 1.0)  # no hand-written twin
    fake(tmp_path, "handwritten", "imdb_gru", "keras", 1.0)  # no emitted keras script
    for model in compare.MODELS:
        fake(tmp_path, "emitted", model, "mxnet", 1.0)
        fake(tmp_path, "handwritten", model, "mxnet", 1.0)
    probed: list[str] = []

    def prober(rt: Runtime) -> tuple[bool, str]:
        probed.append(rt.name)
        return (rt.name != "mxnet", "No module named 'mxnet'")

    pairs, skipped = compare.plan(
        compare.MODELS,
        ["pytorch", "keras[jax]", "mxnet"],
        tmp_path / "generated",
        tmp_path / "handwritten",
        prober,
    )
    assert [(p.model, p.runtime) for p in pairs] == [("imdb_gru", "pytorch")]
    assert skipped == [
        ("cifar_vgg", "pytorch", f"no script {tmp_path / 'handwritten' / 'cifar_vgg_pytorch.py'}"),
        ("cifar_vgg", "keras[jax]", f"no script {tmp_path / 'handwritten' / 'cifar_vgg_keras.py'}"),
        ("cifar_vgg", "mxnet", "runtime not available: No module named 'mxnet'"),
        (
            "imdb_gru",
            "keras[jax]",
            f"no script {tmp_path / 'generated' / 'keras' / 'imdb_gru_keras.py'}",
        ),
        ("imdb_gru", "mxnet", "runtime not available: No module named 'mxnet'"),
    ]
    assert probed == ["mxnet", "pytorch"]


# ---- the runner on fake child scripts ---------------------------------------------------------
def test_runs_interleave_pinned_to_one_thread_and_report_the_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.txt"
    monkeypatch.setenv("FAKE_LOG", str(log))
    fake(tmp_path, "emitted", "imdb_gru", "keras", 300.0, loss=0.69, cpu=0.5)
    fake(tmp_path, "handwritten", "imdb_gru", "keras", 200.0, loss=0.68, cpu=0.6)
    code = compare.main(
        argv(tmp_path, "--models", "imdb_gru", "--targets", "keras", "--repeat", "3"), available
    )
    assert code == 0
    runs = log.read_text().split("\n")[:-1]
    # per runtime: emitted first in repeats 1 and 3, hand-written first in repeat 2
    assert runs == [
        f"{kind} keras[{backend}]"
        for backend in ("tensorflow", "jax", "torch")
        for kind in ["emitted", "handwritten", "handwritten", "emitted", "emitted", "handwritten"]
    ]
    records = load(tmp_path / "out" / "compare.jsonl")
    assert len(records) == 18 and {r["status"] for r in records} == {"ok"}
    first = records[0]
    assert first["host"]["cpus"] >= 1 and "cpu_model" in first["host"]
    assert first["results"]["argv"][:10] == [
        "--data",
        "synthetic",
        "--device",
        "auto",
        "--epochs",
        "1",
        "--max-steps",
        "5",
        "--warmup",
        "2",
    ]
    assert first["results"]["threads_env"] == "1" and len(first["results"]["cpus"]) == 1
    assert first["cpu_set"] == first["results"]["cpus"]
    shown = capsys.readouterr().out
    for backend in ("tensorflow", "jax", "torch"):
        row = (
            f"| imdb_gru | keras[{backend}] | 300.0 | 200.0 | 1.50 | 1.50-1.50 | 1.20 | 1.20-1.20 "
            "| 0.6900 | 0.6800 | 6/6 |"
        )
        assert row in shown
    assert (tmp_path / "out" / "compare.md").read_text() == shown


def test_a_failed_or_hung_run_is_recorded_and_the_exit_status_is_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log.txt"))
    fake(tmp_path, "emitted", "imdb_gru", "pytorch", 300.0)
    fake(tmp_path, "handwritten", "imdb_gru", "pytorch", 200.0, fail=True)
    fake(tmp_path, "emitted", "cifar_vgg", "pytorch", 300.0, sleep=30.0)
    fake(tmp_path, "handwritten", "cifar_vgg", "pytorch", 200.0)
    code = compare.main(
        argv(tmp_path, "--targets", "pytorch", "--repeat", "1", "--timeout", "1"), available
    )
    assert code == 1
    records = {(r["model"], r["script"]): r for r in load(tmp_path / "out" / "compare.jsonl")}
    failed = records[("imdb_gru", "handwritten")]
    assert failed["status"] == "failed"
    assert failed["error"] == "exit status 3: Traceback: something broke"
    assert records[("cifar_vgg", "emitted")]["status"] == "timeout"
    assert records[("cifar_vgg", "handwritten")]["status"] == "ok"
    shown = capsys.readouterr().out
    assert "| imdb_gru | pytorch | 300.0 | - | - | - | - | - | 0.5000 | - | 1/2 |" in shown


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--targets", "nope"], ["--models", "mnist_mlp"], ["--repeat", "0"]):
        with pytest.raises(SystemExit) as exit_:
            compare.parse_args(bad)
        assert exit_.value.code == 2
    assert "unknown ['nope']" in capsys.readouterr().err


def test_targets_expand_keras_and_all() -> None:
    assert compare.parse_args(["--targets", "keras,pytorch"]).runtimes == [
        "keras[tensorflow]",
        "keras[jax]",
        "keras[torch]",
        "pytorch",
    ]
    assert len(compare.parse_args([]).runtimes) == 7


# ---- for real ----------------------------------------------------------------------------------
@pytest.mark.framework
def test_the_runner_times_pytorch_imdb_gru_against_its_handwritten_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = compare.main(
        [
            "--models",
            "imdb_gru",
            "--targets",
            "pytorch",
            "--repeat",
            "1",
            "--max-steps",
            "3",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0, (out / "compare.jsonl").read_text()
    rows = [line for line in capsys.readouterr().out.splitlines() if "| imdb_gru | pytorch" in line]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    emitted, hand, ratio = float(cells[2]), float(cells[3]), float(cells[4])
    assert emitted > 0 and hand > 0 and ratio == pytest.approx(emitted / hand, abs=0.01)
    assert float(cells[6]) > 0  # both scripts report their timed steps' CPU seconds
    assert 0.6 < float(cells[8]) < 0.8 and 0.6 < float(cells[9]) < 0.8  # two classes: ln 2
    assert cells[10] == "2/2"
    records = [json.loads(line) for line in (out / "compare.jsonl").open()]
    assert [r["results"]["script"] for r in records if r["script"] == "handwritten"] == [
        "handwritten"
    ]
    assert all(r["results"]["threads"] == 1 for r in records)
