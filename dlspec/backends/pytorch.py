"""The PyTorch target: nn.Module layers, canonical weights are the state_dict as is."""

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
    orthogonal_vector,
    overhang,
)
from dlspec.backends.torch_cpu import channels_last_breaks
from dlspec.codegen.updates import Printer, update_code
from dlspec.ir.model import Init, Layer, Model, Optimizer, Param

_WD = {"weight_decay": "weight_decay"}
# optimiser -> torch classes that compute a canonical form exactly:
# (class, {attribute: the form it computes}, {canonical attribute: torch keyword})
NATIVE_OPTIMIZERS: dict[str, tuple[tuple[str, dict[str, str], dict[str, str]], ...]] = {
    "sgd": (
        (
            "torch.optim.SGD",
            {"momentum_form": "gradient", "weight_decay_mode": "l2"},
            {"momentum": "momentum", "nesterov": "nesterov", **_WD},
        ),
    ),
    "adam": (
        (
            "torch.optim.Adam",
            {"eps_placement": "corrected", "weight_decay_mode": "l2"},
            {"eps": "eps", **_WD},
        ),
        (
            "torch.optim.AdamW",
            {"eps_placement": "corrected", "weight_decay_mode": "decoupled"},
            {"eps": "eps", **_WD},
        ),
    ),
    "rmsprop": (
        (
            "torch.optim.RMSprop",
            {"eps_placement": "outside", "weight_decay_mode": "l2", "momentum_form": "gradient"},
            {"rho": "alpha", "eps": "eps", "momentum": "momentum", "centered": "centered", **_WD},
        ),
    ),
    "adadelta": (
        ("torch.optim.Adadelta", {"weight_decay_mode": "l2"}, {"rho": "rho", "eps": "eps", **_WD}),
    ),
}


# torch.optim classes with a fused implementation (one kernel over every parameter, on the CPU
# and CUDA): the scripts use it unless --no-fused-optimizer (docs/semantics.md, "switches")
FUSED_OPTIMIZERS = frozenset({"torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW"})
# torch.optim classes whose step count can live on the GPU (capturable=True), so that a CUDA
# graph can record their update (--cuda-graphs); SGD keeps no step count and records as it is
CAPTURABLE_OPTIMIZERS = frozenset(
    {"torch.optim.Adam", "torch.optim.AdamW", "torch.optim.RMSprop", "torch.optim.Adadelta"}
)
RECORDABLE_OPTIMIZERS = CAPTURABLE_OPTIMIZERS | {"torch.optim.SGD"}
# make_optimizer's docstring (its lines as the script indents them), by the class's (fused,
# capturable); a written-out optimiser has neither
_CANONICAL = "The optimiser in the spec's canonical form"
_FUSED = (
    f"{_CANONICAL}; `fused`: torch.optim's one-kernel update of\n"
    "    every parameter (the same arithmetic as its per-parameter loop); "
)
OPTIMIZER_DOCS = {
    (True, True): (
        f"{_FUSED}`capturable`: its step count\n"
        "    kept on the GPU, so that a CUDA graph can record the update (--cuda-graphs)."
    ),
    (True, False): (
        f"{_FUSED}`capturable` unused (it keeps\n"
        "    no step count: a CUDA graph records its update as it is)."
    ),
    (False, True): (
        f"{_CANONICAL} (`fused` unused: it has no fused form);\n"
        "    `capturable`: its step count kept on the GPU, so that a CUDA graph can record the update\n"
        "    (--cuda-graphs)."
    ),
    (False, False): f"{_CANONICAL} (`fused` and `capturable` unused: it is\n    written out).",
}


NESTEROV_NOTE = "nesterov=true without momentum is plain SGD: torch.optim.SGD(nesterov=False)"


def nesterov_without_momentum(opt: Optimizer) -> bool:
    """Nesterov momentum with mu = 0: plain SGD, and torch.optim.SGD refuses to be told it."""
    return bool(opt.attrs.get("nesterov")) and opt["momentum"] == 0


def native_value(opt: Optimizer, key: str) -> Any:
    """The value torch.optim is given for a canonical attribute (nesterov=False for plain SGD)."""
    if key == "nesterov" and nesterov_without_momentum(opt):
        return False
    return opt[key]


def native_torch_optimizer(opt: Optimizer) -> Optional[tuple[str, dict[str, str]]]:
    """The torch.optim class (and keyword map) computing this optimiser's form, if one does."""
    for cls, forms, names in NATIVE_OPTIMIZERS[opt.kind]:
        if computes(opt, forms):
            return cls, names
    return None


