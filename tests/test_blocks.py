"""Blocks: expansion into ordinary layers when lowering, the naming scheme, parameters, repeats,
nesting, instance names as tensors, and a ResNet-50 and a DenseNet-121 written in a page each."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dlspec.codegen.compile import compile_model
from dlspec.errors import Pos, SpecError
from dlspec.frontend.load import build, build_file
from dlspec.ir.model import Model

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT / "tests" / "specs" / "resnet_blocks.dl"
PAGES = ROOT / "tests" / "fixtures" / "blocks"


def edges(model: Model) -> list[tuple[str, tuple[str, ...]]]:
    """(layer name, tensors it reads) in layer order."""
    return [(layer.name, layer.inputs) for layer in model.layers]


def by_name(model: Model) -> dict:
    return {layer.name: layer for layer in model.layers}


def test_the_resnet_spec_expands_to_named_layers_and_edges() -> None:
    model = build_file(str(RESNET)).model
    assert edges(model) == [
        ("conv2d_1", ("image",)),
        ("stem", ("conv2d_1",)),
        # stage1: residual(4) * 2: repetition r of instance `stage1` is `stage1_<r>`
        ("stage1_1_conv2d_1", ("stem",)),
        ("stage1_1_relu_1", ("stage1_1_conv2d_1",)),
        ("stage1_1_conv2d_2", ("stage1_1_relu_1",)),
        ("stage1_1_add_1", ("stage1_1_conv2d_2", "stem")),
        ("stage1_1_relu_2", ("stage1_1_add_1",)),
        ("stage1_2_conv2d_1", ("stage1_1_relu_2",)),
        ("stage1_2_relu_1", ("stage1_2_conv2d_1",)),
        ("stage1_2_conv2d_2", ("stage1_2_relu_1",)),
        ("stage1_2_add_1", ("stage1_2_conv2d_2", "stage1_1_relu_2")),
        ("stage1_2_relu_2", ("stage1_2_add_1",)),
        # stage2: bottleneck(...): inner labels keep their names under the instance's
        ("stage2_conv2d_1", ("stage1_2_relu_2",)),
        ("stage2_relu_1", ("stage2_conv2d_1",)),
        ("stage2_conv2d_2", ("stage2_relu_1",)),
        ("stage2_relu_2", ("stage2_conv2d_2",)),
        ("stage2_main", ("stage2_relu_2",)),
        ("stage2_shortcut", ("stage1_2_relu_2",)),
        ("stage2_add_1", ("stage2_main", "stage2_shortcut")),
        ("stage2_relu_3", ("stage2_add_1",)),
        # an unlabelled call: `<block>_<k>`
        ("residual_1_conv2d_1", ("stage2_relu_3",)),
        ("residual_1_relu_1", ("residual_1_conv2d_1",)),
        ("residual_1_conv2d_2", ("residual_1_relu_1",)),
        ("residual_1_add_1", ("residual_1_conv2d_2", "stage2_relu_3")),
        ("residual_1_relu_2", ("residual_1_add_1",)),
        # `[residual_1, stage2] -> add`: an instance's name is its output tensor
        ("add_1", ("residual_1_relu_2", "stage2_relu_3")),
        ("flatten_1", ("add_1",)),
        ("dense_1", ("flatten_1",)),
    ]
    assert model.outputs == ("dense_1",)


def test_parameters_reach_attributes_and_npz_keys_follow_the_names() -> None:
    model = build_file(str(RESNET)).model
    layers = by_name(model)
    assert layers["stage2_conv2d_2"]["stride"] == (2, 2)  # stride=2 at the call
    assert layers["stage2_conv2d_2"]["padding"] == ((0, 1), (0, 1))  # same, stride 2, 8 -> 4
    assert layers["stage2_shortcut"]["filters"] == 6
    assert layers["stage2_conv2d_1"]["stride"] == (1, 1)  # not a parameter
    assert layers["residual_1_conv2d_1"]["filters"] == 6
    assert layers["stage1_2_conv2d_1"]["filters"] == 4
    names = [p.name for p in model.params]
    assert names[2:4] == ["stage1_1_conv2d_1.weight", "stage1_1_conv2d_1.bias"]
    assert "stage2_main.weight" in names and "stage2_shortcut.bias" in names


def test_every_target_names_the_expanded_layers() -> None:
    model = build_file(str(RESNET)).model
    pytorch = compile_model(model, "pytorch").source
    assert "self.stage2_shortcut = nn.Conv2d(" in pytorch
    assert "self.stage1_2_conv2d_2(" in pytorch
    keras = compile_model(model, "keras").source
    assert 'name="stage2_shortcut"' in keras
    tensorflow = compile_model(model, "tensorflow").source
    assert "stage2_main" in tensorflow


SUBSTITUTION = """
block b(p, s=0.5, k=[1, 2], act=tanh) {
    input x
    conv2d(2, k, padding=[p, [p, 0]], init=normal(std=s), activation=act)
}
model m {
    input i: float32[1, 6, 6]
    b(1) -> b(0, s=0.25, k=3, act=none) -> flatten
}
"""


def test_a_parameter_is_substituted_wherever_a_bare_name_is_a_value() -> None:
    model = build(SUBSTITUTION).model
    layers = by_name(model)
    # defaults for s, k and act; p inside a nested list; s inside an initialiser call
    first = layers["b_1_conv2d_1"]
    assert (first["kernel"], first["padding"], first["init"].std) == ((1, 2), ((1, 1), (1, 0)), 0.5)
    # act=tanh splits the activation sugar into a layer of the instance; act=none does not
    assert [name for name in layers] == ["b_1_conv2d_1", "b_1_tanh_1", "b_2_conv2d_1", "flatten_1"]
    second = layers["b_2_conv2d_1"]
    assert (second["kernel"], second["padding"], second["init"].std) == (
        (3, 3),
        ((0, 0),) * 2,
        0.25,
    )


def test_a_bad_argument_is_reported_at_the_call_and_a_bad_default_at_the_header() -> None:
    with pytest.raises(SpecError) as info:
        build(SUBSTITUTION.replace("b(1)", "b(-1)"))
    (problem,) = info.value.problems
    assert problem.pos == Pos(8, 7, 9) and "must be >= 0, not -1" in problem.message
    with pytest.raises(SpecError) as info:
        build(SUBSTITUTION.replace("s=0.5", "s=-0.5"))
    (problem,) = info.value.problems
    assert problem.pos.line == 2 and "std" in problem.message


NESTED = """
block unit(w) {
    input x
    conv2d(w, 1) -> relu
}
block stage(w) {
    input x
    unit(w) * 2
    u: unit(w)
    [u, x] -> add
}
model m {
    input i: float32[2, 4, 4]
    s: stage(2)
    stage(2)
    flatten -> dense(2)
}
"""


def test_nested_blocks_prefix_every_level_and_count_calls_per_instance() -> None:
    model = build(NESTED).model
    assert edges(model)[:-2] == [
        ("s_unit_1_1_conv2d_1", ("i",)),
        ("s_unit_1_1_relu_1", ("s_unit_1_1_conv2d_1",)),
        ("s_unit_1_2_conv2d_1", ("s_unit_1_1_relu_1",)),
        ("s_unit_1_2_relu_1", ("s_unit_1_2_conv2d_1",)),
        ("s_u_conv2d_1", ("s_unit_1_2_relu_1",)),
        ("s_u_relu_1", ("s_u_conv2d_1",)),
        ("s_add_1", ("s_u_relu_1", "i")),
        ("stage_1_unit_1_1_conv2d_1", ("s_add_1",)),
        ("stage_1_unit_1_1_relu_1", ("stage_1_unit_1_1_conv2d_1",)),
        ("stage_1_unit_1_2_conv2d_1", ("stage_1_unit_1_1_relu_1",)),
        ("stage_1_unit_1_2_relu_1", ("stage_1_unit_1_2_conv2d_1",)),
        ("stage_1_u_conv2d_1", ("stage_1_unit_1_2_relu_1",)),
        ("stage_1_u_relu_1", ("stage_1_u_conv2d_1",)),
        ("stage_1_add_1", ("stage_1_u_relu_1", "s_add_1")),
    ]


MERGE = """
model m {
    input i: float32[2, 4, 4]
    conv2d(2, 1) -> c: relu
    [c, i] -> mix: merge(2) -> relu
    [relu_1, mix] -> add
}
train { loss = mse }
block merge(w) {
    input a, b
    [a] -> conv2d(w, 1)
    [conv2d_1, b] -> add
    output add_1
}
"""


def test_a_block_with_two_inputs_reads_the_tensors_listed_in_order() -> None:
    model = build(MERGE).model
    assert edges(model) == [
        ("conv2d_1", ("i",)),
        ("c", ("conv2d_1",)),
        ("mix_conv2d_1", ("c",)),
        ("mix_add_1", ("mix_conv2d_1", "i")),
        ("relu_1", ("mix_add_1",)),  # the chain goes on from the instance's output
        ("add_1", ("relu_1", "mix_add_1")),  # `mix` names the instance's output
    ]


REPEATED = """
block r(w) {
    input x
    conv2d(w, 1) -> relu
}
model m {
    input i: float32[2, 4, 4]
    r(2) * 2
    t: r(2) * 3
    [r_2] -> r_1: relu
    r(2)
    [t, r_3] -> add
}
train { loss = mse }
"""


def test_repeats_number_from_one_and_the_instance_name_reads_the_last_repetition() -> None:
    model = build(REPEATED).model
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["r_2_1_conv2d_1", "r_2_1_relu_1", "r_2_2_conv2d_1", "r_2_2_relu_1"]
    assert names[4:10] == [f"t_{r}_{inner}" for r in (1, 2, 3) for inner in ("conv2d_1", "relu_1")]
    # `r_1` is a label, so the automatic instance names skip it: r_2 (the first call), then r_3
    assert names[10:] == ["r_1", "r_3_conv2d_1", "r_3_relu_1", "add_1"]
    layers = by_name(model)
    assert layers["t_1_conv2d_1"].inputs == ("r_2_2_relu_1",)
    assert layers["t_2_conv2d_1"].inputs == ("t_1_relu_1",)
    assert layers["r_1"].inputs == ("r_2_2_relu_1",)
    assert layers["add_1"].inputs == ("t_3_relu_1", "r_3_relu_1")


def test_expansion_is_the_flat_spec_written_out() -> None:
    """A block call builds exactly the IR of the same layers written by hand with those names
    (only the source positions differ)."""
    flat = """
