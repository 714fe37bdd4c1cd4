"""The fast path for a statement written one item per line with a magic trailing comma
(pyformat.exploded) writes what black writes, on seeded random statements: the heads it takes
and the heads it must leave to the full formatter (tuples, subscripts, keywords, bare brackets,
a first line over the limit), items plain and to be respaced, nested, keyed, commented, over
the limit, and collections whose last item has no comma."""

from __future__ import annotations

import random

import pytest

from dlspec.codegen import pyformat
from dlspec.codegen.pyformat.exploded import format_exploded
from dlspec.codegen.render import PY3_FORMAT, format_with_black

COUNT = 400
NAMES = ("x", "value", "some_name", "obj.attr", "lambda_", "not_", "a" * 70)
ATOMS = ("1", "-2", "0XFF", "name", "'text'", '"text"', "f(x)", "a+b", "f( x )", "x[1 : 2]")
ATOMS += ("a**2", "not x", "[1,2]", "{'k':v}", "obj.method(a, b)", "'" + "s" * 96 + "'")


def _head(rng: random.Random) -> tuple[str, str]:
    """The first line (a call, a list, a dict or set, a tuple or a subscript, with or without
    an assignment or return before it) and the opener its items are inside (`f(` for a call's
    arguments, else the bracket)."""
    target = rng.choice(("", "return ", f"{rng.choice(NAMES)} = ", "x = "))
    callee = rng.choice(("", "", "f", "obj.method", "mod.sub.call", "None", "not", "b" * 90))
    bracket = rng.choice("([" if callee else "[{(")
    called = bracket == "(" and callee not in ("", "not")
    return target + callee + bracket, "f(" if called else bracket


def _items(rng: random.Random, opener: str, depth: int) -> list[str]:
    """The lines (unindented) of the items inside `opener` (`[`, `f(`, `{`, ...), comment and
    blank lines between them: all of a dict's items keyed or none (a set), a call's keyword
    arguments after its positional ones."""
    keyed = opener == "{" and rng.random() < 0.7
    keywords = 0 if opener[-1] != "(" or opener == "(" else rng.randint(0, 2)
    count = rng.randint(1, 4)
    lines: list[str] = []
    for index in range(count):
        if rng.random() < 0.1:
            lines.append("# between")
        if rng.random() < 0.05:
            lines.append("")
        key = ""
        if keyed:
            key = rng.choice(("'key': ", '"key": ', "name: ", "b'k': ", "f'k': ", "None: ", "1: "))
        elif index >= count - keywords:
            key = rng.choice(("name=", "lambda_=", "x = "))
        lines += _item(rng, key, depth, last=index == count - 1)
    if rng.random() < 0.05:
        lines.append("# after")
    return lines


def _item(rng: random.Random, key: str, depth: int, last: bool) -> list[str]:
    """One item's lines (unindented): a value, or a collection that is itself exploded;
    sometimes with a comment after it, and the last item sometimes without its comma."""
    if depth < 2 and rng.random() < 0.25:
        inner = rng.choice(("[", "{", "f(", "(", "g.h("))
        closing = {"[": "]", "{": "}", "(": ")"}[inner[-1]]
        lines = ["    " + line if line else "" for line in _items(rng, inner, depth + 1)]
        return [key + inner, *lines, closing + ("" if last and rng.random() < 0.2 else ",")]
    comma = "" if last and rng.random() < 0.2 else ","
    comment = "  # note" if rng.random() < 0.05 else ""
    return [key + rng.choice(ATOMS) + comma + comment]


def _statement(rng: random.Random) -> str:
    """An exploded statement (unindented)."""
    head, opener = _head(rng)
    bracket = head[-1]
    lines = [head, *("    " + line if line else "" for line in _items(rng, opener, 1))]
    closing = {"[": "]", "{": "}", "(": ")"}[bracket]
    after = "(x)" if bracket == "(" and rng.random() < 0.1 else ""
    return "\n".join(lines) + "\n" + closing + after


