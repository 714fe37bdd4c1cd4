"""Names in generated scripts: user labels never collide with what a target reserves, with each
other's escapes, or with the helper names a backend invents (no framework needed)."""

from __future__ import annotations

import ast
import re

import pytest

from dlspec.backends import TARGETS, get_backend
from dlspec.backends.base import Names
from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build
from dlspec.ir.model import Model

TRAIN = "train {\n    data = synthetic(train_size=8, test_size=8)\n    batch = 4\n}\n"


def model_of(input: str, layers: list[str]) -> Model:
    body = "".join(f"    {line}\n" for line in layers)
    return build(f"model m {{\n    input {input}\n{body}}}\n{TRAIN}", "names.dl").model


# labels that are attributes of nn.Module / tf.Module, their escapes, and Keras helper names
IMAGE_LABELS = model_of(
    "c1_pad: float32[2, 9, 9]",
    [
        "c1: conv2d(3, kernel=2, padding=[[1, 0], [0, 1]])",
        "forward: conv2d(3, kernel=3, stride=2, dilation=2, padding=same)",
        "forward_: relu",
        "forward_pad: tanh",
        "forward_subsample: conv2d(3, kernel=1)",
        "training: dropout(0.5)",
        "name: conv2d(2, kernel=1)",
        "name_: sigmoid",
        "parameters: dense(3)",
        "parameters_nchw: softmax",
        "variables: flatten",
        "native_variables: dense(4)",
        "to: dense(3)",
    ],
)
RNN_LABELS = model_of(
    "state_dict: int32[6]",
    [
        "cuda: embedding(20, 4)",
        "rnn: gru(3, layers=2, readout=sequence)",
        "rnn_l0: lstm(3, layers=2, recurrent_bias=false, readout=sequence)",
        "rnn_l1: flatten",
        "trainable_variables: dense(2)",
    ],
)
MODELS = [IMAGE_LABELS, RNN_LABELS]


# ---- the allocator ---------------------------------------------------------------------------


def test_unreserved_names_are_kept_and_reserved_ones_escape_past_taken_names() -> None:
    names = Names(frozenset({"forward", "to"}), ["x", "forward", "forward_", "to", "conv"])
    assert [names.of(n) for n in ("x", "forward_", "conv")] == ["x", "forward_", "conv"]
    assert names.of("forward") == "forward__"  # forward_ is a user's name: it claimed it first
    assert names.of("to") == "to_"


def test_helpers_come_after_every_user_name() -> None:
    names = Names(frozenset(), ["conv_pad", "conv", "conv_pad_"])
    assert names.of("conv", "_pad") == "conv_pad__"
    assert names.of("conv", "_pad") == "conv_pad__"  # the same helper, the same name
    assert names.of("conv", "_l0") == "conv_l0"


def test_allocation_is_deterministic() -> None:
    users = ["forward", "a", "forward_", "b"]
    first = Names(frozenset({"forward"}), users)
    again = Names(frozenset({"forward"}), users)
    assert [first.of(u) for u in users] == [again.of(u) for u in users]


# ---- what each backend writes -------------------------------------------------------------------


def _function(source: str, name: str) -> ast.FunctionDef:
    """The module-level function `name` of a script."""
    return next(
        n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name
    )


