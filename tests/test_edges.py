"""Edges in the IR: each layer names the tensors it reads, the model names its outputs, and the
shape pass looks a layer's input up by its producer (the first step towards graphs)."""

from __future__ import annotations

from dataclasses import replace

from dlspec.frontend import build
from dlspec.ir import Model
from dlspec.lower import lower
from dlspec.parse import parse
from dlspec.passes import PIPELINE, PassContext

CHAIN = """
model m {
    input image: float32[2, 6, 6]
    c: conv2d(3, 3) -> relu
    flatten
    dense(4) -> relu
    head: dense(2)
}
"""


def test_each_layer_reads_the_previous_statement_and_the_first_reads_the_input() -> None:
    model = build(CHAIN).model
    assert [(layer.name, layer.inputs) for layer in model.layers] == [
        ("c", ("image",)),
        ("relu_1", ("c",)),
        ("flatten_1", ("relu_1",)),
        ("dense_1", ("flatten_1",)),
        ("relu_2", ("dense_1",)),
        ("head", ("relu_2",)),
    ]
    assert model.outputs == ("head",)
    assert model.producer("head") is model.layers[-1]
    assert model.producer("image") is model.inputs[0]
    assert model.producer("nothing") is None


def test_output_shape_is_the_output_tensors_shape() -> None:
    model = build(CHAIN).model
    assert model.output_shape == (2,)
    assert replace(model, outputs=("c",)).output_shape == (3, 4, 4)
    assert replace(model, outputs=("image",)).output_shape == (2, 6, 6)


def _explicit(model: Model) -> Model:
    ctx = PassContext()
    for step in PIPELINE:
        model = step(model, ctx)
    assert not ctx.problems, ctx.problems
    return model


def test_shapes_follow_the_named_producer_not_the_statement_order() -> None:
    raw = lower(parse(CHAIN))
    layers = list(raw.layers)
    # the flatten reads the input directly, skipping the convolution and its relu
    layers[2] = replace(layers[2], inputs=("image",))
    model = _explicit(replace(raw, layers=tuple(layers)))
    flatten = model.layers[2]
    assert flatten.in_shape == (2, 6, 6) and flatten.out_shape == (72,)
    assert model.layers[3].in_shape == (72,)
    assert model.layers[3]["flattened_from"] == (2, 6, 6)


def test_flattened_from_walks_producers_through_elementwise_layers() -> None:
    raw = lower(parse(CHAIN))
    layers = list(raw.layers)
    # the second dense reads the flatten, not the relu after the first dense
    layers[5] = replace(layers[5], inputs=(layers[2].name,))
    model = _explicit(replace(raw, layers=tuple(layers)))
    assert model.layers[5]["flattened_from"] == (3, 4, 4)
    assert model.layers[3]["flattened_from"] == (3, 4, 4)
