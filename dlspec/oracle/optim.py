"""Canonical optimiser updates and learning-rate schedules in float64 NumPy (the oracle's steps)."""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from dlspec.errors import DlspecError
from dlspec.ir.model import Model, Optimizer, Schedule, Train
from dlspec.oracle.grad import loss_and_grads

Array = np.ndarray
Slots = dict[str, Array]
Attrs = dict[str, Any]
Weights = dict[str, Array]


class OptimizerError(DlspecError):
    """An optimiser, schedule or gradient set the reference cannot apply."""


def _slot(slots: Slots, name: str, like: Array) -> Array:
    if name not in slots:
        slots[name] = np.zeros_like(like)
    return slots[name]


def sgd_update(w: Array, g: Array, slots: Slots, lr: float, t: int, a: Attrs) -> Array:
    """SGD; momentum_form gradient: v = mu*v + g, w -= lr*v; update: v = mu*v - lr*g, w += v."""
    mu = a["momentum"]
    if mu == 0.0:
        return w - lr * g
    v = _slot(slots, "v", w)
    if a["momentum_form"] == "gradient":
        v = slots["v"] = mu * v + g
        return w - lr * (g + mu * v) if a["nesterov"] else w - lr * v
    v = slots["v"] = mu * v - lr * g
    return w + mu * v - lr * g if a["nesterov"] else w + v


def adam_update(w: Array, g: Array, slots: Slots, lr: float, t: int, a: Attrs) -> Array:
    """Adam at update t (1-based); eps added to sqrt(vhat) (corrected) or to sqrt(v)."""
    b1, b2, eps = a["beta1"], a["beta2"], a["eps"]
    m = slots["m"] = b1 * _slot(slots, "m", w) + (1.0 - b1) * g
    v = slots["v"] = b2 * _slot(slots, "v", w) + (1.0 - b2) * g * g
    if a["eps_placement"] == "uncorrected":
        alpha = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        return w - alpha * m / (np.sqrt(v) + eps)
    m_hat, v_hat = m / (1.0 - b1**t), v / (1.0 - b2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps)


def rmsprop_update(w: Array, g: Array, slots: Slots, lr: float, t: int, a: Attrs) -> Array:
    """RMSprop: v = rho*v + (1-rho)g^2 (centered: minus mean(g)^2); optional momentum buffer."""
    rho, eps, mu = a["rho"], a["eps"], a["momentum"]
    v = slots["v"] = rho * _slot(slots, "v", w) + (1.0 - rho) * g * g
    denominator = v
    if a["centered"]:
        mean_g = slots["mean_g"] = rho * _slot(slots, "mean_g", w) + (1.0 - rho) * g
        denominator = v - mean_g**2
    if a["eps_placement"] == "inside":
        scaled = g / np.sqrt(denominator + eps)
    else:
        scaled = g / (np.sqrt(denominator) + eps)
    if mu > 0.0 and a["momentum_form"] == "update":
        return w - _set(slots, "buf", mu * _slot(slots, "buf", w) + lr * scaled)
    if mu > 0.0:
        scaled = slots["buf"] = mu * _slot(slots, "buf", w) + scaled
    return w - lr * scaled


def _set(slots: Slots, name: str, value: Array) -> Array:
    slots[name] = value
    return value


def adadelta_update(w: Array, g: Array, slots: Slots, lr: float, t: int, a: Attrs) -> Array:
    """Adadelta: d = sqrt(acc_d + eps) / sqrt(acc_g + eps) * g, w -= lr*d."""
    rho, eps = a["rho"], a["eps"]
    acc_g = slots["acc_g"] = rho * _slot(slots, "acc_g", w) + (1.0 - rho) * g * g
    d = np.sqrt(_slot(slots, "acc_d", w) + eps) / np.sqrt(acc_g + eps) * g
    slots["acc_d"] = rho * slots["acc_d"] + (1.0 - rho) * d * d
    return w - lr * d


Update = Callable[[Array, Array, Slots, float, int, Attrs], Array]

UPDATES: dict[str, Update] = {
    "sgd": sgd_update,
    "adam": adam_update,
    "rmsprop": rmsprop_update,
    "adadelta": adadelta_update,
}


def decayed(w: Array, g: Array, lr: float, weight_decay: float, mode: str) -> tuple[Array, Array]:
    """(w, g) after weight decay: l2 adds wd*w to g; decoupled scales w by (1 - lr*wd)."""
    if weight_decay == 0.0:
        return w, g
    if mode == "l2":
        return w, g + weight_decay * w
    return w - lr * weight_decay * w, g


class ReferenceOptimizer:
    """One optimiser with its per-parameter state; `step` takes this update's learning rate."""

    def __init__(self, optimizer: Optimizer) -> None:
        if optimizer.kind not in UPDATES:
            raise OptimizerError(f"the reference has no optimiser {optimizer.kind!r}")
        self.kind = optimizer.kind
        self.attrs = dict(optimizer.attrs)
        self.slots: dict[str, Slots] = {}
        self.t = 0

    def step(self, weights: Weights, grads: Weights, lr: float) -> Weights:
        """New float64 weights after one update with learning rate `lr`."""
        missing = sorted(set(weights) - set(grads))
        if missing:
            raise OptimizerError(f"no gradient for {', '.join(missing)}")
        self.t += 1
        update = UPDATES[self.kind]
        out = {}
        for name, value in weights.items():
            w = np.asarray(value, dtype=np.float64)
            g = np.asarray(grads[name], dtype=np.float64)
            wd, mode = self.attrs["weight_decay"], self.attrs["weight_decay_mode"]
            w, g = decayed(w, g, lr, wd, mode)
            out[name] = update(w, g, self.slots.setdefault(name, {}), lr, self.t, self.attrs)
        return out


def learning_rate(schedule: Schedule, lr: float, step: int, epoch: int) -> float:
    """The schedule's rate at update `step` (updates done so far) in 0-based `epoch`."""
    if schedule.kind == "constant":
        return lr
    t = step if schedule["unit"] == "step" else epoch
    if schedule.kind == "step":
        return lr * schedule["gamma"] ** (t // schedule["every"])
    if schedule.kind == "inverse_time":
        return lr / (1.0 + schedule["decay"] * t)
    raise OptimizerError(f"the reference has no schedule {schedule.kind!r}")


def train_learning_rate(train: Train, step: int, epoch: int) -> float:
    """The learning rate a model's training uses at update `step` in `epoch`."""
    return learning_rate(train.schedule, float(train.optimizer["lr"]), step, epoch)


def train_steps(
    model: Model,
    weights: Weights,
    x: Array,
    y: Array,
    steps: int,
    steps_per_epoch: Optional[int] = None,
) -> tuple[Weights, list[float]]:
    """`steps` updates on the same batch (dropout off); (final weights, loss before each update).

    The epoch of update s is s // steps_per_epoch (always 0 when steps_per_epoch is None).
    """
    if model.train is None:
        raise OptimizerError(f"{model.name}: no training settings")
    optimizer = ReferenceOptimizer(model.train.optimizer)
    current = {name: np.asarray(w, dtype=np.float64) for name, w in weights.items()}
    losses = []
    for step in range(steps):
        epoch = step // steps_per_epoch if steps_per_epoch else 0
        value, grads = loss_and_grads(model, current, x, y)
        losses.append(value)
        current = optimizer.step(current, grads, train_learning_rate(model.train, step, epoch))
    return current, losses
