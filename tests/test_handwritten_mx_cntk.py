"""The hand-written MXNet and CNTK benchmark scripts compile in their runtimes and keep the contract."""

from __future__ import annotations

import functools
import json
import math
import subprocess
from pathlib import Path

import pytest
from built_runtimes import py2_syntax_error, ready

from dlspec.runtimes import Runtime

ROOT = Path(__file__).resolve().parent.parent
HANDWRITTEN = ROOT / "benchmarks" / "handwritten"
MODELS = ("cifar_vgg", "imdb_gru")
# compile() writes no .pyc into the tree, unlike py_compile
_COMPILE = "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')"
# the hand-written scripts' results JSON: these keys and no others
FIELDS = {
    "script",
    "model",
    "runtime",
    "framework",
    "framework_version",
    "python",
    "device",
    "threads",
    "steps",
    "warmup_steps",
    "timed_samples",
    "timed_seconds",
    "timed_cpu_seconds",
    "samples_per_second",
    "final_loss",
    "epoch_seconds",
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@functools.cache
def _runtime(name: str) -> Runtime:
    """ready(name), probed once per session (a missing runtime skips every time)."""
    return ready(name)


@pytest.mark.parametrize("model", MODELS)
def test_mxnet_script_compiles_in_the_mxnet_runtime(model: str) -> None:
    rt = _runtime("mxnet")
    path = HANDWRITTEN / f"{model}_mxnet.py"
    done = subprocess.run(
        [*rt.python, "-c", _COMPILE, str(path)],
        capture_output=True,
        text=True,
        env=rt.environment(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("model", MODELS)
def test_cntk_script_is_valid_python_2(model: str) -> None:
    assert py2_syntax_error(HANDWRITTEN / f"{model}_cntk.py") is None


def _run_imdb(name: str, tmp_path: Path) -> dict:
    """Run imdb_gru's hand-written script for `name` 4 steps (1 of warm-up); its results JSON."""
    rt = _runtime(name)
    out = tmp_path / "results.json"
    flags = ["--data", "synthetic", "--device", "cpu", "--max-steps", "4", "--warmup", "1"]
    done = subprocess.run(
        rt.command(str(HANDWRITTEN / f"imdb_gru_{name}.py"), *flags, "--results", str(out)),
        capture_output=True,
        text=True,
        env={**rt.environment(), **ONE_THREAD},
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"handwritten imdb_gru {name}: 4 steps" in done.stderr
    return json.loads(out.read_text())


def _check_contract(results: dict, name: str) -> None:
    assert set(results) == FIELDS
    assert (results["script"], results["model"]) == ("handwritten", "imdb_gru")
    assert (results["runtime"], results["framework"], results["device"]) == (name, name, "cpu")
    assert (results["steps"], results["warmup_steps"], results["timed_samples"]) == (4, 1, 192)
    assert results["samples_per_second"] == pytest.approx(192 / results["timed_seconds"])
    assert len(results["epoch_seconds"]) == 1
    assert results["epoch_seconds"][0] >= results["timed_seconds"] > 0
    assert results["timed_cpu_seconds"] > 0  # CPU seconds of the 3 timed steps
    # two balanced classes at a fresh initialisation: the mean loss is near ln 2
    assert math.isfinite(results["final_loss"])
    assert abs(results["final_loss"] - math.log(2)) < 0.15


@pytest.mark.framework
def test_mxnet_imdb_gru_runs_and_writes_the_contract_results(tmp_path: Path) -> None:
    results = _run_imdb("mxnet", tmp_path)
    _check_contract(results, "mxnet")
    assert results["framework_version"] == "1.9.1" and results["python"].startswith("3.")
    assert results["threads"] is None  # MXNet reports no thread count


@pytest.mark.framework
def test_cntk_imdb_gru_runs_one_thread_and_writes_the_contract_results(tmp_path: Path) -> None:
    results = _run_imdb("cntk", tmp_path)
    _check_contract(results, "cntk")
    assert results["framework_version"] == "2.7" and results["python"].startswith("2.7")
    # a cntk.Trainer raises CNTK's thread count to every core; the script puts it back
    assert results["threads"] == 1


def test_cntk_steps_is_valid_python_2() -> None:
    assert py2_syntax_error(HANDWRITTEN / "cntk_steps.py") is None


@pytest.mark.framework
def test_cntk_steps_times_the_hand_written_and_each_emitted_step_in_turn(tmp_path: Path) -> None:
    """benchmarks/handwritten/cntk_steps.py on the IMDB GRU golden given twice: a line per
    step, the hand-written one's own difference zero."""
    rt = _runtime("cntk")
    golden = str(ROOT / "generated" / "cntk" / "imdb_gru_cntk.py")
    done = subprocess.run(
        rt.command(
            str(HANDWRITTEN / "cntk_steps.py"), "--steps", "3", "--skip", "0", golden, golden
        ),
        capture_output=True,
        text=True,
        env={**rt.environment(), **ONE_THREAD},
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "3 rounds (0 left out), 1 CPU thread(s)"
    assert lines[1].startswith("hand-written: median ")
    assert "median difference from hand-written +0.0 ms, hand-written/this 1.000" in lines[1]
    assert [line.split(": median")[0] for line in lines[2:]] == [golden, golden]
