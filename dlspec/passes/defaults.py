"""Pass: read every stated value and fill every unstated one from dlspec.ir.ops and .settings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Optional

from dlspec.errors import BadValue, DuplicateName, MissingValue, Pos, UnknownName
from dlspec.frontend import ast
from dlspec.frontend.values import ValueProblem, keyed_args, show, suggest
from dlspec.ir.attrs import REQUIRED, AttrSpec, init_value
from dlspec.ir.model import (
    TIME_DISTRIBUTED,
    Data,
    InitSpec,
    Layer,
    Loss,
    Model,
    Optimizer,
    Schedule,
    Train,
)
from dlspec.ir.ops import OPS, TOKEN_IDS
from dlspec.ir.settings import (
    DATASETS,
    GLOBAL_INIT_KEYS,
    LOSS_TARGETS,
    OPTIMIZER_SUGAR,
    OPTIMIZERS,
    OPTIMIZERS_ELSEWHERE,
    SCHEDULES,
    SCHEDULES_ELSEWHERE,
    TOP_SETTINGS,
    TRAIN_DEFAULT_DATA,
    TRAIN_DEFAULT_OPTIMIZER,
    TRAIN_DEFAULT_SCHEDULE,
    TRAIN_ELSEWHERE,
    TRAIN_SETTINGS,
    VERIFY_PRECISIONS,
    VERIFY_TOLERANCES,
    optimizer_args_elsewhere,
)
from dlspec.passes.base import PassContext, declare
from dlspec.passes.facts import EXPLICIT, RESOLVED


def fill(
    table: dict[str, AttrSpec],
    stated: dict[str, Any],
    profile: str,
    where: str,
    pos: Pos,
    ctx: PassContext,
    overrides: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Convert stated values and default the rest, in table order; problems go to ctx."""
    out: dict[str, Any] = {}
    for key, spec in table.items():
        if key in stated:
            try:
                out[key] = spec.convert(stated[key], f"{where}: {key}")
            except ValueProblem as err:
                ctx.error(err.problem)
                out[key] = None
        elif overrides and key in overrides:
            out[key] = overrides[key]
        elif spec.default is REQUIRED:
            ctx.error(MissingValue(f"{where} needs {key}=", pos))
            out[key] = None
        elif spec.derived(profile) and None in out.values():
            out[key] = None  # it reads attributes, one of which failed (already reported)
        else:
            out[key] = spec.default_for(profile, out)
    return out


def _call_parts(value: ast.Value, what: str, table: dict) -> tuple[str, tuple[ast.Arg, ...]]:
    """The name and arguments of a `name` or `name(args)` setting (a quoted name: a hint)."""
    if isinstance(value, ast.Name):
        return value.id, ()
    if isinstance(value, ast.CallVal):
        return value.name, value.args
    example = next(iter(table))
    message = f"{what} must be a name such as {example} or {example}(...); got {show(value)}"
    if isinstance(value, ast.Str) and value.value in table:
        message += f": write {value.value} without quotes"
    raise ValueProblem(BadValue(message, value.pos))


def _keyword_args(
    kind: str,
    args: tuple[ast.Arg, ...],
    table: dict,
    ctx: PassContext,
    elsewhere: Optional[Mapping[str, str]] = None,
) -> dict:
    order = tuple(table)
    got, problems = keyed_args(args, order, order, kind, "argument", "", elsewhere)
    for problem in problems:
        ctx.error(problem)
    return got


# other frameworks' names for what a `name(args)` setting chooses, by setting
NAMED_ELSEWHERE = {"optimizer": OPTIMIZERS_ELSEWHERE, "schedule": SCHEDULES_ELSEWHERE}


def _choose(setting: Optional[ast.Setting], default: str, table: dict, what: str, ctx: PassContext):
    """(name, stated args, pos) of a `name(args)` setting, or the default name."""
    if setting is None:
        return default, {}, Pos()
    try:
        name, args = _call_parts(setting.value, what, table)
    except ValueProblem as err:
        ctx.error(err.problem)
        return None, {}, setting.pos
    if name not in table:
        hint = suggest(name, list(table), NAMED_ELSEWHERE.get(what))
        ctx.error(UnknownName(f"unknown {what} {name!r}{hint}", setting.value.pos))
        return None, {}, setting.pos
    return name, args, setting.value.pos


