"""The per-layer table printed by `dlspec summary`."""

from __future__ import annotations

from dlspec.ir.model import TIME_DISTRIBUTED, Layer, Model, wrapped


def _shape(shape: tuple[int, ...]) -> str:
    return "(N, " + ", ".join(str(d) for d in shape) + ")" if shape else "(N,)"


def _op(layer: Layer) -> str:
    """The op, with the wrapped one for a time_distributed layer: `time_distributed(lstm)`."""
    return f"{layer.op}({wrapped(layer).op})" if layer.op == TIME_DISTRIBUTED else layer.op


def summary_rows(model: Model) -> list[tuple[str, str, str, str]]:
    """(name, op, output shape, parameter count) per layer, input first."""
    rows = [(inp.name, f"input {inp.dtype}", _shape(inp.shape), "0") for inp in model.inputs]
    for layer in model.layers:
        rows.append((layer.name, _op(layer), _shape(layer.out_shape), f"{layer.param_count:,}"))
    return rows


def summary_text(model: Model) -> str:
    """A fixed-width table with totals."""
    header = ("layer", "op", "output shape", "parameters")
    rows = [header] + summary_rows(model)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[j].ljust(widths[j]) if j < 3 else row[j].rjust(widths[j]) for j in range(4)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    buffers = (
        f" and {model.buffer_count:,} non-trainable (running statistics)"
        if model.buffer_count
        else ""
    )
    lines.append(
        f"model {model.name}: {len(model.layers)} layers, {model.param_count:,} parameters"
        f"{buffers} (defaults profile: {model.profile})"
    )
    return "\n".join(lines)
