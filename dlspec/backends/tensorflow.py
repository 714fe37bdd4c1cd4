"""The TensorFlow target: low-level TF2 (tf.Module variables, tf.nn ops, GradientTape, tf.function)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, ClassVar, Optional

from dlspec.backends import layouts
from dlspec.backends.base import (
    SUBSAMPLE_NOTE,
    Backend,
    LayerCode,
    Line,
    Module,
    OperatorMerges,
    Report,
    overhang,
    subsampled,
)
from dlspec.backends.layouts import NativeParam
from dlspec.codegen.updates import Printer, noted, render
from dlspec.ir.model import TIME_DISTRIBUTED, Init, Layer, Model, Optimizer, Param, wrapped
from dlspec.ir.updates import update_rule
from dlspec.passes.shapes import same_pads

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]
NativeRecipe = Callable[[Layer, str], list[NativeParam]]

NO_PADS: Pads = ((0, 0), (0, 0))


# ---- canonical -> native weights (NumPy expressions from dlspec.backends.layouts) -------------


def transposed(name: str, native: str, shape: tuple[int, ...]) -> NativeParam:
    """A 2-D weight stored transposed: canonical (rows, cols) -> native (cols, rows)."""
    return NativeParam(
        native, tuple(reversed(shape)), f'c["{name}"].T', ((name, f'n["{native}"].T'),)
    )


def conv_params(layer: Layer, prefix: str) -> list[NativeParam]:
    """conv2d: kernel (kh, kw, in, out); bias as is. `prefix`: the layer's attribute name."""
    params = [layouts.conv_kernel(layer, f"{prefix}/kernel")]
    return params + [layouts.same(p.name, f"{prefix}/bias", p.shape) for p in layer.params[1:]]


def dense_params(layer: Layer, prefix: str) -> list[NativeParam]:
    """dense: kernel (in, out), rows in (H, W, C) order after a flatten of a map; bias as is."""
    params = [layouts.dense_kernel(layer, f"{prefix}/kernel")]
    return params + [layouts.same(p.name, f"{prefix}/bias", p.shape) for p in layer.params[1:]]


def embedding_params(layer: Layer, prefix: str) -> list[NativeParam]:
    """embedding: the (vocab, dim) table as is."""
    p = layer.params[0]
    return [layouts.same(p.name, f"{prefix}/embeddings", p.shape)]


# gru/lstm parameter role -> (native name, transposed?); gates stay in canonical order
RNN_NATIVE: dict[str, tuple[str, bool]] = {
    "weight_ih": ("kernel", True),
    "weight_hh": ("recurrent_kernel", True),
    "bias_ih": ("bias_ih", False),
    "bias_hh": ("bias_hh", False),
}


def rnn_params(layer: Layer, prefix: str) -> list[NativeParam]:
    """gru/lstm, per stacked layer k: kernel_lk (in, G*H), recurrent_kernel_lk (H, G*H), biases."""
    out = []
    for p in layer.params:
        suffix = p.name[len(f"{layer.name}.{p.role}") :]
        native_role, flip = RNN_NATIVE[p.role]
        native = f"{prefix}/{native_role}{suffix}"
        out.append(
            transposed(p.name, native, p.shape) if flip else layouts.same(p.name, native, p.shape)
        )
    return out


# ---- padding ---------------------------------------------------------------------------------


def padding_keyword(layer: Layer, window: Pair, dilation: Pair = (1, 1)) -> Optional[str]:
    """ "VALID" when the IR's pads are zero, "SAME" when they equal TensorFlow's rule for this
    input, else None (the pads need explicit code). Never recomputed: compared with the IR."""
    pads = layer["padding"]
    if pads == NO_PADS:
        return "VALID"
    same = tuple(
        same_pads(layer.in_shape[1 + a], window[a], layer["stride"][a], dilation[a])
        for a in range(2)
    )
    return "SAME" if pads == same else None


def with_overhang(pads: Pads, cells: Pair) -> Pads:
    """((top, bottom), (left, right)) with a ceil pool's overhang (rows, columns) added after."""
    (top, bottom), (left, right) = pads
    return ((top, bottom + cells[0]), (left, right + cells[1]))


def _ceil_note(cells: Pair, how: str) -> str:
    return (
        f"rounding=ceil: tf.nn pools round down, so the last windows' overhang {cells} (rows, "
        f"columns) is padded after the explicit pads ({how}), then VALID"
    )


