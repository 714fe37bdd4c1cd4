"""The fast path for one-line statements (pyformat.simple): what it takes, what it leaves to
the full formatter and why, pinned on a corpus of the scripts' own statements (one per path
through the module, tests/fixtures/fast_path_statements.tsv); where it takes a statement, its
lines are black's, there and on seeded random calls whose lines straddle the limit."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from dlspec.codegen import pyformat
from dlspec.codegen.pyformat.fits import LINE_LENGTH
from dlspec.codegen.pyformat.simple import format_element, format_simple
from dlspec.codegen.render import PY3_FORMAT, format_with_black

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the corpus writer lives in tools/
from fast_path_corpus import FIXTURE, outcome  # noqa: E402

COUNT = 300


class Row(NamedTuple):
    depth: int
    first_word: str
    header: bool
    outcome: str
    text: str


def _rows() -> list[Row]:
    rows = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            depth, word, header, result, text = line.split("\t")
            rows.append(Row(int(depth), word, header == "1", result, text))
    return rows


ROWS = _rows()


def test_the_corpus_covers_every_outcome() -> None:
    """The fixture holds statements taken, statements without lines, and each refusal."""
    outcomes = {row.outcome for row in ROWS}
    assert {"taken", "none", "refused: a power operator", "refused: keyword lambda"} <= outcomes
    assert sum(row.outcome == "taken" for row in ROWS) >= len(ROWS) * 3 // 4


def test_each_statement_has_its_pinned_outcome() -> None:
    """A change that takes more, or refuses more, or for another reason, shows up here; run
    tools/fast_path_corpus.py when it is meant."""
    changed = [
        f"{row.text!r}: {row.outcome} -> {now}"
        for row in ROWS
        if (now := outcome(row.text, row.depth, row.first_word)) != row.outcome
    ]
    assert not changed, "\n".join(changed)


def _first_word(text: str) -> str:
    """A statement's first word as the scanner reads it (a name, `@`, else its first character)."""
    word = re.match(r"[A-Za-z_][A-Za-z0-9_]*|@", text)
    return word.group() if word else text[:1]


def _context(row: Row) -> tuple[str, str]:
    """Source before and after the statement that makes it valid at its depth: enclosing
    defs, the block an `else` or `except` continues, a body for a header or decorator, the
    end of a `try`."""
    indent = "    " * row.depth
    before = "".join("    " * level + f"def f{level}():\n" for level in range(row.depth))
    if row.first_word in ("elif", "else"):
        before += f"{indent}if x:\n{indent}    pass\n"
    elif row.first_word in ("except", "finally"):
        before += f"{indent}try:\n{indent}    pass\n"
    after = f"{indent}    pass\n" if row.header else ""
    if row.first_word == "try":
        after += f"{indent}finally:\n{indent}    pass\n"
    if row.first_word == "@":
        after = f"{indent}def f():\n{indent}    pass\n"
    return before, after


def _black_lines(text: str, before: str, after: str, indent: str) -> list[str]:
    """black's lines for one statement between `before` and `after` (which it keeps)."""
    black = format_with_black(before + indent + text + "\n" + after, PY3_FORMAT)
    assert black.startswith(before) and black.endswith(after), black
    return black[len(before) : len(black) - len(after)].splitlines()


@pytest.mark.parametrize("part", range(2))
def test_taken_statements_are_black(part: int) -> None:
    taken = [row for row in ROWS if row.outcome == "taken"][part::2]
    for row in taken:
        before, after = _context(row)
        expected = _black_lines(row.text, before, after, "    " * row.depth)
        assert format_simple(row.text, row.depth, row.first_word) == expected, row.text


# ---- statements the corpus lacks: what a refusal guards, and shapes beside it ------------

