"""`dlspec weights import`: a library model's weights as the canonical npz of a spec.

Sources: a PyTorch `state_dict` file (torchvision's models, or any module whose parameterised
layers are registered in forward order), and Keras 3 weights (a `.weights.h5`, a `.keras` archive
or a live `keras.Model`).

The mapping is structural, as Keras's own `load_weights` is: the spec's conv2d, batchnorm and
dense layers, each op in model order, take the library's layers of that kind in the library's
order (torchvision: the state_dict's order, which is the modules' registration order; Keras: the
order of `model.layers`, which a `.weights.h5` keeps per layer class as `conv2d`, `conv2d_1`, ...).
Within a pair, tensors go by role (weight, bias, running_mean, running_var) and are converted to
the canonical layout; a tensor whose canonical shape differs from the spec's is an error. When the
counts differ, the two sequences are aligned on their shapes (difflib, deterministic) so that the
error names the layers one side lacks rather than every layer after them. Nothing is guessed: every
missing, unexpected or mis-shaped tensor is listed and no file is written.
"""

from __future__ import annotations

import difflib
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from dlspec.errors import display_path
from dlspec.ir.model import Layer, Model
from dlspec.limits import MAX_PROBLEMS_SHOWN
from dlspec.weights.canonical import Weights, WeightsError, check_weights

Array = np.ndarray
PathLike = Union[str, Path]

KINDS = ("conv2d", "batchnorm", "dense")
LIBRARIES = ("torchvision", "keras")

# torchvision: the state_dict entries batch norm keeps that are no weights (a step counter)
IGNORED_TORCH = ("num_batches_tracked",)

# Keras: snake-case layer class (the group names of a .weights.h5) and class name -> kind
KERAS_GROUPS = {"conv2d": "conv2d", "batch_normalization": "batchnorm", "dense": "dense"}
KERAS_CLASSES = {"Conv2D": "conv2d", "BatchNormalization": "batchnorm", "Dense": "dense"}
KERAS_NATIVE = {
    "conv2d": {"weight": "kernel", "bias": "bias"},
    "dense": {"weight": "kernel", "bias": "bias"},
    "batchnorm": {
        "weight": "gamma",
        "bias": "beta",
        "running_mean": "moving_mean",
        "running_var": "moving_variance",
    },
}
AFFINE = "weight|bias"  # a 3-variable Keras batch norm: gamma or beta, decided by the spec


@dataclass
class Tensor:
    """One library tensor: its library name (for messages), canonical role and stored value."""

    name: str
    role: str
    value: Array


@dataclass
class LibraryLayer:
    """A library layer with weights: its name, kind (conv2d, batchnorm, dense or '' when it is
    none of them) and tensors in the library's layout."""

    name: str
    kind: str
    tensors: list[Tensor]


@dataclass
class Source:
    """A library model's weights: its layers in order, how to convert a tensor to the canonical
    layout, and what was read but deliberately not imported (said in the summary)."""

    library: str
    where: str
    layers: list[LibraryLayer]
    to_canonical: Callable[[str, Tensor, Optional[Layer]], Array]
    canonical_shape: Callable[[str, Tensor], tuple[int, ...]]
    ignored: list[str] = field(default_factory=list)


@dataclass
class Imported:
    """The canonical weights, which library layer filled which spec layer, and the notes."""

    weights: Weights
    pairs: list[tuple[str, str, str]]  # (library layer, spec layer, kind)
    ignored: list[str]

    def summary(self, source: str, out: str) -> str:
        """One line for stderr."""
        kinds = {k: sum(1 for _, _, kind in self.pairs if kind == k) for k in KINDS}
        counts = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        line = f"imported {len(self.weights)} tensors of {len(self.pairs)} layers ({counts})"
        line += f" from {source} into {out}"
        if self.ignored:
            line += f"; ignored {len(self.ignored)} {IGNORED_TORCH[0]} entries (a step counter)"
        return line

    def table(self) -> str:
        """The mapping, one `library layer -> spec layer (kind)` line per pair."""
        width = max((len(lib) for lib, _, _ in self.pairs), default=0)
        return "\n".join(f"{lib:<{width}}  ->  {spec}  ({kind})" for lib, spec, kind in self.pairs)


# ---- torchvision / PyTorch ------------------------------------------------------------------


