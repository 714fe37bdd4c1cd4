"""pyformat.valid: a statement the formatter takes is valid Python, judged on its shape; a
shape is never valid where its statement is not."""

from __future__ import annotations

import ast
import importlib.util
import io
import random
import sys
import tokenize
import warnings
from pathlib import Path

import pytest

from dlspec.codegen.pyformat import valid
from dlspec.codegen.pyformat.tree import Unsupported

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from format_corpus import statements  # noqa: E402


def _compiles(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<test>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return True


@pytest.mark.parametrize(
    "text, shaped",
    [
        ("self.conv_1 = nn.Conv2d(3, 64, kernel_size=(3, 3))", "n.n = n.n(1, 1, n=(1, 1))"),
        ("x = 0.5 + 1e-05 - 12", "n = 1 + 1 - 1"),
        ("x = 0x1f + 1_000 + 0777 + 1.0.real", "n = 0x1f + 1_000 + 0777 + 1.0.real"),
        ("x = 'a' + \"it's\" + r'b' + u'c' + '''d\ne'''", "n = '' + '' + '' + '' + ''"),
        (
            "x = f'{a}' + b'c' + rb'd' + 'e\\n' + ur'f'",
            "n = f'{a}' + b'c' + rb'd' + 'e\\n' + ur'f'",
        ),
        ("if a is not None and b in c:", "if n is not None and n in n:"),
        ("x = True or False  # don't 'touch' this", "n = True or False  # don't 'touch' this"),
        ("elif'a':", "elif'':"),
        ("x = a if'b ' c ' else d", "n = n if'' n ' else n"),
        ("__debug__ = conv2d", "__debug__ = n"),
    ],
)
def test_shapes(text: str, shaped: str) -> None:
    assert valid.shape(text) == shaped


@pytest.mark.parametrize(
    "text",
    [
        "x = f(a b)",
        "x = b'\u00e9'",
        "x = f'{a b}'",
        "x = '\\x4g'",
        "x = 0777",
        "x = 1__0",
        "x = ur'x'",
        "x = a if'b ' c ' else d",
        "None = f(x)",
        "x.True = 1",
        "def f(a=1, b):",
        "f(x=1, 2)",
        "del f()",
        "@a b",
        "except A B:",
    ],
)
def test_invalid_statements_are_refused(text: str) -> None:
    first_word = text.split()[0].rstrip(":")
    with pytest.raises(Unsupported):
        valid.check_statement(text, "@" if text[0] == "@" else first_word, text.endswith(":"))


def _broken(text: str, rng: random.Random) -> str:
    """The statement with one token dropped, doubled or swapped with the next."""
    try:
        tokens = [
            token
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.string.strip()
        ]
    except (tokenize.TokenError, SyntaxError):
        return text
    if len(tokens) < 2:
        return text
    pieces = [token.string for token in tokens]
    index = rng.randrange(len(pieces) - 1)
    action = rng.randrange(3)
    if action == 0:
        del pieces[index]
    elif action == 1:
        pieces.insert(index, pieces[index])
    else:
        pieces[index], pieces[index + 1] = pieces[index + 1], pieces[index]
    return " ".join(pieces)


def test_no_shape_is_valid_where_its_statement_is_not() -> None:
    """Statements of black's own source, as written and unparsed, broken at random (most then invalid): a valid shape
    means a valid statement; and a valid statement nearly always has a valid shape (only
    speed is lost where it does not)."""
    spec = importlib.util.find_spec("black")
    assert spec is not None and spec.origin is not None
    rng = random.Random(11)
    invalid = agreed = total = 0
    for path in sorted(Path(spec.origin).parent.glob("*.py")):
        corpus = statements(path, "plain") + statements(path, "unparsed")
        for _name, text in corpus:
            for candidate in (text.strip(), _broken(text.strip(), rng)):
                ok, shape_ok = _compiles(candidate), _compiles(valid.shape(candidate))
                assert ok or not shape_ok, candidate
                invalid += not ok
                agreed += ok == shape_ok
                total += 1
    assert invalid > total // 4
    assert agreed > total * 99 // 100


def test_the_compiler_s_warnings_are_not_shown_nor_raised() -> None:
    """An invalid escape is valid Python with a warning, which is black's to show or not:
    even where warnings are errors the statement is taken."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        valid.check_statement("x = '\\d'", "x", False)


def test_a_shape_is_compiled_once() -> None:
    valid._VALID.clear()
    valid.check_statement("self.conv_7 = nn.Conv2d(3, 64)", "self", False)
    assert valid._VALID == {"n.n = n.n(1, 1)"}
    valid.check_statement("self.fc = nn.Linear(120, 84)", "self", False)
    assert len(valid._VALID) == 1
