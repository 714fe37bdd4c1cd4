"""Batch normalisation: every target's script against the oracle (forward in evaluation, training
steps on batch statistics, the running statistics after them), in every form."""

from __future__ import annotations

import pytest

from dlspec.codegen.compile import compile_model
from dlspec.errors import SpecError
from dlspec.frontend.load import build
from dlspec.ir.model import Model
from dlspec.runtimes import RUNTIMES
from dlspec.verify.run import verify_model

SPEC = """
defaults = PROFILE
model bn {
    input x: float32[2, 5, 4]
    conv2d(3, kernel=3, padding=same) -> BN -> relu
    [x] -> conv2d(3, kernel=1, bias=false) -> short: BN
    [relu_1, short] -> add -> flatten
    dense(6) -> BN -> tanh
    dense(3)
}
train {
    optimizer = sgd(lr=0.1, momentum=0.9)
    batch = 4
}
"""
SEQUENCE = """
model seq {
    input x: float32[5, 3]
    gru(4, readout=sequence) -> BN
    flatten -> dense(2)
}
train { optimizer = adam(lr=0.01) }
"""
FORMS = {
    "native": ("dlspec", "batchnorm"),
    "keras_profile": ("keras", "batchnorm"),  # biased running variance: written out
    "no_scale": ("pytorch", "batchnorm(0.3, eps=0.01, scale=false)"),
    "no_affine": ("pytorch", "batchnorm(scale=false, center=false)"),
}


def runnable(model: Model) -> list[str]:
    """The runtimes whose target compiles the model."""
    names = []
    for name, entry in RUNTIMES.items():
        try:
            compile_model(model, entry.target)
        except SpecError:
            assert entry.target == "mxnet", name
            continue
        names.append(name)
    return names


@pytest.mark.framework
@pytest.mark.parametrize("form", sorted(FORMS))
def test_batchnorm_matches_the_oracle_on_every_runtime(form: str) -> None:
    profile, call = FORMS[form]
    model = build(SPEC.replace("PROFILE", profile).replace("BN", call), f"{form}.dl").model
    checks = verify_model(model, runnable(model), steps=4)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


@pytest.mark.framework
def test_batchnorm_over_a_sequence_normalises_the_last_axis() -> None:
    model = build(SEQUENCE.replace("BN", "batchnorm"), "seq.dl").model
    checks = verify_model(model, runnable(model), steps=3)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


# ---- faults verify must catch ---------------------------------------------------------------------

FAULT_SPEC = SPEC.replace("PROFILE", "dlspec").replace("BN", "batchnorm")


def _verify_source(target: str, old: str, new: str) -> set[str]:
    """verify one target's script with `old` replaced by `new`; the names of the failed checks."""
    model = build(FAULT_SPEC, "fault.dl").model
    source = compile_model(model, target).source
    assert old in source, f"{old!r} not in the {target} script"
    runtime = target if target != "keras" else "keras[tensorflow]"
    checks = verify_model(model, [runtime], steps=3, sources={runtime: source.replace(old, new)})
    return {c.check for c in checks if not c.passed}


@pytest.mark.framework
def test_batch_statistics_in_evaluation_fail_the_forward_check() -> None:
    # TensorFlow's batch_norm helper taking batch statistics whether training or not
    failed = _verify_source(
        "tensorflow", "    if training:\n        axes", "    if True:\n        axes"
    )
    assert "forward vs oracle" in failed


@pytest.mark.framework
def test_keras_ordered_momentum_fails_the_running_statistics() -> None:
    # PyTorch given Keras's momentum (0.9 for a canonical 0.1): the running averages barely move
    failed = _verify_source(
        "pytorch",
        "nn.BatchNorm2d(3, eps=1e-05, momentum=0.1,",
        "nn.BatchNorm2d(3, eps=1e-05, momentum=0.9,",
    )
    assert failed == {"trained weights vs oracle"}
