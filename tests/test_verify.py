"""dlspec verify on PyTorch: every example passes, and each injected fault fails the right check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from example_specs import TRAINED

from dlspec.cli import main
from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build, build_file
from dlspec.testing import assert_equivalent
from dlspec.verify.run import Check, errors, matrix, verify_model, weight_errors

pytestmark = pytest.mark.framework
torch = pytest.importorskip("torch", reason="torch is not installed: PyTorch verify tests skipped")

ROOT = Path(__file__).resolve().parent.parent

SCHEDULED_SGD = """
model scheduled {
    input x: float32[6]
    dense(5) -> tanh
    dense(3)
}
train {
    optimizer = sgd(lr=0.1, momentum=0.9, momentum_form=FORM)
    schedule  = step(every=2, gamma=0.1, unit=step)
    batch     = 4
}
"""

SMALL_CNN = """
model small_cnn {
    input image: float32[2, 7, 5]
    conv2d(3, kernel=[3, 2], stride=2, padding=same) -> relu
    dropout(0.5)
    flatten
    dense(4)
}
train { optimizer = sgd(lr=0.05, momentum=0.9) }
"""

SMALL_GRU = """
model small_gru {
    input tokens: int32[9]
    embedding(20, 5)
    gru(4, layers=2)
    dense(3)
}
train { optimizer = sgd(lr=0.1) }
"""


def _failed(checks: list) -> set[str]:
    return {c.check for c in checks if not c.passed}


def _verify(text: str, name: str, source: str | None = None) -> list:
    model = build(text, name).model
    sources = {"pytorch": source} if source is not None else None
    checks = verify_model(model, ["pytorch"], steps=5, sources=sources)
    print(matrix(checks))
    return checks


def _source(text: str, name: str) -> str:
    return compile_model(build(text, name).model, "pytorch").source


def _inject(source: str, old: str, new: str) -> str:
    assert old in source, f"injection point not found: {old!r}"
    return source.replace(old, new, 1)


# in read_weights, the weights import every script shares (the skeleton)
LOAD = "        value = arrays[name]\n"


@pytest.mark.parametrize("spec", sorted(p.name for p in TRAINED))
def test_every_example_passes(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    checks = verify_model(build_file(f"examples/{spec}").model, ["pytorch"], steps=5)
    print(matrix(checks))
    assert checks and not _failed(checks)
    forward = next(c for c in checks if c.check == "forward vs oracle")
    assert forward.rel_err < 1e-5


@pytest.mark.parametrize(
    "path", sorted((ROOT / "tests" / "specs").glob("*.dl")), ids=lambda p: p.stem
)
def test_every_spec_file_passes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/specs on PyTorch (the TensorFlow and Keras tests verify them on their runtimes)."""
    monkeypatch.chdir(ROOT)
    checks = verify_model(build_file(str(path.relative_to(ROOT))).model, ["pytorch"], steps=5)
    print(matrix(checks))
    assert checks and not _failed(checks)


def test_purpose_built_specs_pass() -> None:
    for text, name in [(SMALL_CNN, "cnn.dl"), (SMALL_GRU, "gru.dl")]:
        assert not _failed(_verify(text, name))
    for form in ("gradient", "update"):
        assert not _failed(_verify(SCHEDULED_SGD.replace("FORM", form), f"{form}.dl"))


def test_transposed_conv_kernel_fails_forward() -> None:
    injected = LOAD + "        if value.ndim == 4:\n"
    injected += (
        "            value = np.ascontiguousarray(value.transpose(0, 1, 3, 2)[:, :, :, :])\n"
    )
    src = _inject(_source(SMALL_CNN.replace("[3, 2]", "3"), "cnn.dl"), LOAD, injected)
    checks = _verify(SMALL_CNN.replace("[3, 2]", "3"), "cnn.dl", src)
    assert "forward vs oracle" in _failed(checks)


def test_wrong_gru_gate_order_fails_forward() -> None:
    swap = (
        LOAD + '        if "_ih_l" in name or "_hh_l" in name:\n'
        "            h = value.shape[0] // 3\n"
        "            value = np.concatenate([value[h : 2 * h], value[:h], value[2 * h :]])\n"
    )
    src = _inject(_source(SMALL_GRU, "gru.dl"), LOAD, swap)
    assert "forward vs oracle" in _failed(_verify(SMALL_GRU, "gru.dl", src))


