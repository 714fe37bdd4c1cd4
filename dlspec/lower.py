"""Lower the syntax tree to a raw IR Model: one Layer per call, attributes still unread."""

from __future__ import annotations

import hashlib
from typing import Union

from dlspec import ast
from dlspec.errors import (
    BadValue,
    DuplicateName,
    MissingValue,
    Pos,
    Problem,
    SpecError,
    UnknownName,
    Unsupported,
)
from dlspec.ir import Input, Layer, Model, Source
from dlspec.limits import MAX_LAYERS
from dlspec.ops import DTYPES, OPS, TOP_SETTINGS
from dlspec.values import ValueProblem, integer, name_problem, suggest


def _input(decl: ast.InputDecl, problems: list[Problem]) -> Input:
    if decl.dtype.id not in DTYPES:
        known = f"(known: {', '.join(DTYPES)}){suggest(decl.dtype.id, list(DTYPES))}"
        problems.append(UnknownName(f"unknown dtype {decl.dtype.id!r} {known}", decl.dtype.pos))
    problem = name_problem(decl.name, decl.pos, "input name")
    if problem:
        problems.append(problem)
    dims = []
    for dim in decl.dims:
        try:
            dims.append(integer(dim, "input dimensions", 1))
        except ValueProblem as err:
            problems.append(err.problem)
            dims.append(1)
    return Input(decl.name, decl.dtype.id, tuple(dims), decl.pos)


def _activation_call(value: ast.Value) -> Union[ast.Call, None]:
    """The layer an `activation=` value names, when it names an activation op."""
    if isinstance(value, ast.Name):
        name, args = value.id, ()
    elif isinstance(value, ast.CallVal):
        name, args = value.name, value.args
    else:
        return None
    if name not in OPS or OPS[name].category != "activation":
        return None
    return ast.Call(name, args, value.pos)


def _split_activation(call: ast.Call) -> list[ast.Call]:
    """`dense(10, activation=relu)` is sugar for `dense(10) -> relu`.

    Anything else (`none`, a repeated or unknown activation) stays an attribute, which the
    passes then check and report.
    """
    act = [a for a in call.args if a.key == "activation"]
    if len(act) != 1 or call.op not in OPS or "activation" not in OPS[call.op].attrs:
        return [call]
    layer = _activation_call(act[0].value)
    if layer is None:
        return [call]
    rest = tuple(a for a in call.args if a.key != "activation")
    return [ast.Call(call.op, rest, call.pos), layer]


def _layers(
    decl: ast.ModelDecl, first_input: str
) -> tuple[list[Layer], dict[str, tuple[ast.Arg, ...]]]:
    """One raw Layer per call, each reading the previous statement's output (the first reads the
    input); names are provisional (`#k`) until the resolve pass."""
    layers: list[Layer] = []
    raw: dict[str, tuple[ast.Arg, ...]] = {}
    previous = first_input
    for stmt in decl.layers:
        calls = [c for call in stmt.calls for c in _split_activation(call)]
        for i, call in enumerate(calls):
            key = f"#{len(layers)}"
            label = stmt.label.id if (stmt.label is not None and i == 0) else ""
            attrs = {"__label__": label, "__label_pos__": stmt.label.pos if label else None}
            layers.append(Layer(key, call.op, attrs, call.pos, inputs=(previous,)))
            raw[key] = call.args
            previous = key
    return layers, raw


def _one(items: tuple, what: str, path: str, text: str, required: bool) -> object:
    problems: list[Problem] = []
    if required and not items:
        raise SpecError([MissingValue(f"the file has no {what} block", Pos(1, 1, 2))], path, text)
    for extra in items[1:]:
        problems.append(DuplicateName(f"a second {what} block (one per file for now)", extra.pos))
    if problems:
        raise SpecError(problems, path, text)
    return items[0] if items else None


def lower(spec: ast.SpecFile) -> Model:
    """AST -> raw Model (see Model's docstring); structural problems raise SpecError."""
    model_decl = _one(spec.models, "model", spec.path, spec.text, True)
    train_decl = _one(spec.trains, "train", spec.path, spec.text, False)
    assert isinstance(model_decl, ast.ModelDecl)
    problems: list[Problem] = []
    if not model_decl.inputs:
        problems.append(MissingValue("the model declares no input", model_decl.pos))
    for extra in model_decl.inputs[1:]:
        problems.append(Unsupported("only one input per model for now", extra.pos))
    inputs = tuple(_input(d, problems) for d in model_decl.inputs[:1])
    problem = name_problem(model_decl.name, model_decl.pos, "model name")
    if problem:
        problems.append(problem)
    if not model_decl.layers:
        problems.append(MissingValue("the model has no layers", model_decl.pos))
    first_input = model_decl.inputs[0].name if model_decl.inputs else ""
    layers, raw_args = _layers(model_decl, first_input)
    if len(layers) > MAX_LAYERS:
        extra = layers[MAX_LAYERS]
        message = f"the model has {len(layers)} layers; the limit is {MAX_LAYERS}"
        problems.append(BadValue(message, extra.pos))
    raw_train: dict[str, ast.Setting] = {}
    settings = list(spec.settings) + (list(train_decl.settings) if train_decl else [])
    for setting in spec.settings:
        if setting.key not in TOP_SETTINGS:
            known = f"(known: {', '.join(TOP_SETTINGS)}){suggest(setting.key, list(TOP_SETTINGS))}"
            problems.append(
                UnknownName(f"unknown top-level setting {setting.key!r} {known}", setting.pos)
            )
    for setting in settings:
        if setting.key in raw_train:
            problems.append(DuplicateName(f"setting {setting.key!r} given twice", setting.pos))
        raw_train[setting.key] = setting
    if problems:
        raise SpecError(problems, spec.path, spec.text)
    source = Source(spec.path, hashlib.sha256(spec.text.encode("utf-8")).hexdigest(), spec.text)
    return Model(
        name=model_decl.name,
        profile="",
        inputs=inputs,
        layers=tuple(layers),
        train=None,
        source=source,
        pos=model_decl.pos,
        raw_train=raw_train,
        raw_args=raw_args,
        outputs=(layers[-1].name,) if layers else (),
    )
