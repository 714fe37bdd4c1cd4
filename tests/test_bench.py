"""dlspec bench without a framework: records, JSONL, report, charts, deadlines, usage errors."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from built_runtimes import ready

from dlspec.bench import record, report, session
from dlspec.bench.chart import bar_chart, error_bars, thread_chart
from dlspec.bench.process import run_child
from dlspec.bench.threads import cpu_set, thread_environment
from dlspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "examples" / "mnist_mlp.dl")
PNG = b"\x89PNG\r\n\x1a\n"


def results(epoch_seconds: list[float], steps: int, rate: Optional[float]) -> dict[str, Any]:
    """The fields of a script's results that bench's measurements read."""
    return {
        "epoch_seconds": epoch_seconds,
        "steps": steps,
        "batch_size": 10,
        "samples_per_second": rate,
        "final_loss": 0.5,
        "test_accuracy": 0.75,
    }


def run(runtime: str, rate: Optional[float], status: str = "ok", **extra: Any) -> dict[str, Any]:
    """A hand-written bench record of one run of spec a.dl."""
    measured = record.measurements(results([3.0, 1.0], 20, rate), 6.0) if rate else {}
    base = {
        "spec": extra.pop("spec", "a.dl"),
        "kind": extra.pop("kind", "training"),
        "runtime": runtime,
        "status": status,
        "error": None if status == "ok" else "exit status 1: boom",
        "settings": {"threads": extra.pop("threads", None), "device": "cpu", "epochs": 2},
        "host": {"cpu_model": "Test CPU", "cpus": 2, "gpus": []},
        **dict.fromkeys(record.measurements({}, 0.0)),
        **measured,
        "peak_rss_mb": 100.0,
        "versions": {
            "framework": "torch",
            "framework_version": "9.9",
            "backend": "torch",
            "backend_version": "9.9",
            "device": "cpu",
        },
        "switches": {"threads": 2},
    }
    return {**base, **extra}


def test_steady_epoch_leaves_out_the_first_and_a_cut_last() -> None:
    assert record.steady_epoch(results([5.0, 2.0, 4.0], 30, 10.0)) == (
        3.0,
        "mean of the epochs after the first",
    )
    # the last epoch ended at --max-steps 25: only the second counts
    assert record.steady_epoch(results([5.0, 2.0, 1.0], 25, 10.0), 25)[0] == 2.0
    # one epoch cut by --max-steps is no whole epoch
    assert record.steady_epoch(results([5.0], 20, 10.0), 20)[0] is None
    # one whole epoch: its samples at the timed rate
    assert record.steady_epoch(results([5.0], 20, 100.0))[0] == pytest.approx(2.0)
    assert record.steady_epoch({"epoch_seconds": []})[0] is None


def test_warmup_is_the_epochs_time_beyond_their_steps_at_the_timed_rate() -> None:
    # 20 steps of 10 samples at 100 samples/s: 2 s; the epochs took 5 s
    assert record.warmup_seconds(results([4.0, 1.0], 20, 100.0)) == pytest.approx(3.0)
    assert record.warmup_seconds(results([4.0], 20, None)) is None
    m = record.measurements(results([4.0, 1.0], 20, 100.0), 9.0)
    assert m["outside_epochs_seconds"] == pytest.approx(4.0)
    assert m["first_epoch_seconds"] == 4.0


def test_jsonl_appends_one_line_per_record_and_reads_them_back(tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    record.append(path, run("pytorch", 100.0))
    record.append(path, run("mxnet", None, "timeout"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["status"] == "timeout"
    assert [r["runtime"] for r in record.load(path)] == ["pytorch", "mxnet"]
    path.write_text(lines[0] + "\n[1]\n")
    with pytest.raises(ValueError, match=r"bench.jsonl:2: not a JSON object"):
        record.load(path)


def test_stderr_tail_keeps_the_last_non_empty_lines() -> None:
    assert record.stderr_tail("a\n\nb\nc\n", 2) == ["b", "c"]


def test_report_orders_runtimes_and_gives_ratios_to_the_fastest() -> None:
    records = [run("mxnet", 200.0), run("cntk", None, "timeout"), run("pytorch", 100.0)]
    text = report.report(records)
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    assert [r.split(" | ")[0] for r in rows] == ["| pytorch", "| mxnet", "| cntk"]
    assert "| 2.00x |" in rows[0] and "| 1.00x |" in rows[1]
    assert "timeout: exit status 1: boom" in rows[2]
    assert "Test CPU, 2 CPUs" in text
    assert report.report(list(reversed(records))) == text  # ordering does not follow the input


def test_repeats_are_summarised_by_the_median_run() -> None:
    records = [run("pytorch", r, repeat=i) for i, r in enumerate((300.0, 100.0, 200.0))]
    [row] = report.group(records)["a.dl"]
    assert row.median is not None and row.median["samples_per_second"] == 200.0
    records.append(run("pytorch", None, "failed", repeat=3))
    [row] = report.group(records)["a.dl"]
    assert row.status == "ok 3/4"


def test_thread_table_and_inference_columns() -> None:
    records = [run("pytorch", r, threads=n) for n, r in ((1, 100.0), (2, 150.0), (4, 180.0))]
    records.append(run("pytorch", 50.0, spec="b.dl", kind="inference"))
    groups = report.group(records)
    head, cells = report.thread_table(groups["a.dl"]) or ((), [])
    assert head == ("runtime", "1 thread(s)", "2 thread(s)", "4 thread(s)", "speed-up")
    assert cells == [["pytorch", "100.0", "150.0", "180.0", "1.80x"]]
    assert report.thread_table(groups["b.dl"]) is None
    text = report.report(records)
    assert "Thread scaling (samples/s):" in text and "s/1000 samples" in text


def test_charts_are_png_files(tmp_path: Path) -> None:
    records = [run("pytorch", r, threads=n) for n, r in ((1, 100.0), (2, 150.0))]
    records.append(run("mxnet", None, "failed", threads=1))
    groups = report.group(records)
    bar_chart(groups, tmp_path / "a.png")
    thread_chart(groups, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes().startswith(PNG)
    assert (tmp_path / "b.png").read_bytes().startswith(PNG)
    assert (tmp_path / "a.png").stat().st_size > 5000


def test_thread_lines_are_each_runtimes_rates_in_thread_order() -> None:
    from dlspec.bench.chart import _thread_lines

    records = [run("pytorch", r, threads=n) for n, r in ((4, 180.0), (1, 100.0), (2, 150.0))]
    records += [run("mxnet", None, "failed", threads=1), run("mxnet", 90.0, threads=2)]
    records.append(run("cntk", None, "failed", threads=1))
    lines = _thread_lines(report.group(records)["a.dl"])
    assert lines == [("pytorch", (1, 2, 4), (100.0, 150.0, 180.0)), ("mxnet", (2,), (90.0,))]


def test_a_child_past_its_deadline_is_killed_with_its_group(tmp_path: Path) -> None:
    marker = tmp_path / "alive"
    # the grandchild would write the marker after 3 s if the group survived the kill
    script = f"(sleep 3; touch {marker}) & sleep 30"
    done = run_child(["sh", "-c", script], dict(os.environ), tmp_path / "o", tmp_path / "e", 1)
    assert done.timed_out and done.returncode is None and 1 <= done.wall_seconds < 3
    time.sleep(3)
    assert not marker.exists()


def test_peak_memory_is_the_childs(tmp_path: Path) -> None:
    """Not the parent's: Linux passes an exec'ing process the peak of the memory it replaces, so
    a child exec'd straight from this 1 GB process would report at least 1 GB."""
    ballast = bytearray(1024 * 2**20)
    ballast[::4096] = b"b" * len(ballast[::4096])  # resident, not just reserved
    grab = "x = bytearray(300 * 2**20); x[::4096] = b'a' * len(x[::4096])"
    done = run_child(
        [sys.executable, "-c", grab], dict(os.environ), tmp_path / "o", tmp_path / "e", 60
    )
    assert done.returncode == 0 and not done.timed_out
    assert done.peak_rss_mb is not None and 300 < done.peak_rss_mb < 600


