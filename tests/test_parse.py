"""The grammar and the syntax tree: values, statements, comments and source positions."""

from __future__ import annotations

from typing import Any

import pytest

from dlspec.errors import Pos, SpecError
from dlspec.frontend import ast
from dlspec.frontend.parse import parse


def plain(node: Any) -> Any:
    """A syntax-tree value as plain Python data, to compare against tables."""
    if isinstance(node, ast.Num):
        return node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Str):
        return ("str", node.value)
    if isinstance(node, ast.ListVal):
        return [plain(v) for v in node.items]
    if isinstance(node, ast.CallVal):
        return ("call", node.name, [plain(a) for a in node.args])
    if isinstance(node, ast.Arg):
        return (node.key, plain(node.value))
    raise TypeError(node)


def value_of(source: str) -> ast.Value:
    """Parse `v = <source>` and return the value."""
    spec = parse(f"v = {source}\n")
    (setting,) = spec.settings
    return setting.value


def model_of(body: str) -> ast.ModelDecl:
    """Parse a model block with the given body."""
    spec = parse(f"model m {{\n{body}\n}}\n")
    (model,) = spec.models
    return model


def calls_of(body: str) -> list[tuple[str | None, list[tuple[str, list]]]]:
    """(label, [(op, args)]) for every layer statement of a model body."""
    model = model_of(body)
    return [
        (
            stmt.label.id if stmt.label else None,
            [(c.op, [plain(a) for a in c.args]) for c in stmt.calls],
        )
        for stmt in model.layers
    ]


VALUES = [
    ("3", 3),
    ("0", 0),
    ("-3", -3),
    ("+3", 3),
    ("1.5", 1.5),
    ("-.5", -0.5),
    ("2.", 2.0),
    ("1e-8", 1e-8),
    ("1E+2", 100.0),
    ("-2.5e3", -2500.0),
    ("same", "same"),
    ("true", "true"),
    ('"hello world"', ("str", "hello world")),
    ('"a # not a comment"', ("str", "a # not a comment")),
    (r'"say \"hi\""', ("str", 'say "hi"')),
    (r'"back\\slash"', ("str", "back\\slash")),
    ("[]", []),
    ("[1, 2]", [1, 2]),
    ("[1, 2,]", [1, 2]),
    ("[[0, 1], [2, 3]]", [[0, 1], [2, 3]]),
    ("[[0, 1], 2]", [[0, 1], 2]),
    ("[1, [2, [3]]]", [1, [2, [3]]]),
    ("sgd(lr=0.1)", ("call", "sgd", [("lr", 0.1)])),
    ("sgd(lr=0.1, momentum=0.9,)", ("call", "sgd", [("lr", 0.1), ("momentum", 0.9)])),
    ("normal(std=0.01)", ("call", "normal", [("std", 0.01)])),
    ("normal(0.01, mean=-1)", ("call", "normal", [(None, 0.01), ("mean", -1)])),
    ("imdb(vocab=30000, pad=pre)", ("call", "imdb", [("vocab", 30000), ("pad", "pre")])),
    ("f()", ("call", "f", [])),
    ("f(g(1), [2])", ("call", "f", [(None, ("call", "g", [(None, 1)])), (None, [2])])),
]


@pytest.mark.parametrize("source, expected", VALUES)
def test_values(source: str, expected: Any) -> None:
    assert plain(value_of(source)) == expected


@pytest.mark.parametrize(
    "source, kind",
    [("3", int), ("-3", int), ("+3", int), ("3.0", float), ("3.", float), ("3e2", float)],
)
def test_number_types(source: str, kind: type) -> None:
    value = value_of(source)
    assert isinstance(value, ast.Num)
    assert type(value.value) is kind
    assert value.text == source


