"""The script contract: validate_results against the results schema, and every generated script's
flags and results fields read (without a framework) from its source against the one definition."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path
from typing import Any

import pytest

from dlspec.backends import TARGETS
from dlspec.codegen import interface
from dlspec.codegen.interface import (
    INFERENCE,
    KINDS,
    RESULTS,
    TRAINING,
    flags,
    result_fields,
    validate_results,
)
from dlspec.limits import MAX_INT
from dlspec.resources import templates_dir

ROOT = Path(__file__).resolve().parent.parent
GOLDENS = sorted((ROOT / "generated").glob("*/*.py"))
SAMPLE = {"str": "x", "int": 1, "float": 0.5, "bool": False, "list[float]": [0.5]}


def valid(kind: str) -> dict[str, Any]:
    """A results object that follows the schema for `kind` (one epoch, two steps, one timed)."""
    obj = {}
    for name in result_fields(kind):
        field = RESULTS[name]
        obj[name] = field.choices[0] if field.choices else SAMPLE[field.type]
    obj.update(kind=kind, steps=2, warmup_steps=1)
    return obj


# ---- validate_results (no framework) -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_valid_object_has_no_problems(kind: str) -> None:
    assert validate_results(valid(kind)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_nullable_fields_may_be_null(kind: str) -> None:
    obj = valid(kind)
    obj.update({name: None for name in obj if RESULTS[name].nullable})
    assert validate_results(obj) == []


def test_a_missing_field_is_reported() -> None:
    obj = valid(TRAINING)
    del obj["test_loss"], obj["cuda"]  # a nullable field must be present too (null)
    assert validate_results(obj) == ["cuda: missing", "test_loss: missing"]


def test_a_wrong_type_is_reported() -> None:
    obj = valid(TRAINING)
    obj.update(steps=2.0, cudnn=91900, epoch_seconds=[1.0, "2"], epochs=2, epoch_losses=[1, 2])
    assert validate_results(obj) == [
        "cudnn: expected str, got int 91900",
        "steps: expected int, got float 2.0",
        "epoch_seconds: expected list[float], got list [1.0, '2']",
    ]


def test_a_bool_is_not_a_number_but_an_int_is_a_float() -> None:
    obj = valid(INFERENCE)
    obj["timed_seconds"] = 3  # JSON has one number type: 3 and 3.0 are the same duration
    assert validate_results(obj) == []
    obj["parameters"] = True
    assert validate_results(obj) == ["parameters: expected int, got bool True"]


def test_an_extra_field_is_reported() -> None:
    obj = valid(TRAINING)
    obj["samples_per_sec"] = 1.0  # the field's old name
    assert validate_results(obj) == ["samples_per_sec: not a results field"]


def test_a_field_of_the_other_kind_is_reported() -> None:
    obj = valid(INFERENCE)
    obj["final_loss"] = 0.5
    assert validate_results(obj) == ["final_loss: a field of training results only"]
    obj = valid(TRAINING)
    obj["seconds_per_1000_samples"] = 0.5
    assert validate_results(obj) == ["seconds_per_1000_samples: a field of inference results only"]


def test_null_where_not_nullable_and_values_outside_the_choices() -> None:
    obj = valid(TRAINING)
    obj.update(test_loss=None, runtime="keras[mxnet]", data_format="channels_last")
    assert validate_results(obj) == [
        "runtime: 'keras[mxnet]' is not one of "
        "pytorch, tensorflow, keras[tensorflow], keras[jax], keras[torch], mxnet, cntk",
        "data_format: 'channels_last' is not one of NCHW, NHWC",
        "test_loss: null, expected float",
    ]


def test_an_unknown_kind_checks_the_common_fields() -> None:
    obj = valid(TRAINING)
    obj["kind"] = "benchmark"
    problems = validate_results(obj)
    assert problems[0] == "kind: 'benchmark' is not one of training, inference"
    assert "epochs: not a results field" not in problems  # still a field, of some kind
    del obj["kind"]
    assert validate_results(obj)[0] == "kind: missing"


def test_inconsistent_fields_are_reported() -> None:
    obj = valid(TRAINING)
    obj.update(epochs=3, warmup_steps=2, timed_seconds=-1.0)
    assert validate_results(obj) == [
        "warmup_steps: 2 of 2 steps",
        "epochs: 3, but 1 epoch_seconds and 1 epoch_losses",
        "timed_seconds: -1.0 is not a duration",
    ]


def test_only_an_object_is_valid() -> None:
    assert validate_results([]) == ["results: expected a JSON object, got list"]


def test_the_schema_is_well_formed() -> None:
    for name, field in RESULTS.items():
        assert field.type in interface.TYPES, name
        assert field.kinds and set(field.kinds) <= set(KINDS), name
        assert field.meaning and not field.meaning.endswith("."), name
        assert not field.choices or field.type == "str", name
    for target in TARGETS:
        names = [flag.name for flag in flags(target)]
        assert len(names) == len(set(names)), target
        assert all("%" not in flag.help for flag in flags(target)), target  # argparse formats %


# ---- every generated script against the contract (its source, parsed) ---------------------------


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _written_keys(function: ast.FunctionDef) -> set[str]:
    """String keys a function writes: dict literals' keys, `d["k"] = ...` targets, and tuples of
    strings (dict.fromkeys)."""
    keys = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            if isinstance(node.slice, ast.Constant):
                keys.add(node.slice.value)
        elif isinstance(node, ast.Tuple) and node.elts:
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                keys |= {e.value for e in node.elts}  # type: ignore[attr-defined]
    return keys


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_every_script_writes_exactly_the_schema_fields(path: Path) -> None:
    """results_of, platform_facts, the history (train and evaluate, or infer) and its time
    stamp together write every field of the script's kind and nothing else."""
    functions = _functions(ast.parse(path.read_text(encoding="utf-8")))
    kind = INFERENCE if "infer" in functions else TRAINING
    history = ("infer",) if kind == INFERENCE else ("train", "evaluate")
    names = ("results_of", "stamped", "platform_facts", "backend_facts", *history)
    written = set().union(*(_written_keys(functions[n]) for n in names if n in functions))
    assert written == set(result_fields(kind))


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_every_script_parses_exactly_the_contract_flags(path: Path) -> None:
    functions = _functions(ast.parse(path.read_text(encoding="utf-8")))
    added = [
        node.args[0].value  # type: ignore[attr-defined]
        for node in ast.walk(functions["parse_args"])
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
    ]
    assert added == [flag.name for flag in flags(path.parent.name)]


