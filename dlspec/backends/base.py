"""What every backend shares: the LayerCode record, the layer table and emit_<op> dispatch, names
and the report."""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Iterable, Optional

from dlspec.codegen.render import PY3_FORMAT, FormatMode
from dlspec.errors import Problem, Unsupported
from dlspec.ir.attrs import REQUIRED
from dlspec.ir.model import TIME_DISTRIBUTED, Layer, Model, Optimizer, Param, wrapped
from dlspec.ir.ops import ELEMENTWISE, OPS
from dlspec.ir.settings import OPTIMIZERS

MERGES = frozenset(name for name, spec in OPS.items() if spec.category == "merge")


@dataclass(frozen=True)
class LayerCode:
    """Native code for one layer: a constructor expression and forward lines (x in, x out)."""

    module: str = ""
    forward: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    helpers: frozenset[str] = frozenset()
    setup: tuple[str, ...] = ()  # statements run once after the module is built


@dataclass(frozen=True)
class Module:
    """A table entry: a layer built once as `constructor` and called on x; the layer's
    attributes fill its format fields (`nn.Dropout(p={rate!r})`)."""

    constructor: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Line:
    """A table entry: a layer written as one statement on x (`x = tf.nn.relu(x)`); the layer's
    attributes fill its format fields."""

    text: str
    notes: tuple[str, ...] = ()


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


def computes(opt: Optimizer, forms: dict[str, str]) -> bool:
    """Whether a native optimiser that computes `forms` ({attribute: form}) computes `opt`: each
    form agrees, or cannot matter (irrelevant_form)."""
    return all(opt[key] == form or irrelevant_form(opt, key) for key, form in forms.items())


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


def overhang(layer: Layer) -> tuple[int, int]:
    """Cells (rows, columns) a ceil-rounded pool's last window reaches beyond the padded input,
    from the IR's shapes: padded after the explicit pads, they let a floor-rounded pool make the
    ceil-rounded windows, and they are never counted ((0, 0) under floor)."""
    pads, pool, stride = layer["padding"], layer["pool"], layer["stride"]
    return tuple(  # type: ignore[return-value]
        max(
            0,
            (layer.out_shape[1 + i] - 1) * stride[i]
            + pool[i]
            - (layer.in_shape[1 + i] + pads[i][0] + pads[i][1]),
        )
        for i in range(2)
    )


# ---- walking the graph: one local variable per tensor that is read out of order --------------


def _names_in(line: str) -> list[tuple[int, str, bool]]:
    """(column, identifier, follows a dot) of each name token in one line of Python."""
    found = []
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline):
            if tok.type == tokenize.NAME:
                found.append((tok.start[1], tok.string, previous == "."))
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                previous = tok.string
    except (tokenize.TokenError, IndentationError):
        pass  # a block opener such as `if dropout:` alone: its names are still listed
    indent = len(line) - len(line.lstrip())
    return [(col + indent, name, dotted) for col, name, dotted in found]


_NAME = re.compile(r"(?<![\w.])[^\W\d]\w*")
_SIMPLE_STRING = re.compile(r'(?<![\w.])[rRbBuUfF]{0,2}"[^"\\{}]*"')


def _plain_names(line: str) -> Optional[set[str]]:
    """The names of a line whose only strings are double-quoted ones without escapes or braces,
    with no comment, continuation or non-ASCII character, none after a dot (what _names_in
    finds, by regular expressions: the strings blanked, then each name not inside another word
    or number); None for any other line."""
    line = _SIMPLE_STRING.sub('""', line)
    if not line.isascii() or any(c in line.replace('""', "") for c in "'\"#\\"):
        return None
    return {m.group() for m in _NAME.finditer(line) if not line[: m.start()].rstrip().endswith(".")}


def identifiers(lines: Iterable[str]) -> set[str]:
    """Names a block of forward lines refers to (not attributes after a dot, not strings)."""
    names: set[str] = set()
    for line in lines:
        plain = _plain_names(line)
        if plain is None:
            plain = {name for _, name, dotted in _names_in(line) if not dotted}
        names |= plain
    return names


def _assigns_x(line: str) -> bool:
    """A top-level `x = ...` or `x, _ = ...` line."""
    return bool(re.match(r"x(, _)? = ", line))


def reading(lines: tuple[str, ...], var: str) -> tuple[str, ...]:
    """A layer's forward lines (x in, x out) made to read `var` instead of x: the x of the first
    statement's right-hand side renamed when that statement assigns x (so later lines see only
    the new x), else `x = var` first."""
    first = next((i for i, line in enumerate(lines) if not line.startswith("#")), None)
    if first is None or not _assigns_x(lines[first]):
        return (f"x = {var}", *lines)
    line = lines[first]
    rhs = line.index(" = ") + 3
    out = line
    for col, name, dotted in reversed(_names_in(line)):
        if name == "x" and not dotted and col >= rhs:
            out = out[:col] + var + out[col + 1 :]
    return (*lines[:first], out, *lines[first + 1 :])


