"""`dlspec graph`: the network as Graphviz DOT text, and its rendering to SVG or PNG by dot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional

from dlspec.errors import DlspecError
from dlspec.ir.model import Input, Layer, Model, wrapped
from dlspec.summary import _op, _shape

FORMATS = ("svg", "png", "dot")
RANKDIRS = ("TB", "LR")
DOT_ENV = "DLSPEC_DOT"  # a dot program to use instead of the built runtime's or PATH's
BUILT_DOT = Path(".runtimes") / "graphviz" / "dot"
FIX_DOT = (
    "make runtimes (builds .runtimes/graphviz from Debian's packages), or install graphviz "
    f"so that dot is on PATH, or set {DOT_ENV}; `-o FILE.dot` needs no dot"
)
INPUT_STYLE = 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"'
LAYER_STYLE = 'shape=box, style="rounded,filled", fillcolor="#f4f4f4"'
OUTPUT_STYLE = 'shape=box, style="rounded,filled,bold", fillcolor="#fde9d0"'


def quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


def _value(value: Any) -> str:
    """An attribute value, short: 3x3 for a kernel, an initialiser's readable form."""
    if hasattr(value, "describe"):
        return str(value.describe())
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "x".join(str(v) for v in value)
    if isinstance(value, tuple) and value and all(_pair(v) for v in value):  # padding per axis
        return "x".join(str(v[0]) if v[0] == v[1] else f"{v[0]}+{v[1]}" for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)


def key_attributes(layer: Layer) -> str:
    """The attributes the spec states (a time_distributed layer's wrapped layer's), as k=v."""
    inner = wrapped(layer)
    shown = [k for k in inner.attrs if k in inner.stated and k != "layer"]
    if inner.attrs.get("activation", "none") != "none" and "activation" not in shown:
        shown.append("activation")
    return ", ".join(f"{k}={_value(inner.attrs[k])}" for k in shown)


def _made_shape(model: Model, name: str) -> str:
    made = model.producer(name)
    if isinstance(made, Layer):
        return _shape(made.out_shape)
    if isinstance(made, Input):
        return _shape(made.shape)
    return "?"


def layer_label(model: Model, layer: Layer) -> str:
    """Name and op, key attributes, input shape(s) -> output shape, parameters."""
    lines = [f"{layer.name}: {_op(layer)}"]
    attrs = key_attributes(layer)
    if attrs:
        lines.append(attrs)
    ins = " + ".join(_made_shape(model, name) for name in layer.inputs)
    lines.append(f"{ins} -> {_shape(layer.out_shape)}")
    params = f"params: {layer.param_count:,}"
    if layer.buffer_count:
        params += f" (+{layer.buffer_count:,} non-trainable)"
    lines.append(params)
    if layer.name in model.outputs:
        lines.append("output" if len(model.outputs) == 1 else f"output {_rank(model, layer)}")
    return "\n".join(lines)


def _rank(model: Model, layer: Layer) -> int:
    return model.outputs.index(layer.name) + 1


def input_label(inp: Input) -> str:
    """Name, `input` and dtype, shape."""
    return f"{inp.name}: input {inp.dtype}\n{_shape(inp.shape)}"


def _node(name: str, label: str, style: str) -> str:
    return f"  {quote(name)} [label={quote(label)}, {style}];"


def _style(model: Model, layer: Layer) -> str:
    return OUTPUT_STYLE if layer.name in model.outputs else LAYER_STYLE


def dot_source(model: Model, rankdir: str = "TB") -> str:
    """The model as a DOT digraph: a node per input and layer in spec order, an edge per tensor a
    layer reads (a merge gets one per operand). Deterministic: the same model, the same text."""
    if rankdir not in RANKDIRS:
        raise DlspecError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    total = f"{model.name}: {len(model.layers)} layers, {model.param_count:,} parameters"
    lines = [
        f"digraph {quote(model.name)} {{",
        f'  graph [rankdir={rankdir}, label={quote(total)}, labelloc=t, fontname="DejaVu Sans"];',
        '  node [fontname="DejaVu Sans", fontsize=10];',
        '  edge [fontname="DejaVu Sans", fontsize=9];',
    ]
    lines += [_node(inp.name, input_label(inp), INPUT_STYLE) for inp in model.inputs]
    lines += [_node(ly.name, layer_label(model, ly), _style(model, ly)) for ly in model.layers]
    for layer in model.layers:
        lines += [f"  {quote(src)} -> {quote(layer.name)};" for src in layer.inputs]
    lines.append("}")
    return "\n".join(lines) + "\n"


def format_of(path: str, named: Optional[str]) -> str:
    """--format when given, else the output file's suffix (svg, png or dot)."""
    if named:
        return named
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix == "gv":
        return "dot"
    if suffix not in FORMATS:
        raise DlspecError(
            f"cannot tell the format from {path!r}: name it .svg, .png or .dot, or pass --format"
        )
    return suffix


def find_dot(home: Optional[Path] = None) -> Optional[str]:
    """The dot to run: $DLSPEC_DOT, else the built runtime's wrapper under `home` (the runtimes
    config's folder), else dot on PATH; None when there is none."""
    named = os.environ.get(DOT_ENV)
    if named:
        return named
    if home is not None:
        built = home / BUILT_DOT
        if os.access(built, os.X_OK):
            return str(built)
    return shutil.which("dot")


def runtimes_home() -> Path:
    """Where `make runtimes` puts .runtimes/: the runtimes config's folder, else the current one."""
    from dlspec import runtimes

    return runtimes.load_config().home


def missing_dot_reason(home: Path) -> str:
    """Why there is no dot here, with the fix (the failed build's reason when there is one)."""
    reason = home / ".runtimes" / "graphviz.unavailable"
    why = ""
    if reason.is_file():
        why = f" (the last build failed: {reason.read_text(encoding='utf-8').strip()})"
    return f"graphviz's dot not found{why}; fix: {FIX_DOT}"


def render(source: str, fmt: str, dot: str) -> bytes:
    """Run dot on DOT `source`: the SVG or PNG bytes; a failure is a DlspecError with dot's
    last error line."""
    try:
        done = subprocess.run(
            [dot, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DlspecError(f"cannot run {dot}: {err}") from None
    if done.returncode != 0 or not done.stdout:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines() or [
            f"exit status {done.returncode}"
        ]
        raise DlspecError(f"{dot} -T{fmt} failed: {last[-1]}")
    return done.stdout


def dot_version(dot: str) -> tuple[bool, str]:
    """(runs, version line) of a dot program (`dot -V` writes to stderr)."""
    try:
        done = subprocess.run([dot, "-V"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    text = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode == 0, text[-1] if text else f"exit status {done.returncode}"


def file_mode() -> int:
    """The mode a new file gets from open(): 0o666 less the umask (the staged file had 0o600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def graph_bytes(model: Model, fmt: str, rankdir: str = "TB") -> bytes:
    """The file's bytes: DOT text as is, SVG and PNG through dot (DlspecError when none)."""
    source = dot_source(model, rankdir)
    if fmt == "dot":
        return source.encode("utf-8")
    home = runtimes_home()
    dot = find_dot(home)
    if dot is None:
        raise DlspecError(missing_dot_reason(home))
    return render(source, fmt, dot)
