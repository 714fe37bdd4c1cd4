"""The explicit intermediate representation: frozen dataclasses, no framework, no parser types."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union

from dlspec.errors import Pos

Shape = tuple[int, ...]


@dataclass(frozen=True)
class InitSpec:
    """An initialiser as named in a spec or a profile, before fans are known.

    scheme: glorot_uniform, glorot_normal, he_uniform, he_normal, variance_scaling, uniform,
    normal, truncated_normal, zeros, ones, constant, orthogonal.
    """

    scheme: str
    scale: float = 1.0
    mode: str = "fan_avg"
    distribution: str = "uniform"
    limit: float = 0.0
    std: float = 0.0
    mean: float = 0.0
    value: float = 0.0
    gain: float = 1.0

    def describe(self) -> str:
        """A short readable form such as `he_normal` or `uniform(limit=0.05)`."""
        if self.scheme == "variance_scaling":
            return (
                f"variance_scaling(scale={self.scale:g}, mode={self.mode}, "
                f"distribution={self.distribution})"
            )
        extra = {
            "uniform": f"(limit={self.limit:g})",
            "normal": f"(mean={self.mean:g}, std={self.std:g})",
            "truncated_normal": f"(mean={self.mean:g}, std={self.std:g})",
            "constant": f"(value={self.value:g})",
            "orthogonal": f"(gain={self.gain:g})" if self.gain != 1.0 else "",
        }.get(self.scheme, "")
        return self.scheme + extra


@dataclass(frozen=True)
class Init:
    """A concrete distribution for one parameter, fans already applied.

    dist: uniform U(-limit, limit); normal N(mean, std); truncated_normal N(mean, std) redrawn
    outside mean +- 2 std; constant; orthogonal (gain * a matrix with orthonormal rows or
    columns, over the parameter viewed as (shape[0], prod(shape[1:]))).
    """

    dist: str
    limit: float = 0.0
    mean: float = 0.0
    std: float = 0.0
    value: float = 0.0
    gain: float = 1.0
    spec: InitSpec = field(default_factory=lambda: InitSpec("zeros"))


@dataclass(frozen=True)
class Param:
    """A tensor of the model's state in canonical layout; `name` is its key in the weights npz.
    Trainable ones are updated by the optimiser; the others (batch norm's running statistics)
    by the forward pass in training mode."""

    name: str
    role: str
    shape: Shape
    init: Init
    fan_in: int
    fan_out: int
    gate_offset: Optional[tuple[int, int, float]] = None  # (start, stop, add) after init
    trainable: bool = True


@dataclass(frozen=True)
class Layer:
    """One layer with every attribute explicit and its shapes known (batch axis omitted).

    `inputs` names the tensors it reads: each an input's name or an earlier layer's name (a
    layer's output tensor is named after the layer)."""

    name: str
    op: str
    attrs: dict[str, Any]
    pos: Pos
    stated: frozenset[str] = frozenset()
    inputs: tuple[str, ...] = ()
    in_shape: Shape = ()
    out_shape: Shape = ()
    in_dtype: str = "float32"
    params: tuple[Param, ...] = ()

    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]

    def with_attrs(self, **changes: Any) -> Layer:
        """A copy with some attributes replaced."""
        return replace(self, attrs={**self.attrs, **changes})

    @property
    def param_count(self) -> int:
        """Number of trainable scalars."""
        return sum(_size(p.shape) for p in self.params if p.trainable)

    @property
    def buffer_count(self) -> int:
        """Number of non-trainable scalars (running statistics)."""
        return sum(_size(p.shape) for p in self.params if not p.trainable)


TIME_DISTRIBUTED = "time_distributed"


def wrapped(layer: Layer) -> Layer:
    """The layer that computes `layer`'s steps: a time_distributed layer's wrapped layer (named
    as the wrapper, per-step shapes, the wrapper's parameters), else `layer` itself."""
    return layer.attrs["layer"] if layer.op == TIME_DISTRIBUTED else layer


def uses(model: Model, ops: frozenset[str]) -> bool:
    """Whether any layer of the model, or the layer a time_distributed wraps, is one of `ops`."""
    return any(wrapped(layer).op in ops for layer in model.layers)


def _size(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Input:
    """The model's input: name, element dtype and shape without the batch axis."""

    name: str
    dtype: str
    shape: Shape
    pos: Pos


@dataclass(frozen=True)
class Optimizer:
    """One optimiser in canonical form; `attrs` holds every hyperparameter explicitly."""

    kind: str
    attrs: dict[str, Any]
    pos: Pos
    stated: frozenset[str] = frozenset()

    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]


@dataclass(frozen=True)
class Schedule:
    """Learning rate as a function of the update count or the epoch (unit)."""

    kind: str
    attrs: dict[str, Any]
    pos: Pos

    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]


