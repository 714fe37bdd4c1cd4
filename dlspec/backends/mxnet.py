"""The MXNet target: Gluon HybridBlocks (hybridised by default), gluon.Trainer, canonical layouts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar, Optional

from dlspec.backends.base import (
    Backend,
    LayerCode,
    Line,
    Module,
    OperatorMerges,
    computes,
    irrelevant_form,
    overhang,
)
from dlspec.codegen.updates import Printer, update_code
from dlspec.ir.model import Layer, Model, Optimizer, Param, wrapped
from dlspec.ir.ops import RECURRENT

# optimiser -> (gluon name, {attribute: the form it computes}, {canonical attribute: keyword}):
# read from MXNet 1.9.1's optimizer.py and its update operators. sgd: mom = mu*mom - lr*(g + wd*w),
# w += mom (the update form); adam: lr_t = lr*sqrt(1-b2^t)/(1-b1^t), w -= lr_t*m/(sqrt(v)+eps)
# (eps uncorrected). Written out instead: RMSProp (Gluon's keeps its state in float32 whatever the
# weights' dtype, so float64 runs fail) and AdaDelta (Gluon's ignores the learning rate).
NATIVE_OPTIMIZERS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "sgd": (
        "sgd",
        {"momentum_form": "update", "weight_decay_mode": "l2", "nesterov": False},
        {"momentum": "momentum"},
    ),
    "adam": (
        "adam",
        {"eps_placement": "uncorrected", "weight_decay_mode": "l2"},
        {"beta1": "beta1", "beta2": "beta2", "eps": "epsilon"},
    ),
}

# canonical RNN parameter name (its stem before _l<k>) -> Gluon's (l<k>_<name>)
RNN_NAMES = {
    "weight_ih": "i2h_weight",
    "weight_hh": "h2h_weight",
    "bias_ih": "i2h_bias",
    "bias_hh": "h2h_bias",
}

# the written-out update (dlspec.ir.updates) on NDArrays: slots in place, scalars in Python
MX_TENSOR = Printer(sqrt="nd.sqrt")
MX_SCALAR = Printer(sqrt="math.sqrt")

LOSS_NOTE = (
    "loss: Gluon's losses are per sample (mean over all axes but the batch); the gradient of "
    "their sum is taken and trainer.step(batch_size) divides it by the batch: the canonical mean"
)
INIT_NOTE = (
    "init: every parameter drawn by init_parameters as the spec says (NumPy, seeded), never "
    "Gluon's default initialiser (Uniform(0.07), zero biases)"
)

ALPHA_NOTE = (
    "written with F.where: nn.ELU and nn.LeakyReLU take alpha as a float32 attribute, which "
    "float64 runs would see rounded"
)

FLOAT64_NOTE = (
    "optimizer: gluon.Trainer in float32 runs; under --verify-precision float64 the update is "
    "written out (Gluon's update operators take lr, wd and momentum as float32 attributes)"
)


def _assign(target: str, op: str, value: str) -> str:
    return f"{target}[:] = {value}" if op == "=" else f"{target} {op} {value}"


def optimizer_code(opt: Optimizer) -> dict[str, Any]:
    """Slots and lines of CanonicalOptimizer.step (w, g, lr, t and the slots in scope)."""
    return update_code(opt, MX_SCALAR, MX_TENSOR, _assign)


def native_optimizer(opt: Optimizer) -> Optional[tuple[str, dict[str, Any]]]:
    """(Gluon optimiser name, its keyword arguments) when one computes this canonical form."""
    if opt.kind not in NATIVE_OPTIMIZERS:
        return None
    name, forms, names = NATIVE_OPTIMIZERS[opt.kind]
    if not computes(opt, forms):
        return None
    args = {"learning_rate": opt["lr"], "wd": opt["weight_decay"]}
    return name, {**args, **{gluon: opt[key] for key, gluon in names.items()}}


def adam_update(opt: Optimizer) -> Optional[dict[str, float]]:
    """Adam with eps corrected and L2 decay: nd.adam_update's coefficients, or None. MXNet's
    operator computes w -= lr'*m/(sqrt(v)+eps') on g = grad/batch + wd*w, which is the canonical
    step with lr' = lr*sqrt(c2)/c1 and eps' = eps*sqrt(c2); one operator per parameter where the
    written-out form takes about 17 (measured: 0.39x a hand-written Gluon script's IMDB GRU)."""
    if opt.kind != "adam" or opt["eps_placement"] != "corrected":
        return None
    if opt["weight_decay_mode"] != "l2" and not irrelevant_form(opt, "weight_decay_mode"):
        return None
    keys = ("beta1", "beta2", "eps", "weight_decay")
    return {key: float(opt[key]) for key in keys}


def _pad_width(pads: tuple[tuple[int, int], tuple[int, int]], cells: tuple[int, int]) -> str:
    """F.pad's pad_width for NCHW: (before, after) per axis, a pool's overhang added after."""
    (top, bottom), (left, right) = pads
    return f"(0, 0, 0, 0, {top}, {bottom + cells[0]}, {left}, {right + cells[1]})"


def _symmetric(pads: tuple[tuple[int, int], tuple[int, int]]) -> Optional[tuple[int, int]]:
    (top, bottom), (left, right) = pads
    return (top, left) if top == bottom and left == right else None


def _native_pool(layer: Layer) -> bool:
    """Gluon's pools take symmetric padding of at most half the window; their ceil_mode ('full'
    convention) lets a last window start in the padding, so ceil is native only unpadded."""
    pad = _symmetric(layer["padding"])
    if pad is None or any(pad[i] > layer["pool"][i] // 2 for i in range(2)):
        return False
    return layer["rounding"] == "floor" or pad == (0, 0)


def _rnn_name(param: str) -> str:
    """Gluon's attribute for a canonical RNN parameter (weight_ih_l0 -> l0_i2h_weight)."""
    stem, layer = param.rsplit("_l", 1)
    return f"l{layer}_{RNN_NAMES[stem]}"


def _draw(param: Param) -> str:
    """The NumPy expression drawing one parameter's initial value (helpers in the script)."""
    init, shape = param.init, tuple(param.shape)
    if init.dist == "uniform":
        return f"uniform(rng, {shape}, {init.limit!r})"
    if init.dist == "normal":
        return f"normal(rng, {shape}, {init.mean!r}, {init.std!r})"
    if init.dist == "truncated_normal":
        return f"truncated_normal(rng, {shape}, {init.mean!r}, {init.std!r})"
    if init.dist == "orthogonal":
        return f"orthogonal(rng, {shape}, {init.gain!r})"
    return f"np.full({shape}, {init.value!r})"


def init_lines(param: Param) -> list[str]:
    """Statements drawing one parameter as the IR says and setting it (canonical layout)."""
    fans = f"fan_in={param.fan_in}, fan_out={param.fan_out}"
    lines = [f"# {param.name}: {param.init.spec.describe()} ({fans})", f"value = {_draw(param)}"]
    if param.gate_offset:
        start, stop, add = param.gate_offset
        lines.append(f"value[{start}:{stop}] += {add!r}  # forget-gate bias")
    lines.append(f"set_parameter(model, {param.name!r}, value)")
    return lines


class DrawnBackend(Backend):
    """A target whose script draws every parameter with NumPy (`init_lines`) and sets it at its
    native path: MXNet, and CNTK, which shares the draws. The template context they share."""

    def context(self, model: Model) -> dict[str, Any]:
        self.name_model(model)
        return {
            **self.module_context(model),
            "draws": sorted({p.init.dist for p in model.params}),
            "init_lines": [line for p in model.params for line in init_lines(p)],
            "native_paths": list(self.native_paths(model).items()),
            "running_stats": self.running_stats(model),
            "optimizer": self._optimizer(model),
            "trainable": bool(model.params),
        }

    def native_paths(self, model: Model) -> dict[str, Any]:
        """Each canonical parameter's place in the target's model."""
        raise NotImplementedError

    def running_stats(self, model: Model) -> list[tuple]:
        """The batch norms' running statistics as the script updates them."""
        raise NotImplementedError

    def _optimizer(self, model: Model) -> dict[str, Any]:
        """The optimiser's part of the context."""
        raise NotImplementedError


class MXNetBackend(OperatorMerges, DrawnBackend):
    """MXNet 1.9 Gluon: NCHW, HybridBlocks hybridised unless --no-hybridize, gluon.Trainer."""

    name = "mxnet"
    template = "mxnet/script.py.j2"
    native_profile = ""
    framework = "MXNet"
    RESERVED_NAMES = frozenset("""
        apply cast collect_params export forward hybrid_forward hybridize infer_shape infer_type
        initialize load load_parameters load_params name name_scope optimize_for params prefix
        register_child register_forward_hook register_forward_pre_hook register_op_hook save
        save_parameters save_params summary
        """.split())
    FORWARD_NAMES = frozenset({"x", "self", "F", "nn", "rnn", "nd", "mx", "gluon"})
    # --replicas N: the script starts its own replicas as MXNet's local launcher does (a kvstore
    # scheduler, one server and N dist_sync workers, each given the DMLC_* cluster environment)
    replica_flags = ("--replicas", "{replicas}")
    # op -> its code when the layer's attributes alone decide it (the rest: emit_<op> below).
    # nn.ELU and nn.LeakyReLU hold alpha as a float32 attribute (LeakyReLUParam's slope): 1e-8
    # off in float64 runs. A Python scalar reaches the NDArray ops as a double.
    LAYERS: ClassVar[dict[str, Module | Line]] = {
        "relu": Module('nn.Activation("relu")'),
        "tanh": Module('nn.Activation("tanh")'),
        "sigmoid": Module('nn.Activation("sigmoid")'),
        "softmax": Line("x = F.softmax(x, axis={axis})"),
        "elu": Line("x = F.where(x > 0, x, {alpha!r} * F.expm1(F.minimum(x, 0.0)))", (ALPHA_NOTE,)),
        "leaky_relu": Line("x = F.where(x > 0, x, {alpha!r} * x)", (ALPHA_NOTE,)),
        "dropout": Module("nn.Dropout({rate!r} if dropout else 0.0)"),
        "flatten": Module("nn.Flatten()"),
        "embedding": Module("nn.Embedding({vocab}, {dim})"),
        "global_avgpool2d": Line("x = F.mean(x, axis=(2, 3))"),
        "global_maxpool2d": Line("x = F.max(x, axis=(2, 3))"),
        "repeat_vector": Line("x = F.repeat(F.expand_dims(x, axis=1), {n}, axis=1)"),
    }

    # ---- the report ---------------------------------------------------------------------
    def native_overrides(self, model: Model) -> list[str]:
        """Gluon has no defaults profile in the op table: the report states its conventions."""
        return [LOSS_NOTE, INIT_NOTE] if model.train and model.params else []

    # ---- layers -------------------------------------------------------------------------
    def emit_dense(self, layer: Layer) -> LayerCode:
        module = (
            f"nn.Dense({layer['units']}, use_bias={layer['bias']}, flatten=False, "
            f"in_units={layer.in_shape[-1]})"
        )
        notes = ()
        if len(layer.in_shape) > 1:
            notes = ("flatten=False: Gluon's Dense would flatten every axis but the batch",)
        return LayerCode(module, (self.called(layer),), notes)

    def emit_conv2d(self, layer: Layer) -> LayerCode:
        pad = _symmetric(layer["padding"])
        module = (
            f"nn.Conv2D({layer['filters']}, kernel_size={layer['kernel']}, "
            f"strides={layer['stride']}, padding={pad or (0, 0)}, dilation={layer['dilation']}, "
            f"use_bias={layer['bias']}, in_channels={layer.in_shape[0]})"
        )
        if pad is not None:
            return LayerCode(module, (self.called(layer),))
        width = _pad_width(layer["padding"], (0, 0))
        note = f"asymmetric padding {layer['padding']} written as F.pad before the convolution"
        forward = (f'x = F.pad(x, mode="constant", pad_width={width})', self.called(layer))
        return LayerCode(module, forward, (note,))

    def emit_maxpool2d(self, layer: Layer) -> LayerCode:
        base = f"pool_size={layer['pool']}, strides={layer['stride']}"
        if _native_pool(layer):
            pad, ceil = _symmetric(layer["padding"]), layer["rounding"] == "ceil"
            module = f"nn.MaxPool2D({base}, padding={pad}, ceil_mode={ceil})"
            return LayerCode(module, (self.called(layer),))
        cells = overhang(layer)
        width = _pad_width(layer["padding"], cells)
        note = (
            f"padding {layer['padding']} (rounding={layer['rounding']}) written as F.pad(-inf), "
            f"the last windows' overhang {cells} padded too, then a floor-rounded pool"
        )
        forward = (
            f'x = F.pad(x, mode="constant", pad_width={width}, constant_value=float("-inf"))',
            self.called(layer),
        )
        return LayerCode(f"nn.MaxPool2D({base})", forward, (note,))

    @staticmethod
    def _native_avgpool(layer: Layer) -> bool:
        pad = _symmetric(layer["padding"])
        return _native_pool(layer) or (
            pad is not None and layer["rounding"] == "floor" and overhang(layer) == (0, 0)
        )

    def emit_avgpool2d(self, layer: Layer) -> LayerCode:
        pad, ceil = _symmetric(layer["padding"]), layer["rounding"] == "ceil"
        if self._native_avgpool(layer):
            module = (
                f"nn.AvgPool2D(pool_size={layer['pool']}, strides={layer['stride']}, "
                f"padding={pad}, ceil_mode={ceil}, count_include_pad={layer['count_pad']})"
            )
            return LayerCode(module, (self.called(layer),))
        cells = overhang(layer)
        (top, bottom), (left, right) = layer["padding"]
        forward = (
            f"x = avgpool_explicit(F, x, {layer['pool']}, {layer['stride']}, "
            f"({top}, {bottom}, {left}, {right}), {cells}, {layer['count_pad']})",
        )
        counted = "real and padded cells" if layer["count_pad"] else "real cells"
        notes = [
            f"padding {layer['padding']} (rounding={layer['rounding']}, count_pad="
            f"{str(layer['count_pad']).lower()}) beyond what nn.AvgPool2D takes (symmetric "
            f"padding only): avgpool_explicit divides each window's sum by its {counted}"
        ]
        if cells != (0, 0):
            notes.append(f"the ceil-rounded last windows' overhang {cells}: zeros, never counted")
        return LayerCode("", forward, tuple(notes), frozenset({"avgpool_explicit"}))

    def emit_zeropad2d(self, layer: Layer) -> LayerCode:
        width = _pad_width(layer["padding"], (0, 0))
        return LayerCode("", (f'x = F.pad(x, mode="constant", pad_width={width})',))

    def _rnn(self, layer: Layer, cls: str) -> LayerCode:
        module = (
            f'rnn.{cls}({layer["units"]}, num_layers={layer["layers"]}, layout="NTC", '
            f"input_size={layer.in_shape[-1]})"
        )
        forward = [self.called(layer)]
        if layer["readout"] == "last":
            forward.append("x = F.squeeze(F.slice_axis(x, axis=1, begin=-1, end=None), axis=1)")
        gates = "[r, z, n], n = tanh(W_in x + b_in + r * (W_hn h + b_hn))" if cls == "GRU" else ""
        gates = gates or "[i, f, g, o]"
        notes = [
            f'layout="NTC" (Gluon\'s default is "TNC"); gates {gates} and two bias vectors '
            "(i2h, h2h) as canonically: weights copied as they are, l<k>_i2h_weight = weight_ih_l<k>"
        ]
        held = [] if layer["bias"] else ["i2h"]
        held += [] if layer["bias"] and layer["recurrent_bias"] else ["h2h"]
        setup = [
            f'self.{self.native(layer)}.l{k}_{which}_bias.grad_req = "null"'
            for k in range(layer["layers"])
            for which in held
        ]
        if held:
            notes.append(
                f"no {' or '.join(held)} bias in the spec: Gluon's held at zero, not trained"
            )
        return LayerCode(module, tuple(forward), tuple(notes), setup=tuple(setup))

    def emit_gru(self, layer: Layer) -> LayerCode:
        if layer["reset_after"]:
            return self._rnn(layer, "GRU")
        code = self._rnn(layer, "GRU")
        module = (
            f"GRUResetBefore({layer['units']}, num_layers={layer['layers']}, "
            f"input_size={layer.in_shape[-1]}, steps={layer.in_shape[0]})"
        )
        note = (
            "reset_after=false: rnn.GRU has only the reset-after (cuDNN) form, so GRUResetBefore "
            "(written in the script) unrolls the steps: n = tanh(W_in x + b_in + W_hn (r * h) "
            "+ b_hn), gates [r, z, n], parameters named as rnn.GRU's"
        )
        notes = (note,) + code.notes[1:]
        return LayerCode(module, code.forward, notes, frozenset({"gru_reset_before"}), code.setup)

    def emit_lstm(self, layer: Layer) -> LayerCode:
        return self._rnn(layer, "LSTM")

    def emit_batchnorm(self, layer: Layer) -> LayerCode:
        axis = layer["axis"] + 1
        module = (
            f"nn.BatchNorm(axis={axis}, momentum={1.0 - layer['momentum']!r}, "
            f"epsilon={layer['eps']!r}, center={layer['center']}, scale={layer['scale']}, "
            f"in_channels={layer.in_shape[layer['axis']]})"
        )
        notes = [
            f"momentum={1.0 - layer['momentum']!r}: Gluon's momentum weights the running value "
            f"(running = m * running + (1 - m) * batch), the canonical {layer['momentum']!r} the "
            "batch; running statistics updated by backward() with a float32 momentum and the "
            "biased variance: train_step re-weights the batch's share exactly (RUNNING_STATS)"
        ]
        if layer["running_var"] == "unbiased":
            notes.append("running_var=unbiased: the batch variance's share times n / (n - 1)")
        return LayerCode(module, (self.called(layer),), tuple(notes))

    def running_stats(self, model: Model) -> list[tuple[str, float, int]]:
        """(canonical name, Gluon momentum, cells per sample and channel) of each batch norm's
        running statistics: cells 0 but for an unbiased running variance (a wrapped layer's
        cells count its steps)."""
        out = []
        for layer in model.layers:
            inner = wrapped(layer)
            if inner.op != "batchnorm":
                continue
            cells = 0
            if inner["running_var"] == "unbiased":
                cells = 1
                for d in layer.in_shape:
                    cells *= d
                cells //= inner.in_shape[inner["axis"]]
            m = 1.0 - inner["momentum"]
            out += [(f"{layer.name}.running_mean", m, 0), (f"{layer.name}.running_var", m, cells)]
        return out

    def wrap_steps(self, layer: Layer, inner: Layer, code: LayerCode) -> LayerCode:
        """Every step as a sample: (N, T, *S) reshaped to (N*T, *S) around the wrapped block."""
        steps = ", ".join(str(d) for d in (-1, *inner.in_shape))
        back = ", ".join(str(d) for d in (-1, layer.in_shape[0], *inner.out_shape))
        forward = (
            f"x = F.reshape(x, shape=({steps}))",
            *code.forward,
            f"x = F.reshape(x, shape=({back}))",
        )
        note = f"time_distributed({inner.op}): the {layer.in_shape[0]} steps folded into the batch"
        return replace(code, forward=forward, notes=(*code.notes, note))

    # ---- merges -------------------------------------------------------------------------
    def emit_concat(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        return LayerCode("", (f"x = F.concat({', '.join(reads)}, dim={layer['axis'] + 1})",))

    # ---- optimiser ----------------------------------------------------------------------
    def _native_optimizer(self, model: Model) -> Optional[tuple[str, dict[str, Any]]]:
        return native_optimizer(model.train.optimizer)  # type: ignore[union-attr]

    def optimizer_notes(self, model: Model) -> list[str]:
        if not model.params:
            return ["the model has no parameters: no optimiser, a training step computes the loss"]
        opt = model.train.optimizer  # type: ignore[union-attr]
        if self._native_optimizer(model):
            return [FLOAT64_NOTE]
        return [f"optimizer {opt.kind}: no Gluon optimiser computes this form, update written out"]

    def _optimizer(self, model: Model) -> dict[str, Any]:
        """The written-out update always (float64 runs use it: Gluon's update operators take
        their coefficients as float32 attributes), and the gluon.Trainer where one computes the
        form (float32 runs)."""
        opt = model.train.optimizer  # type: ignore[union-attr]
        native = self._native_optimizer(model)
        written = "CanonicalOptimizer(model.collect_params())"
        expr = written
        fused = adam_update(opt) if native is None else None
        if fused is not None:
            expr = 'CanonicalOptimizer(model.collect_params(), fused=precision == "float32")'
        if native is not None:
            name, args = native
            params = ", ".join(f'"{k}": {v!r}' for k, v in args.items())
            expr = f'gluon.Trainer(model.collect_params(), "{name}", {{{params}}})'
        return {
            "native": native is not None,
            "kind": opt.kind,
            "attrs": dict(opt.attrs),
            "expr": expr,
            "written": written,
            "adam_update": fused,
            **optimizer_code(opt),
        }

    # ---- context ------------------------------------------------------------------------
    def native_paths(self, model: Model) -> dict[str, str]:
        """Canonical parameter name -> its attribute path in the Gluon model."""
        paths = {}
        for layer in model.layers:
            inner = wrapped(layer)
            for p in layer.params:
                own = p.name[len(layer.name) + 1 :]
                if inner.op in RECURRENT:
                    own = _rnn_name(own)
                elif inner.op == "batchnorm":
                    own = {"weight": "gamma", "bias": "beta"}.get(own, own)
                paths[p.name] = f"{self.native(layer)}.{own}"
        return paths
