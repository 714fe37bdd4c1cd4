"""The Keras 3 target: one functional-API script for the tensorflow, jax and torch backends."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any, ClassVar, Optional

from dlspec.backends import keras_optimizer, layouts
from dlspec.backends.base import (
    SUBSAMPLE_NOTE,
    Backend,
    LayerCode,
    Line,
    Module,
    Report,
    orthogonal_vector,
    overhang,
    subsampled,
)
from dlspec.backends.torch_cpu import channels_last_breaks
from dlspec.ir.model import Init, Layer, Model, Param, wrapped
from dlspec.ir.ops import ELEMENTWISE, RECURRENT
from dlspec.passes.shapes import same_pads

Pads = tuple[tuple[int, int], tuple[int, int]]

_INITIALIZERS = {
    "uniform": "RandomUniform(minval={neg_limit!r}, maxval={limit!r}, seed={seed})",
    "normal": "RandomNormal(mean={mean!r}, stddev={std!r}, seed={seed})",
    "truncated_normal": "TruncatedNormal(mean={mean!r}, stddev={std!r}, seed={seed})",
    "constant": "Constant(value={value!r})",
    "orthogonal": "Orthogonal(gain={gain!r}, seed={seed})",
}


def q(text: str) -> str:
    """A Python string literal in double quotes (as black writes it)."""
    return json.dumps(text)


def initializer(init: Init, name: str) -> str:
    """A seeded keras.initializers expression for one canonical parameter's distribution."""
    seed = f"param_seed(seed, {q(name)})"
    text = _INITIALIZERS[init.dist].format(
        neg_limit=-init.limit,
        limit=init.limit,
        mean=init.mean,
        std=init.std,
        value=init.value,
        gain=init.gain,
        seed=seed,
    )
    return "keras.initializers." + text


def param_initializer(param: Param) -> str:
    """The initialiser of `param`, with its gate offset (the LSTM forget-gate bias) added; an
    orthogonal vector is drawn as the one column of an (n, 1) matrix, as canonically."""
    expr = initializer(param.init, param.name)
    if orthogonal_vector(param):
        expr = f"OneColumn({expr})"
    if param.gate_offset is None:
        return expr
    start, stop, add = param.gate_offset
    return f"GateOffset({expr}, start={start}, stop={stop}, add={add!r})"


def init_comment(param: Param) -> str:
    """A comment naming the parameter's initialiser and fans, as in the PyTorch script."""
    fans = f"fan_in={param.fan_in}, fan_out={param.fan_out}"
    return f"# {param.name}: {param.init.spec.describe()} ({fans})"


def pool_mode(layer: Layer) -> str:
    """How a pool is realised: valid, same, zero_pad (ZeroPadding2D + valid) or explicit."""
    pads = layer["padding"]
    if layer["rounding"] == "ceil":
        return "explicit"
    if pads == ((0, 0), (0, 0)):
        return "valid"
    if layer.op == "avgpool2d" and layer["count_pad"]:
        return "zero_pad"
    if pads != tf_same(layer, layer["pool"], (1, 1)):
        return "explicit"
    symmetric = all(before == after for before, after in pads)
    if layer.op == "avgpool2d" and not symmetric:
        return "explicit"  # Keras's torch backend replicates edge cells into such windows
    return "same"


def conv_mode(layer: Layer) -> str:
    """valid, same (TF's rule equals the IR's pads) or zero_pad (ZeroPadding2D + valid). A
    subsampled convolution runs at stride 1, where TF's 'same' means other pads: never same."""
    pads = layer["padding"]
    if pads == ((0, 0), (0, 0)):
        return "valid"
    if not subsampled(layer) and pads == tf_same(layer, layer["kernel"], layer["dilation"]):
        return "same"
    return "zero_pad"


def tf_same(layer: Layer, window: tuple[int, int], dilation: tuple[int, int]) -> Pads:
    """The pads TensorFlow's padding="same" gives this layer's input (the shape pass's rule)."""
    return tuple(  # type: ignore[return-value]
        same_pads(layer.in_shape[1 + i], window[i], layer["stride"][i], dilation[i])
        for i in range(2)
    )


def is_image(shape: tuple[int, ...]) -> bool:
    """Rank-3 (C, H, W) tensors are the ones that live in the run-time data_format."""
    return len(shape) == 3