@dataclass(frozen=True)
class Loss:
    """Loss form: the kind, and what its targets are (`sparse` class ids, `multi_label` 0/1 per
    output element, `real` values). The kind alone fixes the rest (docs/semantics.md): the cross
    entropies take logits (softmax or sigmoid fused), and every loss is the mean over the batch
    (and over the elements, except softmax_cross_entropy's class axis)."""

    kind: str
    pos: Pos
    labels: str = "sparse"


@dataclass(frozen=True)
class Data:
    """The dataset the script trains on, and how it is shaped into the model's input."""

    name: str
    attrs: dict[str, Any]
    pos: Pos
    classes: int = 0
    train_size: int = 0
    test_size: int = 0

    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]


@dataclass(frozen=True)
class Train:
    """Everything about training, explicit."""

    loss: Loss
    optimizer: Optimizer
    schedule: Schedule
    batch: int
    epochs: int
    seed: int
    data: Data
    global_inits: dict[str, InitSpec] = field(default_factory=dict)
    shuffle: bool = True
    # data-parallel replicas (their count is the launcher's): how the learning rate scales with
    # it (none, linear), and whether batch norm takes the global batch's statistics
    lr_scaling: str = "none"
    batchnorm_sync: bool = False
    positions: dict[str, Pos] = field(default_factory=dict)  # where each stated setting is


@dataclass(frozen=True)
class Source:
    """Where a model came from: the spec path as given and the sha256 of its bytes."""

    path: str
    sha256: str
    text: str = field(default="", repr=False)


@dataclass(frozen=True)
class Model:
    """A whole network and its training settings.

    Straight after lowering, layers have provisional names and no attributes and `train` is
    None; the passes read the syntax beside it (dlspec.frontend.ast.Written), name every layer,
    fill every attribute and `train`, and infer shapes and parameters. The IR holds no syntax.
    """

    name: str
    profile: str
    inputs: tuple[Input, ...]
    layers: tuple[Layer, ...]
    train: Optional[Train]
    source: Source
    pos: Pos = Pos()
    outputs: tuple[str, ...] = ()  # the tensors the model returns; the loss reads the first
    outputs_pos: Pos = Pos()  # where the `output` statement is (none: the outputs are implicit)
    inference: bool = False  # no train block: scripts time forward passes in evaluation mode
    verify_tolerances: dict[str, float] = field(default_factory=dict)  # `verify = tolerance(...)`
    verify_precision: str = "float32"  # `verify = precision(...)`: the dtype verify trains in

    def producer(self, name: str) -> Union[Layer, Input, None]:
        """The layer or input that makes the tensor called `name`, or None."""
        for item in (*self.inputs, *self.layers):
            if item.name == name:
                return item
        return None

    @property
    def output_shape(self) -> Shape:
        """Shape of the model's (first) output, without the batch axis."""
        made = self.producer(self.outputs[0]) if self.outputs else None
        if isinstance(made, Layer):
            return made.out_shape
        if isinstance(made, Input):
            return made.shape
        return self.layers[-1].out_shape if self.layers else self.inputs[0].shape

    @property
    def params(self) -> tuple[Param, ...]:
        """Every parameter (trainable or not) in layer order: the weights npz's keys."""
        return tuple(p for layer in self.layers for p in layer.params)

    @property
    def trainable_params(self) -> tuple[Param, ...]:
        """The parameters the optimiser updates, in layer order."""
        return tuple(p for p in self.params if p.trainable)

    @property
    def param_count(self) -> int:
        """Total trainable scalars."""
        return sum(layer.param_count for layer in self.layers)

    @property
    def buffer_count(self) -> int:
        """Total non-trainable scalars (running statistics)."""
        return sum(layer.buffer_count for layer in self.layers)
