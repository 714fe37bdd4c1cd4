"""Graph faults `dlspec verify` must catch, injected into the PyTorch script of
tests/specs/graph_merges.dl: a residual add dropped, a concat in the wrong order, and gradients
not accumulated where a tensor fans out."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build_file
from dlspec.verify.run import verify_model

SPEC = str(Path(__file__).resolve().parent / "specs" / "graph_merges.dl")


def _failed(old: str, new: str) -> set[str]:
    model = build_file(SPEC).model
    source = compile_model(model, "pytorch").source
    assert old in source, f"{old!r} not in the script"
    checks = verify_model(
        model, ["pytorch"], steps=3, sources={"pytorch": source.replace(old, new)}
    )
    return {c.check for c in checks if not c.passed}


@pytest.mark.framework
def test_a_dropped_residual_add_fails_the_forward_check() -> None:
    assert "forward vs oracle" in _failed("x = x + image\n", "x = x\n")


@pytest.mark.framework
def test_a_concat_in_the_wrong_order_fails_the_forward_check() -> None:
    assert "forward vs oracle" in _failed(
        "torch.cat([x, body], dim=1)", "torch.cat([body, x], dim=1)"
    )


@pytest.mark.framework
def test_gradients_not_accumulated_at_a_fan_out_fail_the_trained_weights() -> None:
    # `body` feeds the add and the concat: cut the concat's share of its gradient
    failed = _failed("torch.cat([x, body], dim=1)", "torch.cat([x, body.detach()], dim=1)")
    assert "trained weights vs oracle" in failed and "forward vs oracle" not in failed
