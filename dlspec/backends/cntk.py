"""The CNTK target: CNTK 2.7 layers and ops on Python 2.7 (and 3), CNTK learners or written updates."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Optional

from dlspec.backends.base import LayerCode, Line, Module, OperatorMerges, overhang
from dlspec.backends.mxnet import DrawnBackend
from dlspec.codegen.render import PY2_FORMAT
from dlspec.codegen.updates import NUMPY_OUT, InPlace, Printer, in_place_update, render
from dlspec.ir.model import Layer, Model, Optimizer, wrapped
from dlspec.ir.ops import RECURRENT
from dlspec.ir.updates import update_rule

# The CNTK learners the scripts use, read from CNTK 2.7's learners (cntk/learners/__init__.py,
# Math/Matrix.cpp, Learner.cpp) and measured (tests/test_cntk.py). A per-sample rate applies to
# the gradient the learner is given; CNTK counts the minibatch's n samples whatever the criterion
# (the batch mean included), and l2_regularization_weight adds wd * n * w to that gradient
# before the update (every learner: LearnerBase::PreProcess).
# - The SGD learners train on the summed per-sample criterion at the per-sample rate lr / n:
#   linear in g, they then move by lr * (mean g + wd * w), the canonical coupled l2 decay, for any
#   n. C.sgd: w -= lr * g. C.momentum_sgd(unit_gain=False): v = mu * v + lr * g, w -= v (the
#   update form; CNTK's default unit_gain=True scales g by 1 - mu). C.nesterov(unit_gain=False):
#   v = mu * v + lr * g, w -= mu * v + lr * g (the update form's Nesterov). Under a constant rate
#   the gradient form (v = mu * v + g, w -= lr * v) is the update form with v scaled by lr, so it
#   runs on the same learners; under a schedule the two differ and it is written out.
# - Adam and AdaDelta train on the batch mean at the rate lr (on the sum, eps would meet n times
#   the mean's moments), where l2 decay would weigh wd * n: with decay they are written out.
#   C.adam(unit_gain=True, both momenta per minibatch): lr * sqrt(1 - b2^t) / (1 - b1^t) * m /
#   (sqrt(v) + eps), the uncorrected eps placement. C.adadelta: the canonical AdaDelta (rate lr
#   on sqrt(E[dw^2] + eps) / sqrt(E[g^2] + eps) * g).
# - No learner computes the corrected Adam, rmsprop (CNTK's is a different, adaptive-step
#   algorithm) or decoupled decay: those are written out.
SUMMED_LEARNERS = ("sgd", "momentum_sgd", "nesterov")


def native_optimizer(
    opt: Optimizer, constant_lr: bool = False
) -> Optional[tuple[str, dict[str, Any]]]:
    """(CNTK learner, its numeric settings) when one computes this canonical form, else None.

    Native, in float32 and float64 runs alike:
    - sgd without momentum: C.sgd; with momentum in the `update` form (at any rates):
      C.momentum_sgd(unit_gain=False), or C.nesterov(unit_gain=False) with nesterov; with
      momentum in the `gradient` form only when `constant_lr` (the spec's schedule is constant:
      the two forms then take the same steps), on the same learners. Decay: `l2` (or wd 0).
    - adam with eps_placement=uncorrected and wd 0: C.adam.
    - adadelta with wd 0: C.adadelta.
    Written out: sgd's `gradient` form with momentum under a schedule, adam's `corrected`
    placement, rmsprop, `decoupled` decay (wd != 0), and Adam or AdaDelta with any decay."""
    if opt["weight_decay"] != 0 and (opt.kind != "sgd" or opt["weight_decay_mode"] != "l2"):
        return None
    if opt.kind == "sgd":
        mu = opt["momentum"]
        if mu == 0:
            return "sgd", {"l2": opt["weight_decay"]}
        if opt["momentum_form"] != "update" and not constant_lr:
            return None
        name = "nesterov" if opt["nesterov"] else "momentum_sgd"
        return name, {"momentum": mu, "l2": opt["weight_decay"]}
    if opt.kind == "adam" and opt["eps_placement"] == "uncorrected":
        return "adam", {"beta1": opt["beta1"], "beta2": opt["beta2"], "eps": opt["eps"]}
    if opt.kind == "adadelta":
        return "adadelta", {"rho": opt["rho"], "eps": opt["eps"]}
    return None


# the written-out update (dlspec.ir.updates) on NumPy arrays: scalars in Python, the statements
# in place (augmented assignments, ufuncs writing into scratch buffers with out=), a chunk of the
# flattened arrays at a time so the scratch stays in cache (measured against the same statements
# as CNTK ops in a C.universal learner: exact too, but 4% slower a step for the IMDB GRU on one
# CPU thread, so the update stays in NumPy)
NP_TENSOR = Printer(sqrt="np.sqrt")
NP_SCALAR = Printer(sqrt="math.sqrt")
NP_IN_PLACE = InPlace(NP_TENSOR, sqrt="np.sqrt({0}, out={0})", copy="{0}[...] = {1}", out=NUMPY_OUT)

LOSS_NOTE = (
    "loss: CNTK's criterion is per sample, and its Trainer and Function.grad take the gradient of "
    "its SUM over the minibatch; the SGD learners (sgd, momentum_sgd, nesterov) train on that sum "
    "at the per-sample rate lr / n, Adam and AdaDelta on the batch mean (C.reduce_mean over the "
    "batch axis) at lr, and the written-out update divides the summed gradient by n: the "
    "canonical mean"
)
INIT_NOTE = (
    "init: every parameter drawn by init_parameters as the spec says (NumPy, seeded), never "
    "CNTK's default initialisers (glorot_uniform, zero biases)"
)


def _assign(target: str, op: str, value: str) -> str:
    return f"{target}[...] = {value}" if op == "=" else f"{target} {op} {value}"


def optimizer_code(opt: Optimizer) -> dict[str, Any]:
    """Slots, scratch buffers and lines of CanonicalOptimizer.step: the per-update scalars (t in
    scope), then the per-variable statements in place on one chunk (w, g, lr, the slots and the
    scratch buffers in scope, every one a chunk's view; no line allocates an array)."""
    rule = update_rule(opt.kind, opt.attrs)
    lines, scratch = in_place_update(opt, NP_IN_PLACE)
    return {
        "slots": list(rule.slots),
        "scratch": scratch,
        "step_counter": rule.uses_step,
        "scalar_lines": [render(s, NP_SCALAR, _assign) for s in rule.per_update],
        "lines": lines,
    }


def optimizer_context(opt: Optimizer, constant_lr: bool = False) -> dict[str, Any]:
    """What templates/cntk/optimizer.py.j2 needs: the learner (name, settings) when one computes
    the form (then no written-out update), else the written-out update."""
    native = native_optimizer(opt, constant_lr)
    return {
        "native": native[0] if native else "",
        "settings": native[1] if native else {},
        "summed": bool(native) and native[0] in SUMMED_LEARNERS,
        "gradient_form": bool(native)
        and opt.kind == "sgd"
        and opt["momentum"] != 0
        and opt["momentum_form"] == "gradient",
        "kind": opt.kind,
        "attrs": dict(opt.attrs),
        **optimizer_code(opt),
    }


def _constant_lr(model: Model) -> bool:
    """Whether every update of the spec runs at the same learning rate (a constant schedule)."""
    return model.train is not None and model.train.schedule.kind == "constant"


def _pattern(pads: tuple[tuple[int, int], tuple[int, int]], cells: tuple[int, int]) -> str:
    """C.pad's pattern for (C, H, W): (before, after) per axis, a pool's overhang added after."""
    (top, bottom), (left, right) = pads
    return f"[(0, 0), ({top}, {bottom + cells[0]}), ({left}, {right + cells[1]})]"


def _padded(layer: Layer) -> bool:
    return any(p != (0, 0) for p in layer["padding"])


def auto_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """CNTK's own padding (pad=True, dilation 1) of one axis: (output length, cells padded
    before). ConvolveGeometry.h: ceil(size / stride) outputs whose window centres start at
    extra // 2, extra = size - ((out - 1) * stride + 1), the centre (window - 1) // 2 taps in."""
    out = (size - 1) // stride + 1
    extra = size - ((out - 1) * stride + 1)
    return out, (window - 1) // 2 - extra // 2


def pad_flags(
    layer: Layer, window: tuple[int, int], symmetric: bool = False
) -> Optional[tuple[bool, bool]]:
    """pad= per spatial axis when CNTK's own windows are exactly the canonical ones: False where
    the axis has no padding and no overhang, True where pad=True starts the same number of
    windows at the same cell (what lies outside the input is then zero for a convolution, never
    taken by a pool: as the canonical pads, -inf for a max pool and uncounted for an average
    pool without count_pad); None when an axis needs an explicit C.pad: CNTK's rule starts the
    windows elsewhere (it puts an odd cell before where `same` puts it after), the window is
    larger than the input (CNTK refuses it), or, with `symmetric`, CNTK's pads before and after
    differ (its CPU convolution then leaves MKL for a slower GEMM engine, measured 2-3x)."""
    flags = []
    for i in range(2):
        size, k, s = layer.in_shape[1 + i], window[i], layer["stride"][i]
        pads, out = layer["padding"][i], layer.out_shape[1 + i]
        if pads == (0, 0) and out == (size - k) // s + 1:
            flags.append(False)
            continue
        before = pads[0]
        after = (out - 1) * s + k - size - before  # what CNTK pads after (GetUpperPad)
        same = k <= size and auto_padding(size, k, s) == (out, before) and after >= 0
        if not same or (symmetric and after != before):
            return None
        flags.append(True)
    return flags[0], flags[1]


def _keeps_b_hn(layer: Layer) -> bool:
    """Whether the layer's loop keeps part of bias_hh: a reset-after GRU's b_hn, which
    the reset gate multiplies."""
    return layer.op == "gru" and bool(layer["reset_after"])


def _pad_arg(flags: tuple[bool, bool]) -> str:
    return str(flags[0]) if flags[0] == flags[1] else str(flags)


class CNTKBackend(OperatorMerges, DrawnBackend):
    """CNTK 2.7: (C, H, W) samples on a dynamic batch axis, cntk.layers blocks, Python 2 and 3."""

    name = "cntk"
    template = "cntk/script.py.j2"
    native_profile = ""
    framework = "CNTK"
    format_mode = PY2_FORMAT
    # the script starts its own replicas on this host under Open MPI's mpiexec (CNTK's engine):
    # the runtime's mpiexec and interpreter ($DLSPEC_MPIEXEC, $DLSPEC_PYTHON, which the built
    # runtime's launcher sets), else mpiexec on PATH and the script's interpreter
    replica_flags = ("--replicas", "{replicas}")

    @classmethod
    def replica_refusal(cls, runtime_name: str) -> str:
        """Why `runtime_name` cannot start replicas: no mpiexec (neither $DLSPEC_MPIEXEC, nor the
        built runtime's launcher beside its interpreter, nor one on PATH); "" when it can."""
        from dlspec.runtimes import FIX_BUILT, runtime  # not needed to compile

        rt = runtime(runtime_name)
        launcher = Path(rt.python[0]).parent / "mpiexec"
        if os.environ.get("DLSPEC_MPIEXEC") or launcher.exists() or shutil.which("mpiexec"):
            return ""
        return f"no mpiexec to start its replicas under (not {launcher}, nor on PATH); fix: {FIX_BUILT}"

    RESERVED_NAMES = frozenset("""
        inputs output forward feed dtype and as assert break class continue def del elif
        else except exec finally for from global if import in is lambda not or pass print raise
        return try while with yield
        """.split())
    FORWARD_NAMES = frozenset({"x", "self", "C", "np"})
    # op -> its code when the layer's attributes alone decide it (the rest: emit_<op> below)
    LAYERS: ClassVar[dict[str, Module | Line]] = {
        "relu": Line("x = C.relu(x)"),
        "tanh": Line("x = C.tanh(x)"),
        "sigmoid": Line("x = C.sigmoid(x)"),
        "elu": Line("x = C.elu(x, alpha={alpha!r})"),
        "leaky_relu": Line("x = C.leaky_relu(x, alpha={alpha!r})"),
        "flatten": Line("x = C.reshape(x, (-1,))"),
        "global_avgpool2d": Line("x = C.reshape(C.reduce_mean(x, axis=(1, 2)), (-1,))"),
        "global_maxpool2d": Line("x = C.reshape(C.reduce_max(x, axis=(1, 2)), (-1,))"),
    }

    # ---- the report ---------------------------------------------------------------------
    def native_overrides(self, model: Model) -> list[str]:
        """CNTK has no defaults profile in the op table: the report states its conventions."""
        return [LOSS_NOTE, INIT_NOTE] if model.train and model.params else []

    # ---- layers -------------------------------------------------------------------------
    def emit_dense(self, layer: Layer) -> LayerCode:
        module = (
            f"C.layers.Dense({layer['units']}, init=0, bias={layer['bias']}, input_rank=1, "
            f"name={layer.name!r})"
        )
        notes = ["W is (in, out) in CNTK: the canonical (out, in) weight transposed in and out"]
        return LayerCode(module, (self.called(layer),), tuple(notes))

    def emit_conv2d(self, layer: Layer) -> LayerCode:
        if layer["dilation"] != (1, 1):
            return self._dilated_conv2d(layer)
        flags = pad_flags(layer, layer["kernel"], symmetric=True)
        module = (
            f"C.layers.Convolution2D({layer['kernel']}, {layer['filters']}, "
            f"pad={_pad_arg(flags or (False, False))}, strides={layer['stride']}, "
            f"dilation={layer['dilation']}, bias={layer['bias']}, init=0, name={layer.name!r})"
        )
        if flags is not None:
            notes = ()
            if any(flags):
                notes = (
                    f"padding {layer['padding']} as CNTK's own (pad={_pad_arg(flags)}): its rule "
                    "gives exactly these windows",
                )
            return LayerCode(module, (self.called(layer),), notes)
        pattern = _pattern(layer["padding"], (0, 0))
        note = (
            f"padding {layer['padding']} written as C.pad before an unpadded convolution "
            "(CNTK's pad=True would start the windows elsewhere)"
        )
        return LayerCode(module, (f"x = C.pad(x, {pattern})", self.called(layer)), (note,))

    def _dilated_conv2d(self, layer: Layer) -> LayerCode:
        """CNTK 2.7 has no dilated convolution on the CPU (its training pass raises "Dilated
        convolution on CPU is not yet implemented"): the kernel is spread out with zeros by
        CNTK ops (reshape, pad, slice), which the gradient passes through to the real taps."""
        module = (
            f"DilatedConv2D({layer['kernel']}, {layer['filters']}, {layer.in_shape[0]}, "
            f"{layer['stride']}, {layer['dilation']}, {layer['bias']}, {layer.name!r})"
        )
        forward = [self.called(layer)]
        notes = [
            f"dilation {layer['dilation']}: the kernel spread out with zeros in CNTK ops and an "
            "undilated C.convolution (CNTK 2.7 has no dilated convolution on the CPU)"
        ]
        if _padded(layer):
            forward.insert(0, f"x = C.pad(x, {_pattern(layer['padding'], (0, 0))})")
            notes.append(f"padding {layer['padding']} written as C.pad before the convolution")
        return LayerCode(module, tuple(forward), tuple(notes), frozenset({"dilated_conv2d"}))

    def _pool(self, layer: Layer, kind: str) -> LayerCode:
        flags = pad_flags(layer, layer["pool"])
        module = (
            f"C.layers.{kind}({layer['pool']}, strides={layer['stride']}, "
            f"pad={_pad_arg(flags or (False, False))}, name={layer.name!r})"
        )
        notes = [f"strides={layer['stride']} given (CNTK's {kind} strides default to 1)"]
        cells = overhang(layer)
        if flags is not None:
            if any(flags):
                notes.append(
                    f"padding {layer['padding']} (rounding={layer['rounding']}) as CNTK's own "
                    f"(pad={_pad_arg(flags)}): the same windows, the cells outside never taken"
                )
            return LayerCode(module, (self.called(layer),), tuple(notes))
        pattern = _pattern(layer["padding"], cells)
        notes.append(
            f"padding {layer['padding']} (rounding={layer['rounding']}) written as C.pad(-inf), "
            f"the last windows' overhang {cells} padded too, then an unpadded floor pool"
        )
        forward = (f'x = C.pad(x, {pattern}, constant_value=float("-inf"))', self.called(layer))
        return LayerCode(module, forward, tuple(notes))

    def emit_maxpool2d(self, layer: Layer) -> LayerCode:
        return self._pool(layer, "MaxPooling")

    def emit_zeropad2d(self, layer: Layer) -> LayerCode:
        return LayerCode("", (f"x = C.pad(x, {_pattern(layer['padding'], (0, 0))})",))

    def emit_dropout(self, layer: Layer) -> LayerCode:
        module = (
            f"C.layers.Dropout({layer['rate']!r}, name={layer.name!r}) if dropout "
            "else C.layers.identity"
        )
        notes = ("CNTK's dropout is active only in training passes (forward for a backward)",)
        return LayerCode(module, (self.called(layer),), notes)

    def emit_softmax(self, layer: Layer) -> LayerCode:
        # the IR's axis counts the batch; CNTK's static axes do not
        return LayerCode("", (f"x = C.softmax(x, axis={layer['axis'] - 1})",))

    def emit_avgpool2d(self, layer: Layer) -> LayerCode:
        # pad=True never counts the cells outside the input: only where no padding counts
        flags = pad_flags(layer, layer["pool"])
        if layer["count_pad"] and _padded(layer):
            flags = None
        module = (
            f"C.layers.AveragePooling({layer['pool']}, strides={layer['stride']}, "
            f"pad={_pad_arg(flags or (False, False))}, name={layer.name!r})"
        )
        notes = [f"strides={layer['stride']} given (CNTK's AveragePooling strides default to 1)"]
        cells = overhang(layer)
        if flags is not None:
            if any(flags):
                notes.append(
                    f"padding {layer['padding']} (rounding={layer['rounding']}) as CNTK's own "
                    f"(pad={_pad_arg(flags)}): the same windows, the mean over the cells inside "
                    "the input (the padding and the overhang never counted)"
                )
            return LayerCode(module, (self.called(layer),), tuple(notes))
        counted = _pattern(layer["padding"], (0, 0)) if layer["count_pad"] else "None"
        notes.append(
            f"padding {layer['padding']} (rounding={layer['rounding']}, count_pad="
            f"{layer['count_pad']}): the mean over the zero-padded input divided by the mean "
            "over a mask of the cells counted (C.pad's zeros and the overhang never counted)"
        )
        call = (
            f"x = average_pool(self.{self.native(layer)}, x, {_pattern(layer['padding'], cells)}, "
            f"{counted})"
        )
        return LayerCode(module, (call,), tuple(notes), frozenset({"average_pool"}))

    def emit_embedding(self, layer: Layer) -> LayerCode:
        module = f"C.Parameter(({layer['vocab']}, {layer['dim']}), init=0, name={layer.name!r})"
        notes = ("token ids (fed as floats) gather rows of the (vocab, dim) table: C.gather",)
        return LayerCode(module, (f"x = C.gather(self.{self.native(layer)}, x)",), notes)

    def emit_repeat_vector(self, layer: Layer) -> LayerCode:
        features = ", ".join(str(d) for d in layer.in_shape)
        return LayerCode(
            "",
            (
                f"x = C.reshape(x, (1, {features}))",
                f"x = C.splice(*([x] * {layer['n']}), axis=0)",
            ),
        )

    def _rnn(
        self, layer: Layer, gates: int, axis: int = 0, shape: tuple[int, ...] = ()
    ) -> LayerCode:
        module = (
            f"RNNParameters({gates}, {layer.in_shape[-1]}, {layer['units']}, {layer['layers']}, "
            f"{layer['bias']}, {layer['bias'] and layer['recurrent_bias']}, {layer.name!r})"
        )
        extra = f", reset_after={layer['reset_after']}" if layer.op == "gru" else ""
        where = f", axis={axis}" if axis else ""
        call = f"x = {layer.op}(x, self.{self.native(layer)}{extra}, readout={layer['readout']!r}{where})"
        forward = [call]
        if layer["readout"] == "sequence":  # unpack leaves the steps a free dimension
            forward.append(f"x = C.reshape(x, {tuple(shape or layer.out_shape)})")
        notes = [
            f"{layer.op} written with CNTK ops as a cell in a loop built with "
            "C.sequence.past_value over C.to_sequence(x) (the steps a sequence axis), the input "
            "projection outside the loop, readout by C.sequence.last or "
            "C.sequence.unpack; canonical gates and bias vectors, weights transposed to (in, G * H)"
        ]
        if layer["bias"] and layer["recurrent_bias"]:
            notes.append(
                "bias_hh added to bias_ih outside the loop where it only adds to a gate's "
                "pre-activation"
                + (" (b_hr, b_hz; b_hn stays in the step)" if _keeps_b_hn(layer) else "")
            )
        if layer.op == "gru":
            notes.append(
                "not C.layers.GRU: CNTK's applies the reset gate before the recurrent product "
                "with one bias per gate, which cannot hold the canonical form"
            )
        return LayerCode(module, tuple(forward), tuple(notes), frozenset({"rnn"}))

    def emit_gru(self, layer: Layer) -> LayerCode:
        return self._rnn(layer, 3)

    def emit_lstm(self, layer: Layer) -> LayerCode:
        return self._rnn(layer, 4)

    def emit_batchnorm(self, layer: Layer) -> LayerCode:
        features = layer.in_shape[layer["axis"]]
        module = (
            f"BatchNorm({features}, {len(layer.in_shape)}, {layer['axis']}, {layer['eps']!r}, "
            f"{layer['scale']}, {layer['center']}, {layer.name!r})"
        )
        notes = [
            "C.batch_normalization with normalization_time_constant=0 (CNTK's running statistics "
            "are time-constant filters, 5000 samples by default): the forward leaves the batch's "
            "own statistics, and train_step folds them in as the canonical momentum "
            f"{layer['momentum']!r} says (RUNNING_STATS)"
        ]
        notes.append(
            "CNTK leaves the batch variance unbiased (n / (n - 1)): "
            + (
                "the canonical running_var=unbiased takes it as it is"
                if layer["running_var"] == "unbiased"
                else "times (n - 1) / n for the canonical biased running_var"
            )
        )
        return LayerCode(module, (self.called(layer),), tuple(notes), frozenset({"batchnorm"}))

    def running_stats(self, model: Model) -> list[tuple[str, float, int, bool]]:
        """(canonical name, canonical momentum, cells per sample and feature, unbiased) of each
        batch norm's running statistics; cells 0 for the mean."""
        out = []
        for layer in model.layers:
            inner = wrapped(layer)
            if inner.op != "batchnorm":
                continue
            cells = 1
            for d in layer.in_shape:
                cells *= d
            cells //= inner.in_shape[inner["axis"]]
            m, unbiased = inner["momentum"], inner["running_var"] == "unbiased"
            out += [
                (f"{layer.name}.running_mean", m, 0, unbiased),
                (f"{layer.name}.running_var", m, cells, unbiased),
            ]
        return out

    def wrap_steps(self, layer: Layer, inner: Layer, code: LayerCode) -> LayerCode:
        """Every step: an RNN recurs over axis 1 with the steps mapped; anything else runs on
        the steps made a sequence axis (C.to_sequence), unpacked after."""
        note = f"time_distributed({inner.op}): the {layer.in_shape[0]} steps "
        if inner.op in RECURRENT:
            code = self._rnn(inner, 3 if inner.op == "gru" else 4, 1, layer.out_shape)
            return replace(code, notes=(*code.notes, note + "a static axis the cell maps over"))
        forward = (
            "x = C.to_sequence(x)",
            *code.forward,
            "x = C.sequence.unpack(x, 0, no_mask_output=True)",
            f"x = C.reshape(x, {tuple(layer.out_shape)})",  # the steps were a free dimension
        )
        return replace(code, forward=forward, notes=(*code.notes, note + "a sequence axis"))

    # ---- merges -------------------------------------------------------------------------
    def emit_concat(self, layer: Layer, reads: tuple[str, ...]) -> LayerCode:
        return LayerCode("", (f"x = C.splice({', '.join(reads)}, axis={layer['axis']})",))

    # ---- optimiser ----------------------------------------------------------------------
    def _native_optimizer(self, model: Model) -> Optional[tuple[str, dict[str, Any]]]:
        return native_optimizer(model.train.optimizer, _constant_lr(model))  # type: ignore[union-attr]

    def optimizer_notes(self, model: Model) -> list[str]:
        if not model.params:
            return ["the model has no parameters: no optimiser, a training step computes the loss"]
        opt = model.train.optimizer  # type: ignore[union-attr]
        native = self._native_optimizer(model)
        if not native:
            return [f"optimizer {opt.kind}: no CNTK learner computes this form, update written out"]
        name, settings = native
        how = {
            "adam": "unit_gain=True (the canonical moments), the uncorrected eps placement, on the "
            "batch mean at lr",
            "adadelta": "the canonical AdaDelta, on the batch mean at lr",
            "sgd": "w -= lr * g, on the summed criterion at lr / n",
        }.get(
            name,
            "unit_gain=False (CNTK's default unit_gain=True scales the gradient by 1 - momentum), "
            "on the summed criterion at lr / n",
        )
        notes = [f"optimizer {opt.kind}: C.{name} with {how}, momenta per minibatch"]
        if opt.kind == "sgd" and settings.get("momentum") and opt["momentum_form"] == "gradient":
            notes.append(
                "momentum_form=gradient at a constant learning rate: the same steps as CNTK's "
                "update form (its velocity is lr times the canonical one)"
            )
        if settings.get("l2"):
            notes.append(
                "weight decay l2: l2_regularization_weight adds wd * n * w to the summed "
                "gradient, which lr / n makes wd * w on the mean"
            )
        return notes

    def _optimizer(self, model: Model) -> dict[str, Any]:
        return optimizer_context(model.train.optimizer, _constant_lr(model))  # type: ignore[union-attr]

    # ---- context ------------------------------------------------------------------------
    def native_paths(self, model: Model) -> dict[str, tuple[str, str]]:
        """Canonical parameter name -> (its attribute path in Net, layout change)."""
        paths = {}
        for layer in model.layers:
            inner = wrapped(layer)
            for p in layer.params:
                own = p.name[len(layer.name) + 1 :]
                layout = ""
                if inner.op == "dense":
                    own, layout = {"weight": ("W", "transpose"), "bias": ("b", "")}[own]
                elif inner.op == "conv2d":
                    own = {"weight": "W", "bias": "b"}[own]  # DilatedConv2D's too
                elif inner.op in RECURRENT and own.startswith("weight"):
                    layout = "transpose"
                path = f"{self.native(layer)}.{own}"
                paths[p.name] = (self.native(layer) if inner.op == "embedding" else path, layout)
        return paths
