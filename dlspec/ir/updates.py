"""Each canonical optimiser form written once as data: zeroed slots and ordered update statements."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Union

if TYPE_CHECKING:  # NumPy is imported where updates are evaluated: code generation needs none
    import numpy as np

# The names every update may read: the variable, its (dense) gradient, this update's learning
# rate, and t = 1, 2, ... the number of updates made so far including this one.
W, G, LR, STEP = "w", "g", "lr", "t"
OPERATORS = ("+", "-", "*", "/", "**")


class Expr:
    """An expression over names and numbers; Python's arithmetic operators build the tree."""

    def __add__(self, other: Operand) -> Expr:
        return Bin("+", self, lift(other))

    def __radd__(self, other: Operand) -> Expr:
        return Bin("+", lift(other), self)

    def __sub__(self, other: Operand) -> Expr:
        return Bin("-", self, lift(other))

    def __rsub__(self, other: Operand) -> Expr:
        return Bin("-", lift(other), self)

    def __mul__(self, other: Operand) -> Expr:
        return Bin("*", self, lift(other))

    def __rmul__(self, other: Operand) -> Expr:
        return Bin("*", lift(other), self)

    def __truediv__(self, other: Operand) -> Expr:
        return Bin("/", self, lift(other))

    def __rtruediv__(self, other: Operand) -> Expr:
        return Bin("/", lift(other), self)

    def __pow__(self, other: Operand) -> Expr:
        return Bin("**", self, lift(other))

    def __rpow__(self, other: Operand) -> Expr:
        return Bin("**", lift(other), self)


Operand = Union[Expr, float]


@dataclass(frozen=True)
class Num(Expr):
    """A number: an attribute's validated value, or a constant of the formula (1.0)."""

    value: float

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise TypeError(f"an update's number must be a real, not {self.value!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"an update's number must be finite, not {self.value!r}")


@dataclass(frozen=True)
class Name(Expr):
    """w, g, lr, t, a slot or a local computed by an earlier statement."""

    name: str


@dataclass(frozen=True)
class Bin(Expr):
    """left op right, op one of + - * / ** (evaluated as written: no reassociation)."""

    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}")


@dataclass(frozen=True)
class Sqrt(Expr):
    """The elementwise square root."""

    arg: Expr


def lift(value: Operand) -> Expr:
    """An operand as an expression (a Python number becomes a Num)."""
    return value if isinstance(value, Expr) else Num(value)


@dataclass(frozen=True)
class Let:
    """A local value, `name = value`; `g` may be rebound (l2 decay enters the gradient)."""

    name: str
    value: Expr
    note: str = ""


@dataclass(frozen=True)
class Assign:
    """State written in place: a slot (`=`) or the variable w (`+=`, `-=`)."""

    target: str
    op: str
    value: Expr
    note: str = ""


Statement = Union[Let, Assign]


@dataclass(frozen=True)
class UpdateRule:
    """One optimiser form: the statements of one update of one variable.

    `slots` are the per-variable state tensors, every one starting at zero. `per_update` are
    scalars of the step count t and numbers alone (no tensor, no lr), which a target may compute
    once per update and in higher precision; `per_variable` follow in order, reading w, g, lr,
    the slots and the locals defined before them.
    """

    kind: str
    slots: tuple[str, ...]
    per_update: tuple[Let, ...]
    per_variable: tuple[Statement, ...]

    @property
    def uses_step(self) -> bool:
        """Whether the update reads the step count t."""
        return any(STEP in names(s.value) for s in self.per_update)


def names(expr: Expr) -> set[str]:
    """The names an expression reads."""
    if isinstance(expr, Name):
        return {expr.name}
    if isinstance(expr, Bin):
        return names(expr.left) | names(expr.right)
    if isinstance(expr, Sqrt):
        return names(expr.arg)
    return set()


# ---- the canonical forms (docs/semantics.md section 5) ----------------------------------------

w, g, lr, t = Name(W), Name(G), Name(LR), Name(STEP)
Attrs = Mapping[str, Any]


def _num(a: Attrs, key: str) -> Num:
    return Num(a[key])


def _decay(a: Attrs) -> list[Statement]:
    """Weight decay, before the optimiser's own statements (nothing when wd is 0)."""
    if a["weight_decay"] == 0:
        return []
    wd = _num(a, "weight_decay")
    if a["weight_decay_mode"] == "l2":
        return [Let(G, g + wd * w, "l2: decay enters the gradient")]
    return [Assign(W, "-=", lr * wd * w, "decoupled: w *= 1 - lr * wd, before the step")]


Form = tuple[tuple[str, ...], list[Let], list[Statement]]


def _sgd(a: Attrs) -> Form:
    if a["momentum"] == 0:
        return (), [], [Assign(W, "-=", lr * g)]
    mu, v = _num(a, "momentum"), Name("v")
    if a["momentum_form"] == "gradient":
        step = Assign(W, "-=", lr * (g + mu * v) if a["nesterov"] else lr * v)
        return ("v",), [], [Assign("v", "=", mu * v + g), step]
    step = Assign(W, "+=", mu * v - lr * g) if a["nesterov"] else Assign(W, "+=", v)
    return ("v",), [], [Assign("v", "=", mu * v - lr * g), step]