def torch_optimizer_args(opt: Optimizer, names: dict[str, str]) -> list[str]:
    """The keyword arguments (source) of native_torch_optimizer's class for this optimiser."""
    args = [f"lr={opt['lr']!r}"]
    if opt.kind == "adam":
        args.append(f"betas=({opt['beta1']!r}, {opt['beta2']!r})")
    return args + [f"{torch_name}={native_value(opt, key)!r}" for key, torch_name in names.items()]


# the written-out update (dlspec.ir.updates): tensors in place under no_grad, scalars in Python
TORCH_TENSOR = Printer(sqrt="torch.sqrt")
TORCH_SCALAR = Printer(sqrt="math.sqrt")
_TORCH_IN_PLACE = {"=": "copy_", "+=": "add_", "-=": "sub_"}


def _torch_assign(target: str, op: str, value: str) -> str:
    return f"{target}.{_TORCH_IN_PLACE[op]}({value})"


def optimizer_code(opt: Optimizer) -> dict[str, Any]:
    """Slots and lines of CanonicalOptimizer.step (w, g, lr, t and the slots in scope): the
    scalars of the step count as Python floats, the rest torch ops in place."""
    return update_code(opt, TORCH_SCALAR, TORCH_TENSOR, _torch_assign)


def _pairs(
    p: tuple[tuple[int, int], tuple[int, int]],
) -> tuple[bool, tuple[int, int], tuple[int, int, int, int]]:
    """(symmetric?, torch padding (h, w), F.pad order (left, right, top, bottom))."""
    (t, b), (left, right) = p
    return t == b and left == right, (t, left), (left, right, t, b)


def _init_line(path: str, init: Init) -> str:
    if init.dist == "uniform":
        return f"nn.init.uniform_({path}, -{init.limit!r}, {init.limit!r})"
    if init.dist == "normal":
        return f"nn.init.normal_({path}, {init.mean!r}, {init.std!r})"
    if init.dist == "truncated_normal":
        lo, hi = init.mean - 2 * init.std, init.mean + 2 * init.std
        return f"nn.init.trunc_normal_({path}, {init.mean!r}, {init.std!r}, {lo!r}, {hi!r})"
    if init.dist == "orthogonal":
        return f"nn.init.orthogonal_({path}, {init.gain!r})"
    return f"nn.init.constant_({path}, {init.value!r})"


def init_lines(param: Param, path: str) -> list[str]:
    """Statements that initialise one parameter of `model` (at attribute `path`) as the IR says."""
    path = "model." + path
    fans = f"fan_in={param.fan_in}, fan_out={param.fan_out}"
    # an orthogonal vector is the one column of an (n, 1) matrix (nn.init.orthogonal_ needs 2-D)
    column = orthogonal_vector(param)
    init = _init_line(f"{path}.unsqueeze(1)" if column else path, param.init)
    lines = [f"# {param.name}: {param.init.spec.describe()} ({fans})", init]
    if param.gate_offset:
        start, stop, add = param.gate_offset
        lines.append(f"{path}[{start}:{stop}] += {add!r}  # forget-gate bias")
    return lines


