"""The per-layer table printed by `dlspec summary`: text, Markdown or JSON."""

from __future__ import annotations

import json
from typing import Any

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
    lines += ["", totals(model)]
    return "\n".join(lines)


def totals(model: Model) -> str:
    """The line under the table: layers, parameters, running statistics, defaults profile."""
    buffers = (
        f" and {model.buffer_count:,} non-trainable (running statistics)"
        if model.buffer_count
        else ""
    )
    return (
        f"model {model.name}: {len(model.layers)} layers, {model.param_count:,} parameters"
        f"{buffers} (defaults profile: {model.profile})"
    )


SUMMARY_SCHEMA = "dlspec.summary/1"


def summary_data(model: Model, spec: str) -> dict[str, Any]:
    """One model for `dlspec summary --format json` (shapes without the batch dimension)."""
    return {
        "spec": spec,
        "model": model.name,
        "profile": model.profile,
        "parameters": model.param_count,
        "non_trainable": model.buffer_count,
        "inputs": [
            {"name": inp.name, "dtype": inp.dtype, "shape": list(inp.shape)} for inp in model.inputs
        ],
        "layers": [
            {
                "name": layer.name,
                "op": _op(layer),
                "shape": list(layer.out_shape),
                "parameters": layer.param_count,
                "non_trainable": layer.buffer_count,
            }
            for layer in model.layers
        ],
    }


def summary_json(models: list[tuple[str, Model]]) -> str:
    """The document `dlspec summary --format json` prints: a schema tag and one entry per spec."""
    data = {"schema": SUMMARY_SCHEMA, "models": [summary_data(m, spec) for spec, m in models]}
    return json.dumps(data, indent=2)


def _md(cell: str) -> str:
    """A Markdown table cell: pipes escaped."""
    return cell.replace("|", "\\|")


def summary_markdown(model: Model) -> str:
    """A GitHub Markdown table (parameters right-aligned) and the totals line."""
    lines = ["| layer | op | output shape | parameters |", "| --- | --- | --- | ---: |"]
    lines += ["| " + " | ".join(map(_md, row)) + " |" for row in summary_rows(model)]
    lines += ["", totals(model)]
    return "\n".join(lines)