TAKEN = "taken"
PICKED = {
    "größe = 1": "refused: cannot tokenize",
    "x = 0x1.real": "refused: a number before a dot",
    'x = "a"if y else "b"': "refused: two words without a space between them",
    "x = 1  # fmt: skip": "refused: a formatter, type or coding directive in a comment",
    "x = 1  #\N{NO-BREAK SPACE}note": "refused: a comment starting with a no-break space",
    'x = f"{a!r}"': "refused: f-string field 'a!r'",
    "x = F'{a[0]}'": "refused: f-string field 'a[0]'",
    "x = rf'{a}' + Rf'{a.b}'": TAKEN,
    "x = 'a' 'b'  # two": "refused: a comment after implicitly concatenated strings",
    "x = 'a' 'b'": TAKEN,
    'x = "abc"[1:2] + [1][0] + {}[a]': TAKEN,
    "x = a @ b": TAKEN,
    "@property": TAKEN,
    "@a.b": TAKEN,
    "def f(a, b=1, *args, c, **kwargs):": TAKEN,
    "class A(B, metaclass=M):": TAKEN,
    "class A():": "refused: empty class parentheses",
    "x = [(a)]": "refused: parentheses black hides in a one-item list or set",
    "x = {(a)}": "refused: parentheses black hides in a one-item list or set",
    "x = [(a), b]": TAKEN,
    "x = (1,)": TAKEN,
    "x = a,": "refused: a one-item tuple at statement level",
    "f(a,)": "refused: a magic trailing comma",
    "x = (a)": "refused: parentheses black hides",
    "x = -(a)": "refused: parentheses black hides",
    "x = a if (b) else c": TAKEN,
    "if (a):": "refused: parentheses at statement level",
    "x = a[-1:] + a[::2] + a[:, 0]": TAKEN,
    "x = a[b + 1 :]": "refused: a slice with an expression",
    "x = ...": "refused: a dot after something else",
    "from . import a": "refused: a dot after something else",
    "x = *a, b": "refused: unpacking outside a call",
    "f(*a, **b)": TAKEN,
    "x = a ^ b | c & d << 2 >> 1 < ~e": TAKEN,
    "x.y = z = 1": TAKEN,
    "x = a.b(c)[d](e)": TAKEN,
    "x = 1; y = 2": "refused: operator ;",
    "x: int = 1": "refused: a colon black may space otherwise",
    "'a' 'b'  # two": "refused: a comment after implicitly concatenated strings",
    "@a[0]": "refused: a decorator that is not a dotted name",
    "x = a[--b:]": "refused: a slice with an expression",
    # not one-line Python: refused all the same
    'x = """a\nb"""': "refused: a multiline string",
    "x = (a": "refused: unbalanced brackets",
    "x = a)": "refused: unbalanced brackets",
    "x = (a]": "refused: unbalanced brackets",
    "x = < 1": "refused: a binary operator without a left operand",
    "f(a[0] = 1)": "refused: `=` in an unexpected place",
}
# a call split after its `(`, whose first line (at depth 1) is the limit long, then one more
PICKED["x = " + "f" * 91 + "(first_argument, second_argument)"] = TAKEN
PICKED["x = " + "f" * 92 + "(first_argument, second_argument)"] = "none"
# a generator, the sole argument, whose target's comma is at the call's level: black splits
# at its `for`, not at that comma
PICKED["x = f(value for value, other in " + "p" * 70 + ")"] = "none"


@pytest.mark.parametrize("text", PICKED)
def test_picked_statements(text: str) -> None:
    """Each has its outcome; where the fast path takes it, black's lines."""
    row = Row(1, _first_word(text), text.endswith(":"), "", text)
    assert outcome(text, row.depth, row.first_word) == PICKED[text]
    if PICKED[text] == TAKEN:
        expected = _black_lines(text, *_context(row), "    ")
        assert format_simple(text, row.depth, row.first_word) == expected


@pytest.mark.parametrize(
    "text, first_word",
    [
        ("x, = y", "x"),
        ("x, y, = z", "x"),
        ("a = b, = c", "a"),
        ("for x, in y:", "for"),
        ("for x in y,:", "for"),
    ],
)
def test_a_statement_level_tuple_ending_in_a_comma_is_refused(text: str, first_word: str) -> None:
    """black parenthesizes such a tuple (`(x,) = y`) or explodes it (two items or more): the
    fast path leaves it to the full formatter, which writes black's lines."""
    assert outcome(text, 0, first_word) == "refused: a statement-level tuple ending in a comma"
    source = text + ("\n    pass\n" if text.endswith(":") else "\n")
    assert pyformat.format_python(source) == format_with_black(source)


def test_an_exploded_item_is_one_item_with_its_comma() -> None:
    """format_element takes `item,` alone, up to the limit: not two items, nor one without
    its comma, nor one with a comment (the exploded path decides those)."""
    assert format_element("[a, b],", 1, "[") == "    [a, b],"
    assert format_element("x = 1,", 1, "(") == "    x=1,"
    for text in ("a, b,", "ab", "f(x),  # c"):
        assert format_element(text, 1, "[") is None, text
    name = "n" * (LINE_LENGTH - 5)  # with its indent and comma, exactly the limit
    assert format_element(name + ",", 1, "[") == "    " + name + ","
    assert format_element(name + "n,", 1, "[") is None