def read_state_dict(path: PathLike) -> dict[str, Array]:
    """A PyTorch state_dict file as NumPy arrays, read with torch.load(weights_only=True): a
    file runs no code. A checkpoint dict holding the state_dict under "state_dict" is accepted."""
    try:
        import torch
    except ImportError:
        raise WeightsError(
            "reading a PyTorch state_dict needs torch in this interpreter (pip install torch)"
        ) from None
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds; all mean "not readable"
        text = str(err).strip()
        first = text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(err).__name__
        raise WeightsError(
            f"cannot read {display_path(str(path))} as a PyTorch state_dict ({first}); it must "
            "be a file written by torch.save(model.state_dict(), path), which "
            "torch.load(weights_only=True) reads without running code"
        ) from None
    if isinstance(loaded, Mapping) and not _all_tensors(loaded, torch):
        inner = loaded.get("state_dict")
        if isinstance(inner, Mapping) and _all_tensors(inner, torch):
            loaded = inner
    if not isinstance(loaded, Mapping) or not _all_tensors(loaded, torch):
        raise WeightsError(
            f"{display_path(str(path))} is not a state_dict (a mapping of names to tensors): save "
            "model.state_dict(), not the model"
        )
    return {str(k): _numpy(v, torch) for k, v in loaded.items()}


def _all_tensors(mapping: Mapping[Any, Any], torch: Any) -> bool:
    return bool(mapping) and all(isinstance(v, torch.Tensor) for v in mapping.values())


def _numpy(tensor: Any, torch: Any) -> Array:
    """float16 and bfloat16 (which NumPy lacks) as float32; float64 and integers as they are."""
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    return tensor.numpy()


def torchvision_source(state: Mapping[str, Any], where: str = "state_dict") -> Source:
    """A state_dict's layers in its order: entries grouped by module path (the name before the
    last dot). A module with running_mean/running_var is a batch norm, one with a 4-D weight a
    convolution, one with a 2-D weight a dense layer; `num_batches_tracked` is ignored."""
    groups: dict[str, list[Tensor]] = {}
    ignored = []
    for key, value in state.items():
        prefix, _, role = key.rpartition(".")
        if role in IGNORED_TORCH:
            ignored.append(key)
            continue
        groups.setdefault(prefix, []).append(Tensor(key, role, np.asarray(value)))
    layers = [LibraryLayer(name, _torch_kind(tensors), tensors) for name, tensors in groups.items()]
    return Source("torchvision", where, layers, _same, _same_shape, ignored)


def _torch_kind(tensors: list[Tensor]) -> str:
    roles = {t.role: t for t in tensors}
    if not set(roles) <= {"weight", "bias", "running_mean", "running_var"}:
        return ""
    if "running_mean" in roles or "running_var" in roles:
        return "batchnorm"
    weight = roles.get("weight")
    if weight is not None and weight.value.ndim == 4:
        return "conv2d"
    if weight is not None and weight.value.ndim == 2:
        return "dense"
    return ""


def _same(kind: str, tensor: Tensor, layer: Optional[Layer]) -> Array:  # noqa: ARG001
    return tensor.value


def _same_shape(kind: str, tensor: Tensor) -> tuple[int, ...]:  # noqa: ARG001
    return tuple(tensor.value.shape)


# ---- Keras 3 --------------------------------------------------------------------------------


def read_keras_weights(path: PathLike) -> Source:
    """A Keras 3 `.weights.h5`, or the `model.weights.h5` inside a `.keras` archive (read as
    data: no model is rebuilt and no code runs). Its top-level `layers/<class>[_k]/vars/<i>`
    groups hold the k-th layer of each class in the model's layer order."""
    try:
        import h5py
    except ImportError:
        raise WeightsError(
            "reading Keras weights needs h5py in this interpreter (pip install h5py)"
        ) from None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = archive.read("model.weights.h5")
            handle = h5py.File(io.BytesIO(data), "r")
        else:
            handle = h5py.File(str(path), "r")
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        raise WeightsError(
            f"cannot read {display_path(str(path))} as Keras weights: {err}"
        ) from None
    with handle:
        layers = _keras_h5_layers(handle, display_path(str(path)))
    return Source(
        "keras", display_path(str(path)), layers, _keras_to_canonical, _keras_canonical_shape
    )


def _keras_h5_layers(handle: Any, where: str) -> list[LibraryLayer]:
    group = handle.get("layers")
    if group is None:
        raise WeightsError(f"{where} holds no Keras 3 layer weights (no 'layers' group)")
    found: dict[str, list[tuple[int, LibraryLayer]]] = {}
    others: list[LibraryLayer] = []
    for key in group:
        variables = group[key].get("vars")
        if variables is None or not len(variables):
            if _has_weights(group[key]):
                raise WeightsError(
                    f"{where}: layers/{key} is a nested model; save the weights of a model whose "
                    "layers hold the weights themselves (one level)"
                )
            continue
        name = str(variables.attrs.get("name", key))
        values = [np.asarray(variables[str(i)]) for i in range(len(variables))]
        match = re.fullmatch(r"(.+?)(?:_(\d+))?", key)
        cls, index = (match.group(1), int(match.group(2) or 0)) if match else (key, 0)
        kind = KERAS_GROUPS.get(cls, "")
        layer = LibraryLayer(name, kind, _keras_tensors(kind, name, values, f"layers/{key}"))
        if kind:
            found.setdefault(kind, []).append((index, layer))
        else:
            others.append(layer)
    ordered = [layer for kind in KINDS for _, layer in sorted(found.get(kind, []))]
    return ordered + others


