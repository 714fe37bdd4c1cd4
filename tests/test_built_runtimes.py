"""The MXNet and CNTK runtimes `make runtimes` builds really run their frameworks (vs NumPy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from built_runtimes import py2_syntax_error, ready, run_json

pytestmark = pytest.mark.framework

RNG = np.random.default_rng(7)
W = RNG.normal(size=(3, 4)).round(3)  # (units, inputs), Gluon's layout; CNTK's is its transpose
B = RNG.normal(size=3).round(3)
X = RNG.normal(size=(5, 4)).round(3)
LR = 0.1

# A Gluon Dense(tanh) forward, loss sum(y^2)/2, one SGD Trainer step over a batch of 5
MXNET_SNIPPET = """
import json, sys
from mxnet import autograd, gluon, nd

d = json.loads(sys.argv[1])
net = gluon.nn.Dense(3, in_units=4, activation="tanh")
net.initialize()
net.weight.set_data(nd.array(d["w"]))
net.bias.set_data(nd.array(d["b"]))
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": d["lr"]})
with autograd.record():
    y = net(nd.array(d["x"]))
    loss = (y * y).sum() / 2
loss.backward()
trainer.step(len(d["x"]))  # Gluon divides the gradient by the batch size given here
out = {"y": y.asnumpy().tolist(), "w": net.weight.data().asnumpy().tolist(),
       "b": net.bias.data().asnumpy().tolist()}
print(json.dumps(out))
"""

# Python 2.7: a cntk.layers Dense(tanh) forward on a batch of 5
CNTK_SNIPPET = """
from __future__ import division, print_function
import json, sys
import numpy as np
import cntk as C

d = json.loads(sys.argv[1])
x = C.input_variable(4)
layer = C.layers.Dense(3, activation=C.tanh)
y = layer(x)
layer.W.value = np.array(d["w"], dtype=np.float32)
layer.b.value = np.array(d["b"], dtype=np.float32)
out = y.eval({x: np.array(d["x"], dtype=np.float32)})
print(json.dumps({"y": np.asarray(out).tolist(), "python": sys.version.split()[0]}))
"""


def test_mxnet_gluon_dense_forward_and_one_trainer_step_match_numpy(tmp_path: Path) -> None:
    rt = ready("mxnet")
    payload = {"w": W.tolist(), "b": B.tolist(), "x": X.tolist(), "lr": LR}
    got = run_json(rt, MXNET_SNIPPET, payload, tmp_path)
    y = np.tanh(X @ W.T + B)
    dz = y * (1 - y**2)  # d(sum(y^2)/2)/dz through tanh
    w_after = W - LR * (dz.T @ X) / len(X)
    b_after = B - LR * dz.sum(axis=0) / len(X)
    np.testing.assert_allclose(got["y"], y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["w"], w_after, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["b"], b_after, rtol=1e-5, atol=1e-6)
    assert not np.allclose(w_after, W, atol=1e-3)  # the step moved the weights measurably


def test_cntk_dense_forward_matches_numpy_under_python_2(tmp_path: Path) -> None:
    rt = ready("cntk")
    got = run_json(
        rt, CNTK_SNIPPET, {"w": W.T.tolist(), "b": B.tolist(), "x": X.tolist()}, tmp_path
    )
    assert got["python"].startswith("2.7.")
    np.testing.assert_allclose(got["y"], np.tanh(X @ W.T + B), rtol=1e-5, atol=1e-6)


def test_py2_check_accepts_code_valid_in_python_2_and_3(tmp_path: Path) -> None:
    source = tmp_path / "both.py"
    source.write_text(
        "from __future__ import division, print_function\n"
        "def mean(xs):\n    return sum(xs) / len(xs)\n"
        "print('mean %.3f' % mean([1, 2]), {'a': 1})\n",
        encoding="utf-8",
    )
    assert py2_syntax_error(source) is None
    assert compile(source.read_text(encoding="utf-8"), str(source), "exec")  # and Python 3


@pytest.mark.parametrize(
    "line, col",
    [("x = 1\nprint(f'{x}')\n", 2), ("def f(x: int) -> int:\n    return x\n", 1)],
    ids=["f-string", "annotation"],
)
def test_py2_check_rejects_python_3_only_syntax(tmp_path: Path, line: str, col: int) -> None:
    source = tmp_path / "py3_only.py"
    source.write_text(line, encoding="utf-8")
    error = py2_syntax_error(source)
    assert error is not None and error.startswith(f"{source}:{col}:")
    assert "invalid syntax" in error
