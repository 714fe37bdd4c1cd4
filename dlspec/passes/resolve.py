"""Pass: choose the defaults profile, map positional arguments to attributes, name every layer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from dlspec.errors import BadValue, DuplicateName, UnknownName
from dlspec.frontend import ast
from dlspec.frontend.blocks import tensor_problem
from dlspec.frontend.values import ValueProblem, choice, keyed_args, name_problem, show, suggest
from dlspec.ir.attrs import PROFILES
from dlspec.ir.model import TIME_DISTRIBUTED, Input, Layer, Model
from dlspec.ir.ops import ELSEWHERE, OPS, attrs_elsewhere
from dlspec.passes.base import PassContext, declare
from dlspec.passes.facts import RESOLVED


def _profile(ctx: PassContext) -> str:
    if ctx.profile_override:
        return ctx.profile_override
    setting = ctx.written.train.get("defaults")
    if setting is None:
        return "dlspec"
    try:
        return choice(setting.value, "defaults", PROFILES)
    except ValueProblem as err:
        ctx.error(err.problem)
        return "dlspec"


# a merge's arguments are its attributes; the tensors it reads are listed before it
MERGE_SOURCES_HINT = ": a merge reads the tensors listed before it, as in [a, b] -> {op}"


def _attrs(layer: Layer, args: tuple[ast.Arg, ...], ctx: PassContext) -> dict[str, Any]:
    spec = OPS[layer.op]
    hint = MERGE_SOURCES_HINT.format(op=layer.op) if spec.category == "merge" else ""
    attrs = tuple(spec.attrs)
    elsewhere = attrs_elsewhere(layer.op)
    got, problems = keyed_args(args, spec.positional, attrs, layer.op, "attribute", hint, elsewhere)
    for problem in problems:
        ctx.error(problem)
    return got


# ops the language does not wrap, and why (merges are refused for reading several tensors)
NOT_WRAPPED = {
    TIME_DISTRIBUTED: "time_distributed inside time_distributed is not supported: wrap the "
    "innermost layer once",
    "batchnorm": "batchnorm inside time_distributed is not supported (Keras's TimeDistributed "
    "would take statistics per step, a reshape over every step at once): apply batchnorm to the "
    "(T, ...) tensor, whose statistics run over the batch and every axis but the features",
}


def _wrapped(value: ast.Value, blocks: tuple[str, ...], ctx: PassContext) -> Optional[Layer]:
    """The layer a time_distributed wraps, read from its call as a chain's layer is (attributes
    keyed by name, unknown and misplaced ones reported at their position); None on a problem.
    Its name is the wrapper's (set once layers are named), its attributes are filled later."""
    if isinstance(value, ast.Name):
        op, args = value.id, ()
    elif isinstance(value, ast.CallVal):
        op, args = value.name, value.args
    else:
        message = "time_distributed: layer must be a layer call such as lstm(128) or dense(10)"
        ctx.error(BadValue(f"{message}, not {show(value)}", value.pos))
        return None
    if op in blocks:
        message = f"time_distributed wraps one layer; {op!r} is a block (wrap its layers instead)"
        ctx.error(BadValue(message, value.pos))
        return None
    if op not in OPS:
        ctx.error(
            UnknownName(f"unknown layer {op!r}{suggest(op, sorted(OPS), ELSEWHERE)}", value.pos)
        )
        return None
    if OPS[op].category == "merge":
        message = (
            f"time_distributed wraps a layer that reads one tensor; {op} merges several "
            "(merge the (T, ...) tensors themselves: every step is merged alike)"
        )
        ctx.error(BadValue(message, value.pos))
        return None
    if op in NOT_WRAPPED:
        ctx.error(BadValue(NOT_WRAPPED[op], value.pos))
        return None
    spec = OPS[op]
    attrs, elsewhere = tuple(spec.attrs), attrs_elsewhere(op)
    got, problems = keyed_args(args, spec.positional, attrs, op, "attribute", "", elsewhere)
    for problem in problems:
        ctx.error(problem)
    return Layer("", op, got, value.pos, stated=frozenset(got))


def _check_label(name: str, pos: Any, ctx: PassContext) -> bool:
    problem = name_problem(name, pos, "layer name")
    if problem:
        ctx.error(problem)
    return problem is None


NO_SYNTAX = ast.LayerSyntax(())


def _syntax(layer: Layer, ctx: PassContext) -> ast.LayerSyntax:
    """A lowered layer's syntax (by its provisional name): arguments, label, sources, aliases."""
    return ctx.written.layers.get(layer.name, NO_SYNTAX)