def _has_weights(group: Any) -> bool:
    return "layers" in group and any(
        "vars" in group["layers"][k] and len(group["layers"][k]["vars"]) for k in group["layers"]
    )


def keras_model_source(model: Any) -> Source:
    """A live Keras model's layers in `model.layers` order (one level, as .weights.h5 files)."""
    layers = []
    for layer in model.layers:
        values = [np.asarray(v) for v in layer.get_weights()]
        if not values:
            continue
        kind = KERAS_CLASSES.get(type(layer).__name__, "")
        layers.append(LibraryLayer(layer.name, kind, _keras_tensors(kind, layer.name, values, "")))
    return Source(
        "keras", f"Keras model {model.name}", layers, _keras_to_canonical, _keras_canonical_shape
    )


def _keras_roles(kind: str, count: int) -> list[str]:
    if kind in ("conv2d", "dense") and count in (1, 2):
        return ["weight", "bias"][:count]
    if kind == "batchnorm" and count in (2, 3, 4):
        return {
            2: ["running_mean", "running_var"],
            3: [AFFINE, "running_mean", "running_var"],
            4: ["weight", "bias", "running_mean", "running_var"],
        }[count]
    return [f"variable {i}" for i in range(count)]


def _keras_tensors(kind: str, name: str, values: list[Array], path: str) -> list[Tensor]:
    roles = _keras_roles(kind, len(values))
    native = KERAS_NATIVE.get(kind, {})
    tensors = []
    for i, (role, value) in enumerate(zip(roles, values, strict=True)):
        label = native.get(role, "gamma or beta" if role == AFFINE else role)
        where = f" ({path}/vars/{i})" if path else ""
        tensors.append(Tensor(f"{name}/{label}{where}", role, value))
    return tensors


def _keras_to_canonical(kind: str, tensor: Tensor, layer: Optional[Layer]) -> Array:
    """conv2d kernel (kh, kw, in, out) -> (out, in, kh, kw); dense kernel (in, out) -> (out, in),
    rows in (H, W, C) order after a flatten of a (C, H, W) map (channels-last Keras); the rest as
    is. The inverses of dlspec/backends/layouts.py."""
    value = tensor.value
    if tensor.role != "weight" or kind == "batchnorm":
        return value
    if kind == "conv2d":
        return value.transpose(3, 2, 0, 1)
    source = layer.attrs.get("flattened_from", ()) if layer is not None else ()
    if kind == "dense" and source:
        ch, h, w = source
        fan_in, out = value.shape
        return value.reshape(h, w, ch, out).transpose(3, 2, 0, 1).reshape(out, fan_in)
    return value.T


def _keras_canonical_shape(kind: str, tensor: Tensor) -> tuple[int, ...]:
    shape = tuple(tensor.value.shape)
    if tensor.role == "weight" and kind == "conv2d" and len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    if tensor.role == "weight" and kind == "dense" and len(shape) == 2:
        return (shape[1], shape[0])
    return shape


# ---- matching -------------------------------------------------------------------------------


def _unimportable(with_params: list[Layer], source: Source) -> list[str]:
    """Spec layers with parameters of an op import cannot fill, and library layers of no kind."""
    problems = []
    for layer in with_params:
        if layer.op not in KINDS:
            names = ", ".join(p.name for p in layer.params)
            problems.append(
                f"missing {names}: import fills conv2d, batchnorm and dense layers, not "
                f"{layer.op} ({layer.name})"
            )
    for lib in source.layers:
        if not lib.kind:
            names = ", ".join(t.name for t in lib.tensors)
            problems.append(
                f"unexpected {names}: {lib.name} is not a conv2d, batchnorm or dense layer"
            )
    return problems