def _pads_note(layer: Layer, how: str) -> str:
    return f"padding {layer['padding']} is neither VALID nor TensorFlow's SAME here: {how}"


# ---- initialisers (TensorFlow's RNG, canonical layout) ---------------------------------------


def draw_expr(param: Param) -> str:
    """An expression drawing one canonical parameter with the generator `rng`."""
    init: Init = param.init
    shape = tuple(param.shape)
    if init.dist == "uniform":
        return f"rng.uniform({shape}, -{init.limit!r}, {init.limit!r})"
    if init.dist == "normal":
        return f"rng.normal({shape}, {init.mean!r}, {init.std!r})"
    if init.dist == "truncated_normal":
        return f"rng.truncated_normal({shape}, {init.mean!r}, {init.std!r})"
    if init.dist == "orthogonal":
        return f"orthogonal(rng, {shape}, {init.gain!r})"
    return f"tf.fill({shape}, {float(init.value)!r})"


def init_lines(param: Param) -> list[str]:
    """A comment naming the scheme and fans, then the draw into the canonical dict `c`."""
    fans = f"fan_in={param.fan_in}, fan_out={param.fan_out}"
    return [
        f"# {param.name}: {param.init.spec.describe()} ({fans})",
        f'c["{param.name}"] = {draw_expr(param)}',
    ]


def offset_lines(param: Param) -> list[str]:
    """The forget-gate bias added after drawing (NumPy, canonical layout)."""
    if not param.gate_offset:
        return []
    start, stop, add = param.gate_offset
    return [f'c["{param.name}"][{start}:{stop}] += {add!r}  # forget-gate bias']


# ---- the optimiser, written out (dlspec.ir.updates with tf.Variable slots) -------------------

TF_EXPR = Printer(sqrt="tf.sqrt")
_TF_ASSIGN = {"=": "assign", "+=": "assign_add", "-=": "assign_sub"}


def _tf_assign(target: str, op: str, value: str) -> str:
    return f"{target}.{_TF_ASSIGN[op]}({value})"


def optimizer_context(opt: Optimizer) -> dict[str, Any]:
    """Slots and update lines of the written-out optimiser (w, g, lr and the slots in scope):
    the scalars of the step count once per update in float64, cast to FLOAT (the variables'
    dtype) once."""
    rule = update_rule(opt.kind, opt.attrs)
    head = ["t = tf.cast(self.t.assign_add(1), tf.float64)"] if rule.uses_step else []
    head += [
        noted(f"{s.name} = tf.cast({TF_EXPR(s.value)}, FLOAT)", s.note) for s in rule.per_update
    ]
    return {
        "kind": opt.kind,
        "attrs": [f"{k} = {v}" for k, v in opt.attrs.items()],
        "slots": list(rule.slots),
        "step_counter": rule.uses_step,
        "head": head,
        "body": [render(s, TF_EXPR, _tf_assign) for s in rule.per_variable],
    }


# ---- the backend -----------------------------------------------------------------------------


