"""The Keras target's optimiser: a keras.optimizers class where exact, else written out."""

from __future__ import annotations

from typing import Any, Optional

from dlspec.backends.base import computes, irrelevant_form
from dlspec.backends.pytorch import FUSED_OPTIMIZERS, native_torch_optimizer, torch_optimizer_args
from dlspec.codegen.updates import InPlace, Printer, in_place_update, render
from dlspec.ir.model import Model, Optimizer, Train, uses
from dlspec.ir.ops import TOKEN_IDS
from dlspec.ir.updates import update_rule

# optimiser -> (Keras class, {attribute: the form it computes}, {canonical attribute: keyword})
NATIVE_OPTIMIZERS: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "sgd": (
        "keras.optimizers.SGD",
        {"momentum_form": "update", "weight_decay_mode": "decoupled"},
        {"momentum": "momentum", "nesterov": "nesterov"},
    ),
    "adam": (
        "keras.optimizers.Adam",
        {"eps_placement": "uncorrected", "weight_decay_mode": "decoupled"},
        {"beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon"},
    ),
    "rmsprop": (
        "keras.optimizers.RMSprop",
        {"eps_placement": "inside", "momentum_form": "update", "weight_decay_mode": "decoupled"},
        {"rho": "rho", "momentum": "momentum", "eps": "epsilon", "centered": "centered"},
    ),
    "adadelta": (
        "keras.optimizers.Adadelta",
        {"weight_decay_mode": "decoupled"},
        {"rho": "rho", "eps": "epsilon"},
    ),
}
# keywords a native optimiser gets beyond the table (Keras defaults written out)
NATIVE_EXTRA = {"adam": ("amsgrad=False",)}
# Keras optimisers that square the gradient. On the TensorFlow backend an embedding's gradient is
# tf.IndexedSlices, one slice per id looked up, and Keras 3.15's update squares it slice by slice:
# an id read twice in a batch adds g1^2 + g2^2 to the second moment instead of (g1 + g2)^2.
# CanonicalOptimizer densifies the gradient first (duplicate ids summed), so it takes these.
SQUARES_GRADIENT = {"adam", "rmsprop", "adadelta"}
SPARSE_NOTE = (
    "squares an embedding's gradient slice by slice on the TensorFlow backend "
    "(IndexedSlices: an id read twice gets g1^2 + g2^2, not (g1 + g2)^2)"
)


def _sparse_squared(model: Model) -> bool:
    """Whether the native optimiser would square an embedding's IndexedSlices gradient."""
    train = model.train
    assert train is not None
    return uses(model, TOKEN_IDS) and train.optimizer.kind in SQUARES_GRADIENT


# the written-out update (dlspec.ir.updates) with keras.ops, the same on every Keras backend
KERAS_EXPR = Printer(sqrt="ops.sqrt", power="ops.power")
# the same statements in place on the torch backend's tensors (CanonicalOptimizer.IN_PLACE), a
# value that needs a new tensor computed into a scratch buffer the optimiser keeps
# (CanonicalOptimizer.scratch): a fresh tensor per operation made glibc map and unmap the
# embedding-sized scratch every update (page faults in the update and the next backward pass)
TORCH_OUT = {"+": "torch.add", "-": "torch.sub", "*": "torch.mul", "/": "torch.div"}
TORCH_IN_PLACE = InPlace(
    KERAS_EXPR,
    sqrt="{0}.sqrt_()",
    copy="{0}.copy_({1})",
    out={**TORCH_OUT, "sqrt": "torch.sqrt"},
)
_KERAS_ASSIGN = {"=": "assign", "+=": "assign_add", "-=": "assign_sub"}


def _keras_assign(target: str, op: str, value: str) -> str:
    return f"self.{_KERAS_ASSIGN[op]}({target}, {value})"


