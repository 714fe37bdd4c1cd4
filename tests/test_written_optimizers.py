"""Each target's written-out CanonicalOptimizer, for every optimiser form, against the oracle."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from optimizer_forms import LRS, Form, form_id, forms

from dlspec.backends import cntk as cntk_backend
from dlspec.backends import keras_optimizer
from dlspec.backends import mxnet as mxnet_backend
from dlspec.backends import pytorch as pytorch_backend
from dlspec.backends.tensorflow import optimizer_context
from dlspec.codegen.render import render
from dlspec.errors import Pos
from dlspec.ir.model import Optimizer
from dlspec.oracle.optim import ReferenceOptimizer
from dlspec.runtimes import RUNTIMES, probe, runtime
from dlspec.verify.run import execute

# loud numbers: eps large enough that its placement shows in float32, short memories
FORMS = forms({"eps": 0.01, "beta1": 0.8, "beta2": 0.9, "rho": 0.8})
SHAPES = [(3, 4), (5,)]

# Runs in the target's runtime (numpy and the framework only, no dlspec): each job's optimiser
# class source is executed and applied to fresh variables for the jobs' learning rates.
DRIVER = """
from __future__ import division, print_function
import inspect, json, sys
import numpy as np

jobs, out_path, target = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
if target == "pytorch":
    import math, torch
    prelude = {"math": math, "torch": torch}
elif target == "tensorflow":
    import tensorflow as tf
    prelude = {"tf": tf, "FLOAT": tf.float64}  # the script's float type, as verify's float64 run
elif target == "mxnet":
    import math
    import mxnet as mx
    from mxnet import autograd, gluon, nd
    prelude = {"math": math, "nd": nd}
elif target == "cntk":  # Python 2.7
    import math
    import cntk as C
    prelude = {"math": math, "np": np, "C": C, "BATCH_SIZE": 1}
else:
    import keras
    from keras import ops
    prelude = {"keras": keras, "ops": ops}


# float64 Gluon parameters updated by the job's CanonicalOptimizer, or by the gluon.Trainer the
# backend writes for the form (job["native"]); gradients made by backward() of sum(w * g)
def gluon_steps(job, cls, steps, w0):
    params = gluon.ParameterDict()
    ws = [params.get("w%d" % k, shape=w.shape, dtype="float64") for k, w in enumerate(w0)]
    params.initialize(mx.init.Zero(), ctx=mx.cpu())
    for p, w in zip(ws, w0):
        p.set_data(nd.array(w, dtype="float64"))
    if job["native"]:
        opt = gluon.Trainer(params, job["native"][0], job["native"][1])
    else:
        opt = cls(params)
    for lr, gs in steps:
        opt.set_learning_rate(lr)
        with autograd.record():
            loss = sum((p.data() * nd.array(g, dtype="float64")).sum() for p, g in zip(ws, gs))
        loss.backward()
        opt.step(1)
    return [p.data().asnumpy() for p in ws]


# float64 CNTK parameters updated by the job's CanonicalOptimizer, or by the LearnerOptimizer the
# backend writes for the form (job["native"]); gradients made by CNTK of sum(w * g) on a batch of 1
class Model(object):
    pass


def cntk_steps(job, namespace, steps, w0):
    with C.default_options(dtype=np.float64):
        ws = [C.Parameter(w.shape, init=w) for w in w0]
        gs_in = [C.input_variable(w.shape, dtype=np.float64) for w in w0]
        terms = [C.reduce_sum(w * g, axis=C.Axis.all_static_axes()) for w, g in zip(ws, gs_in)]
    loss = terms[0]
    for term in terms[1:]:
        loss = loss + term
    model = Model()
    model.output = loss
    cls = namespace["LearnerOptimizer" if job["native"] else "CanonicalOptimizer"]
    opt = cls(model, (None, loss))
    for lr, gs in steps:
        opt.step(dict((v, g[None]) for v, g in zip(gs_in, gs)), lr, 1)
    return [w.value for w in ws]


def keras_steps(cls, job, steps, w0, **options):
    ws = [keras.Variable(w.astype(np.float32)) for w in w0]
    opt = cls(learning_rate=job["lrs"][0], weight_decay=None, **options)
    for lr, gs in steps:
        opt.learning_rate = lr
        opt.apply([ops.convert_to_tensor(g.astype(np.float32)) for g in gs], ws)
    keras_steps.fused = getattr(opt, "torch_optimizer", None) is not None
    return [np.asarray(ops.convert_to_numpy(w), np.float64) for w in ws]