class TensorFlowBackend(OperatorMerges, Backend):
    """TensorFlow 2 without Keras layers: NHWC on the CPU, NCHW on the GPU, optional XLA."""

    name = "tensorflow"
    template = "tensorflow/script.py.j2"
    # TF's low-level API (tf.nn, tf.Variable) has no layer defaults of its own; tf.keras (Keras 3)
    # is TensorFlow's own high-level default set, so the report compares with the keras profile.
    native_profile = "keras"
    framework = "TensorFlow"
    limits: ClassVar[dict[str, str]] = {}
    # tf.distribute: the script starts N workers of a MultiWorkerMirroredStrategy on this host
    # itself (each with its own TF_CONFIG), as users start one per host with theirs
    replica_flags = ("--replicas", "{replicas}")
    # op -> its code when the layer's attributes alone decide it (the rest: emit_<op> below).
    # TF's LeakyRelu kernel selects (x > 0 ? x : alpha * x), the canonical meaning.
    LAYERS: ClassVar[dict[str, Module | Line]] = {
        "relu": Line("x = tf.nn.relu(x)"),
        "tanh": Line("x = tf.math.tanh(x)"),
        "sigmoid": Line("x = tf.math.sigmoid(x)"),
        "leaky_relu": Line("x = tf.nn.leaky_relu(x, alpha={alpha!r})"),
        "repeat_vector": Line("x = tf.repeat(tf.expand_dims(x, 1), {n}, axis=1)"),
    }
    # attributes of tf.Module (and of the generated Net) that a layer's attribute must not shadow
    # (tests/test_tensorflow_backend.py checks the list against TensorFlow)
    RESERVED_NAMES = frozenset("""
        name name_scope non_trainable_variables submodules trainable_variables variables
        with_name_scope native_variables
        """.split())
    FORWARD_NAMES = frozenset({"x", "self", "training", "dropout", "tf"})
    NATIVE_PARAMS: ClassVar[dict[str, NativeRecipe]] = {
        "conv2d": conv_params,
        "dense": dense_params,
        "embedding": embedding_params,
        "gru": rnn_params,
        "lstm": rnn_params,
        "batchnorm": layouts.batchnorm_params,
    }
    # helper functions of the script, in the order the template defines them
    HELPERS: ClassVar[tuple[str, ...]] = (
        "layout",
        "image_axis",
        "batch_norm",
        "explicit_pads",
        "pad_spatial",
        "avg_pool_explicit",
        "subsample",
        "gru",
        "lstm",
    )

    # ---- layers -------------------------------------------------------------------------
    def emit_conv2d(self, layer: Layer) -> LayerCode:
        keyword = padding_keyword(layer, layer["kernel"], layer["dilation"])
        if layer["dilation"] != (1, 1):
            return self._dilated_conv(layer, keyword)
        padding = f'"{keyword}"' if keyword else f"explicit_pads({layer['padding']})"
        conv = (
            f"x = tf.nn.conv2d(x, self.{self.native(layer)}.kernel, strides={layer['stride']}, "
            f"padding={padding}, dilations={layer['dilation']}, data_format=DATA_FORMAT)"
        )
        notes = () if keyword else (_pads_note(layer, "explicit pads of tf.nn.conv2d"),)
        helpers = frozenset() if keyword else frozenset({"explicit_pads"})
        return LayerCode("", (conv, *self._conv_bias(layer)), notes, helpers)

    def _dilated_conv(self, layer: Layer, keyword: Optional[str]) -> LayerCode:
        """tf.nn.convolution (atrous, differentiable on the CPU) takes stride 1 with dilation:
        a strided layer is computed at stride 1 and subsampled, which is exact."""
        strided = subsampled(layer)
        lines, helpers, notes = [], set(), []
        if strided or keyword is None:
            if layer["padding"] != NO_PADS:
                lines.append(f"x = pad_spatial(x, {layer['padding']}, 0.0)")
                helpers.add("pad_spatial")
            keyword = "VALID"
        stride = (1, 1) if strided else layer["stride"]
        lines.append(
            f"x = tf.nn.convolution(x, self.{self.native(layer)}.kernel, strides={stride}, "
            f'padding="{keyword}", dilations={layer["dilation"]}, data_format=DATA_FORMAT)'
        )
        if strided:
            lines.append(f"x = subsample(x, {layer['stride']})")
            helpers.add("subsample")
            notes.append(SUBSAMPLE_NOTE)
        return LayerCode("", (*lines, *self._conv_bias(layer)), tuple(notes), frozenset(helpers))

    def _conv_bias(self, layer: Layer) -> tuple[str, ...]:
        if not layer["bias"]:
            return ()
        return (f"x = tf.nn.bias_add(x, self.{self.native(layer)}.bias, data_format=DATA_FORMAT)",)

    def _pool_call(self, layer: Layer, fn: str, keyword: str) -> str:
        return (
            f"x = tf.nn.{fn}(x, ksize={layer['pool']}, strides={layer['stride']}, "
            f'padding="{keyword}", data_format=DATA_FORMAT)'
        )

    def emit_maxpool2d(self, layer: Layer) -> LayerCode:
        cells = overhang(layer)
        keyword = padding_keyword(layer, layer["pool"]) if cells == (0, 0) else None
        if keyword:
            return LayerCode("", (self._pool_call(layer, "max_pool2d", keyword),))
        lines = (
            f'x = pad_spatial(x, {with_overhang(layer["padding"], cells)}, float("-inf"))',
            self._pool_call(layer, "max_pool2d", "VALID"),
        )
        notes = [_pads_note(layer, "tf.pad with -inf, then VALID")]
        if cells != (0, 0):
            notes = [_ceil_note(cells, "-inf")]
        return LayerCode("", lines, tuple(notes), frozenset({"pad_spatial"}))

    def emit_avgpool2d(self, layer: Layer) -> LayerCode:
        cells = overhang(layer)
        keyword = padding_keyword(layer, layer["pool"]) if cells == (0, 0) else None
        if keyword == "VALID" or (keyword == "SAME" and not layer["count_pad"]):
            return LayerCode("", (self._pool_call(layer, "avg_pool2d", keyword),))
        if layer["count_pad"] and cells == (0, 0):
            lines = (
                f"x = pad_spatial(x, {layer['padding']}, 0.0)",
                self._pool_call(layer, "avg_pool2d", "VALID"),
            )
            note = "padded cells counted (count_pad=true): tf.pad with zeros, then VALID"
            return LayerCode("", lines, (note,), frozenset({"pad_spatial"}))
        line = (
            f"x = avg_pool_explicit(x, {layer['pool']}, {layer['stride']}, {layer['padding']}, "
            f"overhang={cells}, count_pad={layer['count_pad']})"
        )
        counted = "real and padded cells" if layer["count_pad"] else "real cells"
        note = _pads_note(layer, f"sum over tf.pad zeros / count of {counted}")
        if cells != (0, 0):
            note = _ceil_note(cells, f"zeros, never counted; sum / count of {counted}")
        return LayerCode("", (line,), (note,), frozenset({"pad_spatial", "avg_pool_explicit"}))

    def _global_pool(self, layer: Layer, reduce: str) -> LayerCode:
        line = f"x = tf.{reduce}(x, axis=(image_axis(1), image_axis(2)))"
        return LayerCode("", (line,), (), frozenset({"image_axis"}))

    def emit_global_avgpool2d(self, layer: Layer) -> LayerCode:
        return self._global_pool(layer, "reduce_mean")

    def emit_global_maxpool2d(self, layer: Layer) -> LayerCode:
        # reduce_max's gradient is shared equally by tied maxima, as canonically
        return self._global_pool(layer, "reduce_max")

    def emit_zeropad2d(self, layer: Layer) -> LayerCode:
        line = f"x = pad_spatial(x, {layer['padding']}, 0.0)"
        return LayerCode("", (line,), (), frozenset({"pad_spatial"}))

    def emit_dropout(self, layer: Layer) -> LayerCode:
        line = f"x = tf.nn.dropout(x, rate={layer['rate']!r}) if training and dropout else x"
        return LayerCode("", (line,))

    def emit_batchnorm(self, layer: Layer) -> LayerCode:
        v = f"self.{self.native(layer)}"
        gamma = f"{v}.gamma" if layer["scale"] else "None"
        beta = f"{v}.beta" if layer["center"] else "None"
        axis = "channel_axis()" if len(layer.in_shape) == 3 else "-1"
        line = (
            f"x = batch_norm(x, {v}, {gamma}, {beta}, training, axis={axis}, "
            f"momentum={layer['momentum']!r}, eps={layer['eps']!r}, "
            f"unbiased_running_var={layer['running_var'] == 'unbiased'})"
        )
        helpers = {"batch_norm", "layout"} if len(layer.in_shape) == 3 else {"batch_norm"}
        note = (
            "batch norm written with tf.nn.moments; moving statistics are non-trainable variables"
        )
        return LayerCode("", (line,), (note,), frozenset(helpers))

    def emit_flatten(self, layer: Layer) -> LayerCode:
        size = layer.out_shape[0]
        if len(layer.in_shape) != 3:
            return LayerCode("", (f"x = tf.reshape(x, (-1, {size}))",))
        if layer.attrs.get("flatten_order", "hwc") == "hwc":
            return LayerCode(
                "", (f"x = tf.reshape(as_nhwc(x), (-1, {size}))",), (), frozenset({"layout"})
            )
        note = "flatten feeds no dense kernel that could absorb the order: (C, H, W) order kept"
        return LayerCode(
            "", (f"x = tf.reshape(as_nchw(x), (-1, {size}))",), (note,), frozenset({"layout"})
        )

    def emit_dense(self, layer: Layer) -> LayerCode:
        kernel = f"self.{self.native(layer)}.kernel"
        bias = (f"x = tf.nn.bias_add(x, self.{self.native(layer)}.bias)",) if layer["bias"] else ()
        if len(layer.in_shape) == 1:
            return LayerCode("", (f"x = tf.matmul(x, {kernel})", *bias))
        if len(layer.in_shape) != 3:
            return LayerCode("", (f"x = tf.tensordot(x, {kernel}, 1)", *bias))
        lines = (f"x = tf.tensordot(as_nchw(x), {kernel}, 1)", *bias, "x = from_nchw(x)")
        note = "dense over the last axis of a (C, H, W) map: applied in NCHW order"
        return LayerCode("", lines, (note,), frozenset({"layout"}))

    def emit_embedding(self, layer: Layer) -> LayerCode:
        return LayerCode("", (f"x = tf.gather(self.{self.native(layer)}.embeddings, x)",))

    def _rnn(self, layer: Layer, extra: str) -> LayerCode:
        lines = []
        v = f"self.{self.native(layer)}"
        two_biases = layer["bias"] and layer["recurrent_bias"]
        for k in range(layer["layers"]):
            bias_ih = f"{v}.bias_ih_l{k}" if layer["bias"] else "None"
            bias_hh = f"{v}.bias_hh_l{k}" if two_biases else "None"
            lines.append(
                f"x = {layer.op}(x, {v}.kernel_l{k}, {v}.recurrent_kernel_l{k}, "
                f"{bias_ih}, {bias_hh}{extra})"
            )
        if layer["readout"] == "last":
            lines.append("x = x[:, -1, :]")
        note = f"{layer.op} written with tf.scan in the canonical gate order (no reordering)"
        return LayerCode("", tuple(lines), (note,), frozenset({layer.op}))

    def emit_gru(self, layer: Layer) -> LayerCode:
        return self._rnn(layer, f", reset_after={layer['reset_after']}")

    def emit_lstm(self, layer: Layer) -> LayerCode:
        return self._rnn(layer, "")

    def emit_softmax(self, layer: Layer) -> LayerCode:
        if len(layer.in_shape) == 3:
            return LayerCode(
                "", ("x = tf.nn.softmax(x, axis=channel_axis())",), (), frozenset({"layout"})
            )
        return LayerCode("", ("x = tf.nn.softmax(x, axis=-1)",))

    # ---- merges -------------------------------------------------------------------------
    def emit_concat(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        joined = f"x = tf.concat([{', '.join(reads)}], axis="
        if len(layer.in_shape) != 3:
            return LayerCode("", (f"{joined}{layer['axis'] + 1})",))
        if layer["axis"] == 0:
            return LayerCode("", (f"{joined}channel_axis())",), (), frozenset({"layout"}))
        return LayerCode(
            "", (f"{joined}image_axis({layer['axis']}))",), (), frozenset({"image_axis"})
        )

    def emit_elu(self, layer: Layer) -> LayerCode:
        alpha = layer["alpha"]
        if alpha == 1.0:
            return LayerCode("", ("x = tf.nn.elu(x)",))
        return LayerCode("", (f"x = tf.where(x > 0.0, x, {alpha!r} * tf.nn.elu(x))",))

    def wrap_steps(self, layer: Layer, inner: Layer, code: LayerCode) -> LayerCode:
        """Every step as a sample: (N, T, *S) reshaped to (N*T, *S), the wrapped layer's code,
        then back to (N, T, *S'). Reshapes read canonical order: a (T, F, G) tensor (a map to
        this script) is read through as_nchw and written back with from_nchw; a (C, H, W) step
        enters the wrapped code in DATA_FORMAT (from_nchw) and leaves it canonical (as_nchw)."""
        helpers = set(code.helpers)
        source = "x"
        if len(layer.in_shape) == 3:
            source = "as_nchw(x)"
        lines = [f"x = tf.reshape({source}, {(-1, *inner.in_shape)})"]
        if len(inner.in_shape) == 3:
            lines.append("x = from_nchw(x)")
        lines += code.forward
        if len(inner.out_shape) == 3:
            lines.append("x = as_nchw(x)")
        back = f"tf.reshape(x, {(-1, layer.in_shape[0], *inner.out_shape)})"
        lines.append(f"x = from_nchw({back})" if len(layer.out_shape) == 3 else f"x = {back}")
        shapes = (layer.in_shape, layer.out_shape, inner.in_shape, inner.out_shape)
        if any(len(shape) == 3 for shape in shapes):
            helpers.add("layout")
        note = (
            f"time_distributed({inner.op}): the {layer.in_shape[0]} steps folded into the batch "
            "with tf.reshape, one set of variables for every step"
        )
        return replace(
            code, forward=tuple(lines), notes=(*code.notes, note), helpers=frozenset(helpers)
        )

    # ---- layout decisions ---------------------------------------------------------------
    def prepared(self, model: Model) -> Model:
        """The model with each flatten of a map told its row order: (H, W, C) when the dense
        kernels reading it absorb the permutation (the IR's `permutable`), else (C, H, W)."""
        return replace(model, layers=tuple(_flatten_order(layer) for layer in model.layers))

    def report(self, model: Model) -> Report:
        return super().report(self.prepared(model))

    def optimizer_notes(self, model: Model) -> list[str]:
        kind = model.train.optimizer.kind  # type: ignore[union-attr]
        return [f"optimizer {kind} written out with tf.Variable slots (no tf.keras optimiser)"]

    # ---- context ------------------------------------------------------------------------
    def native_params(self, model: Model) -> list[NativeParam]:
        """Every native variable in layer order, with its conversions from and to canonical."""
        self.name_model(model)
        return [
            p
            for layer in map(wrapped, model.layers)  # a wrapped layer's, as the wrapper's
            for p in self.NATIVE_PARAMS.get(layer.op, _none)(layer, self.native(layer))
        ]

    def _variable_lines(self, natives: list[NativeParam]) -> list[str]:
        groups: dict[str, list[str]] = {}
        frozen: dict[str, list[str]] = {}
        for p in natives:
            layer, key = p.native.split("/")
            groups.setdefault(layer, []).append(f"{key}={tuple(p.shape)}")
            if not p.trainable:
                frozen.setdefault(layer, []).append(key)
        lines = []
        for name, keys in groups.items():
            if name in frozen:
                keys = [f"frozen={tuple(frozen[name])}", *keys]
            lines.append(f'self.{name} = Variables("{name}", {", ".join(keys)})')
        return lines

    def context(self, model: Model) -> dict[str, Any]:
        model = self.name_model(self.prepared(model))
        codes = [(layer, self.emit(layer)) for layer in model.layers]
        natives = self.native_params(model)
        used = set().union(*(c.helpers for _, c in codes))
        walk = self.walk(model, {layer.name: code for layer, code in codes})
        result = [] if walk.output == "x" else [f"x = {walk.output}"]
        image_input = any(len(inp.shape) == 3 for inp in model.inputs)
        output_map = len(model.output_shape) == 3
        if image_input or output_map:
            used.add("layout")
        train = model.train
        assert train is not None
        return {
            "forward_args": ", ".join(walk.arguments),
            "forward": [*walk.lines, *result]
            + (["x = as_nchw(x)  # the model's output in canonical NCHW"] if output_map else []),
            "helpers": [h for h in self.HELPERS if h in used],
            "variable_lines": self._variable_lines(natives) or ["pass  # no parameters"],
            "native_names": [
                (p.native, "self.{}.{}".format(*p.native.split("/"))) for p in natives
            ],
            "to_native": [(p.native, p.to_native) for p in natives],
            "to_canonical": [back for p in natives for back in p.back],
            "init_lines": [line for p in model.params for line in init_lines(p)],
            "offset_lines": [line for p in model.params for line in offset_lines(p)],
            "orthogonal": any(p.init.dist == "orthogonal" for p in model.params),
            "optimizer": optimizer_context(train.optimizer),
            "input_dtype": model.inputs[0].dtype,
        }


def _flatten_order(layer: Layer) -> Layer:
    """A flatten of a map (a time_distributed's wrapped one too) told its row order."""
    if layer.op == TIME_DISTRIBUTED:
        return layer.with_attrs(layer=_flatten_order(wrapped(layer)))
    if layer.op == "flatten" and len(layer.in_shape) == 3:
        return layer.with_attrs(flatten_order="hwc" if layer["permutable"] else "chw")
    return layer


def _none(layer: Layer, prefix: str) -> list[NativeParam]:
    return []
