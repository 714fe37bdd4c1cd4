"""What every backend shares: the LayerCode record, the emit_<op> dispatch, names and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

from dlspec.errors import Problem, Unsupported
from dlspec.ir import Layer, Model, Optimizer, Param
from dlspec.ops import OPS, OPTIMIZERS, REQUIRED


@dataclass(frozen=True)
class LayerCode:
    """Native code for one layer: a constructor expression and forward lines (x in, x out)."""

    module: str = ""
    forward: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    helpers: frozenset[str] = frozenset()
    setup: tuple[str, ...] = ()  # statements run once after the module is built


@dataclass
class Report:
    """The normalisation report: native defaults a target overrode, and explicit code it wrote."""

    target: str
    lines: list[str] = field(default_factory=list)

    def render(self) -> str:
        """Readable text, one line per override."""
        if not self.lines:
            return f"{self.target}: no native default overridden"
        return "\n".join(
            [f"{self.target}: native defaults overridden"] + [f"  - {x}" for x in self.lines]
        )


def irrelevant_form(opt: Optimizer, key: str) -> bool:
    """A form that cannot matter: decay mode without decay, momentum form without momentum."""
    if key == "weight_decay_mode":
        return opt["weight_decay"] == 0
    if key == "momentum_form":
        return opt["momentum"] == 0
    return False


class Names:
    """The identifiers one script gives a model's names: deterministic, and never colliding.

    User names (inputs, then layers) claim themselves first, so a name the target does not reserve
    is written as the user wrote it; a reserved one then takes its first free escape (trailing
    underscores). Helper names a backend derives from a user name (`conv_pad`) are claimed on first
    use, after every user name, and escape the same way. Canonical weight names never change.
    """

    ESCAPE = "_"

    def __init__(self, reserved: frozenset[str], users: Iterable[str] = ()) -> None:
        self.reserved = reserved
        self.taken: set[str] = set()
        self.given: dict[tuple[str, str], str] = {}
        users = list(users)
        for name in users:
            if name not in reserved:
                self._give((name, ""), name)
        for name in users:
            self.of(name)

    def _give(self, key: tuple[str, str], name: str) -> str:
        self.taken.add(name)
        self.given[key] = name
        return name

    def _free(self, wanted: str) -> str:
        name = wanted
        while name in self.reserved or name in self.taken:
            name += self.ESCAPE
        return name

    def of(self, user: str, suffix: str = "") -> str:
        """The identifier of a user name, or (with a suffix) of a helper named after it."""
        key = (user, suffix)
        if key in self.given:
            return self.given[key]
        return self._give(key, self._free(user + suffix))


def user_names(model: Model) -> list[str]:
    """The names a spec gives: its inputs', then its layers'."""
    return [inp.name for inp in model.inputs] + [layer.name for layer in model.layers]


def orthogonal_vector(param: Param) -> bool:
    """An orthogonal initialiser on a vector: drawn as the one column of an (n, 1) matrix, which
    the frameworks' orthogonal initialisers (2-D only) must be given explicitly."""
    return param.init.dist == "orthogonal" and len(param.shape) == 1


# the note of a convolution computed at stride 1 and then subsampled
SUBSAMPLE_NOTE = "dilation with stride > 1: convolved at stride 1, then subsampled"


def subsampled(layer: Layer) -> bool:
    """A convolution with dilation and stride > 1: convolved at stride 1, then every stride-th
    output kept, which is exact (TensorFlow's atrous convolution and Keras's Conv2D take dilation
    only at stride 1)."""
    return layer["dilation"] != (1, 1) and layer["stride"] != (1, 1)


def _show(value: Any) -> str:
    describe = getattr(value, "describe", None)
    return describe() if describe else repr(value)


class Backend:
    """A target: mostly tables; emit_<op> methods for what a table cannot say."""

    name: ClassVar[str] = ""
    template: ClassVar[str] = ""
    native_profile: ClassVar[str] = ""
    framework: ClassVar[str] = ""
    extension: ClassVar[str] = ".py"
    # op -> what the target cannot do with it (shown in the support table; enforced in unsupported)
    limits: ClassVar[dict[str, str]] = {}
    # identifiers the script itself gives meaning to where user names become identifiers
    RESERVED_NAMES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.names = Names(self.RESERVED_NAMES)

    def name_model(self, model: Model) -> Model:
        """Allocate the identifiers of `model` (self.names), which its layers are emitted with."""
        self.names = Names(self.RESERVED_NAMES, user_names(model))
        return model

    def native(self, layer: Layer) -> str:
        """The identifier this target's script gives `layer`."""
        return self.names.of(layer.name)

    def emit(self, layer: Layer) -> LayerCode:
        """Dispatch to emit_<op>."""
        method = getattr(self, f"emit_{layer.op}", None)
        if method is None:
            raise NotImplementedError(f"{self.name} has no emit_{layer.op}")
        return method(layer)

    def supports(self, op: str) -> bool:
        """Whether this target has an emitter for `op` (the support table reads this)."""
        return hasattr(self, f"emit_{op}")

    def unsupported(self, model: Model) -> list[Problem]:
        """Constructs in this model the target cannot express (override to add more)."""
        return [
            Unsupported(f"target {self.name} cannot express {layer.op}", layer.pos)
            for layer in model.layers
            if not self.supports(layer.op)
        ]

    def native_overrides(self, model: Model) -> list[str]:
        """Attributes whose explicit value differs from the framework's own default."""
        lines = []
        profile = self.native_profile
        for layer in model.layers:
            table = OPS[layer.op].attrs
            resolved: dict[str, Any] = {}
            for key, spec in table.items():
                if key == "activation" or key not in layer.attrs:
                    continue
                value = layer.attrs[key]
                resolved[key] = value
                native = (
                    spec.default_for(profile, resolved) if spec.default is not REQUIRED else None
                )
                if native is not None and native != value and key != "padding":
                    lines.append(
                        f"{layer.name}.{key} = {_show(value)} ({self.framework} default: {_show(native)})"
                    )
        opt = model.train.optimizer  # type: ignore[union-attr]
        resolved = {}
        for key, spec in OPTIMIZERS[opt.kind].items():
            resolved[key] = opt[key]
            native = spec.default_for(profile, resolved) if spec.default is not REQUIRED else None
            if native is not None and native != opt[key]:
                lines.append(
                    f"{opt.kind}.{key} = {_show(opt[key])} ({self.framework} default: {_show(native)})"
                )
        return lines

    def context(self, model: Model) -> dict[str, Any]:  # pragma: no cover - abstract
        """Template context for this target."""
        raise NotImplementedError

    def report(self, model: Model) -> Report:
        """Native defaults overridden, plus notes from the emitters."""
        report = Report(self.name, self.native_overrides(model))
        self.name_model(model)
        report.lines.extend(self.renamed(model))
        for layer in model.layers:
            report.lines.extend(f"{layer.name}: {n}" for n in self.emit(layer).notes)
        report.lines.extend(self.optimizer_notes(model))
        return report

    def renamed(self, model: Model) -> list[str]:
        """A line for each user name the script writes differently (the target reserves it)."""
        reserved = f"is reserved in {self.framework} scripts"
        return [
            f"{user}: written as {self.names.of(user)} ({user} {reserved})"
            for user in user_names(model)
            if self.names.of(user) != user
        ]

    def optimizer_notes(self, model: Model) -> list[str]:
        """Notes on explicit optimiser code (override)."""
        return []