STATEMENTS = [
    ("flatten", [(None, [("flatten", [])])]),
    ("flatten()", [(None, [("flatten", [])])]),
    ("conv2d(32, kernel=3)", [(None, [("conv2d", [(None, 32), ("kernel", 3)])])]),
    ("conv2d(32, kernel=3,)", [(None, [("conv2d", [(None, 32), ("kernel", 3)])])]),
    (
        "conv2d(8, kernel=[3, 5], padding=[[0, 1], [2, 3]])",
        [
            (
                None,
                [
                    (
                        "conv2d",
                        [(None, 8), ("kernel", [3, 5]), ("padding", [[0, 1], [2, 3]])],
                    )
                ],
            )
        ],
    ),
    ("a: relu", [("a", [("relu", [])])]),
    (
        "conv2d(8, kernel=3) -> relu -> maxpool2d(2)",
        [
            (
                None,
                [("conv2d", [(None, 8), ("kernel", 3)]), ("relu", []), ("maxpool2d", [(None, 2)])],
            )
        ],
    ),
    ("top: dense(3) -> relu", [("top", [("dense", [(None, 3)]), ("relu", [])])]),
    ("relu relu", [(None, [("relu", [])]), (None, [("relu", [])])]),
    ("dense(3)\n->\nrelu", [(None, [("dense", [(None, 3)]), ("relu", [])])]),
    ("dense(\n  3,\n  bias=false,\n)", [(None, [("dense", [(None, 3), ("bias", "false")])])]),
    ("leaky_relu(alpha=-0.0)", [(None, [("leaky_relu", [("alpha", -0.0)])])]),
]


@pytest.mark.parametrize("body, expected", STATEMENTS)
def test_layer_statements(body: str, expected: list) -> None:
    assert calls_of("input x: float32[4]\n" + body) == expected


@pytest.mark.parametrize(
    "decl, name, dtype, dims",
    [
        ("input x: float32[784]", "x", "float32", (784,)),
        ("input image: float32[3, 32, 32]", "image", "float32", (3, 32, 32)),
        ("input tokens: int32[150,]", "tokens", "int32", (150,)),
        ("input t : int64 [ 5 , 6 ]", "t", "int64", (5, 6)),
    ],
)
def test_input_declarations(decl: str, name: str, dtype: str, dims: tuple) -> None:
    model = model_of(decl)
    (inp,) = model.inputs
    assert (inp.name, inp.dtype.id, tuple(d.value for d in inp.dims)) == (name, dtype, dims)


COMMENTED = """# a comment before anything
defaults = keras   # trailing comment
# model m { not parsed }
model m {   # after the brace
    input x: float32[784]   # the input
    # dense(1)
    dense(10)# glued comment
}
train {
    # nothing here but a comment
    batch = 64 # and here
}
# a comment at the end, with no newline"""


def test_comments_are_ignored() -> None:
    spec = parse(COMMENTED)
    assert [(s.key, plain(s.value)) for s in spec.settings] == [("defaults", "keras")]
    (model,) = spec.models
    assert [c.op for stmt in model.layers for c in stmt.calls] == ["dense"]
    (train,) = spec.trains
    assert [(s.key, plain(s.value)) for s in train.settings] == [("batch", 64)]


def test_a_file_of_several_blocks_keeps_them_all() -> None:
    spec = parse(
        "model a { input x: float32[1] relu }\nmodel b { input y: float32[1] relu }\ntrain {}"
    )
    assert [m.name for m in spec.models] == ["a", "b"]
    assert len(spec.trains) == 1
    assert spec.trains[0].settings == ()


def test_empty_file_parses_to_nothing() -> None:
    spec = parse("", "empty.dl")
    assert (spec.settings, spec.models, spec.trains) == ((), (), ())
    assert (spec.path, spec.text) == ("empty.dl", "")


def test_keywords_prefix_names() -> None:
    """`input`, `model` and `train` are keywords only as whole words."""
    spec = parse("model models {\n    input inputs: float32[2]\n    trainer: dense(2)\n}\n")
    (model,) = spec.models
    assert model.name == "models"
    assert model.inputs[0].name == "inputs"
    assert model.layers[0].label is not None and model.layers[0].label.id == "trainer"