def test_gpu_samples_carry_their_time_and_the_timed_window_is_averaged_apart(
    tmp_path: Path,
) -> None:
    """Each GPU sample is kept with its wall-clock time; the summary's timed mean takes only the
    samples inside the script's timed steps ([timed_until - timed_seconds, timed_until]). The
    sampler here is a counter standing in for nvidia-smi, which this machine lacks."""
    readings = iter(
        [(100.0, 0.0), (900.0, 80.0), (900.0, 90.0), (900.0, 70.0)] + [(100.0, 0.0)] * 9
    )
    before = time.time()
    done = run_child(
        [sys.executable, "-c", "import time; time.sleep(3.6)"],
        dict(os.environ),
        tmp_path / "o",
        tmp_path / "e",
        60,
        gpu_sampler=lambda: next(readings),
    )
    after = time.time()
    times = [t for t, _, _ in done.gpu_samples]
    assert len(times) >= 4 and times == sorted(times) and before <= times[0] <= times[-1] <= after
    # the script's timed steps: from just before the second sample to just after the fourth
    results = {"timed_until": times[3] + 0.01, "timed_seconds": times[3] - times[1] + 0.02}
    window = record.timed_window(results)
    summary = record.gpu_summary(done.gpu_samples, 100.0, window)
    assert summary is not None and summary["peak_memory_mb"] == 800.0
    assert summary["timed_samples"] == 3 and summary["timed_mean_utilization_percent"] == 80.0
    assert summary["samples"] == len(times)
    assert summary["mean_utilization_percent"] == 240.0 / len(times)
    assert record.timed_window({"timed_until": None, "timed_seconds": 1.0}) is None
    no_window = record.gpu_summary(done.gpu_samples, None, None)
    assert no_window is not None and no_window["timed_mean_utilization_percent"] is None


