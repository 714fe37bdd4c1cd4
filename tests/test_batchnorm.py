"""Batch normalisation: the generated PyTorch script against the oracle (forward in evaluation,
training steps on batch statistics, the running statistics after them), in every form."""

from __future__ import annotations

import pytest

from dlspec.compile import compile_model
from dlspec.errors import SpecError
from dlspec.frontend import build
from dlspec.verify import verify_model

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


@pytest.mark.framework
@pytest.mark.parametrize("form", sorted(FORMS))
def test_pytorch_batchnorm_matches_the_oracle(form: str) -> None:
    profile, call = FORMS[form]
    model = build(SPEC.replace("PROFILE", profile).replace("BN", call), f"{form}.dl").model
    checks = verify_model(model, ["pytorch"], steps=4)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


@pytest.mark.framework
def test_pytorch_batchnorm_over_a_sequence_normalises_the_last_axis() -> None:
    model = build(SEQUENCE.replace("BN", "batchnorm"), "seq.dl").model
    assert all(c.passed for c in verify_model(model, ["pytorch"], steps=3))


def test_tensorflow_and_keras_refuse_batchnorm_with_its_position_for_now() -> None:
    model = build(SPEC.replace("PROFILE", "dlspec").replace("BN", "batchnorm")).model
    for target in ("tensorflow", "keras"):
        with pytest.raises(SpecError) as err:
            compile_model(model, target)
        assert err.value.problems[0].pos.line == 5
