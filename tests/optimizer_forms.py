"""Every optimiser with every combination of its forms, read from the op table (no framework)."""

from __future__ import annotations

import inspect
import itertools
from typing import Any, Mapping

from dlspec.frontend import values
from dlspec.ir.attrs import AttrSpec
from dlspec.ir.settings import OPTIMIZERS

# numbers that switch a statement on or off
SWITCHES = {"momentum": (0.0, 0.9), "weight_decay": (0.0, 0.05)}
# the learning rate changes between updates, as under a schedule (some forms differ only then)
LRS = [0.05, 0.05, 0.01, 0.08, 0.002, 0.03]

Form = tuple[str, dict[str, Any]]


def _choices(key: str, spec: AttrSpec) -> tuple[Any, ...]:
    if key in SWITCHES:
        return SWITCHES[key]
    if spec.convert is values.boolean:
        return (False, True)
    options = inspect.getclosurevars(spec.convert).nonlocals.get("options")
    return options if isinstance(options, tuple) else ()


def forms(numbers: Mapping[str, Any] = {}) -> list[Form]:  # noqa: B006 (read only)
    """(kind, attrs) of every combination of booleans, one_of options and momentum and decay on
    or off; the other numbers from `numbers`, else their dlspec default. A new form in the op
    table is covered without editing the tests."""
    out = []
    for kind, table in OPTIMIZERS.items():
        keys = list(table)
        axes = [
            _choices(k, table[k]) or (numbers.get(k, table[k].default_for("dlspec", {})),)
            for k in keys
        ]
        out += [(kind, dict(zip(keys, combo, strict=True))) for combo in itertools.product(*axes)]
    return out


def form_id(form: Form) -> str:
    """A readable test id: the kind and its attribute values."""
    kind, attrs = form
    return f"{kind}-" + "-".join(str(v) for k, v in attrs.items() if k != "lr")