model m {
    input i: float32[2, 4, 4]
    conv2d(2, 1) -> c: relu
    [c] -> mix_conv2d_1: conv2d(2, 1)
    [mix_conv2d_1, i] -> mix_add_1: add
    relu
    [relu_1, mix_add_1] -> add
}
train { loss = mse }
"""
    expanded, written = build(MERGE).model, build(flat).model
    assert [replace(layer, pos=Pos()) for layer in expanded.layers] == [
        replace(layer, pos=Pos()) for layer in written.layers
    ]
    assert expanded.params == written.params


DENSE = """
block dense_layer(growth) {
    input x
    conv2d(growth, 3, padding=same) -> relu
    [x, relu_1] -> concat
}
block transition(width) {
    input x
    conv2d(width, 1) -> relu -> avgpool2d(2)
}
model densenet_tiny {
    input image: float32[3, 8, 8]
    conv2d(4, 3, padding=same) -> relu
    d1: dense_layer(2) * 3
    transition(5)
    d2: dense_layer(2) * 2
    flatten -> dense(10)
}
"""


def test_a_dense_block_concatenates_the_running_features_at_every_repetition() -> None:
    model = build(DENSE).model
    layers = by_name(model)
    concats = [layer for layer in model.layers if layer.op == "concat"]
    assert [(c.name, c.inputs, c.out_shape[0]) for c in concats] == [
        ("d1_1_concat_1", ("relu_1", "d1_1_relu_1"), 6),
        ("d1_2_concat_1", ("d1_1_concat_1", "d1_2_relu_1"), 8),
        ("d1_3_concat_1", ("d1_2_concat_1", "d1_3_relu_1"), 10),
        ("d2_1_concat_1", ("transition_1_avgpool2d_1", "d2_1_relu_1"), 7),
        ("d2_2_concat_1", ("d2_1_concat_1", "d2_2_relu_1"), 9),
    ]
    assert layers["d1_2_conv2d_1"].inputs == ("d1_1_concat_1",)
    assert layers["transition_1_conv2d_1"].in_shape == (10, 8, 8)
    assert layers["flatten_1"].out_shape == (9 * 4 * 4,)


@pytest.mark.parametrize(
    "page, layers, params, repeated",
    [
        # torchvision's resnet50 has 25,557,032 parameters, 53,120 of them in batch norms
        ("resnet50.dl", 122, 25_557_032 - 53_120, "s4_5_conv2d_3"),
        # torchvision's densenet121 has 7,978,856 parameters, 83,648 of them in batch norms
        ("densenet121.dl", 306, 7_978_856 - 83_648, "d3_24_concat_1"),
    ],
)
def test_resnet50_and_densenet121_in_a_page_each(
    page: str, layers: int, params: int, repeated: str
) -> None:
    path = PAGES / page
    assert len(path.read_text().splitlines()) < 30
    model = build_file(str(path)).model
    assert (len(model.layers), model.param_count) == (layers, params)
    assert repeated in by_name(model)
    assert model.output_shape == (1000,)


def test_unused_blocks_are_checked_and_dropped() -> None:
    text = "block spare(w) { input x dense(w) }\nmodel m { input i: float32[4] dense(2) }"
    assert [layer.name for layer in build(text).model.layers] == ["dense_1"]
    with pytest.raises(SpecError) as info:
        build(text.replace("dense(w)", "[y] -> dense(w)"))
    (problem,) = info.value.problems
    assert problem.message == "unknown tensor 'y'"


def test_a_problem_inside_a_block_called_many_times_is_listed_once() -> None:
    text = """block b { input x
    dense(4, unit=3) }
