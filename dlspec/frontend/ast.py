"""The syntax tree of a spec file, as written: every node keeps its source position."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

from dlspec.errors import Pos

if TYPE_CHECKING:
    from dlspec.frontend.labels import EarlyLabel


@dataclass(frozen=True)
class Num:
    """A number literal; `text` is the spelling in the source."""

    value: Union[int, float]
    text: str
    pos: Pos


@dataclass(frozen=True)
class Name:
    """A bare identifier used as a value (`same`, `relu`, `true`)."""

    id: str
    pos: Pos


@dataclass(frozen=True)
class Str:
    """A double-quoted string literal."""

    value: str
    pos: Pos


@dataclass(frozen=True)
class ListVal:
    """A bracketed list of values."""

    items: tuple[Value, ...]
    pos: Pos


@dataclass(frozen=True)
class Arg:
    """A positional (key None) or keyword argument."""

    key: Union[str, None]
    value: Value
    pos: Pos


@dataclass(frozen=True)
class CallVal:
    """A call used as a value: `sgd(lr=0.1)`, `normal(std=0.01)`."""

    name: str
    args: tuple[Arg, ...]
    pos: Pos


Value = Union[Num, Name, Str, ListVal, CallVal]


@dataclass(frozen=True)
class Call:
    """One layer (or block) call in a model or block body: `conv2d(32, kernel=3)`; `repeat` is the
    count of `name(...) * N`, as written (None without `* N`)."""

    op: str
    args: tuple[Arg, ...]
    pos: Pos
    repeat: Union[Num, None] = None


@dataclass(frozen=True)
class LayerStmt:
    """`[label:] [[a, b] ->] call -> [label:] call ...`: a chain, reading the listed tensors (or,
    with none listed, the previous statement's output); `labels[k]` names `calls[k]`."""

    label: Union[Name, None]
    calls: tuple[Call, ...]
    pos: Pos
    sources: tuple[Name, ...] = ()
    labels: tuple[Union[Name, None], ...] = ()

    @property
    def labelled_calls(self) -> list[tuple[Call, Union[Name, None]]]:
        """Each call with its label (`label` on the first when `labels` is not filled in)."""
        labels = self.labels or (self.label,) + (None,) * (len(self.calls) - 1)
        return list(zip(self.calls, labels, strict=True))


@dataclass(frozen=True)
class InputDecl:
    """`input NAME: dtype[d1, d2, ...]` (the batch axis is implicit)."""

    name: str
    dtype: Name
    dims: tuple[Num, ...]
    pos: Pos


@dataclass(frozen=True)
class OutputDecl:
    """`output a, b`: the tensors the model returns (default: the last statement's)."""

    names: tuple[Name, ...]
    pos: Pos


@dataclass(frozen=True)
class ModelDecl:
    """A `model NAME { ... }` block; `body` keeps every statement in source order."""

    name: str
    inputs: tuple[InputDecl, ...]
    layers: tuple[LayerStmt, ...]
    pos: Pos
    body: tuple[Union[InputDecl, LayerStmt, OutputDecl], ...] = ()
    outputs: tuple[OutputDecl, ...] = ()


@dataclass(frozen=True)
class Param:
    """A block parameter: `stride` or `stride=1` (the default is a value, used as written)."""

    name: str
    default: Union[Value, None]
    pos: Pos


@dataclass(frozen=True)
class BlockInput:
    """`input a, b` in a block: input tensors named in order (shapes come from each call)."""

    names: tuple[Name, ...]
    pos: Pos


@dataclass(frozen=True)
class BlockDecl:
    """A `block NAME(params) { ... }` definition; `body` keeps every statement in source order."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Union[BlockInput, LayerStmt, OutputDecl], ...]
    pos: Pos

    @property
    def inputs(self) -> tuple[Name, ...]:
        """The input tensors' names, in declaration order."""
        return tuple(n for s in self.body if isinstance(s, BlockInput) for n in s.names)

    @property
    def outputs(self) -> tuple[OutputDecl, ...]:
        """The `output` statements (one is allowed)."""
        return tuple(s for s in self.body if isinstance(s, OutputDecl))


@dataclass(frozen=True)
class Setting:
    """`key = value`, in a train block or at top level."""

    key: str
    value: Value
    pos: Pos


@dataclass(frozen=True)
class TrainDecl:
    """A `train { ... }` block."""

    settings: tuple[Setting, ...]
    pos: Pos


@dataclass(frozen=True)
class SpecFile:
    """A whole parsed file."""

    path: str
    text: str
    settings: tuple[Setting, ...]
    models: tuple[ModelDecl, ...]
    trains: tuple[TrainDecl, ...]
    blocks: tuple[BlockDecl, ...] = ()


@dataclass(frozen=True)
class LayerSyntax:
    """One lowered layer as written: its arguments, its label (an expanded block layer's full
    name) and where it is, the tensors its chain lists (checked by the resolve pass) and the
    block instances whose output tensor it makes (instance name, position)."""

    args: tuple[Arg, ...]
    label: str = ""
    label_pos: Optional[Pos] = None
    sources: tuple[Name, ...] = ()
    aliases: tuple[tuple[str, Pos], ...] = ()


@dataclass(frozen=True)
class Written:
    """What the passes still read as written beside the lowered IR, which carries no syntax:
    each layer's syntax (by its provisional name, `#k`), the train block's settings, the
    `verify = ...` settings, the `output` statement's names, the spec's block names (for
    suggestions) and the labels read by name that name a layer their chain goes on past."""

    layers: dict[str, LayerSyntax] = field(default_factory=dict)
    train: dict[str, Setting] = field(default_factory=dict)
    verify: tuple[Setting, ...] = ()
    outputs: tuple[Name, ...] = ()
    blocks: tuple[str, ...] = ()
    early_labels: tuple[EarlyLabel, ...] = ()