def test_thread_settings() -> None:
    env = thread_environment(2)
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "2"
    assert "XLA_FLAGS" not in env and "XLA_FLAGS" in thread_environment(1)
    assert thread_environment(None) == {}
    assert cpu_set(2, [3, 1, 2]) == [1, 2] and cpu_set(4, [0, 1]) is None


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--threads", "0"], "must be >= 1"),
        (["--threads", "1,x"], "not an integer"),
        (["--repeat", "0"], "must be >= 1"),
        (["--quick", "--data", "."], "--quick runs on synthetic data"),
        (["--data", "no/such/folder"], "no such file or folder"),
        (["--targets", "caffe"], "unknown target 'caffe'"),
        (["--device", "tpu"], "invalid choice"),
    ],
)
def test_usage_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", MLP, "--out", str(tmp_path / "b"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlspec: error: ") and message in err
    assert not (tmp_path / "b").exists()


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    assert main(["bench", MLP, "--out", str(tmp_path / "f")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_runtimes_that_cannot_start_or_hang_are_recorded_and_the_rest_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # no framework runs: CNTK's interpreter is missing, MXNet's sleeps past --timeout
    monkeypatch.setenv("DLSPEC_PYTHON_CNTK", str(tmp_path / "no-python"))
    monkeypatch.setenv("DLSPEC_PYTHON_MXNET", "sh -c 'sleep 30' sh")
    out = tmp_path / "b"
    code = main(["bench", MLP, "--targets", "cntk,mxnet", "--timeout", "1", "--out", str(out)])
    assert code == 1
    records = record.load(out / session.JSONL)
    assert [(r["runtime"], r["status"]) for r in records] == [
        ("cntk", "unavailable"),
        ("mxnet", "timeout"),
    ]
    assert "no-python" in next(r for r in records if r["runtime"] == "cntk")["error"]
    assert (out / "bench.png").read_bytes().startswith(PNG)
    table = capsys.readouterr().out
    assert "| mxnet | default | timeout: killed after 1 s |" in table


def test_every_run_compiles_from_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's warm-up holds its whole compilation: torch.compile's caches in an empty folder of
    the run's own (gone after it), JAX's persistent cache off even where the caller set one."""
    seen = tmp_path / "env.txt"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    command = f"sh -c 'env > {seen}; ls -A \"$TORCHINDUCTOR_CACHE_DIR\" >> {seen} 2>&1; true' sh"
    monkeypatch.setenv("DLSPEC_PYTHON_MXNET", command)
    main(["bench", MLP, "--targets", "mxnet", "--out", str(tmp_path / "b"), "-q"])
    lines = seen.read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert env["JAX_ENABLE_COMPILATION_CACHE"] == "false"
    inductor = Path(env["TORCHINDUCTOR_CACHE_DIR"])
    assert (
        inductor != tmp_path / "inductor"
        and inductor.parent == Path(env["TRITON_CACHE_DIR"]).parent
    )
    assert "No such file or directory" in lines[-1]  # nothing in it when the run starts
    assert not inductor.parent.exists()  # removed after the run


@pytest.mark.framework
def test_bench_runs_pytorch_and_mxnet_and_reports_a_missing_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ready("pytorch")
    ready("mxnet")
    monkeypatch.setenv("DLSPEC_PYTHON_CNTK", str(tmp_path / "no-python"))
    out = tmp_path / "b"
    flags = ["--quick", "--max-steps", "8", "--warmup", "2", "--threads", "1"]
    assert main(["bench", MLP, "--targets", "pytorch,mxnet,cntk", "--out", str(out), *flags]) == 1
    records = {r["runtime"]: r for r in record.load(out / session.JSONL)}
    assert {k: r["status"] for k, r in records.items()} == {
        "pytorch": "ok",
        "mxnet": "ok",
        "cntk": "unavailable",
    }
    for name in ("pytorch", "mxnet"):
        r = records[name]
        assert r["results"]["steps"] == 8 and r["results"]["warmup_steps"] == 2
        assert r["samples_per_second"] > 0 and r["final_loss"] is not None
        assert r["seconds_per_epoch"] is None  # the only epoch was cut at 8 steps
        assert 50 < r["peak_rss_mb"] < 8000 and r["wall_seconds"] > r["first_epoch_seconds"]
        assert r["thread_environment"]["OMP_NUM_THREADS"] == "1" and len(r["cpu_set"]) == 1
        assert r["versions"]["framework"] == {"pytorch": "torch"}.get(name, name)
    assert records["pytorch"]["switches"]["threads"] == 1  # torch honoured OMP_NUM_THREADS
    assert records["pytorch"]["results"]["cpus"] == 1  # and the CPU set
    table = capsys.readouterr().out
    assert (out / "bench.md").read_text() == table
    assert "| pytorch | 1 | ok |" in table and "| mxnet | 1 | ok |" in table
    assert "| cntk | 1 | unavailable: runtime not available: cannot start" in table
    assert (out / "bench.png").read_bytes().startswith(PNG)
    assert (out / "scripts" / "pytorch" / "mnist_mlp_pytorch.py").is_file()
    # again with --resume: only cntk (not ok) runs; the report is the same
    assert (
        main(
            ["bench", MLP, "--targets", "pytorch,mxnet,cntk", "--out", str(out), *flags, "--resume"]
        )
        == 1
    )
    assert [r["runtime"] for r in record.load(out / session.JSONL)][3:] == ["cntk"]
    assert capsys.readouterr().out == table


@pytest.mark.parametrize(
    "flags, threads",
    [([], [None]), (["--quick"], [1]), (["--quick", "--threads", "2,1"], [2, 1])],
)
def test_quick_runs_one_thread_unless_told(flags: list[str], threads: list) -> None:
    from dlspec.bench.command import bench_threads
    from dlspec.cli import make_parser

    args = make_parser().parse_args(["bench", MLP, *flags])
    assert bench_threads(args) == threads


def test_default_suite_is_the_seed_benchmarks_in_examples(tmp_path: Path) -> None:
    from dlspec.bench.suite import DEFAULT_SUITE, default_specs

    specs = default_specs(tmp_path)  # a checkout: found beside the package, whatever the cwd
    assert [Path(s).stem for s in specs] == list(DEFAULT_SUITE)
    assert all(Path(s).is_file() for s in specs)
    assert "resnet50" in DEFAULT_SUITE  # the inference benchmark (seconds per 1000 images)
    keras_examples = {"mnist_mlp", "mnist_cnn", "keras_cifar10_cnn"}
    keras_examples |= {"mnist_hierarchical_rnn", "babi_rnn"}
    comparison = {"comparison_mnist_cnn", "daquar_vqa"}  # the three-framework comparison's
    assert keras_examples | comparison <= set(DEFAULT_SUITE)
    root = Path(specs[0]).parent.parent  # the checkout: from inside it, paths relative to it
    assert default_specs(root)[0] == "examples/cifar_vgg.dl"


def test_no_spec_and_no_suite_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dlspec.bench.suite as suite

    monkeypatch.setattr(suite, "examples_folder", lambda cwd=None: None)
    assert main(["bench", "--out", str(tmp_path / "b")]) == 2
    assert "no examples/ folder holding the default suite" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def _alive(pid: int) -> bool:
    """pid runs (a zombie, killed and not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


RUNNER = """
import os, sys
from pathlib import Path
from dlspec.bench.process import exit_on_sigterm, run_child
exit_on_sigterm()
d = Path(sys.argv[1])
code = "import os, time; open(%r, 'w').write(str(os.getpid())); time.sleep(60)" % str(d / "pid")
run_child([sys.executable, "-c", code], dict(os.environ), d / "out", d / "err", 120)
"""


def test_a_terminated_runner_takes_its_child_with_it(tmp_path: Path) -> None:
    """SIGTERM to a process waiting in run_child (exit_on_sigterm installed, as compare.py does)
    kills the child's process group: the child leads its own session and would outlive it."""
    import signal
    import subprocess

    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(runner), str(tmp_path)], env=env)
    deadline = time.monotonic() + 60
    pid_file = tmp_path / "pid"
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    for _ in range(100):
        if not _alive(child):
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the child outlived its runner")


# ---- data-parallel runs ------------------------------------------------------------------------


def test_replica_counts_are_rows_of_their_own_and_a_scaling_table() -> None:
    records = [run("pytorch", 100.0, threads=1), run("pytorch", 180.0, threads=1, replicas=2)]
    records.append(run("mxnet", None, "unsupported", threads=1, replicas=2))
    groups = report.group(records)
    assert [row.name for row in groups["a.dl"]] == [
        "pytorch",
        "pytorch, 2 replicas",
        "mxnet, 2 replicas",
    ]
    head, cells = report.replica_table(groups["a.dl"]) or ((), [])
    assert head == ("runtime", "1 replica(s)", "2 replica(s)", "per replica", "speed-up")
    assert cells[0] == ["pytorch, 1 thread(s)", "100.0", "180.0", "90.0", "1.80x"]
    assert cells[1] == ["mxnet, 1 thread(s)", "", "", "", ""]
    assert report.replica_table(groups["a.dl"][:1]) is None
    text = report.report(records)
    assert (
        "| pytorch, 2 replicas | 1 (2 reported) | ok |" in text and "Data-parallel scaling" in text
    )


def test_plan_runs_replicas_where_a_launcher_is_and_records_why_not_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlspec.backends import TARGETS
    from dlspec.bench.runner import job_command, job_cpus
    from dlspec.frontend.load import build
    from dlspec.runtimes import runtime

    monkeypatch.setattr(TARGETS["mxnet"], "replica_launcher", ())
    monkeypatch.setattr(TARGETS["mxnet"], "replica_flags", ())
    train = build(Path(MLP).read_text(), MLP).model
    infer = build("model f {\n input x: float32[6]\n dense(3)\n}\n", "f.dl").model
    specs = [("a.dl", train), ("f.dl", infer)]
    planned = session.plan(specs, ["pytorch", "mxnet"], [1], 1, tmp_path, [1, 2])
    ran = [(j.spec, j.runtime, j.replicas) for j in planned.jobs]
    assert ran == [
        ("a.dl", "pytorch", 1),
        ("a.dl", "pytorch", 2),
        ("a.dl", "mxnet", 1),
        ("f.dl", "pytorch", 1),
        ("f.dl", "mxnet", 1),
    ]
    refused = {(r["spec"], r["runtime"]): r["error"] for r in planned.unsupported}
    assert refused[("a.dl", "mxnet")] == "data-parallel runs are not yet supported on this target"
    assert "an inference script runs as one process, not 2 replicas" in refused[("f.dl", "pytorch")]
    double = planned.jobs[1]
    assert double.folder.name == "mnist_mlp-pytorch-x2-t1" and "2 replicas" in double.label
    argv = job_command(double, runtime("pytorch"), ["--max-steps", "3"])
    assert argv[-4:] == ["--nproc_per_node", "2", str(double.script), "--max-steps", "3"][-4:]
    assert "torch.distributed.run" in argv
    monkeypatch.setattr("dlspec.bench.runner.host_cpus", lambda: {0, 1, 2, 3})
    assert job_cpus(double) == [0, 1]  # a thread for each replica


@pytest.mark.framework
def test_bench_runs_pytorch_as_two_replicas_beside_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ready("pytorch")
    out = tmp_path / "b"
    flags = ["--quick", "--max-steps", "6", "--warmup", "2", "--replicas", "1,2"]
    assert main(["bench", MLP, "--targets", "pytorch", "--out", str(out), *flags]) == 0
    records = {r["replicas"]: r for r in record.load(out / session.JSONL)}
    assert {k: r["status"] for k, r in records.items()} == {1: "ok", 2: "ok"}
    double = records[2]
    assert double["results"]["replicas"] == 2 and "torch.distributed.run" in double["command"]
    assert double["samples_per_second_per_replica"] == pytest.approx(
        double["samples_per_second"] / 2
    )
    assert double["results"]["steps"] == 6 and len(double["cpu_set"]) == 2
    table = capsys.readouterr().out
    assert "| pytorch, 2 replicas | 1 | ok |" in table and "Data-parallel scaling" in table


# ---- --resume ----------------------------------------------------------------------------------


def _planned(tmp_path: Path) -> session.Planned:
    from dlspec.frontend.load import build

    model = build(Path(MLP).read_text(), MLP).model
    return session.plan([("a.dl", model)], ["pytorch", "mxnet"], [1], 1, tmp_path)


def test_resume_reuses_only_ok_runs_of_the_same_script_settings_and_host(tmp_path: Path) -> None:
    from dlspec.bench.runner import Settings, asked

    planned = _planned(tmp_path)
    torch_job, mx_job = planned.jobs
    assert len(torch_job.script_sha256) == 64 and torch_job.script_sha256 != mx_job.script_sha256
    settings, facts = Settings(epochs=1), {"cpu_model": "Test CPU", "cpus": 2, "gpus": []}
    jsonl = tmp_path / "bench.jsonl"

    def left(*records: dict[str, Any], now: Settings = settings, here: dict = facts) -> list:
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
        found = session.resume(planned, now, here, jsonl)
        assert len(found.left.jobs) + len(found.kept) == 2
        return [job.runtime for job in found.left.jobs]

    def done(job: Any, status: str = "ok", **changed: Any) -> dict[str, Any]:
        return {**asked(job, settings, facts), "status": status, **changed}

    assert left(done(torch_job)) == ["mxnet"]
    assert left(done(torch_job), done(mx_job)) == []
    assert left(done(torch_job, "failed"), done(mx_job, "timeout")) == ["pytorch", "mxnet"]
    assert left(done(torch_job, script_sha256="0" * 64)) == ["pytorch", "mxnet"]  # spec changed
    assert left({k: v for k, v in done(torch_job).items() if k != "script_sha256"}) == [
        "pytorch",
        "mxnet",
    ]  # a record from before digests
    assert left(done(torch_job), now=Settings(epochs=2)) == ["pytorch", "mxnet"]
    assert left(done(torch_job), now=Settings(epochs=1, timeout=60.0)) == ["mxnet"]
    assert left(done(torch_job), here={**facts, "cpus": 16}) == ["pytorch", "mxnet"]
    # the last record of a run is the one kept
    first, last = done(torch_job, wall_seconds=1.0), done(torch_job, wall_seconds=2.0)
    jsonl.write_text(json.dumps(first) + "\n" + json.dumps(last) + "\n")
    assert session.resume(planned, settings, facts, jsonl).kept == [last]
    jsonl.unlink()  # no file yet: every run is left
    assert len(session.resume(planned, settings, facts, jsonl).left.jobs) == 2


def test_resume_counts_what_differs_in_the_runs_it_does_not_reuse(tmp_path: Path) -> None:
    from dlspec.bench.runner import Settings, asked

    planned = _planned(tmp_path)
    settings, facts = Settings(epochs=1), {"cpu_model": "Test CPU", "cpus": 2, "gpus": []}
    jsonl = tmp_path / "bench.jsonl"
    older = [
        {**asked(job, Settings(epochs=3, warmup=1), facts), "status": "ok", "script_sha256": ""}
        for job in planned.jobs
    ]
    other_thread = {**asked(planned.jobs[0], settings, facts), "status": "ok"}
    other_thread["settings"] = {**other_thread["settings"], "threads": 4}  # another run
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in [*older, other_thread]))
    found = session.resume(planned, settings, facts, jsonl)
    assert not found.kept and found.differing == {"script_sha256": 2, "epochs": 2, "warmup": 2}