def _name_layers(layers: list[Layer], inputs: tuple[Input, ...], ctx: PassContext) -> list[Layer]:
    """Labels checked and unique (inputs, layers and block instances name tensors in one
    namespace); unlabeled layers named `<op>_<k>`, skipping every name already taken."""
    taken: dict[str, Any] = {inp.name: inp for inp in inputs}
    for layer in layers:
        syntax = _syntax(layer, ctx)
        for alias, pos in syntax.aliases:
            if alias in taken:
                used = "is an input's name" if isinstance(taken[alias], Input) else "is used twice"
                ctx.error(DuplicateName(f"block instance name {alias!r} {used}", pos))
            else:
                taken[alias] = layer
        label = syntax.label
        if label:
            if label in taken:
                used = "is an input's name" if isinstance(taken[label], Input) else "is used twice"
                message = f"layer name {label!r} {used}"
                ctx.error(DuplicateName(message, syntax.label_pos))
            elif _check_label(label, syntax.label_pos, ctx):
                taken[label] = layer
    counters: dict[str, int] = {}
    named = []
    for layer in layers:
        name = _syntax(layer, ctx).label
        if not name:
            while True:
                counters[layer.op] = counters.get(layer.op, 0) + 1
                name = f"{layer.op}_{counters[layer.op]}"
                if name not in taken:
                    break
            taken[name] = layer
        named.append(replace(layer, name=name))
    return named


def _renamed(names: tuple[str, ...], final: dict[str, str]) -> tuple[str, ...]:
    """Tensor names with provisional layer names replaced by the final ones."""
    return tuple(final.get(name, name) for name in names)


def _check_edges(
    raw: list[Layer], named: list[Layer], aliases: dict[str, str], model: Model, ctx: PassContext
) -> None:
    """Every tensor a chain lists is made before it (so the graph is acyclic and in topological
    order); every output names a layer (a block instance names its output layer's tensor)."""
    all_names = [inp.name for inp in model.inputs] + [layer.name for layer in named] + [*aliases]
    made = {inp.name for inp in model.inputs}
    later = {layer.name for layer in named} | set(aliases)
    for old, new in zip(raw, named, strict=True):
        syntax = _syntax(old, ctx)
        for ref in syntax.sources:
            problem = tensor_problem(ref.id, ref.pos, made, later, all_names)
            if problem:
                ctx.error(problem)
        for name in (new.name, *(alias for alias, _ in syntax.aliases)):
            made.add(name)
            later.discard(name)
    for ref in ctx.written.outputs:
        if ref.id in {inp.name for inp in model.inputs}:
            ctx.error(
                BadValue(f"output {ref.id!r} is an input: an output is a layer's tensor", ref.pos)
            )
        else:
            problem = tensor_problem(ref.id, ref.pos, made, set(), all_names)
            if problem:
                ctx.error(problem)


def _check_used(model: Model, ctx: PassContext) -> None:
    """Every layer's output reaches a model output, and every input is read: a dead branch is
    an error (Keras's functional API would drop it, PyTorch would never update it)."""
    needed = set(model.outputs)
    for layer in reversed(model.layers):
        if layer.name in needed:
            needed.update(layer.inputs)
    hints = {early.after_pos: early.hint() for early in ctx.written.early_labels}
    for layer in model.layers:
        if layer.name not in needed:
            message = f"layer {layer.name!r} is not used: its output reaches no model output"
            ctx.error(BadValue(message + hints.get(layer.pos, ""), layer.pos))
    for inp in model.inputs:
        if inp.name not in needed:
            hint = (
                f" (a chain without sources reads the statement before it: write [{inp.name}] -> ...)"
                if len(model.inputs) > 1
                else ""
            )
            ctx.error(BadValue(f"input {inp.name!r} is not read by any layer{hint}", inp.pos))


def _name_wrapped(layer: Layer) -> Layer:
    """A time_distributed's wrapped layer takes the wrapper's name: its parameters are the
    wrapper's, `<wrapper>.<param>` (`td.weight_ih_l0`)."""
    inner = layer.attrs.get("layer") if layer.op == TIME_DISTRIBUTED else None
    if not isinstance(inner, Layer):
        return layer
    return layer.with_attrs(layer=replace(inner, name=layer.name))


@declare(ensures=(RESOLVED,))
def resolve(model: Model, ctx: PassContext) -> Model:
    """Known ops only; attributes keyed by name; every layer has a unique identifier name, and
    every edge (layer inputs, model outputs) names tensors by those names."""
    layers = []
    for layer in model.layers:
        if layer.op not in OPS:
            hint = suggest(layer.op, sorted(OPS) + list(ctx.written.blocks), ELSEWHERE)
            ctx.error(UnknownName(f"unknown layer {layer.op!r}{hint}", layer.pos))
            continue
        attrs: dict[str, Any] = _attrs(layer, _syntax(layer, ctx).args, ctx)
        if layer.op == TIME_DISTRIBUTED and "layer" in attrs:
            inner = _wrapped(attrs["layer"], ctx.written.blocks, ctx)
            attrs["layer"] = inner if inner is not None else attrs["layer"]
        layers.append(replace(layer, attrs=attrs, stated=frozenset(attrs)))
    named = _name_layers(layers, model.inputs, ctx)
    final = {old.name: new.name for old, new in zip(layers, named, strict=True)}
    aliases = {
        alias: new.name
        for old, new in zip(layers, named, strict=True)
        for alias, _ in _syntax(old, ctx).aliases
    }
    if len(layers) == len(model.layers):
        _check_edges(layers, named, aliases, model, ctx)
    final.update(aliases)
    resolved = replace(
        model,
        profile=_profile(ctx),
        layers=tuple(
            _name_wrapped(replace(layer, inputs=_renamed(layer.inputs, final))) for layer in named
        ),
        outputs=_renamed(model.outputs, final),
    )
    if not ctx.problems:
        _check_used(resolved, ctx)
    return resolved
