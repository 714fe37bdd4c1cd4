"""Labels read by name that stop short of their chain: `a: dense(64) -> relu` names the dense, so
a later `[h, a]` reads the dense's output, before the relu (a warning, or a hint on the error when
the rest of the chain is then unused)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Union

from dlspec.errors import LintWarning, Pos
from dlspec.frontend import ast
from dlspec.frontend.sugar import split_activation
from dlspec.ir.model import TIME_DISTRIBUTED

Body = tuple[Union[ast.InputDecl, ast.BlockInput, ast.LayerStmt, ast.OutputDecl], ...]


@dataclass(frozen=True)
class EarlyLabel:
    """`label` names a layer, `op` (`dense`, `time_distributed(dense)`; `call` as a fix writes
    it), that its statement's chain goes on past, to `after` (at `after_pos`), and `read` reads
    the label by name."""

    label: ast.Name
    op: str
    call: str
    after: str
    after_pos: Pos
    read: ast.Name

    def _reads(self) -> str:
        at = f"{self.read.pos.line}:{self.read.pos.col}"
        fix = f"`{self.call} -> {self.label.id}: {self.after}`"
        return (
            f"{self.label.id!r} at {at} reads the {self.op}'s output; to read the {self.after}, "
            f"label it: {fix}"
        )

    def hint(self) -> str:
        """What to add to the error on the unused layer after the label."""
        return f" (label {self.label.id!r} names the {self.op} before it, so {self._reads()})"

    def warning(self) -> LintWarning:
        """The warning when both the label and the rest of its chain are read."""
        message = f"label {self.label.id!r} names the {self.op}, not the {self.after} after it: "
        return LintWarning(message + self._reads(), self.label.pos, "warning")


def _kind(call: ast.Call) -> tuple[str, str]:
    """How a message names a layer (its op, and a time_distributed's wrapped op too) and writes
    its call: (`dense`, `dense(...)`), (`time_distributed(dense)`, `time_distributed(dense(...))`).
    """
    value = call.args[0].value if call.op == TIME_DISTRIBUTED and call.args else None
    inner = value.id if isinstance(value, ast.Name) else getattr(value, "name", "")
    if not inner:
        return call.op, f"{call.op}(...)"
    return f"{call.op}({inner})", f"{call.op}({inner}(...))"


def _parts(call: ast.Call, blocks: Collection[str]) -> list[ast.Call]:
    """The layers a call makes as its statement sees them (a block call is one)."""
    return [call] if call.op in blocks else split_activation(call)


def _first_reads(body: Body) -> dict[str, ast.Name]:
    """Each tensor name's first read by name: a chain's listed sources or an `output`."""
    reads: dict[str, ast.Name] = {}
    for stmt in body:
        names = stmt.sources if isinstance(stmt, ast.LayerStmt) else ()
        names = stmt.names if isinstance(stmt, ast.OutputDecl) else names
        for name in names:
            reads.setdefault(name.id, name)
    return reads


def early_labels(body: Body, blocks: Collection[str]) -> tuple[EarlyLabel, ...]:
    """The labels in a model's or block's body that are read by name and name a layer that its
    chain continues past (to the next call, unless that is labelled too, or to the activation an
    `activation=` adds)."""
    reads = _first_reads(body)
    found = []
    for stmt in body:
        if not isinstance(stmt, ast.LayerStmt):
            continue
        pairs = stmt.labelled_calls
        for k, (call, label) in enumerate(pairs):
            if label is None or label.id not in reads:
                continue
            parts = _parts(call, blocks)
            later = parts[1:] or [
                _parts(c, blocks)[0] for c, tag in pairs[k + 1 : k + 2] if not tag
            ]
            if later:
                (op, written), after = _kind(parts[0]), _kind(later[0])[0]
                found.append(EarlyLabel(label, op, written, after, later[0].pos, reads[label.id]))
    return tuple(found)
