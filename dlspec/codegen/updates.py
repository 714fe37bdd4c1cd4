"""Python source for the optimiser update expressions (dlspec.ir.updates), one printer per target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from dlspec.ir.updates import Bin, Expr, Let, Name, Num, Sqrt, Statement, update_rule

# binding strength of Python's operators: + -, then * /, then unary minus, then **, then atoms
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}
_UNARY, _ATOM = 3, 5


@dataclass(frozen=True)
class Printer:
    """Writes expressions as Python with the tree kept exactly (parentheses wherever Python would
    otherwise group differently), the square root and optionally `**` as a target's functions."""

    sqrt: str
    power: Optional[str] = None  # a function for `**` (keras.ops.power), or None for the operator

    def __call__(self, expr: Expr) -> str:
        return self._text(expr)[0]

    def _text(self, expr: Expr) -> tuple[str, int]:
        """(source, precedence) of an expression."""
        if isinstance(expr, Num):
            return repr(expr.value), _UNARY if expr.value < 0 else _ATOM
        if isinstance(expr, Name):
            return expr.name, _ATOM
        if isinstance(expr, Sqrt):
            return f"{self.sqrt}({self(expr.arg)})", _ATOM
        if isinstance(expr, Bin):
            if expr.op == "**" and self.power:
                return f"{self.power}({self(expr.left)}, {self(expr.right)})", _ATOM
            own = _PRECEDENCE[expr.op]
            left, left_prec = self._text(expr.left)
            right, right_prec = self._text(expr.right)
            # ** groups to the right, the others to the left: the other side needs parentheses
            # at equal strength, since floating-point arithmetic is not associative
            if left_prec < own or (expr.op == "**" and left_prec == own):
                left = f"({left})"
            if right_prec < own or (expr.op != "**" and right_prec == own):
                right = f"({right})"
            return f"{left} {expr.op} {right}", own
        raise TypeError(f"not an expression: {expr!r}")


def render(statement: Statement, printer: Printer, assign: Callable[[str, str, str], str]) -> str:
    """One statement as a line of Python: `name = value` for a local, `assign(target, op, value)`
    for a slot or the variable (the target's in-place form), its note as a trailing comment."""
    value = printer(statement.value)
    if isinstance(statement, Let):
        line = f"{statement.name} = {value}"
    else:
        line = assign(statement.target, statement.op, value)
    return noted(line, statement.note)


def noted(line: str, note: str) -> str:
    """A line with its note as a trailing comment."""
    return f"{line}  # {note}" if note else line


def update_code(
    opt: Any, scalar: Printer, tensor: Printer, assign: Callable[[str, str, str], str]
) -> dict[str, Any]:
    """A target's written-out update of optimiser `opt`: its slots, whether it counts steps, and
    its lines (the per-update scalars by `scalar`, the per-variable lines by `tensor`)."""
    rule = update_rule(opt.kind, opt.attrs)
    return {
        "slots": list(rule.slots),
        "step_counter": rule.uses_step,
        "lines": [render(s, scalar, assign) for s in rule.per_update]
        + [render(s, tensor, assign) for s in rule.per_variable],
    }
