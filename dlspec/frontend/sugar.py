"""Sugar the lowering expands: `activation=` on a layer is a separate activation layer after it."""

from __future__ import annotations

from dataclasses import replace
from typing import Union

from dlspec.frontend import ast
from dlspec.ir.model import TIME_DISTRIBUTED
from dlspec.ir.ops import OPS


def activation_call(value: ast.Value) -> Union[ast.Call, None]:
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


def split_activation(call: ast.Call) -> list[ast.Call]:
    """`dense(10, activation=relu)` is sugar for `dense(10) -> relu`.

    Anything else (`none`, a repeated or unknown activation) stays an attribute, which the
    passes then check and report.
    """
    if call.op == TIME_DISTRIBUTED:
        return _split_wrapped_activation(call)
    act = [a for a in call.args if a.key == "activation"]
    if len(act) != 1 or call.op not in OPS or "activation" not in OPS[call.op].attrs:
        return [call]
    layer = activation_call(act[0].value)
    if layer is None:
        return [call]
    rest = tuple(a for a in call.args if a.key != "activation")
    return [ast.Call(call.op, rest, call.pos), layer]


def _split_wrapped_activation(call: ast.Call) -> list[ast.Call]:
    """`time_distributed(dense(10, activation=relu))` is `time_distributed(dense(10)) ->
    time_distributed(relu)`: the wrapped layer's sugar, split as anywhere, each part wrapped (a
    softmax of a step is not a softmax of the sequence)."""
    for i, arg in enumerate(call.args):
        if not ((i == 0 and arg.key is None) or arg.key == "layer"):
            continue
        value = arg.value
        if not isinstance(value, ast.CallVal) or value.name == TIME_DISTRIBUTED:
            return [call]
        parts = split_activation(ast.Call(value.name, value.args, value.pos))
        if len(parts) == 1:
            return [call]
        inner = replace(arg, value=replace(value, args=parts[0].args))
        act = parts[1]
        wrapped_act = ast.Arg(None, ast.CallVal(act.op, act.args, act.pos), act.pos)
        return [
            replace(call, args=call.args[:i] + (inner,) + call.args[i + 1 :]),
            ast.Call(TIME_DISTRIBUTED, (wrapped_act,), act.pos),
        ]
    return [call]