# ---- positions ----------------------------------------------------------------------------------

SOURCE = """defaults = keras
model net {
    input image: float32[3, 32, 32]
    a: conv2d(50, kernel=3) -> relu
    dense(10, init=normal(std=0.01), padding=[1, 2])
}
train {
    optimizer = sgd(lr=0.01)
    data      = cifar10
}
"""


@pytest.fixture(scope="module")
def spec() -> ast.SpecFile:
    return parse(SOURCE, "net.dl")


def test_positions_of_blocks(spec: ast.SpecFile) -> None:
    (model,) = spec.models
    assert model.pos == Pos(2, 7, 10)  # the model's name
    assert model.inputs[0].pos == Pos(3, 11, 16)  # the input's name
    assert model.inputs[0].dtype.pos == Pos(3, 18, 25)
    assert [d.pos for d in model.inputs[0].dims] == [Pos(3, 26, 27), Pos(3, 29, 31), Pos(3, 33, 35)]
    assert spec.trains[0].pos.line == 7


def test_positions_of_layer_statements(spec: ast.SpecFile) -> None:
    first, second = spec.models[0].layers
    assert first.label is not None and first.label.pos == Pos(4, 5, 6)
    assert first.pos == Pos(4, 5, 6)  # a labelled statement starts at its label
    assert [c.pos for c in first.calls] == [Pos(4, 8, 14), Pos(4, 32, 36)]
    conv_args = first.calls[0].args
    assert conv_args[0].pos == Pos(4, 15, 17)  # positional: the value
    assert conv_args[1].pos == Pos(4, 19, 25)  # keyword: the key
    assert conv_args[1].value.pos == Pos(4, 26, 27)
    assert second.pos == second.calls[0].pos == Pos(5, 5, 10)


def test_positions_inside_values(spec: ast.SpecFile) -> None:
    dense = spec.models[0].layers[1].calls[0]
    init = dense.args[1].value
    assert isinstance(init, ast.CallVal)
    assert init.pos == Pos(5, 20, 26)
    assert init.args[0].pos == Pos(5, 27, 30)
    assert init.args[0].value.pos == Pos(5, 31, 35)
    padding = dense.args[2].value
    assert isinstance(padding, ast.ListVal)
    assert padding.pos.line == 5 and padding.pos.col == 46
    assert [v.pos.col for v in padding.items] == [47, 50]


def test_positions_of_settings(spec: ast.SpecFile) -> None:
    (top,) = spec.settings
    assert top.pos == Pos(1, 1, 9)
    assert top.value.pos == Pos(1, 12, 17)
    optimizer, data = spec.trains[0].settings
    assert optimizer.pos == Pos(8, 5, 14)
    assert optimizer.value.pos == Pos(8, 17, 20)
    assert data.value.pos == Pos(9, 17, 24)


def test_the_parse_keeps_path_and_text(spec: ast.SpecFile) -> None:
    assert spec.path == "net.dl"
    assert spec.text == SOURCE


SYNTAX_ERRORS = [
    # (text, line, col, message)
    ("model m {\n    dense(3\n}\n", 3, 1, "unexpected '}'; expected ')', ','"),
    ("model m {\n    dense(3) @\n}\n", 2, 14, "unexpected character '@'"),
    (
        "model m {\n    dense(3)\n",
        2,
        13,
        "unexpected end of file; expected '*', '->', '[', 'input', 'output', '}', a name",
    ),
    ("model {\n}\n", 1, 7, "unexpected '{'; expected a name"),
    ("model m {\n    input x float32[3]\n}\n", 2, 13, "unexpected 'float32'; expected ':'"),
    ("model m {\n    input x: float32[3.5]\n}\n", 2, 23, "unexpected '.5'; expected ',', ']'"),
    ("model m {\n    input x: float32[-3]\n}\n", 2, 22, "unexpected '-3'; expected an integer"),
    ("train {\n    lr = 0.1 0.2\n}\n", 2, 14, "unexpected '0.2'"),
    ("model m {\n    dense(3,, 4)\n}\n", 2, 13, "unexpected ','"),
    ('v = "open\n', 1, 5, "unexpected character '\"'"),
]


