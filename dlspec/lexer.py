"""A Pygments lexer for `.dl` specs (entry point `pygments.lexers`: alias dlspec, files *.dl)."""

from __future__ import annotations

from pygments.lexer import RegexLexer, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from dlspec.ir.ops import DTYPES, OPS
from dlspec.ir.settings import OPTIMIZERS, SCHEDULES

_NAME_END = r"(?![A-Za-z0-9_])"
_DTYPES = tuple(sorted({*DTYPES, "float16", "bfloat16", "float64"}))  # float64: precision()


class DlspecLexer(RegexLexer):
    """Highlights dlspec's keywords, layers (the op table's names), values and comments."""

    name = "dlspec"
    aliases = ["dlspec", "dl"]
    filenames = ["*.dl"]
    mimetypes = ["text/x-dlspec"]

    tokens = {
        "root": [
            (r"[ \t\f\r\n]+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            (r"->", Operator),
            (r"[+-]?[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+", Number.Float),
            (r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", Number.Float),
            (r"[+-]?[0-9]+", Number.Integer),
            (words(("model", "train", "block", "input", "output"), suffix=_NAME_END), Keyword),
            (words(("true", "false", "none"), suffix=_NAME_END), Keyword.Constant),
            (words(_DTYPES, suffix=_NAME_END), Keyword.Type),
            (words(tuple(sorted(OPS)), suffix=_NAME_END), Name.Builtin),
            (words(tuple(sorted({*OPTIMIZERS, *SCHEDULES})), suffix=_NAME_END), Name.Function),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"[=*:]", Operator),
            (r"[{}()\[\],]", Punctuation),
        ]
    }
