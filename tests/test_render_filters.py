"""The template environment's own `tojson` writes exactly Jinja's text."""

from __future__ import annotations

import jinja2
import pytest

from dlspec.codegen.render import environment, json_text, to_json

VALUES = [
    "conv2d_1.weight",
    "a <b> & 'c' \"d\"",
    "é ✓ \\ \n\t",
    1,
    -2.5e-08,
    1e300,
    True,
    None,
    [1, "x", [None, 0.1]],
    {"b": 1, "a": ["<", {"z": "&", "y": "'"}]},
    (3, 4),
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:20] for v in VALUES])
def test_json_text_is_jinjas_tojson(value: object) -> None:
    jinjas = jinja2.Environment(autoescape=False).from_string("{{ v | tojson }}")
    assert json_text(value) == jinjas.render(v=value)


def test_the_environment_uses_it() -> None:
    assert environment().filters["tojson"] is to_json
    assert environment().from_string("{{ v | tojson }}").render(v="<'&'>") == json_text("<'&'>")