model m { input i: float32[4] b * 3 -> b }"""
    with pytest.raises(SpecError) as info:
        build(text)
    (problem,) = info.value.problems
    assert problem.pos == Pos(2, 14, 18)
    assert problem.message.startswith("dense has no attribute 'unit'")


def test_a_shape_problem_names_the_instance_and_points_into_the_block() -> None:
    text = """block b(w) { input x
    conv2d(w, 5) }
model m { input i: float32[1, 6, 6] b(1) -> b(1) }"""
    with pytest.raises(SpecError) as info:
        build(text)
    (problem,) = info.value.problems
    assert problem.pos.line == 2 and problem.message.startswith("b_2_conv2d_1 (conv2d): ")


def test_expansion_is_deterministic() -> None:
    first, second = build(DENSE).model, build(DENSE).model
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]
    assert [p.name for p in first.params] == [p.name for p in second.params]


def test_an_output_statement_may_name_an_instance() -> None:
    text = """
block mlp(width) { input x dense(width) -> relu }
model m { input i: float32[4] hidden: mlp(8) mlp(2) output mlp_1 }
train { loss = mse }
"""
    model = build(text).model
    assert model.outputs == ("mlp_1_relu_1",)
    assert by_name(model)["mlp_1_dense_1"].inputs == ("hidden_relu_1",)


def test_a_block_sees_only_its_inputs_and_its_own_layers() -> None:
    text = """
