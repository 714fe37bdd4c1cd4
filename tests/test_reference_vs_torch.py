"""The NumPy oracle against torch.nn.functional in float64, op by op, forward and gradients."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
import pytest
from example_specs import TRAINED

from dlspec.frontend.load import build
from dlspec.ir.model import Model, Optimizer
from dlspec.oracle import forward as R
from dlspec.oracle import grad as G
from dlspec.oracle import optim as O
from dlspec.weights import canonical as W

torch = pytest.importorskip("torch", reason="torch is not installed: oracle-vs-torch not run")
F = torch.nn.functional

pytestmark = pytest.mark.framework

TOL = {"rtol": 1e-10, "atol": 1e-10}
Array = np.ndarray


def rand(*shape: int, seed: int = 0) -> Array:
    return np.random.default_rng(seed).standard_normal(shape)


def t(a: Array, grad: bool = True) -> Any:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def close(ours: Array, theirs: Any) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL)


def backprop(out: Any, dout: Array) -> None:
    (out * torch.from_numpy(dout)).sum().backward()


# ---- convolution and pooling -----------------------------------------------------------------

CONVS = [
    # stride, pads ((top, bottom), (left, right)), dilation, kernel
    ((1, 1), ((1, 1), (1, 1)), (1, 1), (3, 3)),
    ((2, 1), ((1, 0), (0, 2)), (1, 2), (2, 3)),
    ((2, 3), ((0, 2), (1, 1)), (2, 1), (3, 2)),
]


@pytest.mark.parametrize("stride, pads, dilation, kernel", CONVS)
def test_conv2d(stride: Any, pads: Any, dilation: Any, kernel: Any) -> None:
    x, w, b = rand(2, 3, 9, 8, seed=1), rand(4, 3, *kernel, seed=2), rand(4, seed=3)
    (top, bottom), (left, right) = pads
    tx, tw, tb = t(x), t(w), t(b)
    out = F.conv2d(F.pad(tx, (left, right, top, bottom)), tw, tb, stride, dilation=dilation)
    ours = R.conv2d(x, w, b, stride, pads, dilation)
    close(ours, out)
    dout = rand(*ours.shape, seed=4)
    backprop(out, dout)
    dx, dw, db = G.conv2d_backward(x, w, dout, stride, pads, dilation)
    close(dx, tx.grad)
    close(dw, tw.grad)
    close(db, tb.grad)


POOLS = [
    # pool, stride, symmetric pad, ceil, input size
    ((2, 2), (2, 2), (0, 0), False, (8, 8)),
    ((2, 2), (2, 2), (0, 0), True, (7, 9)),
    ((3, 3), (2, 2), (1, 1), True, (8, 7)),
    ((3, 2), (2, 1), (1, 0), False, (9, 6)),
    ((3, 3), (3, 2), (1, 1), True, (10, 8)),
]


@pytest.mark.parametrize("pool, stride, pad, ceil, size", POOLS)
def test_maxpool2d(pool: Any, stride: Any, pad: Any, ceil: bool, size: Any) -> None:
    x = rand(2, 3, *size, seed=5)
    pads = ((pad[0], pad[0]), (pad[1], pad[1]))
    rounding = "ceil" if ceil else "floor"
    tx = t(x)
    out = F.max_pool2d(tx, pool, stride, pad, ceil_mode=ceil)
    ours = R.maxpool2d(x, pool, stride, pads, rounding)
    close(ours, out)
    dout = rand(*ours.shape, seed=6)
    backprop(out, dout)
    close(G.maxpool2d_backward(x, dout, pool, stride, pads, rounding), tx.grad)


@pytest.mark.parametrize("count_pad", [True, False])
@pytest.mark.parametrize("pool, stride, pad, ceil, size", POOLS)
def test_avgpool2d(
    pool: Any, stride: Any, pad: Any, ceil: bool, size: Any, count_pad: bool
) -> None:
    x = rand(2, 3, *size, seed=7)
    pads = ((pad[0], pad[0]), (pad[1], pad[1]))
    rounding = "ceil" if ceil else "floor"
    tx = t(x)
    out = F.avg_pool2d(tx, pool, stride, pad, ceil_mode=ceil, count_include_pad=count_pad)
    ours = R.avgpool2d(x, pool, stride, pads, rounding, count_pad)
    close(ours, out)
    dout = rand(*ours.shape, seed=8)
    backprop(out, dout)
    close(G.avgpool2d_backward(x, dout, pool, stride, pads, rounding, count_pad), tx.grad)


def test_maxpool_asymmetric_padding_is_minus_inf_pad_then_floor_pool() -> None:
    x = rand(2, 2, 7, 6, seed=9)
    pads = ((1, 0), (0, 1))
    padded = F.pad(t(x, False), (0, 1, 1, 0), value=-math.inf)
    close(R.maxpool2d(x, (2, 2), (2, 2), pads, "floor"), F.max_pool2d(padded, 2, 2))


def test_explicit_pad_then_ceil_pool_adds_a_window_the_ir_drops() -> None:
    """A backend trap: after F.pad, ceil_mode no longer knows which cells were padding.

    Width 6 padded (0, 1) to 7, window 2, stride 2: torch's ceil rule keeps a 4th window that
    starts on the pad column (all -inf); the IR's rule drops windows starting in after-padding.
    """
    x = rand(2, 2, 7, 6, seed=9)
    padded = F.pad(t(x, False), (0, 1, 1, 0), value=-math.inf)
    theirs = F.max_pool2d(padded, 2, 2, ceil_mode=True)
    ours = R.maxpool2d(x, (2, 2), (2, 2), ((1, 0), (0, 1)), "ceil")
    assert ours.shape[-1] == 3 and theirs.shape[-1] == 4
    close(ours, theirs[..., :3])
    assert bool(torch.isinf(theirs[..., 3]).all())


@pytest.mark.parametrize("ties", [False, True])
def test_global_pools(ties: bool) -> None:
    x = rand(2, 3, 4, 5, seed=13)
    if ties:  # rounded, then clipped: many maps reach their max in several cells
        x = np.minimum(np.round(x), 1.0)
    dout = rand(2, 3, seed=14)
    for ours, backward, theirs in (
        (R.global_avgpool2d, G.global_avgpool2d_backward, torch.mean),
        (R.global_maxpool2d, G.global_maxpool2d_backward, torch.amax),
    ):
        tx = t(x)
        out = theirs(tx, dim=(2, 3))
        close(ours(x), out)
        backprop(out, dout)
        close(backward(x, dout), tx.grad)


def test_zeropad_and_repeat_vector() -> None:
    x = rand(2, 3, 4, 5, seed=15)
    tx = t(x)
    out = torch.nn.ZeroPad2d((0, 2, 1, 3))(tx)  # (left, right, top, bottom)
    close(R.zeropad2d(x, ((1, 3), (0, 2))), out)
    dout = rand(*out.shape, seed=16)
    backprop(out, dout)
    close(G.crop2d(dout, ((1, 3), (0, 2)), (4, 5)), tx.grad)
    v = rand(2, 5, seed=17)
    tv = t(v)
    out = tv.unsqueeze(1).repeat(1, 3, 1)
    close(R.repeat_vector(v, 3), out)
    dout = rand(2, 3, 5, seed=18)
    backprop(out, dout)
    close(G.repeat_vector_backward(dout), tv.grad)


# ---- dense, embedding, activations, losses ---------------------------------------------------


def test_dense_over_the_last_axis() -> None:
    x, w, b = rand(2, 5, 4, seed=10), rand(3, 4, seed=11), rand(3, seed=12)
    tx, tw, tb = t(x), t(w), t(b)
    out = F.linear(tx, tw, tb)
    close(R.dense(x, w, b), out)
    dout = rand(2, 5, 3, seed=13)
    backprop(out, dout)
    for ours, theirs in zip(G.dense_backward(x, w, dout), (tx, tw, tb), strict=True):
        close(ours, theirs.grad)


def test_embedding() -> None:
    ids = np.random.default_rng(14).integers(0, 6, size=(3, 8))
    table = rand(6, 4, seed=15)
    tt = t(table)
    out = F.embedding(torch.from_numpy(ids), tt)
    close(R.embedding(ids, table), out)
    dout = rand(3, 8, 4, seed=16)
    backprop(out, dout)
    close(G.embedding_backward(ids, table.shape, dout), tt.grad)


ACTIVATIONS: list[tuple[str, Callable[[Array], Array], Callable[..., Any], Callable[..., Array]]]
ACTIVATIONS = [
    ("relu", R.relu, lambda x: F.relu(x), G.relu_backward),
    ("tanh", R.tanh, lambda x: torch.tanh(x), G.tanh_backward),
    ("sigmoid", R.sigmoid, lambda x: torch.sigmoid(x), G.sigmoid_backward),
    (
        "elu",
        lambda x: R.elu(x, 0.7),
        lambda x: F.elu(x, 0.7),
        lambda x, d: G.elu_backward(x, d, 0.7),
    ),
    (
        "leaky_relu",
        lambda x: R.leaky_relu(x, 0.2),
        lambda x: F.leaky_relu(x, 0.2),
        lambda x, d: G.leaky_relu_backward(x, d, 0.2),
    ),
    (
        "softmax_channels",
        lambda x: R.softmax(x, 1),
        lambda x: F.softmax(x, 1),
        lambda x, d: G.softmax_backward(x, d, 1),
    ),
    (
        "softmax_last",
        lambda x: R.softmax(x, 3),
        lambda x: F.softmax(x, 3),
        lambda x, d: G.softmax_backward(x, d, 3),
    ),
]


@pytest.mark.parametrize(
    "name, ours, theirs, backward", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS]
)
def test_activation(name: str, ours: Any, theirs: Any, backward: Any) -> None:
    x = 3.0 * rand(2, 3, 4, 5, seed=17)
    tx = t(x)
    out = theirs(tx)
    close(ours(x), out)
    dout = rand(*x.shape, seed=18)
    backprop(out, dout)
    close(backward(x, dout), tx.grad)


def test_leaky_relu_slopes_above_one_are_not_a_max() -> None:
    """Canonical leaky_relu is x if x > 0 else alpha*x, as torch computes it, also for alpha > 1."""
    x = np.array([-1.0, 2.0])
    assert list(R.leaky_relu(x, 2.0)) == [-2.0, 2.0]
    assert F.leaky_relu(t(x, False), 2.0).tolist() == [-2.0, 2.0]


def test_losses() -> None:
    logits, labels = rand(6, 4, seed=19), np.random.default_rng(20).integers(0, 4, size=6)
    tl = t(logits)
    ce = F.cross_entropy(tl, torch.from_numpy(labels))
    assert R.softmax_cross_entropy(logits, labels) == pytest.approx(ce.item(), abs=1e-12)
    ce.backward()
    close(G.softmax_cross_entropy_backward(logits, labels), tl.grad)
    target = rand(6, 4, seed=21)
    tl = t(logits)
    mse = F.mse_loss(tl, torch.from_numpy(target))
    assert R.mse(logits, target) == pytest.approx(mse.item(), abs=1e-12)
    mse.backward()
    close(G.mse_backward(logits, target), tl.grad)


# ---- recurrent layers ------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["gru", "lstm"])
@pytest.mark.parametrize("bias", [True, False])
def test_rnn_layers(op: str, bias: bool) -> None:
    spec = f"model r {{ input x: float32[6, 3] {op}(4, layers=2, bias={str(bias).lower()}, "
    spec += "readout=sequence) } train { loss = mse }"
    model = build(spec).model
    layer = model.layers[0]
    weights = {p.name: 0.5 * rand(*p.shape, seed=i) for i, p in enumerate(model.params)}
    rnn = (torch.nn.GRU if op == "gru" else torch.nn.LSTM)(3, 4, 2, bias=bias, batch_first=True)
    rnn = rnn.double()
    with torch.no_grad():
        for name, value in weights.items():
            getattr(rnn, name.split(".", 1)[1]).copy_(torch.from_numpy(value))
    x = rand(2, 6, 3, seed=30)
    tx = t(x)
    out, _ = rnn(tx)
    close(R.forward(model, weights, x), out)
    dout = rand(2, 6, 4, seed=31)
    backprop(out, dout)
    dx, grads = G.BACKWARD[op](layer, weights, x, dout)
    close(dx, tx.grad)
    for name, g in grads.items():
        close(g, getattr(rnn, name.split(".", 1)[1]).grad)


# ---- optimisers ------------------------------------------------------------------------------


def optimizer(text: str) -> Optimizer:
    spec = f"model m {{ input x: float32[1] dense(1) }} train {{ optimizer = {text} }}"
    train = build(spec).model.train
    assert train is not None
    return train.optimizer


TORCH_OPTIMIZERS = [
    (
        "sgd(lr=0.1, momentum=0.9, weight_decay=0.01)",
        "SGD",
        {"momentum": 0.9, "weight_decay": 0.01},
    ),
    ("sgd(lr=0.1, momentum=0.9, nesterov=true)", "SGD", {"momentum": 0.9, "nesterov": True}),
    ("adam(lr=0.1, weight_decay=0.1)", "Adam", {"weight_decay": 0.1}),
    ("adam(lr=0.1, weight_decay=0.1, weight_decay_mode=decoupled)", "AdamW", {"weight_decay": 0.1}),
    (
        "rmsprop(lr=0.01, rho=0.99, eps=1e-8, momentum=0.5, centered=true)",
        "RMSprop",
        {"alpha": 0.99, "eps": 1e-8, "momentum": 0.5, "centered": True},
    ),
    ("rmsprop(lr=0.01, rho=0.99, eps=1e-8)", "RMSprop", {"alpha": 0.99, "eps": 1e-8}),
    ("adadelta(lr=1.0, rho=0.9, eps=1e-6)", "Adadelta", {"rho": 0.9, "eps": 1e-6}),
]


@pytest.mark.parametrize(
    "text, cls, kwargs", TORCH_OPTIMIZERS, ids=[o[1] for o in TORCH_OPTIMIZERS]
)
def test_optimizers_match_torch_optim(text: str, cls: str, kwargs: dict) -> None:
    w0 = rand(5, seed=40)
    tw = t(w0)
    lrs = [0.1, 0.1, 0.05, 0.02, 0.02] if cls != "Adadelta" else [1.0, 1.0, 0.5, 0.5, 0.25]
    theirs = getattr(torch.optim, cls)([tw], lr=lrs[0], **kwargs)
    ours = O.ReferenceOptimizer(optimizer(text))
    weights = {"w": w0}
    for step, lr in enumerate(lrs):
        g = rand(5, seed=50 + step)
        for group in theirs.param_groups:
            group["lr"] = lr
        tw.grad = torch.from_numpy(g.copy())
        theirs.step()
        weights = ours.step(weights, {"w": g}, lr)
        close(weights["w"], tw)


# ---- whole models: the oracle against the generated PyTorch script ---------------------------

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))

# every awkward attribute at once: asymmetric pads, dilation, ceil pools, both avg-pool divisors
TRICKY_CNN = """
model tricky_cnn {
  input x: float32[2, 9, 8]
  conv2d(3, kernel=[3, 2], stride=[2, 1], padding=[[1, 0], [2, 1]], dilation=[1, 2]) -> tanh
  maxpool2d(2, stride=2, padding=[[1, 0], [0, 1]])
  conv2d(2, kernel=1, bias=false) -> elu(0.7)
  avgpool2d(2, stride=1, padding=[[1, 0], [0, 1]], count_pad=false)
  avgpool2d(2, stride=1, padding=[[0, 1], [1, 0]], count_pad=true)
  avgpool2d(3, stride=2, padding=1, count_pad=true, rounding=ceil) -> softmax
  maxpool2d(2, stride=1, padding=1, rounding=ceil) -> sigmoid
  flatten
  dense(5) -> leaky_relu(0.2)
  dropout(0.3)
  dense(3)
}
train {
  optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true, momentum_form=update, weight_decay=0.01)
  schedule  = inverse_time(decay=0.5)
}
"""

TRICKY_RNN = """
model tricky_rnn {
  input ids: int32[6]
  embedding(9, 4)
  lstm(5, layers=2, readout=sequence)
  gru(3, readout=last)
  dense(2)
}
train {
  optimizer = adam(lr=0.05, eps=1e-3, eps_placement=uncorrected, weight_decay=0.1,
                   weight_decay_mode=decoupled)
  schedule  = step(every=1, gamma=0.5, unit=step)
}
"""

# the GRU nn.GRU lacks (reset before the recurrent matmul), written out by the backend
TRICKY_GRU = """
model tricky_gru {
  input frames: float32[4, 3]
  gru(4, layers=2, readout=sequence, reset_after=false, bias_init=uniform(0.3))
  gru(3, reset_after=false, recurrent_bias=false, bias_init=uniform(0.3))
  dense(2)
}
train { optimizer = sgd(lr=0.1, momentum=0.9) }
"""

# spec text and updates to check (three for the tricky ones: their learning rate changes twice)
SPECS = {p.stem: (p.read_text(encoding="utf-8"), 2) for p in TRAINED}
SPECS.update(tricky_cnn=(TRICKY_CNN, 3), tricky_rnn=(TRICKY_RNN, 3), tricky_gru=(TRICKY_GRU, 2))


def compiled_module(model: Model, tmp_path: Path) -> ModuleType:
    """Compile `model` for PyTorch now and import the script as a module."""
    from dlspec.codegen.compile import compile_model

    path = tmp_path / f"{model.name}_pytorch.py"
    path.write_text(compile_model(model, "pytorch").source, encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def torch_step(
    script: ModuleType, net: Any, opt: Any, x: dict[str, Array], y: Array, lr: float
) -> Any:
    """One update as the script's training loop makes it (the inputs, by name, in the script's
    INPUTS order); returns the output before it."""
    tx = [
        torch.from_numpy(a) if a.dtype.kind == "i" else torch.from_numpy(a.astype(np.float64))
        for a in (x[name] for name, _, _ in script.INPUTS)
    ]
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    out = net(*tx)
    script.loss_fn(out, torch.from_numpy(y)).backward()
    return out


@pytest.mark.parametrize("name", sorted(SPECS))
def test_model_forward_and_steps_match_the_pytorch_script(name: str, tmp_path: Path) -> None:
    text, steps = SPECS[name]
    model = build(text).model
    assert model.train is not None
    script = compiled_module(model, tmp_path)
    weights = W.draw_weights(model, 0)
    W.save_npz(tmp_path / "w.npz", weights)
    x, y = W.input_batches(model, 2, 0), W.label_batch(model, 2, 0)
    net = script.Net().double()
    script.load_weights(net, str(tmp_path / "w.npz"))
    net.eval()  # dropout off: verify compares forward passes and training steps without it
    opt = script.make_optimizer(net)
    ours = O.ReferenceOptimizer(model.train.optimizer)
    current: dict[str, Array] = dict(weights)
    for step in range(steps):
        lr = script.learning_rate(step, 0)
        assert lr == pytest.approx(O.train_learning_rate(model.train, step, 0), rel=1e-15)
        out = torch_step(script, net, opt, x, y, lr)
        close(R.forward(model, current, x), out)
        _, grads = G.loss_and_grads(model, current, x, y)
        for pname, g in grads.items():
            close(g, net.get_parameter(pname).grad)
        opt.step()
        current = ours.step(current, grads, lr)
        for pname, value in current.items():
            close(value, net.get_parameter(pname))