def optimizer_code(opt: Optimizer) -> dict[str, Any]:
    """Slots and lines of CanonicalOptimizer.update_step (w, g, lr, t and the slots in scope):
    the per-update scalars, then the per-variable statements with keras.ops and, for the torch
    backend, in place on the variables' tensors. Decoupled decay is among the statements, so
    Keras's own weight_decay stays None."""
    rule = update_rule(opt.kind, opt.attrs)
    tensors = ["w", *rule.slots]
    # the variables' torch tensors, detached: updated in place, outside autograd's record
    unwrap = f"{', '.join(tensors)} = {', '.join(name + '.value.detach()' for name in tensors)}"
    lines, scratch = in_place_update(opt, TORCH_IN_PLACE)
    buffers = [f"{name} = self.scratch({k}, w)" for k, name in enumerate(scratch)]
    return {
        "torch_fused": torch_fused(opt),
        "slots": list(rule.slots),
        "step_counter": rule.uses_step,
        "scalar_lines": [render(s, KERAS_EXPR, _keras_assign) for s in rule.per_update],
        "lines": [render(s, KERAS_EXPR, _keras_assign) for s in rule.per_variable],
        "in_place": [unwrap, *buffers, *lines],
    }


def torch_fused(opt: Optimizer) -> Optional[dict[str, str]]:
    """The fused torch.optim optimiser computing this form (the pytorch target's), over `params`:
    the update CanonicalOptimizer makes on the torch backend unless told otherwise; None if none."""
    native = native_torch_optimizer(opt)
    if native is None or native[0] not in FUSED_OPTIMIZERS:
        return None
    cls, names = native
    return {
        "cls": cls,
        "expr": f"{cls}(params, {', '.join(torch_optimizer_args(opt, names))}, fused=True)",
    }


def _keras2_decay(train: Train) -> bool:
    """Inverse-time decay per update: what Keras 2's optimiser argument decay= computed."""
    return train.schedule.kind == "inverse_time" and train.schedule["unit"] == "step"


def native_optimizer(opt: Optimizer) -> bool:
    """Whether a keras.optimizers class computes this canonical form exactly."""
    _, forms, _ = NATIVE_OPTIMIZERS[opt.kind]
    return computes(opt, forms)


def native_for(model: Model) -> bool:
    """native_optimizer, and no embedding gradient the native update would square wrongly."""
    assert model.train is not None
    return native_optimizer(model.train.optimizer) and not _sparse_squared(model)


def optimizer_notes(model: Model) -> list[str]:
    """The report's notes on the schedule and on a written-out optimiser (and why)."""
    train = model.train
    assert train is not None
    opt = train.optimizer
    notes = []
    if train.schedule.kind != "constant":
        notes.append(
            f"schedule {train.schedule.kind}: CanonicalSchedule evaluates learning_rate(step, "
            "epoch) at the optimiser's update count"
            + (" (Keras 2's decay=; Keras 3 ignores it)" if _keras2_decay(train) else "")
        )
    if native_for(model):
        return notes
    cls, forms, _ = NATIVE_OPTIMIZERS[opt.kind]
    if native_optimizer(opt):
        why = f"optimizer {opt.kind}: {cls} {SPARSE_NOTE}"
    else:
        differ = ", ".join(f"{k}={opt[k]}" for k in forms if not irrelevant_form(opt, k))
        why = f"optimizer {opt.kind} ({differ}) is not {cls}'s form"
    notes.append(f"{why}: CanonicalOptimizer writes the update out with keras.ops")
    return notes


def optimizer_context(model: Model) -> dict[str, Any]:
    """The template's optimiser: Keras's own class and its arguments where it computes the
    canonical form, else CanonicalOptimizer with the written-out update (optimizer_code)."""
    train = model.train
    assert train is not None
    opt = train.optimizer
    ctx = {
        "native": native_for(model),
        "sparse": _sparse_squared(model) and native_optimizer(opt),
        "kind": opt.kind,
        "attrs": dict(opt.attrs),
    }
    if not ctx["native"]:
        # decoupled decay is one of the written-out lines, not Keras's weight_decay
        written = {"expr": "CanonicalOptimizer", "args": ["weight_decay=None"]}
        return {**ctx, **written, **optimizer_code(opt)}
    cls, _, names = NATIVE_OPTIMIZERS[opt.kind]
    args = [f"{keyword}={opt[key]!r}" for key, keyword in names.items()]
    args += NATIVE_EXTRA.get(opt.kind, ())
    decoupled = opt["weight_decay"] != 0 and opt["weight_decay_mode"] == "decoupled"
    args.append(f"weight_decay={opt['weight_decay']!r}" if decoupled else "weight_decay=None")
    return {**ctx, "expr": cls, "args": args, "torch_fused": None}