def _import_kind(
    kind: str,
    with_params: list[Layer],
    source: Source,
    weights: Weights,
    pairs: list[tuple[str, str, str]],
) -> list[str]:
    """Align one kind's spec and library layers in order, filling `weights` and `pairs`; the
    problems found."""
    ours = [layer for layer in with_params if layer.op == kind]
    theirs = [lib for lib in source.layers if lib.kind == kind]
    problems = []
    if len(ours) != len(theirs):
        problems.append(
            f"the spec has {len(ours)} {kind} layers, the {source.library} weights {len(theirs)}"
        )
    for spec_layer, lib in _align(kind, ours, theirs, source):
        if spec_layer is None:
            names = ", ".join(t.name for t in lib.tensors)  # type: ignore[union-attr]
            problems.append(f"unexpected {names}: no {kind} of the spec is left for it")
        elif lib is None:
            names = ", ".join(p.name for p in spec_layer.params)
            problems.append(f"missing {names}: the weights have no {kind} left for it")
        else:
            pairs.append((lib.name, spec_layer.name, kind))
            problems += _fill(kind, spec_layer, lib, source, weights)
    return problems


def _misfit(model: Model, source: Source, problems: list[str]) -> WeightsError:
    """The error listing the first MAX_PROBLEMS_SHOWN problems and how many more there are."""
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return WeightsError(
        f"the {source.library} weights in {source.where} do not fit model {model.name} "
        f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n  "
        + "\n  ".join(shown)
        + tail
    )


def import_weights(model: Model, source: Source) -> Imported:
    """The canonical weights of `model` from `source`, or WeightsError listing every problem."""
    weights: Weights = {}
    pairs: list[tuple[str, str, str]] = []
    with_params = [layer for layer in model.layers if layer.params]
    problems = _unimportable(with_params, source)
    for kind in KINDS:
        problems += _import_kind(kind, with_params, source, weights, pairs)
    if problems:
        raise _misfit(model, source, problems)
    ordered = {p.name: weights[p.name] for p in model.params}
    check_weights(model, ordered, f"weights imported from {source.where}")
    return Imported(ordered, pairs, list(source.ignored))


def _signature(kind: str, tensors: list[tuple[str, tuple[int, ...]]]) -> tuple[Any, ...]:
    return (kind, tuple(tensors))


def _align(
    kind: str, ours: list[Layer], theirs: list[LibraryLayer], source: Source
) -> list[tuple[Optional[Layer], Optional[LibraryLayer]]]:
    """Pairs in order: equal counts pair by position; otherwise the shape signatures are aligned
    and the layers one side lacks are paired with None."""
    if len(ours) == len(theirs):
        return list(zip(ours, theirs, strict=True))  # type: ignore[arg-type]
    a = [_signature(kind, [(p.role, tuple(p.shape)) for p in layer.params]) for layer in ours]
    b = [
        _signature(kind, [(t.role, source.canonical_shape(kind, t)) for t in lib.tensors])
        for lib in theirs
    ]
    out: list[tuple[Optional[Layer], Optional[LibraryLayer]]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        n = min(i2 - i1, j2 - j1)
        out += list(zip(ours[i1 : i1 + n], theirs[j1 : j1 + n], strict=True))
        out += [(layer, None) for layer in ours[i1 + n : i2]]
        out += [(None, lib) for lib in theirs[j1 + n : j2]]
    return out


def _fill(
    kind: str, layer: Layer, lib: LibraryLayer, source: Source, weights: Weights
) -> list[str]:
    """Put one library layer's tensors into `weights`; the problems of this pair."""
    problems = []
    roles = {p.role for p in layer.params}
    tensors = {t.role: t for t in lib.tensors}
    if AFFINE in tensors:  # Keras batch norm with gamma or beta only: the spec says which
        affine = [r for r in ("weight", "bias") if r in roles]
        if len(affine) == 1:
            tensors[affine[0]] = tensors.pop(AFFINE)
    for param in layer.params:
        tensor = tensors.get(param.role)
        if tensor is None:
            problems.append(f"missing {param.name}: {lib.name} has no {param.role}")
            continue
        shape = source.canonical_shape(kind, tensor)
        if shape != tuple(param.shape):
            native = tuple(tensor.value.shape)
            as_canonical = f" ({list(shape)} in the canonical layout)" if native != shape else ""
            problems.append(
                f"{tensor.name} has shape {list(native)}{as_canonical}, but {param.name} is "
                f"{list(param.shape)}"
            )
            continue
        weights[param.name] = np.asarray(
            source.to_canonical(kind, tensor, layer), dtype=np.float32
        ).copy()
    for role, tensor in tensors.items():
        if role not in roles:
            hint = " (bias=false there)" if role == "bias" and kind != "batchnorm" else ""
            problems.append(f"unexpected {tensor.name}: {layer.name} has no {role}{hint}")
    return problems


def load_source(library: str, path: PathLike) -> Source:
    """Read `path` as the named library's weights file."""
    if library == "torchvision":
        return torchvision_source(read_state_dict(path), display_path(str(path)))
    if library == "keras":
        return read_keras_weights(path)
    raise WeightsError(f"unknown library {library!r} (known: {', '.join(LIBRARIES)})")
