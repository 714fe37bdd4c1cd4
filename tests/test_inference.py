"""A spec without a train block is an inference model: verify checks its forward pass only, and
every target's script times forward passes in evaluation mode (samples/s, seconds per 1000)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build
from dlspec.runtimes import RUNTIMES, runtime
from dlspec.verify.run import execute, verify_model

FEATURES = """
model features {
    input image: float32[3, 8, 8]
    conv2d(4, 3, padding=1, bias=false) -> batchnorm -> relu
    [image] -> conv2d(4, 1, bias=false) -> shortcut: batchnorm
    [relu_1, shortcut] -> add -> relu -> global_avgpool2d
}
"""


def test_no_train_block_means_inference() -> None:
    assert build(FEATURES).model.inference
    assert not build(FEATURES + "train { batch = 4 }").model.inference


def test_an_inference_model_needs_no_loss_shape() -> None:
    # a map output would be refused by softmax cross-entropy; an inference model has no loss
    build(FEATURES.replace(" -> global_avgpool2d", ""))


@pytest.mark.framework
def test_verify_checks_the_forward_pass_only() -> None:
    checks = verify_model(build(FEATURES, "features.dl").model, list(RUNTIMES))
    assert {c.check for c in checks} == {"forward vs oracle", "forward vs pytorch"}
    assert all(c.passed for c in checks)


@pytest.mark.framework
@pytest.mark.parametrize("name", list(RUNTIMES))
def test_the_script_times_forward_passes(name: str, tmp_path: Path) -> None:
    rt = runtime(name)
    script = tmp_path / "features.py"
    script.write_text(compile_model(build(FEATURES).model, rt.target).source, encoding="utf-8")
    out = tmp_path / "results.json"
    flags = ["--device", "cpu", "--batch-size", "4", "--max-steps", "6", "--warmup", "2"]
    code, stderr = execute(rt, script, [*flags, "--results", str(out)], 600)
    assert code == 0, stderr[-2000:]
    results = json.loads(out.read_text())
    assert validate_results(results) == []
    assert results["kind"] == "inference" and results["runtime"] == name
    assert results["steps"] == 6 and results["warmup_steps"] == 2
    assert results["timed_samples"] == 4 * 4 and results["samples_per_second"] > 0
    rate = 1000.0 / results["samples_per_second"]
    assert results["seconds_per_1000_samples"] == pytest.approx(rate)
    assert "epochs" not in results and "final_loss" not in results