results = {}
for job in jobs:
    namespace = dict(prelude)
    exec(job["source"], namespace)
    cls = namespace.get("CanonicalOptimizer")
    w0 = [np.array(w) for w in job["w0"]]
    steps = [(lr, [np.array(g) for g in gs]) for lr, gs in zip(job["lrs"], job["grads"])]
    if target == "pytorch":  # float64: the torch code must equal the oracle to rounding
        ws = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)) for w in w0]
        opt = cls(ws)
        for lr, gs in steps:
            opt.param_groups[0]["lr"] = lr
            for w, g in zip(ws, gs):
                w.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
        final = [w.detach().numpy() for w in ws]
    elif target == "tensorflow":  # float64 (FLOAT), in a tf.function as the scripts run it
        ws = [tf.Variable(w) for w in w0]
        opt = cls(ws)
        apply = tf.function(opt.apply)
        for lr, gs in steps:
            apply([tf.constant(g) for g in gs], ws, tf.constant(lr, tf.float64))
        final = [w.numpy() for w in ws]
    elif target == "mxnet":  # float64
        final = gluon_steps(job, cls, steps, w0)
    elif target == "cntk":  # float64
        final = cntk_steps(job, namespace, steps, w0)
        if not job["native"]:  # chunks of 5 (a partial last one) too, to compare with one chunk
            namespace["CanonicalOptimizer"].CHUNK = 5
            chunked = cntk_steps(job, namespace, steps, w0)
            results[job["id"] + "/chunked"] = [f.tolist() for f in chunked]
    else:  # float32
        final = keras_steps(cls, job, steps, w0)  # on torch: torch.optim's fused update if one
        if cls.IN_PLACE:  # torch: the written-out statements, in place and with keras.ops
            results[job["id"] + "/fused"] = keras_steps.fused
            options = {"fused": False} if "fused" in inspect.signature(cls).parameters else {}
            in_place = keras_steps(cls, job, steps, w0, **options)
            results[job["id"] + "/in_place"] = [f.tolist() for f in in_place]
            cls.IN_PLACE = False
            results[job["id"] + "/ops"] = [f.tolist() for f in keras_steps(cls, job, steps, w0)]
    results[job["id"]] = [np.asarray(f, np.float64).tolist() for f in final]
json.dump(results, open(out_path, "w"))
"""

# float64 in torch and TensorFlow; float32 in Keras (measured: below 1e-6; forms differing in one
# attribute end at least 6e-3 apart)
TOLERANCE = {"pytorch": 1e-12, "tensorflow": 1e-12, "keras": 1e-5, "mxnet": 1e-12, "cntk": 1e-12}
# gluon.Trainer's update operators take lr, wd, momentum, eps and Adam's rate as float32
# attributes: float64 weights end float32-rounding apart (measured up to 5e-8), which is why
# the mxnet scripts use it in float32 runs only
GLUON_TRAINER_TOLERANCE = 1e-6


def _optimizer(form: Form) -> Optimizer:
    kind, attrs = form
    return Optimizer(kind, attrs, Pos())


def native(target: str, form: Form, constant_lr: bool = False) -> Any:
    """The native optimiser (mxnet: gluon.Trainer; cntk: a learner) the target's scripts use for
    this form in float32 runs (cntk: under a constant rate when `constant_lr`), or None."""
    opt = _optimizer(form)
    if target == "cntk":
        return cntk_backend.native_optimizer(opt, constant_lr)
    return mxnet_backend.native_optimizer(opt) if target == "mxnet" else None


def source(target: str, form: Form, constant_lr: bool = False) -> str:
    """The target's CanonicalOptimizer class for this form, rendered as in a script."""
    opt = _optimizer(form)
    if target == "cntk":
        context = cntk_backend.optimizer_context(opt, constant_lr)
        return render("cntk/optimizer.py.j2", {"optimizer": context})
    if target == "tensorflow":
        return render("tensorflow/optimizer.py.j2", {"optimizer": optimizer_context(opt)})
    module = {"pytorch": pytorch_backend, "mxnet": mxnet_backend}.get(target, keras_optimizer)
    context = {
        "kind": opt.kind,
        "attrs": dict(opt.attrs),
        "sparse": False,
        "native": bool(mxnet_backend.native_optimizer(opt)),
        "adam_update": None,  # MXNet's fused path (float32 runs) is not the written-out form
        **module.optimizer_code(opt),
    }
    return render(f"{target}/optimizer.py.j2", {"optimizer": context})