block b { input x [i] -> relu }
model m { input i: float32[4] b }
"""
    with pytest.raises(SpecError) as info:
        build(text)
    assert [p.message for p in info.value.problems] == ["unknown tensor 'i'"]


def _problems(text: str) -> list:
    with pytest.raises(SpecError) as info:
        build(text)
    return info.value.problems


def test_hostile_blocks_stop_at_a_position_without_recursing() -> None:
    """Thousands of blocks in a chain or a cycle, and calls that would expand exponentially, end
    in one positioned problem each (the checks walk the call graph without recursion)."""
    n = 3000
    chain = "".join(f"block b{k} {{ input x b{k + 1} }}\n" for k in range(n))
    chain += f"block b{n} {{ input x relu }}\nmodel m {{ input i: float32[4] b0 }}"
    (deep,) = _problems(chain)
    assert deep.message == f"block 'b{n - 16}' nests blocks 17 deep; the limit is 16"
    assert deep.pos.line == n - 16 + 1
    cycle = "".join(f"block b{k} {{ input x b{(k + 1) % n} }}\n" for k in range(n))
    (loop,) = _problems(cycle + "model m { input i: float32[4] b0 }")
    path = f"b0 -> b1 -> b2 -> b3 -> ... ({n - 6} more) -> b{n - 2} -> b{n - 1} -> b0"
    assert loop.message == f"block 'b0' calls itself: {path}"
    assert loop.pos.line == n
    letters = "abcdefghijklm"  # short names: 2 ** 12 layers, none of them too long
    pairs = zip(letters, letters[1:], strict=False)
    fan = "".join(f"block {a} {{ input x {b} -> {b} }}\n" for a, b in pairs)
    fan += "block m { input x relu }\nmodel net { input i: float32[4] f: a }"
    (wide,) = _problems(fan)
    assert wide.message == "this call expands the model past 1024 layers, the limit"
    assert wide.pos == Pos(14, 33, 34)