def test_dropout_left_on_in_evaluation_fails_forward() -> None:
    old = "    model.eval()\n    with torch.no_grad():\n        forward ="
    new = "    model.train()\n    with torch.no_grad():\n        forward ="
    src = _inject(_source(SMALL_CNN, "cnn.dl"), old, new)
    assert "forward vs oracle" in _failed(_verify(SMALL_CNN, "cnn.dl", src))


def test_flatten_in_keras_order_fails_forward() -> None:
    old = "        x = self.flatten_1(x)\n"
    new = "        x = self.flatten_1(x.permute(0, 2, 3, 1))\n"
    src = _inject(_source(SMALL_CNN, "cnn.dl"), old, new)
    assert "forward vs oracle" in _failed(_verify(SMALL_CNN, "cnn.dl", src))


def test_wrong_momentum_form_fails_only_when_lr_changes() -> None:
    """The update-form script run for a gradient-form spec: equal at constant lr, not after."""
    spec = SCHEDULED_SGD.replace("FORM", "gradient")
    wrong = _source(SCHEDULED_SGD.replace("FORM", "update"), "g.dl")
    failed = _failed(_verify(spec, "g.dl", wrong))
    assert "trained weights vs oracle" in failed
    assert "forward vs oracle" not in failed
    constant = spec.replace("    schedule  = step(every=2, gamma=0.1, unit=step)\n", "")
    wrong_constant = _source(SCHEDULED_SGD.replace("FORM", "update"), "u.dl").replace(
        "return 0.1 * 0.1 ** (step // 2)", "return 0.1"
    )
    assert not _failed(_verify(constant, "c.dl", wrong_constant))


def test_error_measures() -> None:
    assert errors(np.array([1.0, -2.0]), np.array([1.0, -4.0])) == (2.0, 0.5)
    assert errors(np.zeros(2), np.zeros(3)) == (float("inf"), float("inf"))
    start = {"w": np.zeros(3)}
    abs_err, rel, name = weight_errors(
        {"w": np.array([1.0, 0, 0])}, {"w": np.array([2.0, 0, 0])}, start
    )
    assert (abs_err, rel, name) == (1.0, 0.5, "w")


def test_cli_and_pytest_helper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "gru.dl"
    spec.write_text(SMALL_GRU)
    out = tmp_path / "v.json"
    assert (
        main(["verify", str(spec), "--targets", "pytorch", "--steps", "3", "--json", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "forward vs oracle" in printed and "0 failed" in printed
    assert '"check": "trained weights vs oracle"' in out.read_text()
    assert assert_equivalent(spec, ["pytorch"], steps=2)
    with pytest.raises(AssertionError, match="forward vs oracle"):
        broken = SMALL_GRU.replace("gru(4, layers=2)", "gru(4, layers=2)")
        model_src = _inject(
            _source(broken, "b.dl"), "x, _ = self.gru_1(x)", "x, _ = self.gru_1(x.flip(1))"
        )
        checks = verify_model(build(broken, "b.dl").model, ["pytorch"], 2, {"pytorch": model_src})
        raise AssertionError(matrix(checks))


def test_matrix_columns_fit_long_names() -> None:
    """A spec path, runtime (a replica run's "keras[tensorflow] x2") or check name longer than
    the default column still leaves the columns aligned."""
    long = Check(
        "examples/mnist_hierarchical_rnn.dl",
        "keras[tensorflow] x2",
        "trained weights vs keras[tensorflow]",
        1e-7,
        2e-7,
        1e-3,
        True,
        "",
    )
    short = Check("a.dl", "pytorch", "lr schedule", 0.0, 0.0, 1e-12, True, "")
    head, _, *rows, total = matrix([long, short]).splitlines()
    runtime, rel_end = head.index("runtime"), head.index(" rel") + 4
    assert [row[runtime:].split()[:2] for row in rows] == [
        ["keras[tensorflow]", "x2"],
        ["pytorch", "lr"],
    ]
    assert rows[0].index("trained") == rows[1].index("lr schedule")
    assert [row[rel_end - 8 : rel_end] for row in rows] == ["2.00e-07", "0.00e+00"]
    assert total == "2 passed, 0 failed"