@dataclass(frozen=True)
class Walk:
    """How a forward function holds the tensors: `x` carries the current one; `var[t]` names a
    local for each tensor read later than straight after it is made (or made by an input)."""

    var: dict[str, str]
    lines: tuple[str, ...]
    output: str
    arguments: tuple[str, ...] = ("x",)  # the forward function's inputs, in declaration order


def _late_readers(model: Model) -> set[str]:
    """Tensors something reads other than the layer right after their producer (or, for the
    one input, other than the first layer): they need a variable of their own."""
    order = [model.inputs[0].name] if len(model.inputs) == 1 else []
    order += [layer.name for layer in model.layers]
    late = {inp.name for inp in model.inputs} if len(model.inputs) > 1 else set()
    next_reader = {name: i + 1 for i, name in enumerate(order)}
    offset = len(order) - len(model.layers)
    for j, layer in enumerate(model.layers):
        for name in layer.inputs:
            if next_reader.get(name) != j + offset:
                late.add(name)
    for name in model.outputs:
        if name != order[-1]:
            late.add(name)
    return late


# the note of a time_distributed over an elementwise layer, whose code is used as it is
ELEMENTWISE_NOTE = (
    "time_distributed over an elementwise layer: applied to the whole (T, ...) tensor, which is "
    "applying it to every step"
)


def _show(value: Any) -> str:
    describe = getattr(value, "describe", None)
    return describe() if describe else repr(value)


