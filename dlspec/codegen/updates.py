"""Python source for the optimiser update expressions (dlspec.ir.updates), one printer per target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from dlspec.ir.updates import Bin, Expr, G, Let, Name, Num, Sqrt, Statement, W, names, update_rule

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


# ---- in place: the same statements, overwriting tensors instead of allocating them ------------


@dataclass(frozen=True)
class InPlace:
    """How a target writes in-place tensor arithmetic: an augmented assignment (`x *= y`) updates
    x's storage, `sqrt` is the in-place square root of a scratch tensor, `copy` stores a value
    into a slot's storage; `printer` writes scalar subexpressions and freshly allocated tensors.

    With `out` (each operator and "sqrt" to a function taking out=, NumPy's ufuncs), a value that
    needs a new tensor is written into a scratch buffer instead, `np.multiply(a, b, out=tmp0)`:
    the buffers (in_place_update's second list) are the target's to allocate once, and a buffer
    whose value has been used up is written again by a later value (no allocation in a step)."""

    printer: Printer
    sqrt: str  # e.g. "{0}.sqrt_()"
    copy: str  # e.g. "{0}.copy_({1})"
    out: Optional[Mapping[str, str]] = field(default=None, compare=False)


@dataclass
class _Value:
    """An evaluated subexpression: its source, and whether it is a scalar, a tensor read by name
    (never overwritten), or a scratch tensor this update owns (free to overwrite)."""

    text: str
    kind: str  # "scalar" | "tensor" | "own"


class _InPlaceWriter:
    """Writes one update's per-variable statements as in-place arithmetic on scratch tensors."""

    def __init__(self, style: InPlace, tensors: set[str]):
        self.style, self.tensors = style, set(tensors)
        self.lines: list[str] = []
        self.scratch = 0
        self.owned: Optional[str] = None  # the slot being assigned, when it is read just once
        self.buffers: list[str] = []  # with style.out: every scratch buffer written
        self.free: list[str] = []  # with style.out: buffers whose value is used up
        self.pinned: set[str] = set()  # buffers a local names: kept to the update's end

    def fresh(self, expr: Expr) -> _Value:
        """A new scratch tensor holding `expr` (written as one expression: one allocation), or
        with style.out, a scratch buffer written by one function call (`expr` one operation)."""
        if self.style.out is None:
            name = f"tmp{self.scratch}"
            self.scratch += 1
            self.lines.append(f"{name} = {self.style.printer(expr)}")
            return _Value(name, "own")
        name = self.free.pop() if self.free else f"tmp{len(self.buffers)}"
        if name not in self.buffers:
            self.buffers.append(name)
        if isinstance(expr, Sqrt):
            op, args = "sqrt", [expr.arg]
        elif isinstance(expr, Bin):
            op, args = expr.op, [expr.left, expr.right]
        else:
            raise TypeError(f"not one operation: {expr!r}")
        operands = ", ".join(self.style.printer(arg) for arg in args)
        self.lines.append(f"{self.function(op)}({operands}, out={name})")
        return _Value(name, "own")

    def function(self, op: str) -> str:
        """style.out's function for an operator or "sqrt"."""
        assert self.style.out is not None
        if op not in self.style.out:
            raise ValueError(f"no function writing {op} into a buffer")
        return self.style.out[op]

    def release(self, value: _Value) -> None:
        """A scratch buffer's value used up: the buffer may hold a later value."""
        if value.text in self.buffers and value.text not in self.pinned | set(self.free):
            self.free.append(value.text)

    def is_scalar(self, expr: Expr) -> bool:
        return not names(expr) & self.tensors

    def is_leaf(self, expr: Expr) -> bool:
        """A scalar subexpression, or a tensor read by name (not the slot being overwritten)."""
        if self.is_scalar(expr):
            return True
        return isinstance(expr, Name) and expr.name != self.owned

    def value(self, expr: Expr) -> _Value:
        if self.is_scalar(expr):
            return _Value(self.style.printer(expr), "scalar")
        if isinstance(expr, Name):
            if expr.name == self.owned:
                return _Value(expr.name, "own")
            return _Value(expr.name, "tensor")
        if isinstance(expr, Sqrt):
            arg = self.value(expr.arg)
            if arg.kind != "own":
                return self.fresh(expr)
            self.lines.append(self.style.sqrt.format(arg.text))
            return arg
        if isinstance(expr, Bin):
            return self.binary(expr)
        raise TypeError(f"not an expression: {expr!r}")

    def binary(self, expr: Bin) -> _Value:
        if self.is_leaf(expr.left) and self.is_leaf(expr.right):
            return self.fresh(expr)
        left, right = self.value(expr.left), self.value(expr.right)
        if left.kind == "own":
            self.lines.append(f"{left.text} {expr.op}= {right.text}")
            self.release(right)
            return left
        if right.kind == "own" and expr.op in ("+", "*"):  # exactly commutative in IEEE arithmetic
            self.lines.append(f"{right.text} {expr.op}= {left.text}")
            return right
        if right.kind == "own" and self.style.out is not None:  # a ufunc may write its input
            function = self.function(expr.op)
            self.lines.append(f"{function}({left.text}, {right.text}, out={right.text})")
            return right
        # the operands' texts as atoms: a scalar's text may be a whole expression (1.0 - b)
        return self.fresh(Bin(expr.op, _atom(left), _atom(right)))

    def statement(self, statement: Statement) -> None:
        if isinstance(statement, Let):
            value = self.value(statement.value)
            if value.kind != "scalar":
                self.tensors.add(statement.name)
                self.pinned.add(value.text)
            self.lines.append(noted(f"{statement.name} = {value.text}", statement.note))
            return
        if statement.op != "=":  # w += value, w -= value
            value = self.value(statement.value)
            self.lines.append(
                noted(f"{statement.target} {statement.op} {value.text}", statement.note)
            )
            self.release(value)
            return
        reads = _count(statement.value, statement.target)
        self.owned = statement.target if reads == 1 else None
        value = self.value(statement.value)
        self.owned = None
        if value.kind == "scalar":
            raise ValueError(f"slot {statement.target} assigned a scalar")
        if value.text != statement.target:
            self.lines.append(self.style.copy.format(statement.target, value.text))
            self.release(value)
        if statement.note:
            self.lines.append(f"# {statement.note}")


def _atom(value: _Value) -> Name:
    """A value as a name for the printer: a scalar expression parenthesised."""
    return Name(f"({value.text})" if value.kind == "scalar" else value.text)


def _count(expr: Expr, name: str) -> int:
    """How many times `expr` reads `name`."""
    if isinstance(expr, Name):
        return int(expr.name == name)
    if isinstance(expr, Bin):
        return _count(expr.left, name) + _count(expr.right, name)
    if isinstance(expr, Sqrt):
        return _count(expr.arg, name)
    return 0


def in_place_update(opt: Any, style: InPlace) -> tuple[list[str], list[str]]:
    """The per-variable statements of optimiser `opt` in place, and the scratch buffers they
    write (style.out; else none): slots and w updated in their own storage, a scratch tensor
    allocated (or a buffer written) only where no operand may be overwritten. The arithmetic and
    its order are the statements' own (only + and * swap operands, which IEEE rounding allows).
    """
    rule = update_rule(opt.kind, opt.attrs)
    writer = _InPlaceWriter(style, {W, G, *rule.slots})
    for statement in rule.per_variable:
        writer.statement(statement)
    return writer.lines, writer.buffers


# NumPy's functions writing into out=, for InPlace.out
NUMPY_OUT = {
    "+": "np.add",
    "-": "np.subtract",
    "*": "np.multiply",
    "/": "np.divide",
    "sqrt": "np.sqrt",
}