def test_the_skeleton_is_written_once() -> None:
    """Each target's script template extends the shared skeleton and leaves it the flags, the
    weights-file checks, the results and main's training or inference branch."""
    common = templates_dir() / "common"
    skeleton = (common / "script.py.j2").read_text(encoding="utf-8")
    # the weights-file checks are a section the skeleton includes
    assert '{% include "common/files.py.j2" %}' in skeleton
    skeleton += (common / "files.py.j2").read_text(encoding="utf-8")
    # writing the results ("json.dumps(results"); a script may still encode other JSON (TF_CONFIG)
    shared = (
        "def parse_args",
        "def read_weights",
        "def results_of",
        "def main",
        "json.dumps(results",
    )
    assert all(text in skeleton for text in shared)
    for target in TARGETS:
        folder = templates_dir() / target
        text = "".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.j2")))
        assert (
            (folder / "script.py.j2")
            .read_text(encoding="utf-8")
            .startswith('{% extends "common/script.py.j2" %}')
        )
        for piece in (*shared, "arrays.files"):
            assert piece not in text, f"{target}: {piece!r} belongs to the skeleton"
        branch = re.search(r"{%-?\s*(el)?if [^%]*inference", text)
        assert branch is None, f"{target}: {branch.group(0)!r}: the skeleton branches on the kind"


# ---- the data-parallel settings every template reads (no framework) ----------------------------

SYNCED = """
model net {
    input x: float32[6]
    dense(5) -> tanh
    BATCHNORM
    dense(3)
}
train {
    optimizer = sgd(lr=0.1)
    batch = 4
    batchnorm_sync = true
}
"""


@pytest.mark.parametrize("with_batchnorm", [True, False], ids=["batchnorm", "no_batchnorm"])
def test_batchnorm_sync_reaches_a_template_only_with_a_batch_norm(with_batchnorm: bool) -> None:
    """`batchnorm_sync = true` is in force only where the model has a batch norm: the one value
    every target's template reads (Keras's once said True for a model without one)."""
    from dlspec.codegen.compile import compile_model
    from dlspec.codegen.contract import model_context
    from dlspec.frontend.load import build

    text = SYNCED.replace("BATCHNORM", "batchnorm" if with_batchnorm else "")
    model = build(text, "net.dl").model
    assert model_context(model)["batchnorm_sync"] is with_batchnorm
    keras = compile_model(model, "keras").source
    assert f"BATCHNORM_SYNC = {with_batchnorm}\n" in keras


def _parse_args_of(script: Path) -> Any:
    """parse_args of a generated script, run without its framework: the function, int_from and
    the module's literal constants (the spec's defaults), compiled from the script's own text."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    keep = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.name in ("int_from", "parse_args")
        or isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
    ]
    namespace: dict[str, Any] = {"argparse": argparse, "__doc__": "a script"}
    exec(compile(ast.Module(keep, type_ignores=[]), str(script), "exec"), namespace)
    return namespace["parse_args"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_int_flag_takes_whole_numbers_in_its_range_only(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--batch-size 0 divided by zero after the model was built, --epochs -1 ran no epoch and
    reported success, a --seed past NumPy's range failed in the data section: argparse now
    refuses each (exit 2, the flag named), and takes both ends of the range."""
    parse_args = _parse_args_of(ROOT / "generated" / target / f"mnist_mlp_{target}.py")
    assert parse_args([]).batch_size == 128 and parse_args([]).seed == 0  # the spec's
    ints = [flag for flag in interface.flags(target) if flag.type == "int"]
    assert {flag.name for flag in ints} >= {"--epochs", "--batch-size", "--seed", "--warmup"}
    for flag in ints:
        for value in (flag.low, MAX_INT):
            assert getattr(parse_args([flag.name, str(value)]), flag.dest) == value
        outside = f"is not a whole number from {flag.low} to {MAX_INT}"
        for text, said in (
            (str(flag.low - 1), f"{flag.low - 1} {outside}"),
            (str(MAX_INT + 1), f"{MAX_INT + 1} {outside}"),
            ("1.5", "invalid int value: '1.5'"),
        ):
            with pytest.raises(SystemExit) as exit:
                parse_args([flag.name, text])
            assert exit.value.code == 2
            assert f"error: argument {flag.name}: {said}\n" in capsys.readouterr().err