# ops whose Keras layers compute (C, H, W) maps in the script's data_format: time-distributed, they
# read their steps permuted into it (step_native_view) and write maps back canonically; every other
# wrapped layer reads its steps as they are held, canonically (a (T, C, H, W) tensor is not a map)
FORMAT_OPS = frozenset(
    {"conv2d", "maxpool2d", "avgpool2d", "zeropad2d", "global_avgpool2d", "global_maxpool2d"}
)


def _folded(forward: tuple[str, ...], helpers: set) -> list[str]:
    """Each Keras layer call of a wrapped layer's code wrapped in FoldedTimeDistributed (comments
    kept)."""
    lines = []
    for line in forward:
        match = KERAS_CALL.fullmatch(line)
        if line.startswith("#"):
            lines.append(line)
        elif match:
            lines.append(_call(f"FoldedTimeDistributed({match['constructor']})", match["name"]))
            helpers.add("folded_time_distributed")
        else:  # pragma: no cover - every wrapped form is one Keras layer per line
            raise NotImplementedError(f"keras: cannot time-distribute {line!r}")
    return lines


def _call(constructor: str, name: str) -> str:
    """`x = <constructor>, name=...)(x)`: constructors are written without their closing paren."""
    return f"x = {constructor}, name={q(name)})(x)"


# a line written by _call: the constructor (without its closing paren) and the layer's name
KERAS_CALL = re.compile(r'x = (?P<constructor>.*), name="(?P<name>\w+)"\)\(x\)')


# the permutations of (N, T, C, H, W) steps around a time-distributed layer of FORMAT_OPS
STEP_INTO_FORMAT = re.compile(r'x = step_native_view\(x, data_format, "\w+"\)')
STEP_TO_CANONICAL = re.compile(r'x = step_canonical_view\(x, data_format, "\w+"\)')


def fuse_step_views(lines: list[str], elementwise: set[str]) -> list[str]:
    """Forward lines without each step_canonical_view that the next step_native_view undoes (only
    `elementwise` lines between, which compute the same in either layout): time-distributed map
    layers in a row permute their steps once, in and out."""
    out: list[str] = []
    for line in lines:
        if STEP_INTO_FORMAT.fullmatch(line):
            k = len(out)
            while k > 0 and out[k - 1] in elementwise:
                k -= 1
            if k > 0 and STEP_TO_CANONICAL.fullmatch(out[k - 1]):
                del out[k - 1]
                continue
        out.append(line)
    return out


# why a softmax that makes the model's output is followed by an exact copy
KEPT_SOFTMAX = (
    "softmax before softmax_cross_entropy: Rescaling(1.0) keeps it in the loss (Keras's "
    "TensorFlow backend takes a final Softmax op's input as the logits)"
)


def softmax_output(model: Model) -> Optional[Layer]:
    """The softmax layer whose output the model returns (a dropout after it passes it through
    in evaluation) when the loss is softmax cross-entropy; else None."""
    if model.train is None or model.train.loss.kind != "softmax_cross_entropy":
        return None
    last = next((layer for layer in reversed(model.layers) if layer.op != "dropout"), None)
    return last if last is not None and last.op == "softmax" else None


def explicit_rnn(layer: Layer) -> bool:
    """A gru/lstm whose bias vectors Keras's own layers cannot hold: an LSTM with two (Keras's
    has one), a GRU with two unless reset-after, or one when reset-after (Keras's GRU has its
    (2, 3H) bias exactly when reset_after=True). CanonicalRNNCell computes them."""
    if layer.op not in RECURRENT or not layer["bias"]:
        return False
    if layer.op == "lstm":
        return bool(layer["recurrent_bias"])
    return layer["recurrent_bias"] != layer["reset_after"]