@pytest.mark.parametrize("seed", range(3))
def test_random_exploded_statements_are_black(seed: int) -> None:
    """Where the fast path takes a statement, its lines are black's; so is the fast formatter's
    whole output wherever it takes the file. Enough statements are taken to mean something."""
    rng = random.Random(seed)
    taken = 0
    for _ in range(COUNT):
        text = _statement(rng)
        depth = rng.choice((0, 0, 1))
        header = "def f():\n" if depth else ""
        source = header + "".join("    " * depth + line + "\n" for line in text.split("\n"))
        try:
            black = format_with_black(source, PY3_FORMAT)
        except Exception:  # noqa: BLE001 - not Python (a keyword where a name goes)
            continue
        features = pyformat._file_features(source, False, False)
        try:
            lines = format_exploded(text, depth, pyformat._item_fallback(features))
        except pyformat.Unsupported:  # the file goes to black
            lines = None
        if lines is not None:
            taken += 1
            assert header + "".join(lines) == black, source
        try:
            assert pyformat.format_python(source, False) == black, source
        except pyformat.Unsupported:
            pass
    assert taken >= COUNT // 8, taken


def _no_fallback(text: str, depth: int, bracket: str) -> None:
    pytest.fail(f"the full formatter was asked for {text!r}")


# statements the fast path takes whole (a wrong refusal would only cost speed, so no output
# test sees one), and the first line it must leave to the full formatter
TAKEN = (
    "f(\n    a,\n)(x)",  # a call after the one black splits
    "x = [\n    1,\n\n    2,\n]",  # a blank line between items
    "x = [\n    1,\n    # c\n    2,\n]",  # a comment line between items
    "x = " + "a" * 95 + "(\n    b,\n)",  # a first line of 100 columns
    "x = [\n    f(\n        a,\n    ),\n]",  # an item exploded in turn
    "x = {\n    'k': [\n        a,\n    ],\n}",  # a keyed one
    "f(\n    a=[\n        b,\n    ],\n)",  # a keyword argument's
)
# items the fast path hands to the full formatter, one by one, and then uses
WITH_FALLBACK = ("x = [\n    lambda: x,\n]", "x = [\n    f(a)(\n        b,\n    ),\n]")


@pytest.mark.parametrize("text", TAKEN)
def test_what_the_fast_path_takes_is_black(text: str) -> None:
    lines = format_exploded(text, 0, _no_fallback)
    assert lines is not None
    assert "".join(lines) == format_with_black(text + "\n", PY3_FORMAT)


def test_a_first_line_over_the_limit_goes_to_the_full_formatter() -> None:
    text = "x = " + "a" * 96 + "(\n    b,\n)"
    assert format_exploded(text, 0, _no_fallback) is None
    assert pyformat.format_python(text + "\n") == format_with_black(text + "\n", PY3_FORMAT)


@pytest.mark.parametrize("text", WITH_FALLBACK)
def test_items_the_full_formatter_writes_are_used(text: str) -> None:
    lines = format_exploded(text, 0, pyformat._item_fallback(frozenset()))
    assert lines is not None
    assert "".join(lines) == format_with_black(text + "\n", PY3_FORMAT)


# a line that closes the collection and opens another: no item of it, though it ends with a
# comma (the full formatter would read `a, ], b=[c,` inside `x = [...]` as an assignment); the
# item holding it may still go to the full formatter whole
CLOSED_MID_LINE = (
    "t = f(\n    'k',\n    a=[\n        b, c, ], d=[e, g,\n        h,\n    ],\n)",
    "x = [\n    a, ], [b,\n]",
)


@pytest.mark.parametrize("text", CLOSED_MID_LINE)
def test_a_collection_closed_mid_line_is_no_item(text: str) -> None:
    black = format_with_black(text + "\n", PY3_FORMAT)
    lines = format_exploded(text, 0, pyformat._item_fallback(frozenset()))
    assert lines is None or "".join(lines) == black
    assert pyformat.format_python(text + "\n") == black
