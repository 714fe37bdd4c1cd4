"""--cuda-graphs in the PyTorch scripts: which specs record the whole step as a CUDA graph, and
what the others say (framework-free: the generated source and the schedule's classification)."""

from __future__ import annotations

import ast

import pytest

from dlspec.codegen.compile import compile_model
from dlspec.codegen.contract import changes_every_step
from dlspec.frontend.load import build
from dlspec.ir.model import Schedule

SPEC = """
model recorded {
    input x: float32[6]
    dense(4) -> relu
    dense(3)
}
train {
    loss = softmax_cross_entropy
    optimizer = OPTIMIZER
    batch = 4
    epochs = 1
    seed = 1
}
"""
OPTIMIZER_REFUSAL = "this spec's optimiser (written out) counts its steps in Python"
SCHEDULE_REFUSAL = "this spec's schedule changes it every update"


def source(optimizer: str, extra: str = "") -> str:
    """The PyTorch script of SPEC with this optimiser (and extra train lines)."""
    text = SPEC.replace("OPTIMIZER", optimizer).replace("    seed = 1\n", f"    seed = 1\n{extra}")
    return compile_model(build(text, "<test>").model, "pytorch").source


def optimizer_call(script: str) -> str:
    """The source of make_optimizer's return expression."""
    tree = ast.parse(script)
    func = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "make_optimizer"
    )
    returned = next(n for n in ast.walk(func) if isinstance(n, ast.Return))
    assert returned.value is not None
    return ast.unparse(returned.value)


@pytest.mark.parametrize(
    ("optimizer", "cls", "capturable"),
    [
        ("sgd(lr=0.1, momentum=0.9)", "torch.optim.SGD", False),
        ("adam(lr=0.001)", "torch.optim.Adam", True),
        ("rmsprop(lr=0.001)", "torch.optim.RMSprop", True),
    ],
)
def test_torch_optim_classes_record_the_whole_step(optimizer: str, cls: str, capturable: bool):
    """SGD keeps no step count and records as it is; Adam and RMSprop are built capturable
    (their step count on the GPU) when --cuda-graphs records the step."""
    script = source(optimizer)
    call = optimizer_call(script)
    assert call.startswith(cls + "(")
    assert ("capturable=capturable" in call) == capturable
    assert "class RecordedSteps" in script and "RECORD_AFTER = 3" in script
    assert "make_optimizer(model, args.fused_optimizer, args.record_steps)" in script
    assert OPTIMIZER_REFUSAL not in script and SCHEDULE_REFUSAL not in script


def test_a_written_out_optimizer_with_a_step_count_is_refused():
    """Adam with eps outside the bias correction is written out, with a Python step count: no
    graph can record it, so --cuda-graphs alone stops with the reason (the recorded class is
    not emitted)."""
    script = source("adam(lr=0.001, eps_placement=uncorrected)")
    assert optimizer_call(script) == "CanonicalOptimizer(model.parameters())"
    assert OPTIMIZER_REFUSAL in script and "class RecordedSteps" not in script


def test_a_schedule_changing_every_update_is_refused():
    """Inverse-time decay per update would need a graph per step: refused with the reason."""
    script = source("sgd(lr=0.1)", "    schedule = inverse_time(decay=0.001, unit=step)\n")
    assert SCHEDULE_REFUSAL in script
    per_epoch = source("sgd(lr=0.1)", "    schedule = inverse_time(decay=0.001, unit=epoch)\n")
    assert SCHEDULE_REFUSAL not in per_epoch and "class RecordedSteps" in per_epoch


def schedule(kind: str, **attrs: object) -> Schedule:
    return Schedule(kind, dict(attrs), None)  # type: ignore[arg-type]


def test_which_schedules_change_every_update():
    assert not changes_every_step(schedule("constant"))
    assert changes_every_step(schedule("inverse_time", decay=0.1, unit="step"))
    assert not changes_every_step(schedule("inverse_time", decay=0.1, unit="epoch"))
    assert changes_every_step(schedule("step", every=1, gamma=0.5, unit="step"))
    assert not changes_every_step(schedule("step", every=100, gamma=0.5, unit="step"))
    assert not changes_every_step(schedule("step", every=1, gamma=0.5, unit="epoch"))
