"""Whether a statement is valid Python: black refuses a file that is not, and the statement
formatters, which never parse, must refuse it too.

A statement is compiled (to an AST only) in the context its first word needs: a body after a
header, a `try` before an `except`, a def after a decorator. The scanner checks the blocks
around it. Compiling is the slow part, so a statement is compiled as its shape: read left to
right in tokens as Python reads them (strings with their prefixes, names, numbers, comments),
each name that is no keyword becomes `n`, each decimal number without leading zeros `1`, and
each string whose content cannot make it invalid (no prefix but r or u, no backslash) `''`.
Each is a token of the kind it replaces, and Python's grammar tells the tokens of one kind
apart nowhere, so a shape is valid only where all its statements are, and one compile answers
for them all. What the tokens read otherwise (an f-string, an odd number, an unclosed quote) is
left as it is, for the compiler to judge."""

from __future__ import annotations

import ast
import re
import warnings

from dlspec.codegen.pyformat.tokens import KEYWORDS, STRING_PATTERN
from dlspec.codegen.pyformat.tree import Unsupported

_KEPT = KEYWORDS | {"True", "False", "None", "__debug__"}
_TOKEN = re.compile(
    rf"(?P<string>{STRING_PATTERN})|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![\w.]))"
    r"|[0-9][\w.]*|#[^\n]*"
)
_PLAIN_STRING = re.compile(r"[rRuU]?['\"]")

# what a clause is compiled after
_BEFORE = {
    "elif": "if x:\n    pass\n",
    "else": "if x:\n    pass\n",
    "except": "try:\n    pass\n",
    "finally": "try:\n    pass\n",
}
_VALID: set[str] = set()  # shapes compiled and found valid
_LIMIT = 100000


def shape(text: str) -> str:
    """The statement with its names, numbers and plain strings replaced (see the module)."""
    return _TOKEN.sub(_stand_in, text)


def _stand_in(token: re.Match) -> str:
    kind, value = token.lastgroup, token.group()
    if kind == "name":
        return value if value in _KEPT else "n"
    if kind == "number":
        return "1"
    if kind == "string" and "\\" not in value and _PLAIN_STRING.match(value):
        return "''"
    return value


def check_statement(text: str, first_word: str, header: bool) -> None:
    """Refuse (Unsupported) a statement that is not valid Python. text: the statement as the
    scanner found it (its first line unindented); header: it ends a compound statement's line
    with its colon."""
    shaped = shape(text)
    if shaped in _VALID:
        return
    source = _BEFORE.get(first_word, "") + shaped
    if header:
        source += "\n    pass\nfinally:\n    pass" if first_word == "try" else "\n    pass"
    elif first_word == "@":
        source += "\ndef f():\n    pass"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an invalid escape, say: black's to show or not
        try:
            compile(source, "<statement>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        except (SyntaxError, ValueError):
            raise Unsupported("not valid Python") from None
    if len(_VALID) > _LIMIT:
        _VALID.clear()
    _VALID.add(shaped)