def _init_attributes(source: str) -> list[str]:
    """The attributes Net.__init__ assigns (self.X = ...)."""
    net = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Net")
    init = next(n for n in net.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return [
        target.attr
        for node in ast.walk(init)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
    ]


def _keras_layer_names(source: str) -> list[str]:
    """Every name= given to a layer in build_model, and the views' names."""
    names = []
    for node in ast.walk(_function(source, "build_model")):
        if isinstance(node, ast.Call):
            names += [k.value.value for k in node.keywords if k.arg == "name" and _str(k.value)]
            if getattr(node.func, "id", "") in ("canonical_view", "native_view"):
                names.append(node.args[2].value)  # type: ignore[attr-defined]
    return names


def _str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


@pytest.mark.parametrize("model", MODELS, ids=["image", "rnn"])
@pytest.mark.parametrize("target", ["pytorch", "tensorflow"])
def test_attributes_are_distinct_unreserved_and_the_labels_where_free(
    model: Model, target: str
) -> None:
    reserved = get_backend(target).RESERVED_NAMES
    attributes = _init_attributes(compile_model(model, target).source)
    assert len(attributes) == len(set(attributes)) and not set(attributes) & reserved
    layers = [layer for layer in model.layers if target == "pytorch" or layer.params]
    assert len(layers) == len(attributes)
    for layer, attribute in zip(layers, attributes, strict=True):
        if layer.name in reserved:
            escape = attribute[len(layer.name) :]
            assert attribute.startswith(layer.name) and escape and set(escape) == {"_"}
        else:
            assert attribute == layer.name


@pytest.mark.parametrize("model", MODELS, ids=["image", "rnn"])
def test_keras_layer_names_are_unique_and_the_labels(model: Model) -> None:
    names = _keras_layer_names(compile_model(model, "keras").source)
    assert len(names) == len(set(names)), names
    single = [layer.name for layer in model.layers if layer.attrs.get("layers", 1) == 1]
    assert {inp.name for inp in model.inputs} | set(single) <= set(names)


@pytest.mark.parametrize("model", MODELS, ids=["image", "rnn"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_canonical_weight_names_never_change(model: Model, target: str) -> None:
    source = compile_model(model, target).source
    block = source[source.index("PARAMETERS = [") :]
    listed = re.findall(r'^    \("([^"]+)", \(', block[: block.index("\n]")], re.M)
    assert listed == [p.name for p in model.params]


def test_pytorch_maps_canonical_names_to_renamed_attributes() -> None:
    source = compile_model(IMAGE_LABELS, "pytorch").source
    assert '"forward.weight": "forward__.weight"' in source
    assert "model.get_parameter(ATTRIBUTE_PATHS.get(name, name))" in source
    assert "nn.init.uniform_(model.forward__.weight" in source


def test_tensorflow_escapes_instead_of_refusing() -> None:
    compiled = compile_model(IMAGE_LABELS, "tensorflow")
    assert 'self.name__ = Variables("name__"' in compiled.source
    assert '"variables_/kernel"' not in compiled.source  # flatten has no variables
    assert "name: written as name__ (name is reserved in TensorFlow scripts)" in compiled.report


def test_keras_helpers_escape_user_names() -> None:
    source = compile_model(IMAGE_LABELS, "keras").source
    assert 'name="c1_pad_"' in source  # the input is called c1_pad
    assert 'name="forward_pad_"' in source and 'name="forward_subsample_"' in source
    assert '"parameters_nchw_"' in source
    rnn = compile_model(RNN_LABELS, "keras").source
    assert '("rnn_l0_", ["rnn_l0_/kernel"' in rnn and '("rnn_l0_l0", ["rnn_l0_l0/kernel"' in rnn


# ---- the identifiers a block of forward lines uses (the regular-expression fast path) -------


def _tokenized(line: str) -> set[str]:
    from dlspec.backends.base import _names_in

    return {name for _, name, dotted in _names_in(line) if not dotted}


@pytest.mark.parametrize(
    "line",
    [
        "x = self.conv_1(x) + y_2 * 1e5 + 0x1F + 1_000 + 1.5e-3j",
        "x = torch.cat([a, b], dim=1).view(-1, 2) . reshape(c)",
        "x = F.pad(x, (0, 1)) if training else x  # comment with names",
        'x = layers.Dense(3, name="dense_name")(x)',
        "x = x + \\",
        "lambda v: v.T",
        'x = f"{x}" + "{y}" + "a\\"b" + r"c" + "" + "#" + z',
        'x = layers.Dense(3, name="d")(x) + "it\'s"',
    ],
)
def test_plain_lines_give_the_tokenizer_s_names(line: str) -> None:
    from dlspec.backends.base import _plain_names, identifiers

    assert identifiers([line]) == _tokenized(line)
    plain = _plain_names(line)
    assert plain is None or plain == _tokenized(line)


@pytest.mark.parametrize("target", TARGETS)
def test_every_example_s_forward_lines_give_the_tokenizer_s_names(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """identifiers() reads most lines with a regular expression: on every line of every example
    and edge spec, it finds what the tokenizer finds."""
    from pathlib import Path

    from dlspec.backends import base

    seen = []
    plain = base._plain_names

    def checked(line: str):
        found = plain(line)
        if found is not None:
            seen.append(line)
            assert found == _tokenized(line), line
        return found

    monkeypatch.setattr(base, "_plain_names", checked)
    root = Path(__file__).resolve().parent.parent
    for spec in sorted([*root.glob("examples/*.dl"), *root.glob("tests/specs/*.dl")]):
        get_backend(target).context(build(spec.read_text(), str(spec)).model)
    assert seen  # the fast path was taken