@pytest.mark.parametrize("text, line, col, message", SYNTAX_ERRORS)
def test_syntax_errors(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(text, "bad.dl")
    (problem,) = info.value.problems
    assert problem.kind == "SyntaxProblem"
    assert (problem.pos.line, problem.pos.col) == (line, col)
    assert problem.message.startswith(message)


def test_windows_line_endings() -> None:
    spec = parse("model m {\r\n    input x: float32[4]\r\n    dense(3, bias=false)\r\n}\r\n")
    dense = spec.models[0].layers[0].calls[0]
    assert dense.pos == Pos(3, 5, 10)
    assert dense.args[1].value.pos == Pos(3, 19, 24)


def test_byte_order_mark_is_not_a_column() -> None:
    spec = parse("\ufeffdefaults = keras\n")
    assert spec.settings[0].pos == Pos(1, 1, 9)
    assert spec.text.startswith("\ufeff")  # the text (and so its hash) stays as read
    with pytest.raises(SpecError) as info:
        parse("\ufeffdefaults = = keras\n", "bom.dl")
    (problem,) = info.value.problems
    assert (problem.pos.line, problem.pos.col) == (1, 12)
    assert str(info.value).splitlines()[1] == "    defaults = = keras"


# ---- graphs ------------------------------------------------------------------------------------


def test_the_grammar_is_lalr_without_conflicts_in_strict_mode() -> None:
    from lark import Lark

    from dlspec.resources import grammar_text

    Lark(grammar_text(), parser="lalr", strict=True)  # raises on any shift/reduce collision


def test_a_chain_lists_the_tensors_it_reads_and_labels_name_the_layer_after_them() -> None:
    spec = parse("""model m {
    input a: float32[4]
    input b: float32[4]
    x: dense(4) -> relu
    [x, b] -> s: add -> t: relu -> dense(2)
    relu
    output t, s
}""")
    body = spec.models[0].body
    assert [type(item).__name__ for item in body] == [
        "InputDecl",
        "InputDecl",
        "LayerStmt",
        "LayerStmt",
        "LayerStmt",
        "OutputDecl",
    ]
    merge = body[3]
    assert [n.id for n in merge.sources] == ["x", "b"]
    assert [c.op for c in merge.calls] == ["add", "relu", "dense"]
    assert [label.id if label else None for label in merge.labels] == ["s", "t", None]
    assert (merge.sources[0].pos.line, merge.sources[0].pos.col) == (5, 6)
    assert [n.id for n in body[5].names] == ["t", "s"]


def test_brackets_after_a_bare_call_start_a_new_statement() -> None:
    # `relu` has no argument list, so `[r, c]` on the next line is the next chain's sources
    stmts = parse("model m { input x: float32[2]\n r: relu\n [x] -> c: tanh\n [r, c] -> add }")
    assert stmts.models[0].layers[-1].sources[0].id == "r"


# ---- blocks ------------------------------------------------------------------------------------

BLOCKS = """model m {
    input image: float32[3, 8, 8]
    b1: res(4, act=tanh) * 2 -> relu
    [b1, image] -> pair(k=1)
}
block res(width, stride=1, act=relu) {
    input x
    conv2d(width, 3, stride=stride, padding=[width, 1]) -> c: relu
    [c, x] -> add
    output add_1
}
block pair(k,) { input a, b input c [a, b, c] -> concat }
block empty() { input x relu }
block bare { input x relu }
"""


def test_blocks_parse_before_or_after_the_model_with_params_inputs_and_output() -> None:
    spec = parse(BLOCKS, "b.dl")
    assert [b.name for b in spec.blocks] == ["res", "pair", "empty", "bare"]
    res, pair, empty, bare = spec.blocks
    assert [(p.name, plain(p.default) if p.default else None) for p in res.params] == [
        ("width", None),
        ("stride", 1),
        ("act", "relu"),
    ]
    assert res.pos == Pos(6, 7, 10)
    assert res.params[1].pos == Pos(6, 18, 24)
    assert [n.id for n in res.inputs] == ["x"]
    assert [n.id for n in pair.inputs] == ["a", "b", "c"]  # `input a, b input c`
    assert [type(s).__name__ for s in pair.body] == ["BlockInput", "BlockInput", "LayerStmt"]
    assert [n.id for n in res.outputs[0].names] == ["add_1"]
    assert (empty.params, bare.params) == ((), ())
    conv = res.body[1].calls[0]
    assert [plain(a) for a in conv.args] == [
        (None, "width"),
        (None, 3),
        ("stride", "stride"),
        ("padding", ["width", 1]),
    ]


def test_a_repeat_count_follows_a_call_and_a_label_names_the_whole_call() -> None:
    spec = parse(BLOCKS, "b.dl")
    chain = spec.models[0].layers[0]
    call = chain.calls[0]
    assert (call.op, chain.labels[0].id if chain.labels[0] else None) == ("res", "b1")
    assert call.repeat is not None and (call.repeat.value, call.repeat.pos) == (2, Pos(3, 28, 29))
    assert chain.calls[1].repeat is None
    assert spec.models[0].layers[1].calls[0].repeat is None


def test_block_is_a_keyword_only_where_a_block_may_start() -> None:
    spec = parse("model m { input x: float32[2]\n block: relu }\ntrain { block = 3 }\n")
    assert spec.models[0].layers[0].labels[0].id == "block"  # type: ignore[union-attr]
    assert spec.trains[0].settings[0].key == "block"


BLOCK_SYNTAX_ERRORS = [
    ("model m { input x: float32[2]\n b(1) * -2 }", 2, 9, "unexpected '-2'; expected an integer"),
    ("model m { input x: float32[2]\n b(1) * 2.5 }", 2, 10, "unexpected '.5'"),
    ("model m { input x: float32[2]\n b(1) * }", 2, 9, "unexpected '}'; expected an integer"),
    ("block b(w=) { input x relu }", 1, 11, "unexpected ')'"),
    ("block b(w) { input x: float32[2] relu }", 1, 21, "unexpected ':'"),
    ("block b(w) { input }", 1, 20, "unexpected '}'; expected a name"),
    ("block { input x relu }", 1, 7, "unexpected '{'; expected a name"),
]


@pytest.mark.parametrize("text, line, col, message", BLOCK_SYNTAX_ERRORS)
def test_block_syntax_errors(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(text, "bad.dl")
    (problem,) = info.value.problems
    assert (problem.kind, problem.pos.line, problem.pos.col) == ("SyntaxProblem", line, col)
    assert problem.message.startswith(message), problem.message


# ---- time_distributed: the wrapped layer is a call value ---------------------------------------


def test_a_wrapped_layer_is_a_call_value_with_positions_of_its_own() -> None:
    spec = parse(
        "model m {\n input x: float32[5, 3]\n td: time_distributed(lstm(4, readout=last)) -> relu\n}"
    )
    chain = spec.models[0].layers[0]
    assert [call.op for call in chain.calls] == ["time_distributed", "relu"]
    (arg,) = chain.calls[0].args
    assert arg.key is None and isinstance(arg.value, ast.CallVal)
    assert (arg.value.name, arg.value.pos) == ("lstm", Pos(3, 23, 27))
    assert [(a.key, plain(a.value), a.pos) for a in arg.value.args] == [
        (None, 4, Pos(3, 28, 29)),
        ("readout", "last", Pos(3, 31, 38)),
    ]