def _adam(a: Attrs) -> Form:
    b1, b2, eps = _num(a, "beta1"), _num(a, "beta2"), _num(a, "eps")
    m, v = Name("m"), Name("v")
    moments: list[Statement] = [
        Assign("m", "=", b1 * m + (1.0 - b1) * g),
        Assign("v", "=", b2 * v + (1.0 - b2) * g * g),
    ]
    if a["eps_placement"] == "uncorrected":
        c = Let("c", Sqrt(1.0 - b2**t) / (1.0 - b1**t))  # the bias correction, in the rate
        step = Assign(W, "-=", lr * Name("c") * m / (Sqrt(v) + eps))
        return ("m", "v"), [c], [*moments, step]
    corrections = [Let("c1", 1.0 - b1**t), Let("c2", 1.0 - b2**t)]
    step = Assign(W, "-=", lr * (m / Name("c1")) / (Sqrt(v / Name("c2")) + eps))
    return ("m", "v"), corrections, [*moments, step]


def _rmsprop(a: Attrs) -> Form:
    rho, eps = _num(a, "rho"), _num(a, "eps")
    v, q = Name("v"), Name("q")
    slots, lines = ["v"], [Assign("v", "=", rho * v + (1.0 - rho) * g * g)]
    d: Expr = v
    if a["centered"]:
        mean_g = Name("mean_g")
        slots.append("mean_g")
        lines += [
            Assign("mean_g", "=", rho * mean_g + (1.0 - rho) * g),
            Let("d", v - mean_g * mean_g),
        ]
        d = Name("d")
    inside = a["eps_placement"] == "inside"
    lines.append(Let("q", g / Sqrt(d + eps) if inside else g / (Sqrt(d) + eps)))
    if a["momentum"] == 0:
        return tuple(slots), [], [*lines, Assign(W, "-=", lr * q)]
    mu, buf = _num(a, "momentum"), Name("buf")
    slots.append("buf")
    if a["momentum_form"] == "update":
        return (
            tuple(slots),
            [],
            [*lines, Assign("buf", "=", mu * buf + lr * q), Assign(W, "-=", buf)],
        )
    return tuple(slots), [], [*lines, Assign("buf", "=", mu * buf + q), Assign(W, "-=", lr * buf)]


def _adadelta(a: Attrs) -> Form:
    rho, eps = _num(a, "rho"), _num(a, "eps")
    acc_g, acc_d, delta = Name("acc_g"), Name("acc_d"), Name("delta")
    return (
        ("acc_g", "acc_d"),
        [],
        [
            Assign("acc_g", "=", rho * acc_g + (1.0 - rho) * g * g),
            Let("delta", Sqrt(acc_d + eps) / Sqrt(acc_g + eps) * g),
            Assign("acc_d", "=", rho * acc_d + (1.0 - rho) * delta * delta),
            Assign(W, "-=", lr * delta),
        ],
    )


FORMS = {"sgd": _sgd, "adam": _adam, "rmsprop": _rmsprop, "adadelta": _adadelta}


def update_rule(kind: str, attrs: Attrs) -> UpdateRule:
    """The update of optimiser `kind` with its (validated, complete) attributes."""
    slots, per_update, body = FORMS[kind](attrs)
    return UpdateRule(kind, slots, tuple(per_update), tuple(_decay(attrs) + body))


# ---- evaluation in NumPy (the oracle's precision: float64) ------------------------------------

_APPLY = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": lambda x, y: x / y,
    "**": lambda x, y: x**y,
}


def evaluate(expr: Expr, env: Mapping[str, Any]) -> Any:
    """The expression's value with the names bound in `env` (NumPy arrays or Python floats)."""
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Name):
        return env[expr.name]
    if isinstance(expr, Bin):
        return _APPLY[expr.op](evaluate(expr.left, env), evaluate(expr.right, env))
    if isinstance(expr, Sqrt):
        import numpy as np

        value = evaluate(expr.arg, env)
        return np.sqrt(value) if isinstance(value, np.ndarray) else math.sqrt(value)
    raise TypeError(f"not an expression: {expr!r}")


def apply_update(
    rule: UpdateRule, w: np.ndarray, g: np.ndarray, slots: dict[str, np.ndarray], lr: float, t: int
) -> np.ndarray:
    """The new w after one update (slots, created at zero on first use, are replaced in place)."""
    import numpy as np

    env: dict[str, Any] = {W: w, G: g, LR: lr, STEP: t}
    for name in rule.slots:
        env[name] = slots.setdefault(name, np.zeros_like(w))
    for let in rule.per_update:
        env[let.name] = evaluate(let.value, env)
    for statement in rule.per_variable:
        value = evaluate(statement.value, env)
        if isinstance(statement, Let):
            env[statement.name] = value
        elif statement.op == "=":
            env[statement.target] = slots[statement.target] = value
        else:
            old = env[statement.target]
            env[statement.target] = old + value if statement.op == "+=" else old - value
    return env[W]
