"""Lower the syntax tree to a raw IR Model (one Layer per call, attributes still unread) and the
syntax the passes read beside it."""

from __future__ import annotations

import hashlib
from typing import Optional

from dlspec.errors import (
    BadValue,
    DuplicateName,
    MissingValue,
    Pos,
    Problem,
    SpecError,
    UnknownName,
)
from dlspec.frontend import ast
from dlspec.frontend.blocks import Blocks
from dlspec.frontend.labels import EarlyLabel, early_labels
from dlspec.frontend.sugar import split_activation
from dlspec.frontend.values import ValueProblem, integer, name_problem, suggest
from dlspec.ir.model import Input, Layer, Model, Source
from dlspec.ir.ops import DTYPES
from dlspec.ir.settings import TOP_SETTINGS
from dlspec.limits import MAX_LAYERS


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


def _chain_reads(
    stmt: ast.LayerStmt, previous: str, decl_has_inputs: bool, problems: list[Problem]
) -> tuple[tuple[str, ...], tuple[ast.Name, ...]]:
    """The tensors a chain's first layer reads: those it lists, else the previous statement's
    output (an input declaration's output is the input)."""
    if stmt.sources:
        return tuple(name.id for name in stmt.sources), stmt.sources
    if not previous and decl_has_inputs:
        problems.append(
            MissingValue("this layer has no input: declare an input before it", stmt.pos)
        )
    return (previous,) if previous else (), ()


def _layers(
    decl: ast.ModelDecl, blocks: Blocks, problems: list[Problem]
) -> tuple[list[Layer], dict[str, ast.LayerSyntax], str]:
    """One raw Layer per call, in statement order, block calls expanded (dlspec/frontend/blocks.py).
    Within a chain each layer reads the one before; a chain's first layer reads what
    _chain_reads says. Names are provisional (`#k`) until the resolve pass, except expanded
    layers', which carry their final names as labels; written tensor names stay as written (with
    their positions in each layer's syntax, `sources`). Also returns each layer's syntax and the
    last statement's output tensor."""
    layers: list[Layer] = []
    raw: dict[str, ast.LayerSyntax] = {}
    taken = {d.name for d in decl.inputs} | {
        label.id for stmt in decl.layers for label in stmt.labels if label is not None
    }
    previous = ""
    for stmt in decl.body:
        if isinstance(stmt, ast.InputDecl):
            previous = stmt.name
            continue
        if not isinstance(stmt, ast.LayerStmt):
            continue
        reads, written = _chain_reads(stmt, previous, bool(decl.inputs), problems)
        for call, label_name in stmt.labelled_calls:
            if call.op in blocks.decls:
                reads = blocks.expand(call, label_name, reads, written, taken, layers, raw)
                written = ()
                continue
            problem = blocks.not_a_block(call)
            if problem:
                problems.append(problem)
            for i, part in enumerate(split_activation(call)):
                key = f"#{len(layers)}"
                label = label_name.id if (label_name is not None and i == 0) else ""
                layers.append(Layer(key, part.op, {}, part.pos, inputs=reads))
                raw[key] = ast.LayerSyntax(
                    part.args, label, label_name.pos if label else None, written
                )
                reads, written = (key,), ()
        previous = reads[0] if reads else previous
    return layers, raw, previous


def _outputs(decl: ast.ModelDecl, last: str, problems: list[Problem]) -> tuple[str, ...]:
    """The tensors an `output` statement names (resolved by the resolve pass), else the last
    statement's."""
    for extra in decl.outputs[1:]:
        problems.append(
            DuplicateName("a second output statement (list every output in one)", extra.pos)
        )
    if decl.outputs:
        return tuple(name.id for name in decl.outputs[0].names)
    return (last,) if last else ()


def _inputs(decl: ast.ModelDecl, problems: list[Problem]) -> tuple[Input, ...]:
    """Every input declaration, each name once."""
    seen: set[str] = set()
    for d in decl.inputs:
        if d.name in seen:
            problems.append(DuplicateName(f"input name {d.name!r} is used twice", d.pos))
        seen.add(d.name)
    return tuple(_input(d, problems) for d in decl.inputs)