def _native_pool_pads(layer: Layer) -> bool:
    """nn.MaxPool2d/AvgPool2d take only symmetric padding of at most half the window."""
    symmetric, pad, _ = _pairs(layer["padding"])
    return symmetric and all(pad[i] <= layer["pool"][i] // 2 for i in range(2))


def _with_overhang(fpad: tuple[int, int, int, int], cells: tuple[int, int]) -> tuple[int, ...]:
    """F.pad's (left, right, top, bottom) with a ceil pool's overhang (rows, columns) added after."""
    left, right, top, bottom = fpad
    return (left, right + cells[1], top, bottom + cells[0])


def _ceil_note(cells: tuple[int, int], how: str) -> str:
    return (
        f"rounding=ceil over explicit padding: the last windows' overhang {cells} (rows, "
        f"columns) is padded too ({how}) and the pool rounds down (ceil_mode would let a "
        "window start in the padding)"
    )


class PyTorchBackend(OperatorMerges, Backend):
    """PyTorch 2.x, NCHW, cuDNN autotune on GPU."""

    name = "pytorch"
    template = "pytorch/script.py.j2"
    limits: dict[str, str] = {}
    native_profile = "pytorch"
    framework = "PyTorch"
    # torchrun on one host (a rendezvous on a free local port): one process per replica
    replica_launcher = (
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "{replicas}",
    )

    # attributes of a fresh nn.Module (instance and class) and of the generated Net: a layer's
    # attribute must shadow none of them (tests/test_pytorch_runtime.py checks the list)
    RESERVED_NAMES = frozenset("""
        T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
        double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
        get_submodule half ipu load_state_dict modules mtia named_buffers named_children
        named_modules named_parameters parameters register_backward_hook register_buffer
        register_forward_hook register_forward_pre_hook register_full_backward_hook
        register_full_backward_pre_hook register_load_state_dict_post_hook
        register_load_state_dict_pre_hook register_module register_parameter
        register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
        set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
        """.split())
    FORWARD_NAMES = frozenset({"x", "self", "torch", "nn", "F"})
    # op -> its code when the layer's attributes alone decide it (the rest: emit_<op> below)
    LAYERS: ClassVar[dict[str, Module | Line]] = {
        "relu": Module("nn.ReLU()"),
        "tanh": Module("nn.Tanh()"),
        "sigmoid": Module("nn.Sigmoid()"),
        "softmax": Module("nn.Softmax(dim={axis})"),
        "elu": Module("nn.ELU(alpha={alpha!r})"),
        "leaky_relu": Module("nn.LeakyReLU(negative_slope={alpha!r})"),
        "dropout": Module("nn.Dropout(p={rate!r})"),
        "flatten": Module("nn.Flatten()"),
        "global_avgpool2d": Line("x = torch.mean(x, dim=(2, 3))"),
        # amax, not max(dim=...): tied maxima share the gradient equally, as canonically
        "global_maxpool2d": Line("x = torch.amax(x, dim=(2, 3))"),
        "repeat_vector": Line("x = x.unsqueeze(1).repeat(1, {n}, 1)"),
    }

    # ---- layers -------------------------------------------------------------------------
    def emit_conv2d(self, layer: Layer) -> LayerCode:
        symmetric, pad, fpad = _pairs(layer["padding"])
        cin = layer.in_shape[0]
        args = (
            f"{cin}, {layer['filters']}, kernel_size={layer['kernel']}, stride={layer['stride']}, "
            f"padding={pad if symmetric else (0, 0)}, dilation={layer['dilation']}, bias={layer['bias']}"
        )
        if symmetric:
            return LayerCode(f"nn.Conv2d({args})", (self.called(layer),))
        note = f"asymmetric padding {layer['padding']} written as F.pad before the convolution"
        return LayerCode(
            f"nn.Conv2d({args})", (f"x = F.pad(x, {fpad})", self.called(layer)), (note,)
        )

    def _pool(self, layer: Layer, cls: str, extra: str, fill: str) -> LayerCode:
        _, pad, fpad = _pairs(layer["padding"])
        ceil = layer["rounding"] == "ceil"
        base = f"kernel_size={layer['pool']}, stride={layer['stride']}"
        if _native_pool_pads(layer):
            return LayerCode(
                f"{cls}({base}, padding={pad}, ceil_mode={ceil}{extra})",
                (self.called(layer),),
            )
        notes = [
            f"padding {layer['padding']} (asymmetric or over half the window) written as F.pad({fill})"
        ]
        # after F.pad, ceil_mode would let a window start in the after-padding (it is input to
        # torch): the ceil windows are made by padding their overhang too, then rounding down
        cells = overhang(layer)
        if ceil:
            notes.append(_ceil_note(cells, fill))
        forward = (f"x = F.pad(x, {_with_overhang(fpad, cells)}, value={fill})", self.called(layer))
        return LayerCode(f"{cls}({base}, ceil_mode=False{extra})", forward, tuple(notes))

    def emit_maxpool2d(self, layer: Layer) -> LayerCode:
        return self._pool(layer, "nn.MaxPool2d", "", 'float("-inf")')

    def emit_avgpool2d(self, layer: Layer) -> LayerCode:
        _, _, fpad = _pairs(layer["padding"])
        cells = overhang(layer)
        native = _native_pool_pads(layer)
        if native or (layer["count_pad"] and cells == (0, 0)):
            return self._pool(
                layer, "nn.AvgPool2d", f", count_include_pad={layer['count_pad']}", "0.0"
            )
        module = (
            f"AvgPoolExplicit(kernel_size={layer['pool']}, stride={layer['stride']}, "
            f"pads={fpad}, overhang={cells}, count_pad={layer['count_pad']})"
        )
        counted = "real and padded cells" if layer["count_pad"] else "real cells"
        notes = [
            f"padding {layer['padding']} (count_pad={str(layer['count_pad']).lower()}) beyond what "
            f"nn.AvgPool2d takes: AvgPoolExplicit divides each window's sum by its {counted}"
        ]
        if layer["rounding"] == "ceil":
            notes.append(_ceil_note(cells, "zeros, never counted"))
        return LayerCode(
            module, (self.called(layer),), tuple(notes), frozenset({"avgpool_explicit"})
        )

    def emit_zeropad2d(self, layer: Layer) -> LayerCode:
        _, _, fpad = _pairs(layer["padding"])
        return LayerCode(f"nn.ZeroPad2d({fpad})", (self.called(layer),))

    def emit_dense(self, layer: Layer) -> LayerCode:
        module = f"nn.Linear({layer.in_shape[-1]}, {layer['units']}, bias={layer['bias']})"
        return LayerCode(module, (self.called(layer),))

    def emit_embedding(self, layer: Layer) -> LayerCode:
        return LayerCode(
            f"nn.Embedding({layer['vocab']}, {layer['dim']})",
            ("x = x.long()", self.called(layer)),
        )

    def _rnn(self, layer: Layer, cls: str) -> LayerCode:
        module = (
            f"{cls}({layer.in_shape[-1]}, {layer['units']}, num_layers={layer['layers']}, "
            f"bias={layer['bias']}, batch_first=True)"
        )
        forward = [f"x, _ = self.{self.native(layer)}(x)"]
        if layer["readout"] == "last":
            forward.append("x = x[:, -1, :]")
        if not layer["bias"] or layer["recurrent_bias"]:
            return LayerCode(module, tuple(forward))
        setup = []
        for k in range(layer["layers"]):
            path = f"self.{self.native(layer)}.bias_hh_l{k}"
            setup += [f"nn.init.zeros_({path})", f"{path}.requires_grad_(False)"]
        note = "one bias vector (recurrent_bias=false): torch's bias_hh held at zero, not trained"
        return LayerCode(module, tuple(forward), (note,), setup=tuple(setup))

    def emit_gru(self, layer: Layer) -> LayerCode:
        if layer["reset_after"]:
            return self._rnn(layer, "nn.GRU")
        module = (
            f"GRUResetBefore({layer.in_shape[-1]}, {layer['units']}, num_layers={layer['layers']}, "
            f"bias={layer['bias']}, recurrent_bias={layer['bias'] and layer['recurrent_bias']})"
        )
        forward = [f"x, _ = self.{self.native(layer)}(x)"]
        if layer["readout"] == "last":
            forward.append("x = x[:, -1, :]")
        note = (
            "reset_after=false: nn.GRU has only the reset-after (cuDNN) form, so GRUResetBefore "
            "(written in the script) loops over the time steps, parameters named as nn.GRU's"
        )
        return LayerCode(module, tuple(forward), (note,), frozenset({"gru_reset_before"}))

    def emit_lstm(self, layer: Layer) -> LayerCode:
        return self._rnn(layer, "nn.LSTM")

    def emit_batchnorm(self, layer: Layer) -> LayerCode:
        shape = layer.in_shape
        width = shape[layer["axis"]]
        common = f"eps={layer['eps']!r}, momentum={layer['momentum']!r}"
        sequence = len(shape) == 2  # (T, F): torch normalises axis 1, so features go there
        call = (
            f"x = self.{self.native(layer)}(x.transpose(1, 2)).transpose(1, 2)"
            if sequence
            else self.called(layer)
        )
        if layer["running_var"] == "unbiased" and layer["scale"] == layer["center"]:
            cls = "nn.BatchNorm2d" if len(shape) == 3 else "nn.BatchNorm1d"
            return LayerCode(f"{cls}({width}, {common}, affine={layer['scale']})", (call,))
        dims = (0, 2, 3) if len(shape) == 3 else (0, 2) if sequence else (0,)
        module = (
            f"BatchNormExplicit({width}, {common}, scale={layer['scale']}, "
            f"center={layer['center']}, dims={dims}, biased_running_var="
            f"{layer['running_var'] == 'biased'})"
        )
        note = (
            f"batchnorm (running_var={layer['running_var']}, scale={layer['scale']}, "
            f"center={layer['center']}) is not nn.BatchNorm's form: BatchNormExplicit writes it"
        )
        return LayerCode(module, (call,), (note,), frozenset({"batchnorm_explicit"}))

    def wrap_steps(self, layer: Layer, inner: Layer, code: LayerCode) -> LayerCode:
        """Every step as a sample: reshape (N, T, *S) to (N*T, *S), run the wrapped module (an
        RNN returns its readout), reshape (N*T, *S') back to (N, T, *S')."""
        steps = ", ".join(str(d) for d in (-1, *inner.in_shape))
        back = ", ".join(str(d) for d in (-1, layer.in_shape[0], *inner.out_shape))
        forward = (f"x = x.reshape({steps})", *code.forward, f"x = x.reshape({back})")
        note = (
            f"time_distributed({inner.op}): the {layer.in_shape[0]} steps folded into the batch "
            "around one module, so one set of weights serves every step"
        )
        return replace(code, forward=forward, notes=(*code.notes, note))

    # ---- merges (no module: plain tensor arithmetic) ------------------------------------
    def emit_concat(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        return LayerCode("", (f"x = torch.cat([{', '.join(reads)}], dim={layer['axis'] + 1})",))

    # ---- optimiser ----------------------------------------------------------------------
    def optimizer_notes(self, model: Model) -> list[str]:
        opt = model.train.optimizer  # type: ignore[union-attr]
        if not model.params:
            return ["the model has no parameters: no optimiser, a training step computes the loss"]
        if native_torch_optimizer(opt):
            return [NESTEROV_NOTE] if nesterov_without_momentum(opt) else []
        keys = sorted({k for _, forms, _ in NATIVE_OPTIMIZERS[opt.kind] for k in forms})
        forms = ", ".join(f"{k}={opt[k]}" for k in keys)
        return [f"optimizer {opt.kind} ({forms}) has no torch.optim equivalent: update written out"]

    def _optimizer(self, model: Model) -> dict[str, Any]:
        opt = model.train.optimizer  # type: ignore[union-attr]
        native = native_torch_optimizer(opt)
        if native is None:
            expr = "CanonicalOptimizer(model.parameters())"
            code = optimizer_code(opt)
            return {
                "native": False,
                "kind": opt.kind,
                "attrs": dict(opt.attrs),
                "expr": expr,
                "fused": False,
                "capturable": False,
                "doc": OPTIMIZER_DOCS[False, False],
                # its tensors update in place; a step count would be a Python number
                "recordable": not code["step_counter"],
                **code,
            }
        cls, names = native
        args = torch_optimizer_args(opt, names)
        fused = cls in FUSED_OPTIMIZERS
        if fused:
            args.append("fused=fused")
        capturable = cls in CAPTURABLE_OPTIMIZERS
        if capturable:
            args.append("capturable=capturable")
        expr = f"{cls}(model.parameters(), {', '.join(args)})"
        return {
            "native": True,
            "kind": opt.kind,
            "attrs": dict(opt.attrs),
            "expr": expr,
            "fused": fused,
            "capturable": capturable,
            "doc": OPTIMIZER_DOCS[fused, capturable],
            "recordable": cls in RECORDABLE_OPTIMIZERS,
        }

    # ---- context ------------------------------------------------------------------------
    def attribute_paths(self, model: Model) -> dict[str, str]:
        """Canonical parameter name -> its path among the model's attributes (the state_dict key):
        the same name unless the layer's label is reserved here."""
        return {
            p.name: self.native(layer) + p.name[len(layer.name) :]
            for layer in model.layers
            for p in layer.params
        }

    def context(self, model: Model) -> dict[str, Any]:
        self.name_model(model)
        paths = self.attribute_paths(model)
        renamed = [(name, path) for name, path in paths.items() if name != path]
        buffers = [p.name for p in model.params if not p.trainable]
        return {
            **self.module_context(model),
            # 4-D weights: convolutions, which run faster on channels-last memory (unless one
            # of them is a layout the CPU kernels get wrong)
            "convolutions": any(len(p.shape) == 4 for p in model.params)
            and not any(channels_last_breaks(layer) for layer in model.layers),
            "init_lines": [line for p in model.params for line in init_lines(p, paths[p.name])]
            or ["pass  # the model has no parameters"],
            "attribute_paths": renamed,
            # the parameter called `name` (a canonical name) in the generated code
            "buffers": buffers,
            "parameter": (
                "state_tensor(model, name)"
                if buffers
                else (
                    "model.get_parameter(ATTRIBUTE_PATHS.get(name, name))"
                    if renamed
                    else "model.get_parameter(name)"
                )
            ),
            "path": "ATTRIBUTE_PATHS.get(name, name)" if renamed else "name",
            "optimizer": self._optimizer(model),
            "trainable": bool(model.params),
        }