def _optimizer(model: Model, ctx: PassContext) -> tuple[Optional[Optimizer], float]:
    raw = ctx.written.train.get("optimizer")
    name, args, pos = _choose(raw, TRAIN_DEFAULT_OPTIMIZER, OPTIMIZERS, "optimizer", ctx)
    if name is None:
        return None, 0.0
    table = {**OPTIMIZERS[name], **OPTIMIZER_SUGAR}
    stated = _keyword_args(name, args, table, ctx, optimizer_args_elsewhere(table))
    attrs = fill(table, stated, model.profile, name, pos, ctx)
    decay = attrs.pop("decay")
    return Optimizer(name, attrs, pos, frozenset(k for k in stated if k in attrs)), decay or 0.0


def _schedule(model: Model, decay: float, ctx: PassContext) -> Optional[Schedule]:
    raw = ctx.written.train.get("schedule")
    if decay and raw is not None:
        ctx.error(BadValue("give either the optimiser's decay= or a schedule, not both", raw.pos))
    if decay:
        return Schedule(
            "inverse_time", {"decay": decay, "unit": "step"}, ctx.written.train["optimizer"].pos
        )
    name, args, pos = _choose(raw, TRAIN_DEFAULT_SCHEDULE, SCHEDULES, "schedule", ctx)
    if name is None:
        return None
    stated = _keyword_args(name, args, SCHEDULES[name], ctx)
    return Schedule(name, fill(SCHEDULES[name], stated, model.profile, name, pos, ctx), pos)


def _data(model: Model, ctx: PassContext) -> Optional[Data]:
    name, args, pos = _choose(
        ctx.written.train.get("data"), TRAIN_DEFAULT_DATA, DATASETS, "dataset", ctx
    )
    if name is None:
        return None
    spec = DATASETS[name]
    stated = _keyword_args(name, args, spec.attrs, ctx)
    attrs = fill(spec.attrs, stated, model.profile, name, pos, ctx)
    sizes = {k: attrs.get(k) or getattr(spec, k) for k in ("classes", "train_size", "test_size")}
    return Data(name, attrs, pos, **sizes)


def _globals(ctx: PassContext) -> dict[str, InitSpec]:
    out = {}
    for key in GLOBAL_INIT_KEYS:
        if key in ctx.written.train:
            try:
                out[key] = init_value(ctx.written.train[key].value, key)
            except ValueProblem as err:
                ctx.error(err.problem)
    return out


# names users may take for settings that are the launcher's, not the spec's
REPLICAS_HINT = (
    ": the replica count is the launcher's, not the spec's (pytorch: torchrun "
    "--nproc_per_node N); the spec states lr_scaling and batchnorm_sync"
)
LAUNCH_TIME = {name: REPLICAS_HINT for name in ("replicas", "world_size", "gpus", "devices")}


def _train(model: Model, ctx: PassContext) -> Optional[Train]:
    known = {*TRAIN_SETTINGS, *GLOBAL_INIT_KEYS, *TOP_SETTINGS, "optimizer", "schedule", "data"}
    written = ctx.written.train
    for key, setting in written.items():
        if key not in known:
            hint = LAUNCH_TIME.get(key) or suggest(key, sorted(known), TRAIN_ELSEWHERE)
            ctx.error(UnknownName(f"unknown setting {key!r}{hint}", setting.pos))
    stated = {k: s.value for k, s in written.items() if k in TRAIN_SETTINGS}
    basic = fill(TRAIN_SETTINGS, stated, model.profile, "train", Pos(), ctx)
    optimizer, decay = _optimizer(model, ctx)
    schedule = _schedule(model, decay, ctx)
    data = _data(model, ctx)
    global_inits = _globals(ctx)
    loss_pos = written["loss"].value.pos if "loss" in written else Pos()
    if optimizer is None or schedule is None or data is None or None in basic.values():
        return None
    return Train(
        loss=Loss(basic["loss"], loss_pos, labels=LOSS_TARGETS[basic["loss"]]),
        optimizer=optimizer,
        schedule=schedule,
        batch=basic["batch"],
        epochs=basic["epochs"],
        seed=basic["seed"],
        data=data,
        global_inits=global_inits,
        shuffle=basic["shuffle"],
        lr_scaling=basic["lr_scaling"],
        batchnorm_sync=basic["batchnorm_sync"],
        positions={k: s.pos for k, s in written.items()},
    )


VERIFY_FORM = "tolerance(forward=..., losses=..., weights=...), each bound optional"
PRECISION_FORM = f"precision({' or '.join(VERIFY_PRECISIONS)})"
VERIFY_FORMS = f"{VERIFY_FORM}, or {PRECISION_FORM}"


