"""Initialisers: read a spec's initialiser value, and resolve one against a parameter's fans."""

from __future__ import annotations

import math
from typing import Any

from dlspec.errors import UnknownName
from dlspec.frontend import ast
from dlspec.frontend import values as V
from dlspec.ir.model import Init, InitSpec

# name -> (argument -> converter, with default or required); arguments are keyword or positional
_POS = {"limit": 0.0, "std": 0.0, "mean": 0.0, "value": 0.0, "gain": 1.0, "scale": 1.0}

SCHEMES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "glorot_uniform": ((), {}),
    "glorot_normal": ((), {}),
    "he_uniform": ((), {}),
    "he_normal": ((), {}),
    "lecun_uniform": ((), {}),
    "lecun_normal": ((), {}),
    "zeros": ((), {}),
    "ones": ((), {}),
    "uniform": (("limit",), {"limit": None}),
    "normal": (("std", "mean"), {"std": None, "mean": 0.0}),
    "truncated_normal": (("std", "mean"), {"std": None, "mean": 0.0}),
    "constant": (("value",), {"value": None}),
    "orthogonal": (("gain",), {"gain": 1.0}),
    "variance_scaling": (
        ("scale", "mode", "distribution"),
        {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
    ),
}
# initialisers as other frameworks name them (plain spelling), for messages
ELSEWHERE = {
    "xavieruniform": "glorot_uniform",
    "xaviernormal": "glorot_normal",
    "kaiminguniform": "he_uniform",
    "kaimingnormal": "he_normal",
    "randomuniform": "uniform(limit=...)",
    "randomnormal": "normal(std=...)",
    "truncnormal": "truncated_normal(std=...)",
}
_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTS = ("uniform", "normal", "truncated_normal")

# named schemes as variance scaling: (scale, mode, distribution); normal is NOT truncated here
_VARIANCE = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "normal"),
}


def _arg(name: str, value: ast.Value, what: str) -> Any:
    label = f"{what}: {name}"
    if name == "mode":
        return V.choice(value, label, _MODES)
    if name == "distribution":
        return V.choice(value, label, _DISTS)
    if name in ("limit", "std", "scale", "gain"):
        return V.real(value, label, 0.0, low_open=True)
    return V.real(value, label)


def init_spec(value: ast.Value, what: str) -> InitSpec:
    """Read `glorot_uniform`, `normal(std=0.01)`, `variance_scaling(2, fan_in, normal)`..."""
    if isinstance(value, ast.Name):
        name, args = value.id, ()
    elif isinstance(value, ast.CallVal):
        name, args = value.name, value.args
    else:
        raise V.bad(f"{what} must be an initialiser such as glorot_uniform", value.pos)
    if name not in SCHEMES:
        hint = V.suggest(name, sorted(SCHEMES), ELSEWHERE)
        known = ", ".join(sorted(SCHEMES))
        raise V.ValueProblem(
            UnknownName(f"unknown initialiser {name!r} (known: {known}){hint}", value.pos)
        )
    order, defaults = SCHEMES[name]
    stated, problems = V.keyed_args(args, order, tuple(defaults), name, "argument")
    if problems:
        raise V.ValueProblem(problems[0])
    got = {key: _arg(key, arg, f"{what} {name}") for key, arg in stated.items()}
    for key, default in defaults.items():
        if key not in got:
            if default is None:
                raise V.bad(f"{name}() needs {key}=", value.pos)
            got[key] = default
    return InitSpec(name, **got)


def _fan(mode: str, fan_in: int, fan_out: int) -> float:
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]


def resolve(spec: InitSpec, fan_in: int, fan_out: int) -> Init:
    """The concrete distribution of `spec` for a parameter with these fans."""
    scheme = spec.scheme
    if scheme in _VARIANCE or scheme == "variance_scaling":
        scale, mode, dist = _VARIANCE.get(scheme, (spec.scale, spec.mode, spec.distribution))
        std = math.sqrt(scale / max(1.0, _fan(mode, fan_in, fan_out)))
        if dist == "uniform":
            return Init("uniform", limit=math.sqrt(3.0) * std, spec=spec)
        if dist == "normal":
            return Init("normal", std=std, spec=spec)
        # truncated at +-2 std, rescaled so the result has variance scale/fan (as Keras does)
        return Init("truncated_normal", std=std / 0.87962566103423978, spec=spec)
    if scheme == "uniform":
        return Init("uniform", limit=spec.limit, spec=spec)
    if scheme in ("normal", "truncated_normal"):
        return Init(scheme, mean=spec.mean, std=spec.std, spec=spec)
    if scheme in ("zeros", "ones", "constant"):
        value = {"zeros": 0.0, "ones": 1.0}.get(scheme, spec.value)
        return Init("constant", value=value, spec=spec)
    if scheme == "orthogonal":
        return Init("orthogonal", gain=spec.gain, spec=spec)
    raise ValueError(f"unknown initialiser scheme {scheme}")