# ---- seeded random calls at the limit ------------------------------------------------------

TARGETS = ("", "", "x = ", "self.layer = ", "return ", "raise ")
CALLEES = ("f", "torch.nn.Conv2d", "np.asarray", "keras.layers.Dense")
ATOMS = ("x", "1", "-1", "'text'", '"text"', "a.b", "x[0]", "[1, 2]", "(a, b)", "{'k': v}")
ATOMS += ("f(a, b)", "g(h(1), k=2)", "a + b", "x if c else y", "not x", "*args", "**kwargs")
ATOMS += ("a**2", "lambda: 0", "x[1:2]", "f()", "(x for x in y)", "1e5", "0XFF", "f( a )")
ATOMS += ("[v for v in values]", "{k: v for k, v in items}", "x.y(z)[0]", "'a' 'b'", "a < b")
KEYWORDS = ("", "", "", "name=", "kernel_size=")


def _pad(rng: random.Random, used: int, least: int = 1) -> str:
    """What brings a line of `used` columns to the limit, one short of it or one past it (at
    least `least` columns of it)."""
    return "p" * max(LINE_LENGTH + rng.choice((-1, 0, 1)) - used, least)


def _argument(rng: random.Random, column: int) -> str:
    """The first argument, a name or a call, sized so that its line (at `column`), or the
    line of its own first argument, straddles the limit."""
    keyword = rng.choice(KEYWORDS)
    if rng.random() < 0.5:
        return keyword + _pad(rng, column + len(keyword) + 1)
    callee = rng.choice(CALLEES)
    rest = [rng.choice(ATOMS) for _ in range(rng.randint(0, 2))]
    inner = _pad(rng, column + 4 + len(", ".join(["", *rest])) + rng.choice((0, 1)))
    if rng.random() < 0.5:
        inner = rng.choice(ATOMS)
    return f"{keyword}{callee}({', '.join([inner, *rest])})"


def _call(rng: random.Random, depth: int) -> str:
    """`[target] callee(args)[(x) or [x] or [0]][  # comment]`, one of its lines near the
    limit."""
    target = rng.choice(TARGETS)
    callee = rng.choice(CALLEES)
    rest = [rng.choice(KEYWORDS) + rng.choice(ATOMS) for _ in range(rng.randint(0, 4))]
    indent = 4 * depth
    tail = rng.choice(("(x)", "[x]", "[0]")) if target == "x = " and rng.random() < 0.3 else ""
    comment = "  # note" if rng.random() < 0.1 else ""
    where = rng.choice(("line", "head", "argument"))
    if where == "argument":
        arguments = [_argument(rng, indent + 4), *rest]
    elif rng.random() < 0.1:
        arguments = ["value for value in " + rng.choice(("values", "f(x, y)", "[a, b]"))]
    else:
        arguments = [rng.choice(ATOMS), *rest] if rng.random() < 0.9 else []
    text = f"{target}{callee}({', '.join(arguments)}){tail}{comment}"
    if where == "line":
        callee += _pad(rng, indent + len(text), 0)
    elif where == "head":
        callee += _pad(rng, indent + len(target) + len(callee) + 1, 0)
    return f"{target}{callee}({', '.join(arguments)}){tail}{comment}"


@pytest.mark.parametrize("seed", range(2))
def test_random_calls_at_the_limit_are_black(seed: int) -> None:
    """Where the fast path takes a call, its lines are black's, and so is the whole file's
    output; enough are taken to mean something."""
    rng = random.Random(seed)
    taken = 0
    for _ in range(COUNT):
        depth = rng.choice((0, 1, 2))
        text = _call(rng, depth)
        row = Row(depth, _first_word(text), False, "", text)
        before, after = _context(row)
        try:
            expected = _black_lines(text, before, after, "    " * depth)
        except Exception:  # noqa: BLE001 - not Python (`return` outside a def, `*args` alone)
            continue
        lines = format_simple(text, depth, row.first_word)
        if lines is not None:
            taken += 1
            assert lines == expected, text
        source = before + "    " * depth + text + "\n"
        try:
            assert pyformat.format_python(source, False) == format_with_black(source), text
        except pyformat.Unsupported:
            pass
    assert taken >= COUNT // 3, taken