def _verify(model: Model, ctx: PassContext) -> tuple[dict[str, float], str]:
    """The bounds a top-level `verify = tolerance(weights=...)` states (keywords only) and the
    precision a `verify = precision(float64)` states; each form at most once."""
    bounds, precision, seen = {}, VERIFY_PRECISIONS[0], set()
    table = {"tolerance": VERIFY_TOLERANCES, "precision": VERIFY_PRECISIONS}
    for setting in ctx.written.verify:
        if not isinstance(setting.value, (ast.Name, ast.CallVal)):
            ctx.error(BadValue(f"verify must be {VERIFY_FORMS}", setting.value.pos))
            continue
        name, args, pos = _choose(setting, "tolerance", table, "verify setting", ctx)
        if name is None:
            continue
        if name in seen:
            ctx.error(DuplicateName(f"verify = {name}(...) given twice", setting.pos))
            continue
        seen.add(name)
        if name == "precision":
            precision = _precision(args, pos, ctx) or precision
        else:
            bounds = _tolerances(model, args, pos, ctx)
    return bounds, precision


def _precision(args: tuple[ast.Arg, ...], pos: Pos, ctx: PassContext) -> Optional[str]:
    """The one dtype name of `verify = precision(float64)`, or None (reported)."""
    if len(args) != 1 or args[0].key is not None or not isinstance(args[0].value, ast.Name):
        where = args[1].pos if len(args) > 1 else args[0].pos if args else pos
        ctx.error(BadValue(f"verify = precision(...) takes one dtype: {PRECISION_FORM}", where))
        return None
    value = args[0].value
    if value.id not in VERIFY_PRECISIONS:
        hint = suggest(value.id, list(VERIFY_PRECISIONS))
        message = f"verify precision {value.id!r} is not {' or '.join(VERIFY_PRECISIONS)}{hint}"
        ctx.error(BadValue(message, value.pos))
        return None
    return value.id


def _tolerances(
    model: Model, args: tuple[ast.Arg, ...], pos: Pos, ctx: PassContext
) -> dict[str, float]:
    """The bounds of `verify = tolerance(...)` (keywords only, at least one)."""
    for arg in args:
        if arg.key is None:
            ctx.error(BadValue(f"verify bounds are keywords: {VERIFY_FORM}", arg.pos))
    keywords = tuple(arg for arg in args if arg.key is not None)
    order = tuple(VERIFY_TOLERANCES)
    stated, problems = keyed_args(keywords, (), order, "verify = tolerance(...)", "bound")
    for problem in problems:
        ctx.error(problem)
    if not args:
        ctx.error(MissingValue(f"verify = tolerance(...) states no bound: {VERIFY_FORM}", pos))
    if model.inference and set(stated) - {"forward"}:
        ctx.error(
            BadValue("an inference spec (no train block) is verified by its forward only", pos)
        )
    bounds = fill(VERIFY_TOLERANCES, stated, model.profile, "verify", pos, ctx)
    return {k: v for k, v in bounds.items() if k in stated and v is not None}


def _layer(layer: Layer, profile: str, inits: dict[str, InitSpec], ctx: PassContext) -> Layer:
    if layer.op == TIME_DISTRIBUTED and isinstance(layer.attrs.get("layer"), Layer):
        # the wrapped layer's attributes: its own op's table, profile and global initialisers
        layer = layer.with_attrs(layer=_layer(layer["layer"], profile, inits, ctx))
    spec = OPS[layer.op]
    table = spec.attrs
    overrides = {k: v for k, v in inits.items() if k in table}
    if layer.op in TOKEN_IDS:
        overrides.pop("init", None)  # a global `init` means kernels, not embedding tables
    attrs = fill(table, layer.attrs, profile, layer.op, layer.pos, ctx, overrides)
    return replace(layer, attrs=attrs)


@declare(requires=(RESOLVED,), ensures=(EXPLICIT,))
def defaults(model: Model, ctx: PassContext) -> Model:
    """Every layer attribute and training setting converted and explicit."""
    train = _train(model, ctx)
    inits = train.global_inits if train else {}
    layers = tuple(_layer(layer, model.profile, inits, ctx) for layer in model.layers)
    bounds, precision = _verify(model, ctx)
    return replace(
        model,
        layers=layers,
        train=train,
        verify_tolerances=bounds,
        verify_precision=precision,
    )
