"""The fast formatter's string, number, comment and docstring rules (pyformat.literals) write
what black writes, on seeded random literals: quotes of both kinds, escaped and bare, every
prefix, unicode escapes, f-string fields, floats and exponents, comments and docstrings.

Each literal is one statement of a file black formats once; a literal the rules refuse
(Unsupported: black formats that file) is counted, and most must be taken."""

from __future__ import annotations

import random
import re

import pytest

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat.tree import Unsupported
from dlspec.codegen.render import PY3_FORMAT, format_with_black

PREFIXES = ("", "", "", "r", "R", "f", "F", "b", "B", "u", "U", "rb", "bR", "fr", "Rf", "rF")
COUNT = 600


def _piece(rng: random.Random, own: str, other: str, prefix: str) -> str:
    """One piece of a string body that keeps the literal valid wherever it stands."""
    pieces = ["a", "Z", " ", other, "\\" + own, "\\" + other, "\\\\", "\\x4F", "\\u00E9"]
    if "b" not in prefix.lower():
        pieces.append("\\N{bullet}" if "f" not in prefix.lower() else "{x!r:>4}")
    if "f" in prefix.lower():
        pieces += ["{x}", "{{", "}}", "{x['k']}" if own == '"' else '{x["k"]}']
    return rng.choice(pieces)


def _string(rng: random.Random) -> str:
    prefix = rng.choice(PREFIXES)
    if rng.random() < 0.15:  # triple-quoted, on one line
        own = rng.choice(("'''", '"""'))
        other = "'" if own[0] == '"' else '"'
        body = "".join(rng.choice(("a", " ", other, "\\\\", "\\x4F")) for _ in range(4))
        return prefix + own + body + "a" + own
    own = rng.choice(("'", '"'))
    other = "'" if own == '"' else '"'
    body = "".join(_piece(rng, own, other, prefix) for _ in range(rng.randint(0, 6)))
    if "r" in prefix.lower():  # a raw string: no escapes, and nothing to escape its quote
        body = body.replace("\\" + own, "").replace(own, "")
    return prefix + own + body + own


def _number(rng: random.Random) -> str:
    digits = str(rng.randint(0, 999))
    return rng.choice(
        (
            digits,
            "0" + rng.choice("xX") + rng.choice(("ff", "A0", "Bc", "0")),
            "0" + rng.choice("oO") + "17",
            "0" + rng.choice("bB") + "101",
            digits + ".",
            "." + digits,
            digits + "." + digits,
            digits + rng.choice(("", ".")) + rng.choice("eE") + rng.choice(("", "+", "-")) + "5",
            digits + rng.choice(("", ".", ".5")) + rng.choice("jJ"),
        )
    )


def _comment(rng: random.Random) -> str:
    start = rng.choice(("", " ", "  ", "!", ":", "#", "'", "#!"))
    return "#" + start + rng.choice(("", "note", "a b", "x = 1  ")) + rng.choice(("", " ", "  "))


def _docstring(rng: random.Random) -> str:
    quote = rng.choice(('"""', "'''"))
    lines = [rng.choice(("", " ", "Text.", "  Text.  ", '"quoted"', "ends \\\\"))]
    for _ in range(rng.randint(0, 3)):
        words = ("", "more", "  deeper", "x", "y" * rng.randint(88, 100))  # some near the limit
        lines.append(" " * rng.choice((0, 4, 6, 8)) + rng.choice(words))
    if rng.random() < 0.3:
        lines.append(" " * 4)  # the closing quotes on a line of their own
    body = "\n".join(lines)
    if body.endswith(quote[0]):
        body += " "
    return quote + body + quote


def _compare(texts: list[str], rule, statement: str) -> tuple[int, int]:
    """(taken, refused): texts put into `statement` and formatted by black once, compared
    line by line with what `rule` makes of each."""
    source = "".join(statement.format(text) + "\n" for text in texts)
    expected = format_with_black(source, PY3_FORMAT).splitlines()
    assert len(expected) == len(texts)
    taken = 0
    for text, line in zip(texts, expected, strict=True):
        try:
            ours = statement.format(rule(text))
        except Unsupported:
            continue
        assert ours == line, (text, ours, line)
        taken += 1
    return taken, len(texts) - taken


@pytest.mark.parametrize("seed", range(3))
def test_random_strings_are_black(seed: int) -> None:
    rng = random.Random(seed)
    texts = [_string(rng) for _ in range(COUNT)]
    taken, refused = _compare(texts, literals.normalize_string, "x = {}")
    assert taken > 0.8 * len(texts), (taken, refused)


def test_random_numbers_are_black() -> None:
    rng = random.Random(7)
    texts = [_number(rng) for _ in range(COUNT)]
    assert _compare(texts, literals.normalize_number, "x = {}") == (len(texts), 0)


def test_random_comments_are_black() -> None:
    rng = random.Random(8)
    texts = [_comment(rng) for _ in range(COUNT)]
    assert _compare(texts, literals.make_comment, "x = 1  {}") == (len(texts), 0)


@pytest.mark.parametrize("depth", [1, 2])
def test_random_docstrings_are_black(depth: int) -> None:
    """Each docstring the first statement of a def at `depth`, formatted by black on its own
    (black leaves one with a backslash before a line break as it is; so do the callers)."""
    rng = random.Random(depth)
    tried = refused = 0
    for _ in range(150):
        docstring = _docstring(rng)
        if re.search(r"\\\s*\n", docstring):
            continue
        tried += 1
        indent = "    " * depth
        source = "class A:\n" * (depth - 1) + f"{indent[4:]}def f():\n{indent}{docstring}\n"
        expected = format_with_black(source, PY3_FORMAT)
        try:
            ours = literals.docstring_value(docstring, depth, 100)
        except Unsupported:
            refused += 1
            continue
        start = expected.index("def f():\n") + len("def f():\n")
        assert expected[start:] == f"{indent}{ours}\n", (docstring, ours, expected)
    assert refused < 0.25 * tried  # ''' holding a double quote or a backslash
