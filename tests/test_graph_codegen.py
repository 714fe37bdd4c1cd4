"""The graph walker every backend shares: which tensors get variables, and how a layer's lines are
made to read one (no framework needed)."""

from __future__ import annotations

from dlspec.backends import TARGETS
from dlspec.backends.base import reading
from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build

CHAIN = """
model m {
    input image: float32[2, 6, 6]
    conv2d(3, 3) -> relu
    flatten -> dense(2)
}
"""

GRAPH = """
model g {
    input x: float32[4]
    torch: dense(4) -> tf: relu
    [x] -> self: dense(4)
    [tf, self, x] -> add -> layers: dense(2)
}
"""


def test_reading_renames_the_first_statements_x_only() -> None:
    assert reading(("x = self.c(x)", "x = x[:, -1]"), "a") == ("x = self.c(a)", "x = x[:, -1]")
    lines = ("# w: glorot", 'x = layers.Dense(2, name="x")(x)')
    assert reading(lines, "a") == ("# w: glorot", 'x = layers.Dense(2, name="x")(a)')
    assert reading(("x, _ = self.rnn(x)",), "s") == ("x, _ = self.rnn(s)",)
    assert reading(("x = tf.where(x > 0.0, x, 0.5 * x)",), "t") == (
        "x = tf.where(t > 0.0, t, 0.5 * t)",
    )
    block = ("if dropout:", "    x = layers.Dropout(0.5)(x)")
    assert reading(block, "d") == ("x = d", *block)


def _forward(target: str, text: str) -> str:
    source = compile_model(build(text).model, target).source
    start = source.index("def forward") if target == "pytorch" else source.index("def __call__")
    return source[start : source.index("return", start)]


def test_a_chain_keeps_everything_in_x() -> None:
    body = _forward("pytorch", CHAIN)
    assert "image" not in body and body.count("x = self.") == 4


def test_tensors_read_out_of_order_get_escaped_variables() -> None:
    # the input `x` is read again by `self` and by the add: kept as `x_` (x is the carrier);
    # `tf` is read two layers later: a variable (no escape needed in PyTorch's forward)
    assert _forward("pytorch", GRAPH).split("\n")[1:-1] == [
        "        x_ = x",
        "        x = self.torch(x)",
        "        x = self.tf(x)",
        "        tf = x",
        "        x = self.self(x_)",
        "        x = tf + x + x_",
        "        x = self.layers(x)",
    ]
    # in TensorFlow's forward `tf` is the module: the tensor's variable is escaped
    body = _forward("tensorflow", GRAPH)
    assert "tf_ = x" in body and "x = tf_ + x + x_" in body


def test_every_target_compiles_the_graph() -> None:
    for target in TARGETS:
        assert "add" in compile_model(build(GRAPH + "train { loss = mse }").model, target).source