def _one(items: tuple, what: str, path: str, text: str, required: bool) -> object:
    problems: list[Problem] = []
    if required and not items:
        raise SpecError([MissingValue(f"the file has no {what} block", Pos(1, 1, 2))], path, text)
    for extra in items[1:]:
        problems.append(DuplicateName(f"a second {what} block (one per file for now)", extra.pos))
    if problems:
        raise SpecError(problems, path, text)
    return items[0] if items else None


def _settings(
    spec: ast.SpecFile, train_decl: Optional[ast.TrainDecl], problems: list[Problem]
) -> tuple[dict[str, ast.Setting], list[ast.Setting]]:
    """The top-level and train settings by key, and the `verify = ...` ones apart (`tolerance(...)`
    and `precision(...)`: one of each form, which the defaults pass checks); unknown top-level
    and repeated settings are problems."""
    raw_train: dict[str, ast.Setting] = {}
    raw_verify: list[ast.Setting] = []
    for setting in spec.settings:
        if setting.key not in TOP_SETTINGS:
            known = f"(known: {', '.join(TOP_SETTINGS)}){suggest(setting.key, list(TOP_SETTINGS))}"
            problems.append(
                UnknownName(f"unknown top-level setting {setting.key!r} {known}", setting.pos)
            )
    for setting in list(spec.settings) + (list(train_decl.settings) if train_decl else []):
        if setting.key == "verify":
            raw_verify.append(setting)
            continue
        if setting.key in raw_train:
            problems.append(DuplicateName(f"setting {setting.key!r} given twice", setting.pos))
        raw_train[setting.key] = setting
    return raw_train, raw_verify


def _model_problems(decl: ast.ModelDecl) -> list[Problem]:
    """A model without inputs or layers, or whose name is not an identifier."""
    problems: list[Problem] = []
    if not decl.inputs:
        problems.append(MissingValue("the model declares no input", decl.pos))
    problem = name_problem(decl.name, decl.pos, "model name")
    if problem:
        problems.append(problem)
    if not decl.layers:
        problems.append(MissingValue("the model has no layers", decl.pos))
    return problems


def lower(spec: ast.SpecFile) -> tuple[Model, ast.Written]:
    """AST -> a raw Model (one layer per call, attributes unread, `train` None) and what the
    passes still read as written; structural problems raise SpecError."""
    model_decl = _one(spec.models, "model", spec.path, spec.text, True)
    train_decl = _one(spec.trains, "train", spec.path, spec.text, False)
    assert isinstance(model_decl, ast.ModelDecl)
    problems = _model_problems(model_decl)
    inputs = _inputs(model_decl, problems)
    blocks = Blocks.check(spec.blocks, problems)
    layers, syntax, last = _layers(model_decl, blocks, problems)
    outputs = _outputs(model_decl, last, problems)
    if len(layers) > MAX_LAYERS and not blocks.overflow:
        extra = layers[MAX_LAYERS]
        message = f"the model has {len(layers)} layers; the limit is {MAX_LAYERS}"
        problems.append(BadValue(message, extra.pos))
    raw_train, raw_verify = _settings(spec, train_decl, problems)
    if problems:
        raise SpecError(problems, spec.path, spec.text)
    source = Source(spec.path, hashlib.sha256(spec.text.encode("utf-8")).hexdigest(), spec.text)
    model = Model(
        name=model_decl.name,
        profile="",
        inputs=inputs,
        layers=tuple(layers),
        train=None,
        source=source,
        pos=model_decl.pos,
        outputs=outputs,
        outputs_pos=model_decl.outputs[0].pos if model_decl.outputs else Pos(),
        inference=train_decl is None,
    )
    written = ast.Written(
        layers=syntax,
        train=raw_train,
        verify=tuple(raw_verify),
        outputs=model_decl.outputs[0].names if model_decl.outputs else (),
        blocks=tuple(blocks.names()),
        early_labels=_early_labels(spec, model_decl, blocks),
    )
    return model, written


def _early_labels(
    spec: ast.SpecFile, model_decl: ast.ModelDecl, blocks: Blocks
) -> tuple[EarlyLabel, ...]:
    """The model's and every block definition's labels read before their chain's end."""
    found = list(early_labels(model_decl.body, blocks.decls))
    for decl in spec.blocks:
        found += early_labels(decl.body, blocks.decls)
    return tuple(found)