class Backend:
    """A target: mostly tables; emit_<op> methods for what a table cannot say."""

    name: ClassVar[str] = ""
    template: ClassVar[str] = ""
    # op -> its code when the layer's attributes alone decide it (the rest: emit_<op> methods)
    LAYERS: ClassVar[dict[str, Module | Line]] = {}
    native_profile: ClassVar[str] = ""
    framework: ClassVar[str] = ""
    extension: ClassVar[str] = ".py"
    # how its scripts are formatted (black's Python 3 mode unless the target says otherwise)
    format_mode: ClassVar[FormatMode] = PY3_FORMAT
    # op -> what the target cannot do with it (shown in the support table; enforced in unsupported)
    limits: ClassVar[dict[str, str]] = {}
    # how its scripts run as N data-parallel replicas on one host: the interpreter's arguments
    # before the script (a launcher module) and the script's own after it, "{replicas}" standing
    # for N; both empty: its scripts run as one process only
    replica_launcher: ClassVar[tuple[str, ...]] = ()
    replica_flags: ClassVar[tuple[str, ...]] = ()
    # identifiers the script itself gives meaning to where user names become identifiers
    RESERVED_NAMES: ClassVar[frozenset[str]] = frozenset()
    # names the forward function's own text uses (its arguments, x, modules): no tensor variable
    # may take one; names in the emitted lines are added per model
    FORWARD_NAMES: ClassVar[frozenset[str]] = frozenset({"x"})

    def __init__(self) -> None:
        self.names = Names(self.RESERVED_NAMES)

    def name_model(self, model: Model) -> Model:
        """Allocate the identifiers of `model` (self.names), which its layers are emitted with."""
        self.names = Names(self.RESERVED_NAMES, user_names(model))
        return model

    def native(self, layer: Layer) -> str:
        """The identifier this target's script gives `layer`."""
        return self.names.of(layer.name)

    def emit(self, layer: Layer, reads: Optional[tuple[str, ...]] = None) -> LayerCode:
        """The op's LAYERS entry, else emit_<op>; a merge is given the expressions of the
        tensors it reads (default: their names)."""
        entry = self.LAYERS.get(layer.op)
        if entry is not None:
            return self.tabled(layer, entry)
        method = getattr(self, f"emit_{layer.op}", None)
        if method is None:
            raise NotImplementedError(f"{self.name} has no emit_{layer.op}")
        if layer.op in MERGES:
            return method(layer, reads or layer.inputs)
        return method(layer)

    def tabled(self, layer: Layer, entry: Module | Line) -> LayerCode:
        """A layer's code from its LAYERS entry, its attributes filling the entry's fields."""
        if isinstance(entry, Line):
            return LayerCode("", (entry.text.format(**layer.attrs),), entry.notes)
        return self.module_code(layer, entry.constructor.format(**layer.attrs), entry.notes)

    def module_code(self, layer: Layer, constructor: str, notes: tuple[str, ...] = ()) -> LayerCode:
        """A module the script builds as `constructor` and calls on x (override per target)."""
        return LayerCode(constructor, (self.called(layer),), notes)

    def called(self, layer: Layer) -> str:
        """The forward line calling the layer's module, an attribute of the script's model."""
        return f"x = self.{self.native(layer)}(x)"

    def walk(self, model: Model, codes: dict[str, LayerCode]) -> Walk:
        """The forward lines of the whole graph from each layer's code (x in, x out): a chain
        keeps everything in x; a tensor read out of order is kept in a local variable, named
        after it unless the lines use that identifier (FORWARD_NAMES or any emitted name)."""
        late = _late_readers(model)
        used = identifiers(
            line
            for layer in model.layers
            if layer.op not in MERGES
            for line in codes[layer.name].forward
        )
        local = Names(self.FORWARD_NAMES | used, [n for n in user_names(model) if n in late])
        var = {name: local.of(name) for name in user_names(model) if name in late}
        current = model.inputs[0].name if len(model.inputs) == 1 else ""
        lines: list[str] = []
        if current in var:
            lines.append(f"{var[current]} = x")
        for layer in model.layers:
            if layer.op in MERGES:
                reads = tuple("x" if n == current else var[n] for n in layer.inputs)
                lines.extend(self.emit(layer, reads).forward)
            elif layer.inputs[0] == current:
                lines.extend(codes[layer.name].forward)
            else:
                lines.extend(reading(codes[layer.name].forward, var[layer.inputs[0]]))
            current = layer.name
            if current in var:
                lines.append(f"{var[current]} = x")
        output = model.outputs[0]
        arguments = ("x",) if len(model.inputs) == 1 else tuple(var[i.name] for i in model.inputs)
        return Walk(var, tuple(lines), "x" if output == current else var[output], arguments)

    def module_context(self, model: Model) -> dict[str, Any]:
        """The context keys of a script whose model holds its layers as modules (named by
        `name_model` first): each module's layer (name, module, forward, setup), the forward
        lines, their arguments and output, and the helpers the layers' code calls."""
        codes = [(layer, self.emit(layer)) for layer in model.layers]
        walk = self.walk(model, {layer.name: code for layer, code in codes})
        return {
            "layers": [
                {
                    "name": self.native(layer),
                    "module": code.module,
                    "forward": code.forward,
                    "setup": code.setup,
                }
                for layer, code in codes
                if code.module
            ],
            "forward": walk.lines,
            "forward_args": ", ".join(walk.arguments),
            "output": walk.output,
            "helpers": sorted(set().union(*(code.helpers for _, code in codes))),
        }

    def emit_time_distributed(self, layer: Layer) -> LayerCode:
        """The wrapped layer's code made to run on every step (`wrap_steps`, per target). An
        elementwise layer's code is used as it is: on every step or on the whole tensor alike."""
        inner = wrapped(layer)
        code = self.emit(inner)
        if inner.op in ELEMENTWISE:
            return replace(code, notes=(*code.notes, ELEMENTWISE_NOTE))
        return self.wrap_steps(layer, inner, code)

    def wrap_steps(self, layer: Layer, inner: Layer, code: LayerCode) -> LayerCode:
        """`code` (the wrapped layer's, x in, x out on (N*T, *S) steps) applied to every step of
        the (N, T, *S) tensor x (override per target)."""
        raise NotImplementedError(f"{self.name} has no time_distributed")

    def unwrappable(self, layer: Layer) -> Optional[str]:
        """Why this target cannot run a time_distributed layer's wrapped layer (None: it can)."""
        return None

    @classmethod
    def replica_refusal(cls, runtime_name: str) -> str:
        """Why `runtime_name` (one of this target's runtimes) cannot run data-parallel; "" when
        it can."""
        if cls.replica_launcher or cls.replica_flags:
            return ""
        return "data-parallel runs are not yet supported on this target"

    def supports(self, op: str) -> bool:
        """Whether this target has a table entry or an emitter for `op` (the support table
        reads this)."""
        return op in self.LAYERS or hasattr(self, f"emit_{op}")

    def unsupported(self, model: Model) -> list[Problem]:
        """Constructs in this model the target cannot express (override to add more)."""
        problems: list[Problem] = [
            Unsupported(f"target {self.name} cannot express {layer.op}", layer.pos)
            for layer in model.layers
            if not self.supports(layer.op)
        ]
        for layer in model.layers:
            if layer.op != TIME_DISTRIBUTED or not self.supports(layer.op):
                continue
            inner = wrapped(layer)
            why = self.unwrappable(layer)
            if not self.supports(inner.op):
                why = f"target {self.name} cannot express {inner.op}"
            if why:
                problems.append(Unsupported(why, inner.pos))
        return problems

    def native_overrides(self, model: Model) -> list[str]:
        """Attributes whose explicit value differs from the framework's own default."""
        lines = []
        profile = self.native_profile
        for layer in map(wrapped, model.layers):  # a wrapped layer's, under the wrapper's name
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


class OperatorMerges:
    """add and multiply as Python's + and * on the tensors read (a mixin for the targets whose
    tensors overload them elementwise; the shapes are equal, the IR checked that)."""

    def emit_add(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        return LayerCode("", (f"x = {' + '.join(reads)}",))

    def emit_multiply(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        return LayerCode("", (f"x = {' * '.join(reads)}",))
