"""Canonical (PyTorch/cuDNN) weight layouts to channels-last framework layouts, as NumPy code.

Shared by the TensorFlow and Keras targets. Each NativeParam says how one native weight is built
from canonical arrays (`c[name]`) and how canonical arrays are recovered from native ones
(`n[name]`); the expressions are pasted into generated scripts, so they use NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlspec.ir.model import Layer


@dataclass(frozen=True)
class NativeParam:
    """One native weight: its name and shape, its recipe from canonical arrays, and the inverse."""

    native: str
    shape: tuple[int, ...]
    to_native: str
    back: tuple[tuple[str, str], ...]
    trainable: bool = True


def _c(name: str) -> str:
    return f'c["{name}"]'


def _n(name: str) -> str:
    return f'n["{name}"]'


def conv_kernel(layer: Layer, native: str) -> NativeParam:
    """(out, in, kh, kw) -> (kh, kw, in, out)."""
    o, i, kh, kw = layer.params[0].shape
    name = layer.params[0].name
    return NativeParam(
        native,
        (kh, kw, i, o),
        f"{_c(name)}.transpose(2, 3, 1, 0)",
        ((name, f"{_n(native)}.transpose(3, 2, 0, 1)"),),
    )


def dense_kernel(layer: Layer, native: str) -> NativeParam:
    """(out, in) -> (in, out); after a flatten of (C, H, W) the rows follow (H, W, C) order."""
    out, fan_in = layer.params[0].shape
    name = layer.params[0].name
    source = layer.attrs.get("flattened_from", ())
    if not source:
        return NativeParam(native, (fan_in, out), f"{_c(name)}.T", ((name, f"{_n(native)}.T"),))
    ch, h, w = source
    to = f"{_c(name)}.reshape({out}, {ch}, {h}, {w}).transpose(2, 3, 1, 0).reshape({fan_in}, {out})"
    back = f"{_n(native)}.reshape({h}, {w}, {ch}, {out}).transpose(3, 2, 0, 1).reshape({out}, {fan_in})"
    return NativeParam(native, (fan_in, out), to, ((name, back),))


def same(name: str, native: str, shape: tuple[int, ...], trainable: bool = True) -> NativeParam:
    """A weight stored identically (biases, embedding tables, batch norm's vectors)."""
    return NativeParam(native, shape, _c(name), ((name, _n(native)),), trainable)


# canonical batch norm roles -> Keras's (and TensorFlow's) names
BATCHNORM_NATIVE = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}


def batchnorm_params(layer: Layer, prefix: str) -> list[NativeParam]:
    """batchnorm: gamma, beta, moving_mean, moving_variance (the present ones), as is."""
    return [
        same(p.name, f"{prefix}/{BATCHNORM_NATIVE[p.role]}", p.shape, p.trainable)
        for p in layer.params
    ]


def gru_keras(layer: Layer, k: int, prefix: str) -> list[NativeParam]:
    """Keras GRU: kernel (in, 3H) and recurrent (H, 3H) in gate order [z, r, h]; bias (2, 3H) =
    [input bias; recurrent bias] (reset_after, recurrent_bias=true) or one bias (3H,) = the input
    bias (reset_after=false, recurrent_bias=false). Swapping the first two blocks maps [r, z, n]
    to [z, r, h] and back (it is its own inverse)."""
    units = layer["units"]
    swap = f"[np.r_[{units}:{2 * units}, 0:{units}, {2 * units}:{3 * units}]]"
    params: list[NativeParam] = []
    base = f"{layer.name}.{{}}_l{k}"
    w_ih, w_hh = base.format("weight_ih"), base.format("weight_hh")
    fan_in = layer.in_shape[-1] if k == 0 else units
    for native_role, name, rows in (("kernel", w_ih, fan_in), ("recurrent_kernel", w_hh, units)):
        native = f"{prefix}/{native_role}"
        params.append(
            NativeParam(
                native, (rows, 3 * units), f"{_c(name)}{swap}.T", ((name, f"{_n(native)}.T{swap}"),)
            )
        )
    if layer["bias"] and not layer["recurrent_bias"]:
        b_ih, native = base.format("bias_ih"), f"{prefix}/bias"
        back = ((b_ih, f"{_n(native)}{swap}"),)
        params.append(NativeParam(native, (3 * units,), f"{_c(b_ih)}{swap}", back))
    elif layer["bias"]:
        b_ih, b_hh = base.format("bias_ih"), base.format("bias_hh")
        native = f"{prefix}/bias"
        to = f"np.stack([{_c(b_ih)}{swap}, {_c(b_hh)}{swap}])"
        back = ((b_ih, f"{_n(native)}[0]{swap}"), (b_hh, f"{_n(native)}[1]{swap}"))
        params.append(NativeParam(native, (2, 3 * units), to, back))
    return params


def lstm_keras(layer: Layer, k: int, prefix: str) -> list[NativeParam]:
    """Keras LSTM: kernel (in, 4H), recurrent (H, 4H), gate order [i, f, c, o] as canonical;
    ONE bias (4H,) = bias_ih (the IR must say recurrent_bias=false)."""
    units = layer["units"]
    base = f"{layer.name}.{{}}_l{k}"
    fan_in = layer.in_shape[-1] if k == 0 else units
    params = [
        NativeParam(
            f"{prefix}/kernel",
            (fan_in, 4 * units),
            f"{_c(base.format('weight_ih'))}.T",
            ((base.format("weight_ih"), f"{_n(prefix + '/kernel')}.T"),),
        ),
        NativeParam(
            f"{prefix}/recurrent_kernel",
            (units, 4 * units),
            f"{_c(base.format('weight_hh'))}.T",
            ((base.format("weight_hh"), f"{_n(prefix + '/recurrent_kernel')}.T"),),
        ),
    ]
    if layer["bias"]:
        params.append(same(base.format("bias_ih"), f"{prefix}/bias", (4 * units,)))
    return params


def rnn_cell_keras(layer: Layer, k: int, prefix: str) -> list[NativeParam]:
    """The Keras script's CanonicalRNNCell (the gru/lstm bias forms Keras's own layers lack):
    kernel (in, G*H) = weight_ih.T and recurrent_kernel (H, G*H) = weight_hh.T in the canonical
    gate order (no reordering), then bias_ih and bias_hh (the present ones) as they are."""
    native_roles = {
        "weight_ih": "kernel",
        "weight_hh": "recurrent_kernel",
        "bias_ih": "bias_ih",
        "bias_hh": "bias_hh",
    }
    params = []
    for p in layer.params:
        if not p.name.endswith(f"_l{k}"):
            continue
        native = f"{prefix}/{native_roles[p.role]}"
        if p.role.startswith("bias"):
            params.append(same(p.name, native, p.shape))
        else:
            rows, cols = p.shape
            params.append(
                NativeParam(native, (cols, rows), f"{_c(p.name)}.T", ((p.name, f"{_n(native)}.T"),))
            )
    return params