def _data(index: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(index)
    w0 = [rng.standard_normal(shape) for shape in SHAPES]
    return w0, [[rng.standard_normal(shape) for shape in SHAPES] for _ in LRS]


def expected(index: int, lrs: list[float] = LRS) -> list[np.ndarray]:
    """The oracle's weights after the updates."""
    w0, grads = _data(index)
    oracle = ReferenceOptimizer(_optimizer(FORMS[index]))
    weights = {str(k): w for k, w in enumerate(w0)}
    for lr, gs in zip(lrs, grads, strict=True):
        weights = oracle.step(weights, {str(k): g for k, g in enumerate(gs)}, lr)
    return [weights[str(k)] for k in range(len(w0))]


@cache
def results(
    name: str, tmp: Path, indices: tuple[int, ...] = (), constant_lr: bool = False
) -> dict[str, Any]:
    """Every form's final weights from one runtime (one interpreter for all of them); only the
    forms `indices` when given, at the constant rate CONSTANT when `constant_lr`."""
    rt = runtime(name)
    available, why = probe(rt)
    if not available:
        pytest.skip(f"{name} not available: {why}")
    jobs = []
    for index, form in enumerate(FORMS):
        if indices and index not in indices:
            continue
        w0, grads = _data(index)
        jobs.append(
            {
                "id": str(index),
                "source": source(rt.target, form, constant_lr),
                # mxnet: the gluon.Trainer (name, arguments) its scripts use for this form, if
                # any; cntk: the learner
                "native": native(rt.target, form, constant_lr),
                "w0": [w.tolist() for w in w0],
                "lrs": CONSTANT if constant_lr else LRS,
                "grads": [[g.tolist() for g in gs] for gs in grads],
            }
        )
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    (tmp / "driver.py").write_text(DRIVER)
    args = [str(tmp / "jobs.json"), str(tmp / "out.json"), rt.target]
    code, stderr = execute(rt, tmp / "driver.py", args, 900)
    assert code == 0, stderr[-4000:]
    return json.loads((tmp / "out.json").read_text())


@pytest.mark.framework
@pytest.mark.parametrize("name", list(RUNTIMES))
def test_written_out_updates_equal_the_oracle(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Six updates at changing learning rates of every form, on two variables."""
    got = results(name, tmp_path_factory.mktemp(name.replace("[", "_").replace("]", "")))
    rt_target = runtime(name).target
    tolerance = TOLERANCE[rt_target]
    failures = []
    for index, form in enumerate(FORMS):
        want = expected(index)
        w0, _ = _data(index)
        assert max(np.abs(w - w_0).max() for w, w_0 in zip(want, w0, strict=True)) > 1e-3
        error = max(
            np.abs(np.asarray(g) - w).max() for g, w in zip(got[str(index)], want, strict=True)
        )
        trainer = rt_target == "mxnet" and native(rt_target, form)
        if error > (GLUON_TRAINER_TOLERANCE if trainer else tolerance):
            failures.append(f"{form_id(form)}: {error:.3g}")
    assert not failures, "\n".join(failures)


@pytest.mark.framework
def test_keras_torch_in_place_update_equals_the_keras_ops_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """On the torch backend CanonicalOptimizer (not fused) updates in place; the same statements
    written with keras.ops (the other backends' path) give the same float32 weights, bit for bit.
    Where a fused torch.optim update computes the form, that is the one taken by default (its
    weights are held to the oracle by test_written_out_updates_equal_the_oracle)."""
    got = results("keras[torch]", tmp_path_factory.mktemp("keras_torch_ops"))
    for index, form in enumerate(FORMS):
        in_place, with_ops = got[f"{index}/in_place"], got[f"{index}/ops"]
        for a, b in zip(in_place, with_ops, strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)), form_id(form)
        fused = keras_optimizer.torch_fused(_optimizer(form)) is not None
        assert got[f"{index}/fused"] == fused, form_id(form)
    assert any(got[f"{index}/fused"] for index in range(len(FORMS)))


@pytest.mark.framework
def test_cntk_chunked_update_equals_the_whole_array_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """CNTK's CanonicalOptimizer updates a CHUNK of the flattened arrays at a time; in chunks of 5
    (the 12 weights of a 3x4 variable in three, the last partial) the weights equal those of one
    chunk bit for bit: the update is elementwise."""
    got = results("cntk", tmp_path_factory.mktemp("cntk"))
    written = [i for i, form in enumerate(FORMS) if not native("cntk", form)]
    assert written
    for index in written:
        whole, chunked = got[str(index)], got[f"{index}/chunked"]
        for a, b in zip(whole, chunked, strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)), form_id(FORMS[index])


# the rate of every update in the constant-rate test
CONSTANT = [LRS[0]] * len(LRS)


@pytest.mark.framework
def test_cntk_learners_at_a_constant_rate_equal_the_oracle(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The forms a CNTK learner computes only at a constant rate (SGD's gradient momentum form):
    six updates at one rate through the script's LearnerOptimizer."""
    indices = tuple(
        i for i, form in enumerate(FORMS) if native("cntk", form, True) and not native("cntk", form)
    )
    assert indices  # the gradient momentum form, with and without Nesterov and l2 decay
    got = results("cntk", tmp_path_factory.mktemp("cntk_constant"), indices, True)
    failures = []
    for index in indices:
        want = expected(index, CONSTANT)
        error = max(
            np.abs(np.asarray(g) - w).max() for g, w in zip(got[str(index)], want, strict=True)
        )
        if error > TOLERANCE["cntk"]:
            failures.append(f"{form_id(FORMS[index])}: {error:.3g}")
    assert not failures, "\n".join(failures)