class KerasBackend(Backend):
    """Keras 3 on any backend; image tensors channels_last on CPU, channels_first on GPU."""

    name = "keras"
    template = "keras/script.py.j2"
    native_profile = "keras"
    framework = "Keras"
    # the script starts its own replicas on --replicas N, each with Keras's distribution
    # environment (KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES, _PROCESS_ID): the jax backend
    replica_flags = ("--replicas", "{replicas}")
    REPLICA_REFUSALS: ClassVar[dict[str, str]] = {
        "keras[torch]": "Keras 3 has no distribution API for its torch backend: keras.distribution "
        "runs on jax only, and Keras's own training step cannot be wrapped in torch's "
        "DistributedDataParallel; use the pytorch target",
    }
    FORWARD_NAMES = frozenset(
        """x inputs keras layers ops data_format seed dropout channel_axis native_shape
        INPUTS MODEL_NAME""".split()
    )

    # op -> its code when the layer's attributes alone decide it (the rest: emit_<op> below).
    # GlobalMaxPooling2D is ops.max: tied maxima share the gradient equally on every backend, as
    # canonically
    LAYERS: ClassVar[dict[str, Module | Line]] = {
        "relu": Module("layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0)"),
        "tanh": Module('layers.Activation("tanh")'),
        "sigmoid": Module('layers.Activation("sigmoid")'),
        "elu": Module("layers.ELU(alpha={alpha!r})"),
        "leaky_relu": Module("layers.LeakyReLU(negative_slope={alpha!r})"),
        "repeat_vector": Module("layers.RepeatVector({n})"),
        "zeropad2d": Module("layers.ZeroPadding2D(padding={padding}, data_format=data_format)"),
        "global_avgpool2d": Module(
            "layers.GlobalAveragePooling2D(data_format=data_format, keepdims=False)"
        ),
        "global_maxpool2d": Module(
            "layers.GlobalMaxPooling2D(data_format=data_format, keepdims=False)"
        ),
    }

    def module_code(self, layer: Layer, constructor: str, notes: tuple[str, ...] = ()) -> LayerCode:
        """A Keras layer built where it is called on x, named as the layer's weights are:
        `x = layers.ELU(alpha=1.0, name="elu_1")(x)`."""
        assert constructor.endswith(")"), constructor
        return LayerCode(constructor, (_call(constructor[:-1], self.native(layer)),), notes)

    @classmethod
    def replica_refusal(cls, runtime_name: str) -> str:
        """keras[jax] runs data-parallel (Keras's DataParallel over multi-process JAX); the torch
        and tensorflow backends say why they do not."""
        return cls.REPLICA_REFUSALS.get(runtime_name, "") or super().replica_refusal(runtime_name)

    # ---- layers -------------------------------------------------------------------------
    def emit_conv2d(self, layer: Layer) -> LayerCode:
        mode = conv_mode(layer)
        params = {p.role: p for p in layer.params}
        bias = params.get("bias")
        stride = (1, 1) if subsampled(layer) else layer["stride"]
        constructor = (
            f"layers.Conv2D({layer['filters']}, kernel_size={layer['kernel']}, "
            f"strides={stride}, padding={q('valid' if mode == 'zero_pad' else mode)}, "
            f"data_format=data_format, dilation_rate={layer['dilation']}, groups=1, "
            f"activation=None, use_bias={layer['bias']}, "
            f"kernel_initializer={param_initializer(params['weight'])}, "
            f"bias_initializer={param_initializer(bias) if bias else None}"
        )
        lines = [init_comment(p) for p in layer.params]
        notes: list[str] = []
        helpers: frozenset[str] = frozenset()
        if mode == "zero_pad":
            pad = f"layers.ZeroPadding2D(padding={layer['padding']}, data_format=data_format"
            lines.append(_call(pad, self.names.of(layer.name, "_pad")))
            why = "at stride 1 (then subsampled)" if subsampled(layer) else "is not TF's 'same'"
            notes.append(f"padding {layer['padding']} {why}: ZeroPadding2D, then valid")
        lines.append(_call(constructor, self.native(layer)))
        if subsampled(layer):
            sub = f"Subsample2D(strides={layer['stride']}, data_format=data_format"
            lines.append(_call(sub, self.names.of(layer.name, "_subsample")))
            notes.append(SUBSAMPLE_NOTE)
            helpers = frozenset({"subsample"})
        return LayerCode(constructor + ")", tuple(lines), tuple(notes), helpers)

    def _pool(self, layer: Layer, cls: str) -> LayerCode:
        mode = pool_mode(layer)
        base = f"pool_size={layer['pool']}, strides={layer['stride']}"
        if mode == "explicit":
            constructor = (
                f"PaddedPool2D({q('max' if layer.op == 'maxpool2d' else 'avg')}, {base}, "
                f"pads={layer['padding']}, overhang={overhang(layer)}, "
                f"count_pad={layer.attrs.get('count_pad', False)}, data_format=data_format"
            )
            note = (
                f"padding {layer['padding']}, rounding={layer['rounding']}: no Keras padding "
                "mode computes it; PaddedPool2D (keras.ops) pads and divides explicitly"
            )
            return LayerCode(
                constructor + ")",
                (_call(constructor, self.native(layer)),),
                (note,),
                frozenset({"padded_pool"}),
            )
        padding = "same" if mode == "same" else "valid"
        constructor = f"{cls}({base}, padding={q(padding)}, data_format=data_format"
        lines = [_call(constructor, self.native(layer))]
        notes: tuple[str, ...] = ()
        if mode == "zero_pad":
            pad = f"layers.ZeroPadding2D(padding={layer['padding']}, data_format=data_format"
            lines.insert(0, _call(pad, self.names.of(layer.name, "_pad")))
            notes = ("count_pad=true: ZeroPadding2D, then a valid average (zeros counted)",)
        return LayerCode(constructor + ")", tuple(lines), notes)

    def emit_maxpool2d(self, layer: Layer) -> LayerCode:
        return self._pool(layer, "layers.MaxPooling2D")

    def emit_avgpool2d(self, layer: Layer) -> LayerCode:
        return self._pool(layer, "layers.AveragePooling2D")

    def emit_dropout(self, layer: Layer) -> LayerCode:
        constructor = (
            f"layers.Dropout({layer['rate']!r}, noise_shape=None, "
            f"seed=dropout_seed(seed, {q(layer.name)})"
        )
        lines = ("if dropout:", "    " + _call(constructor, self.native(layer)))
        return LayerCode(constructor + ")", lines, helpers=frozenset({"dropout_seed"}))

    def emit_flatten(self, layer: Layer) -> LayerCode:
        if is_image(layer.in_shape) and not layer["permutable"]:
            # Flatten always yields (H, W, C) order: flatten the NCHW view as if channels-last
            constructor = 'layers.Flatten(data_format="channels_last"'
            view = self.names.of(layer.name, "_nchw")
            lines = (
                f"x = canonical_view(x, data_format, {q(view)})",
                _call(constructor, self.native(layer)),
            )
            note = "flatten read by more than dense layers: flattened from the NCHW view"
            return LayerCode(constructor + ")", lines, (note,), frozenset({"views"}))
        fmt = "data_format" if is_image(layer.in_shape) else '"channels_last"'
        constructor = f"layers.Flatten(data_format={fmt}"
        notes: tuple[str, ...] = ()
        if is_image(layer.in_shape):
            notes = ("Keras flattens (H, W, C): the next dense layer's rows are permuted",)
        return self.module_code(layer, constructor + ")", notes)

    def _dense(self, layer: Layer) -> LayerCode:
        """layers.Dense over the last axis of x as it is held."""
        params = {p.role: p for p in layer.params}
        bias = params.get("bias")
        constructor = (
            f"layers.Dense({layer['units']}, activation=None, use_bias={layer['bias']}, "
            f"kernel_initializer={param_initializer(params['weight'])}, "
            f"bias_initializer={param_initializer(bias) if bias else None}"
        )
        lines = [init_comment(p) for p in layer.params] + [_call(constructor, self.native(layer))]
        return LayerCode(constructor + ")", tuple(lines))

    def emit_dense(self, layer: Layer) -> LayerCode:
        code = self._dense(layer)
        if not is_image(layer.in_shape):
            return code
        nchw, native = self.names.of(layer.name, "_nchw"), self.names.of(layer.name, "_native")
        lines = (
            *code.forward[:-1],
            f"x = canonical_view(x, data_format, {q(nchw)})",
            code.forward[-1],
            f"x = native_view(x, data_format, {q(native)})",
        )
        note = "dense over the W axis of a (C, H, W) map: permuted to NCHW around it"
        return LayerCode(code.module, lines, (note,), frozenset({"views"}))

    def emit_embedding(self, layer: Layer) -> LayerCode:
        weight = layer.params[0]
        constructor = (
            f"layers.Embedding({layer['vocab']}, {layer['dim']}, "
            f"embeddings_initializer={param_initializer(weight)}, mask_zero=False"
        )
        return LayerCode(
            constructor + ")", (init_comment(weight), _call(constructor, self.native(layer)))
        )

    def rnn_layer_names(self, layer: Layer) -> list[str]:
        """The Keras layer of each stacked RNN layer."""
        if layer["layers"] == 1:
            return [self.native(layer)]
        return [self.names.of(layer.name, f"_l{k}") for k in range(layer["layers"])]

    def _rnn_constructor(self, layer: Layer, k: int, cls: str) -> str:
        params = {p.name.split(".", 1)[1]: p for p in layer.params}
        w_ih, w_hh = params[f"weight_ih_l{k}"], params[f"weight_hh_l{k}"]
        sequence = k < layer["layers"] - 1 or layer["readout"] == "sequence"
        gru = layer.op == "gru"
        extra = f"reset_after={layer['reset_after']}, " if gru else "unit_forget_bias=False, "
        cudnn = q("auto") if gru else "LSTM_CUDNN"
        return (
            f"{cls}({layer['units']}, activation=\"tanh\", recurrent_activation=\"sigmoid\", "
            f"use_bias={layer['bias']}, kernel_initializer={param_initializer(w_ih)}, "
            f"recurrent_initializer={param_initializer(w_hh)}, "
            f"bias_initializer={self._rnn_bias(layer, k, params)}, dropout=0.0, "
            f"recurrent_dropout=0.0, return_sequences={sequence}, return_state=False, "
            f"go_backwards=False, stateful=False, unroll=False, {extra}use_cudnn={cudnn}"
        )

    def _rnn_bias(self, layer: Layer, k: int, params: dict[str, Param]) -> Optional[str]:
        """One initialiser for the bias, or StackedRows for a (2, 3H) GRU bias drawn two ways (or
        as two orthogonal vectors, which one draw over (2, 3H) is not)."""
        if not layer["bias"]:
            return None
        b_ih = params[f"bias_ih_l{k}"]
        b_hh = params.get(f"bias_hh_l{k}")
        if b_hh is None or (b_hh.init == b_ih.init and b_ih.init.dist != "orthogonal"):
            return param_initializer(b_ih)
        return f"StackedRows([{param_initializer(b_ih)}, {param_initializer(b_hh)}])"

    def _cell_constructor(self, layer: Layer, k: int) -> str:
        """layers.RNN over the script's CanonicalRNNCell (two separate bias weights, canonical
        gate order), with the keywords of the native layer it stands in for."""
        params = {p.name.split(".", 1)[1]: p for p in layer.params}
        sequence = k < layer["layers"] - 1 or layer["readout"] == "sequence"
        inits = [params.get(f"{role}_l{k}") for role in ("weight_ih", "weight_hh")]
        inits += [params.get(f"{role}_l{k}") for role in ("bias_ih", "bias_hh")]
        keywords = ("kernel", "recurrent", "bias_ih", "bias_hh")
        cell = ", ".join(
            f"{key}_initializer={param_initializer(p) if p else None}"
            for key, p in zip(keywords, inits, strict=True)
        )
        return (
            f"layers.RNN(CanonicalRNNCell({q(layer.op)}, {layer['units']}, "
            f"reset_after={layer.attrs.get('reset_after', False)}, {cell}), "
            f"return_sequences={sequence}, return_state=False, go_backwards=False, "
            "stateful=False, unroll=False"
        )

    def _rnn(self, layer: Layer, cls: str, helper: Optional[str] = None) -> LayerCode:
        """Keras's layer `cls` per stacked layer (`helper`: the script helper defining it), or
        layers.RNN over CanonicalRNNCell for the bias forms Keras's layers lack."""
        explicit = explicit_rnn(layer)
        lines: list[str] = []
        constructors = []
        for k, keras_name in enumerate(self.rnn_layer_names(layer)):
            if explicit:
                constructor = self._cell_constructor(layer, k)
            else:
                constructor = self._rnn_constructor(layer, k, cls)
            constructors.append(constructor + ")")
            lines += [init_comment(p) for p in layer.params if p.name.endswith(f"_l{k}")]
            lines.append(_call(constructor, keras_name))
        notes: list[str] = []
        helpers = {"stacked_rows" for line in lines if "StackedRows(" in line}
        if helper is not None and not explicit:
            helpers.add(helper)
            notes.append(f"{cls}: Keras's layer, its steps split once on the torch backend's CPU")
        if explicit:
            helpers.add("canonical_rnn_cell")
            notes.append(self._cell_note(layer))
        elif layer.op == "gru":
            notes.append("gates reordered [r, z, n] -> Keras [z, r, h] on weight import/export")
        else:
            helpers.add("lstm_cudnn")
            notes.append("LSTM_CUDNN: no cuDNN LSTM on the jax backend (it disagreed under jit)")
        if any(p.gate_offset for p in layer.params):
            helpers.add("gate_offset")
            notes.append("forget-gate bias added by GateOffset (unit_forget_bias=False)")
        return LayerCode("\n".join(constructors), tuple(lines), tuple(notes), frozenset(helpers))

    def _cell_note(self, layer: Layer) -> str:
        if layer.op == "lstm":
            why = "recurrent_bias=true: Keras's LSTM has one bias vector"
        else:
            why = (
                f"reset_after={str(layer['reset_after']).lower()} with recurrent_bias="
                f"{str(layer['recurrent_bias']).lower()}: Keras's GRU has two bias vectors "
                "exactly when reset_after=true"
            )
        biases = (
            "bias_ih and bias_hh are separate weights, each trained"
            if layer["recurrent_bias"]
            else "bias_ih is its one bias vector"
        )
        return (
            f"{why}, so layers.RNN runs CanonicalRNNCell (keras.ops, in the script): {biases}; "
            "gates in canonical order"
        )

    def emit_gru(self, layer: Layer) -> LayerCode:
        # reset-before: Keras's torch backend runs it in its generic loop, which splits the steps
        if layer["reset_after"]:
            return self._rnn(layer, "TorchLoopGRU", "torch_loop_gru")
        return self._rnn(layer, "layers.GRU")

    def emit_lstm(self, layer: Layer) -> LayerCode:
        return self._rnn(layer, "TorchLoopLSTM", "torch_loop_lstm")

    def emit_softmax(self, layer: Layer) -> LayerCode:
        axis = "channel_axis" if is_image(layer.in_shape) else repr(layer["axis"])
        constructor = f"layers.Softmax(axis={axis}"
        return self.module_code(layer, constructor + ")")

    def emit_batchnorm(self, layer: Layer) -> LayerCode:
        axis = "channel_axis" if is_image(layer.in_shape) else "-1"
        common = (
            f"axis={axis}, momentum={1.0 - layer['momentum']!r}, epsilon={layer['eps']!r}, "
            f"center={layer['center']}, scale={layer['scale']}"
        )
        if layer["running_var"] == "biased":
            constructor = (
                f'layers.BatchNormalization({common}, beta_initializer="zeros", '
                'gamma_initializer="ones", moving_mean_initializer="zeros", '
                'moving_variance_initializer="ones", synchronized=SYNC_BATCH_NORM'
            )
            note = f"momentum {layer['momentum']!r} is Keras's momentum={1.0 - layer['momentum']!r}"
            return self.module_code(layer, constructor + ")", (note,))
        constructor = f"UnbiasedBatchNorm({common}"
        note = (
            "running_var=unbiased: Keras's BatchNormalization stores the biased variance, so "
            "UnbiasedBatchNorm (keras.ops) writes the update"
        )
        return LayerCode(
            constructor + ")",
            (_call(constructor, self.native(layer)),),
            (note,),
            frozenset({"unbiased_batch_norm"}),
        )

    def emit_time_distributed(self, layer: Layer) -> LayerCode:
        """As every target's, except that a flatten, dense or softmax of (C, H, W) steps is
        emitted for the steps as they are held, canonically (`_canonical_step`)."""
        inner = wrapped(layer)
        if is_image(inner.in_shape) and inner.op in ("flatten", "dense", "softmax"):
            return self.wrap_steps(layer, inner, self._canonical_step(inner))
        return super().emit_time_distributed(layer)

    def _canonical_step(self, inner: Layer) -> LayerCode:
        """The Keras layer of a flatten, dense or softmax of one canonical (C, H, W) step: a
        flatten in (C, H, W) order (its rows are never permuted inside the wrapper, see the
        shape pass), a dense over W, a softmax over C (axis 1 of the (N, C, H, W) step)."""
        if inner.op == "dense":
            code = self._dense(inner)
            return replace(code, notes=("dense over the W axis of canonical (C, H, W) steps",))
        if inner.op == "softmax":
            constructor = f"layers.Softmax(axis={inner['axis']!r}"
            note = "softmax over the C axis of canonical (C, H, W) steps"
        else:
            constructor = 'layers.Flatten(data_format="channels_last"'
            note = "flatten of canonical (C, H, W) steps: in C, H, W order"
        return LayerCode(constructor + ")", (_call(constructor, self.native(inner)),), (note,))

    def wrap_steps(self, layer: Layer, inner: Layer, code: LayerCode) -> LayerCode:
        """layers.TimeDistributed around each Keras layer of the wrapped layer's code (a
        stacked RNN's layers each wrapped: every one maps steps to steps), named as the wrapped
        layers are, so their weights are the wrapped layer's. A (T, F, G) tensor, a map to this
        script, is read in canonical order (canonical_view) and written back (native_view).
        (T, C, H, W) tensors are held canonically: a layer that computes maps in data_format
        (FORMAT_OPS) gets its steps permuted into it (step_native_view) and gives maps back
        canonical (step_canonical_view); any other reads the canonical steps as they are."""
        helpers = set(code.helpers)
        in_format = inner.op in FORMAT_OPS
        permute_in = in_format and is_image(inner.in_shape)
        permute_out = in_format and is_image(inner.out_shape)
        lines = []
        if is_image(layer.in_shape):
            lines.append(self._view(layer, "_nchw", "canonical_view", "views", helpers))
        if permute_in:
            lines.append(
                self._view(layer, "_steps_native", "step_native_view", "step_views", helpers)
            )
        lines += _folded(code.forward, helpers)
        if permute_out:
            lines.append(
                self._view(layer, "_steps_nchw", "step_canonical_view", "step_views", helpers)
            )
        if is_image(layer.out_shape):
            lines.append(self._view(layer, "_native", "native_view", "views", helpers))
        notes = list(code.notes)
        if permute_in:
            back = ", its maps permuted back" if permute_out else ""
            notes.append(
                f"canonical (C, H, W) steps permuted into data_format for {inner.op}{back}"
            )
        notes.append(
            f"time_distributed({inner.op}): FoldedTimeDistributed (layers.TimeDistributed) runs "
            f"the wrapped Keras layer once on the {layer.in_shape[0]} steps folded into the batch"
        )
        return LayerCode(code.module, tuple(lines), tuple(notes), frozenset(helpers), code.setup)

    def _view(self, layer: Layer, suffix: str, function: str, helper: str, helpers: set) -> str:
        """`x = function(x, data_format, "<name>")`, a layout view of the wrapper's tensor named
        after it (the helper it needs added to `helpers`)."""
        helpers.add(helper)
        return f"x = {function}(x, data_format, {q(self.names.of(layer.name, suffix))})"

    # ---- merges -------------------------------------------------------------------------
    def _merge(self, layer: Layer, constructor: str, reads: tuple[str, ...]) -> LayerCode:
        call = f"x = {constructor}name={q(self.native(layer))})([{', '.join(reads)}])"
        return LayerCode(constructor + ")", (call,))

    def emit_add(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        return self._merge(layer, "layers.Add(", reads)

    def emit_multiply(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        return self._merge(layer, "layers.Multiply(", reads)

    def emit_concat(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        axis = repr(layer["axis"] + 1)
        if is_image(layer.in_shape):
            axis = "channel_axis" if layer["axis"] == 0 else f"image_axis({axis}, data_format)"
        code = self._merge(layer, f"layers.Concatenate(axis={axis}, ", reads)
        helpers = frozenset({"image_axis"}) if "image_axis" in axis else frozenset()
        return LayerCode(code.module, code.forward, helpers=helpers)

    # ---- weights ------------------------------------------------------------------------
    def native_params(self, layer: Layer) -> list[tuple[str, list[layouts.NativeParam]]]:
        """(Keras layer, its weights in get_weights() order) for each Keras layer with weights
        (a TimeDistributed's are its wrapped layer's, under the same name)."""
        layer = wrapped(layer)
        name = self.native(layer)
        if layer.op in ("conv2d", "dense"):
            convert = layouts.conv_kernel if layer.op == "conv2d" else layouts.dense_kernel
            weights = [convert(layer, f"{name}/kernel")]
            if layer["bias"]:
                bias = layer.params[1]
                weights.append(layouts.same(bias.name, f"{name}/bias", bias.shape))
            return [(name, weights)]
        if layer.op == "batchnorm":
            return [(name, layouts.batchnorm_params(layer, name))]
        if layer.op == "embedding":
            table = layer.params[0]
            return [(name, [layouts.same(table.name, f"{name}/embeddings", table.shape)])]
        if layer.op in RECURRENT:
            convert = layouts.gru_keras if layer.op == "gru" else layouts.lstm_keras
            if explicit_rnn(layer):
                convert = layouts.rnn_cell_keras
            return [
                (keras_name, convert(layer, k, keras_name))
                for k, keras_name in enumerate(self.rnn_layer_names(layer))
            ]
        return []

    def _weights_context(self, model: Model) -> dict[str, Any]:
        """Native weights of every Keras layer (self.names must be this model's)."""
        groups = [group for layer in model.layers for group in self.native_params(layer)]
        return {
            "native_layers": [(name, [p.native for p in params]) for name, params in groups],
            "to_native": [(name, [p.to_native for p in params]) for name, params in groups],
            "to_canonical": [back for _, params in groups for p in params for back in p.back],
        }

    def optimizer_notes(self, model: Model) -> list[str]:
        """The schedule's and a written-out optimiser's notes (dlspec.backends.keras_optimizer)."""
        return keras_optimizer.optimizer_notes(model)

    # ---- the model's output -------------------------------------------------------------
    def _keep_softmax(self, model: Model) -> list[str]:
        """A copy (x * 1.0 + 0.0) after a softmax the loss would otherwise skip, see KEPT_SOFTMAX."""
        layer = softmax_output(model)
        if layer is None:
            return []
        name = q(self.names.of(layer.name, "_output"))
        return [
            f"# {KEPT_SOFTMAX}",
            f"x = layers.Rescaling(scale=1.0, offset=0.0, name={name})(x)",
        ]

    def report(self, model: Model) -> Report:
        report = super().report(model)
        layer = softmax_output(model)
        if layer is not None:
            report.lines.append(f"{layer.name}: {KEPT_SOFTMAX}")
        return report

    # ---- context ------------------------------------------------------------------------
    def _memory_inputs(self, model: Model, variables: list[str]) -> list[tuple[str, str]]:
        """The (C, H, W) inputs of a model with convolutions, as (variable, the name of the
        ChannelsLastMemory layer after it): on the torch backend they can be stored
        channels-last (--memory-format); none for a model without 4-D weights."""
        if not any(len(p.shape) == 4 for p in model.params):
            return []
        return [
            (var, self.names.of(i.name, "_memory"))
            for var, i in zip(variables, model.inputs, strict=True)
            if len(i.shape) == 3
        ]

    def context(self, model: Model) -> dict[str, Any]:
        self.name_model(model)
        codes = [self.emit(layer) for layer in model.layers]
        walk = self.walk(
            model, {layer.name: code for layer, code in zip(model.layers, codes, strict=True)}
        )
        result = [] if walk.output == "x" else [f"x = {walk.output}"]
        elementwise = {
            line
            for layer, code in zip(model.layers, codes, strict=True)
            if wrapped(layer).op in ELEMENTWISE and wrapped(layer).op != "dropout"
            for line in code.forward
        }
        forward = fuse_step_views([*walk.lines, *result], elementwise)
        forward += self._keep_softmax(model)
        helpers = set().union(*(c.helpers for c in codes))
        if any(orthogonal_vector(p) for p in model.params):
            helpers.add("one_column")
        memory_inputs = self._memory_inputs(model, walk.arguments)
        if memory_inputs:
            helpers.add("channels_last_memory")
        return {
            "forward": forward,
            "channel_axis": any("channel_axis" in line for line in forward),
            "torch_channels_first": any(channels_last_breaks(layer) for layer in model.layers),
            "memory_inputs": memory_inputs,
            "helpers": sorted(helpers),
            "weights": self._weights_context(model),
            "optimizer": keras_optimizer.optimizer_context(model),
            "input_vars": [
                (var, k, self.names.of(i.name))
                for k, (var, i) in enumerate(zip(walk.arguments, model.inputs, strict=True))
            ],
        }
