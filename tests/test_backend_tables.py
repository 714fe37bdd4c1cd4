"""Each target's layer table (Backend.LAYERS): entries for known ops, fields naming the op's
attributes, one source of code per op, and each entry's code as the layer's attributes fill it."""

from __future__ import annotations

import string

import pytest

from dlspec.backends import TARGETS
from dlspec.backends.base import Backend, LayerCode, Line, Module
from dlspec.errors import Pos
from dlspec.ir.model import Layer
from dlspec.ir.ops import OPS

ENTRIES = [
    pytest.param(target, op, entry, id=f"{target}-{op}")
    for target, backend in TARGETS.items()
    for op, entry in backend.LAYERS.items()
]


def fields(entry: Module | Line) -> set[str]:
    """The format fields an entry's text names."""
    text = entry.text if isinstance(entry, Line) else entry.constructor
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_target_has_a_table() -> None:
    assert all(len(backend.LAYERS) >= 5 for backend in TARGETS.values())
    assert len(ENTRIES) > 40


@pytest.mark.parametrize("target, op, entry", ENTRIES)
def test_an_entry_names_only_its_ops_attributes(target: str, op: str, entry: Module | Line) -> None:
    """Stated or derived (the shaped fact holds every built layer to these)."""
    declared = set(OPS[op].attrs) | set(OPS[op].derived)
    assert fields(entry) <= declared, fields(entry) - declared
    assert OPS[op].category != "merge"  # a table entry reads x alone, never the tensors merged


@pytest.mark.parametrize("target, op, entry", ENTRIES)
def test_an_op_has_a_table_entry_or_an_emitter_not_both(
    target: str, op: str, entry: Module | Line
) -> None:
    assert not hasattr(TARGETS[target], f"emit_{op}")
    assert TARGETS[target]().supports(op)


def _layer(op: str) -> Layer:
    attrs = {"alpha": 0.25, "rate": 0.5, "n": 3, "axis": 1, "vocab": 7, "dim": 2}
    attrs["padding"] = ((1, 0), (2, 1))
    declared = set(OPS[op].attrs) | set(OPS[op].derived)
    return Layer("act_1", op, {k: v for k, v in attrs.items() if k in declared}, Pos())


def _emit(target: str, op: str) -> LayerCode:
    backend: Backend = TARGETS[target]()
    layer = _layer(op)
    backend.names.of(layer.name)
    return backend.emit(layer)


def test_a_module_entry_is_built_once_and_called_on_x() -> None:
    code = _emit("pytorch", "leaky_relu")
    assert code == LayerCode("nn.LeakyReLU(negative_slope=0.25)", ("x = self.act_1(x)",))


def test_a_line_entry_is_one_statement_with_its_notes() -> None:
    code = _emit("mxnet", "leaky_relu")
    assert code.module == ""
    assert code.forward == ("x = F.where(x > 0, x, 0.25 * x)",)
    assert code.notes and "F.where" in code.notes[0]


def test_a_keras_module_is_built_where_it_is_called_and_named() -> None:
    code = _emit("keras", "zeropad2d")
    constructor = "layers.ZeroPadding2D(padding=((1, 0), (2, 1)), data_format=data_format"
    assert code.module == constructor + ")"
    assert code.forward == (f'x = {constructor}, name="act_1")(x)',)


def test_a_keras_module_entry_has_arguments() -> None:
    for op, entry in TARGETS["keras"].LAYERS.items():
        assert isinstance(entry, Module), op
        assert entry.constructor.endswith(")") and not entry.constructor.endswith("()"), op