def test_resume_on_the_command_line_runs_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No framework runs: MXNet's interpreter is missing, so a run that starts is `unavailable`;
    an ok record of it (written here, as an earlier session would have) is not run again."""
    monkeypatch.setenv("DLSPEC_PYTHON_MXNET", str(tmp_path / "no-python"))
    out = tmp_path / "b"
    argv = ["bench", MLP, "--targets", "mxnet", "--epochs", "1", "--out", str(out)]
    assert main(argv) == 1
    [failed] = record.load(out / session.JSONL)
    measured = record.measurements(results([3.0], 20, 100.0), 6.0)
    written = {k: v for k, v in run("mxnet", 100.0).items() if k in ("versions", "switches")}
    ok = {**failed, **measured, **written, "status": "ok", "error": None}
    (out / session.JSONL).write_text(json.dumps(ok) + "\n")
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    captured = capsys.readouterr()
    assert "--resume: 1 of 1 run(s) already ok in" in captured.err and "running 0" in captured.err
    assert "bench: 1 run(s) recorded (1 from before, --resume) in" in captured.err
    assert "| mxnet | default (2 reported) | ok |" in captured.out  # the record's switches
    assert len(record.load(out / session.JSONL)) == 1  # nothing ran, nothing appended
    assert main([*argv[:-4], "--epochs", "2", "--out", str(out), "--resume"]) == 1  # other settings
    assert (
        "running 1 (ok before, but their records differ in: epochs (1))" in capsys.readouterr().err
    )
    assert [r["status"] for r in record.load(out / session.JSONL)] == ["ok", "unavailable"]
    with open(out / session.JSONL, "a") as f:
        f.write('{"spec": \n')
    assert main([*argv, "--resume"]) == 2
    assert "bench.jsonl:3: not JSON" in capsys.readouterr().err


def test_repeats_get_a_table_of_their_spread() -> None:
    records = [run("pytorch", r, repeat=i) for i, r in enumerate((300.0, 100.0, 200.0))]
    records += [run("mxnet", 50.0), run("mxnet", None, "failed", repeat=1)]
    [torch_row, mx_row] = report.group(records)["a.dl"]
    head, cells = report.repeat_table([torch_row, mx_row]) or ((), [])
    assert head == ("runtime", "ok runs", "fewest", "median", "most", "spread")
    assert cells == [
        ["pytorch", "3", "100.0", "200.0", "300.0", "100.0%"],
        ["mxnet", "1", "50.0", "50.0", "50.0", "0.0%"],
    ]
    assert "Repeats (samples/s of the ok runs):" in report.report(records)
    assert report.repeat_table([mx_row]) is None  # no row ran twice: no table
    assert "Repeats" not in report.report(records[3:])
    # the chart's error bars reach from each bar (the median) to the fewest and the most
    assert error_bars([torch_row, mx_row], [200.0, 50.0]) == [[100.0, 0.0], [100.0, 0.0]]
    assert error_bars([mx_row], [50.0]) is None


# ---- --report ----------------------------------------------------------------------------------


def test_report_writes_the_report_and_charts_of_a_jsonl_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "gpu" / session.JSONL
    jsonl.parent.mkdir()
    records = [run("pytorch", r, repeat=i) for i, r in enumerate((300.0, 100.0, 200.0))]
    for item in records:
        record.append(jsonl, item)
    assert main(["bench", "--report", str(jsonl)]) == 0
    table = capsys.readouterr()
    assert (jsonl.parent / "bench.md").read_text() == table.out == report.report(records)
    assert (jsonl.parent / "bench.png").read_bytes().startswith(PNG)
    assert "bench: 3 run(s) reported in" in table.err
    record.append(jsonl, run("mxnet", None, "timeout"))
    assert main(["bench", "--report", str(jsonl), "--out", str(tmp_path / "o"), "-q"]) == 1
    assert "| mxnet | default | timeout:" in (tmp_path / "o" / "bench.md").read_text()
    # --resume ran the timed-out run again and appended it: its last record stands, once
    record.append(jsonl, run("mxnet", 80.0))
    capsys.readouterr()
    assert main(["bench", "--report", str(jsonl), "--out", str(tmp_path / "o")]) == 0
    table = capsys.readouterr()
    assert "| mxnet | default (2 reported) | ok |" in table.out and "timeout:" not in table.out
    assert "4 run(s) reported (1 earlier record(s) of runs recorded again left out)" in table.err


def test_report_of_several_sessions_puts_each_setup_in_rows_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two sessions' JSONL files (a CPU host and another host), reported together into --out:
    the same runtime twice, once per setup, and neither session's own folder written."""
    cpu, gpu = tmp_path / "cpu" / session.JSONL, tmp_path / "gpu" / session.JSONL
    other = {"cpu_model": "Other CPU", "cpus": 16, "gpus": []}
    for jsonl, records in (
        (cpu, [run("pytorch", 100.0), run("mxnet", 80.0)]),
        (gpu, [run("pytorch", 900.0, host=other)]),
    ):
        jsonl.parent.mkdir()
        for item in records:
            record.append(jsonl, item)
    both = tmp_path / "both"
    argv = ["bench", "--report", str(cpu), "--report", str(gpu), "--out", str(both)]
    assert main(argv) == 0
    text = (both / "bench.md").read_text()
    assert "| pytorch, setup 1 |" in text and "| mxnet, setup 1 |" in text
    assert "| pytorch, setup 2 | default (2 reported) | ok | 1.000 | 1.00x | 900.0 |" in text
    assert (both / "bench.png").read_bytes().startswith(PNG)
    assert "bench: 3 run(s) reported in" in capsys.readouterr().err
    assert not (cpu.parent / "bench.md").exists() and not (gpu.parent / "bench.md").exists()
    assert main(argv[:-2]) == 2  # without --out: where would the combined report go?
    assert "--report of several files: name the folder of their report with --out" in (
        capsys.readouterr().err
    )
    assert not (cpu.parent / "bench.md").exists()
    again = ["bench", "--report", str(cpu), "--report", str(cpu.parent / ".." / "cpu" / cpu.name)]
    assert main([*again, "--out", str(both)]) == 2  # one file twice: its runs are not repeats
    assert "bench.jsonl is named twice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, lines, message",
    [
        ([MLP], [], "--report runs nothing: drop the SPEC(s)"),
        (["--resume"], [], "--report runs nothing"),
        ([], None, "no such file"),
        ([], [], "holds no records"),
        ([], ['{"model": "a", "script": "emitted"}'], "record 1 is not a bench record (no spec,"),
        ([], ["{"], "1: not JSON"),
    ],
)
def test_report_refuses_what_it_cannot_report(
    argv: list[str],
    lines: Optional[list[str]],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    jsonl = tmp_path / "bench.jsonl"
    if lines is not None:
        jsonl.write_text("".join(line + "\n" for line in lines))
    assert main(["bench", "--report", str(jsonl), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bench.md").exists()


def test_a_report_of_several_hosts_or_settings_lists_each() -> None:
    one = run("pytorch", 100.0)
    other = run("mxnet", 50.0, host={"cpu_model": "Other CPU", "cpus": 16, "gpus": []})
    text = report.report([one, other])
    assert "- setups (the records' hosts or settings differ; each row names its own):\n" in text
    assert "  - setup 1: host Test CPU, 2 CPUs; GPUs: none; runs device cpu," in text
    assert "  - setup 2: host Other CPU, 16 CPUs; GPUs: none; runs device cpu," in text
    assert "| pytorch, setup 1 | default (2 reported) | ok |" in text
    assert "| mxnet, setup 2 | default (2 reported) | ok |" in text
    longer = run("mxnet", 50.0)
    longer["settings"] = {**longer["settings"], "epochs": 3}
    text = report.report([one, longer])
    assert (
        "  - setup 2: host Test CPU, 2 CPUs; GPUs: none; runs device cpu, data None, epochs 3,"
        in text
    )
    assert "- host:" not in text and "- runs:" not in text
    assert report.report([one, run("mxnet", 50.0)]).count("setup") == 0  # one session: as ever


def test_runs_of_different_setups_never_share_a_row() -> None:
    """The same runtime on two machines (or with other settings) is two rows, each with its own
    median, not one row with two runs as --repeat makes."""
    here = [run("pytorch", rate) for rate in (100.0, 110.0)]
    there = run("pytorch", 900.0, host={"cpu_model": "GPU host", "cpus": 16, "gpus": []})
    rows = report.group([*here, there])["a.dl"]
    assert [(row.name, len(row.runs)) for row in rows] == [
        ("pytorch, setup 1", 2),
        ("pytorch, setup 2", 1),
    ]
    text = report.report([*here, there])
    assert "| pytorch, setup 2 | default (2 reported) | ok | 1.000 | 1.00x | 900.0 |" in text
    repeats = text[text.index("Repeats") :]
    assert "| pytorch, setup 1 | 2 | 100.0 | 100.0 | 110.0 |" in repeats
    assert "| pytorch, setup 2 | 1 |" in repeats


def test_gpu_memory_and_utilisation_are_columns_when_a_run_sampled_a_gpu() -> None:
    gpu = {"peak_memory_mb": 1029.0, "mean_utilization_percent": 3.0, "samples": 11}
    timed = {**gpu, "timed_mean_utilization_percent": 87.4}
    counted = {"device_peak_memory_mb": 612.4}
    records = [
        run("pytorch", 100.0, gpu=timed, results=counted),
        run("keras[jax]", 120.0, gpu=gpu),
    ]
    text = report.report(records)
    head = next(line for line in text.splitlines() if line.startswith("| runtime"))
    assert head.endswith("| peak MB | GPU MB | tensors MB | GPU util % | framework |")
    assert "| 100 | 1029 | 612 | 87 | torch 9.9, cpu |" in text  # the timed steps' utilisation
    assert "| 100 | 1029 |  | 3 | torch 9.9, cpu |" in text  # an older record: the whole run's
    assert "GPU util %: the mean over the timed steps" in text
    assert "GPU MB" not in report.report([run("pytorch", 100.0)])  # no GPU: no columns
