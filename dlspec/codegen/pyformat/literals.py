"""How black 26 rewrites string, number and comment text and docstrings, on a leaf's text.

dlspec's own statement of black's behaviour (tests/test_pyformat.py checks it against black on
seeded random literals, snippets and every golden): a string's prefix is lower-cased, u goes
and r comes first; hex, \\u, \\U and \\x escapes are lower-cased and \\N{} names upper-cased;
double quotes are chosen unless they need more backslashes; numbers are lower-cased but for hex
digits, and floats are completed (`.5` is `0.5`). What it is unsure of raises Unsupported, so
that black itself formats that file."""

from __future__ import annotations

import re
from typing import Iterator

from dlspec.codegen.pyformat.tree import Unsupported

STRING_PREFIX_CHARS = "fturbFTURB"
# an escape's letter: how many hex digits follow it
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")
_CHARACTER_NAME = re.compile(r"\{[a-zA-Z0-9 \-]{2,}\}")
_KEPT_COMMENT_STARTS = " !:#'"  # a comment starting with one gets no space after its #
_DIRECTIVE = re.compile(r"fmt\s*:|yapf\s*:|type\s*:|coding[:=]")
_STRINGS: dict[str, str] = {}


def string_prefix(text: str) -> str:
    """The prefix letters of a string literal."""
    return text[: len(text) - len(text.lstrip(STRING_PREFIX_CHARS))]


def _pieces(body: str) -> Iterator[str]:
    """A string body as its pieces: each a character, or a backslash and the one after it."""
    index, size = 0, len(body)
    while index < size:
        step = 2 if body[index] == "\\" and index + 1 < size else 1
        yield body[index : index + step]
        index += step


def normalize_unicode_escapes(text: str) -> str:
    """Hex digits of \\x, \\u and \\U escapes lower-cased, \\N{} names upper-cased (not in raw
    strings, where a backslash escapes nothing)."""
    if "\\" not in text or "r" in string_prefix(text).lower():
        return text
    out: list[str] = []
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char != "\\" or index + 1 >= size:
            out.append(char)
            index += 1
            continue
        letter = text[index + 1]
        digits = _HEX_ESCAPES.get(letter, 0)
        hex_digits = text[index + 2 : index + 2 + digits]
        if digits and len(hex_digits) == digits and set(hex_digits) <= _HEX:
            out.append("\\" + letter + hex_digits.lower())
            index += 2 + digits
            continue
        name = _CHARACTER_NAME.match(text, index + 2) if letter == "N" else None
        if name:
            out.append("\\N" + name.group().upper())
            index = name.end()
            continue
        out.append(text[index : index + 2])
        index += 2
    return "".join(out)


def normalize_string_prefix(text: str) -> str:
    """The prefix with F and B lower-cased, without u, and r first when it has two letters."""
    prefix = string_prefix(text)
    letters = [c.lower() if c in "FB" else c for c in prefix if c not in "uU"]
    if len(letters) == 2 and letters[0] not in "rR":
        letters.reverse()
    return "".join(letters) + text[len(prefix) :]


def normalize_string(text: str) -> str:
    """A string that is not a docstring as black writes it: escapes, prefix, quotes."""
    cached = _STRINGS.get(text)
    if cached is None:
        plain = "\\" not in text and text[0] in "\"'" and text[:3] not in ('"""', "'''")
        if plain:  # no prefix, no backslash: double quotes unless the body holds one
            body = text[1:-1]
            cached = text if text[0] == '"' or '"' in body else f'"{body}"'
        else:
            cached = normalize_unicode_escapes(text)
            cached = normalize_string_quotes(normalize_string_prefix(cached))
        if len(_STRINGS) > 50000:
            _STRINGS.clear()
        _STRINGS[text] = cached
    return cached


def normalize_string_quotes(text: str) -> str:
    """Double quotes, unless they would need more backslashes than the string's own quotes,
    or they already are; a needless backslash before the other quote character goes."""
    prefix = string_prefix(text)
    quoted = text[len(prefix) :]
    if quoted.startswith('"""'):
        return text
    if quoted.startswith("'''"):
        return _triple_single(prefix, quoted)
    own, other = quoted[0], "'" if quoted[0] == '"' else '"'
    body = quoted[1:-1]
    if "r" in prefix.lower():
        if _has_bare(body, other):
            return text
        requoted = body
    else:
        body = "".join(other if piece == "\\" + other else piece for piece in _pieces(body))
        text = prefix + own + body + own
        requoted = "".join(_requote(piece, own, other) for piece in _pieces(body))
    if ("f" in prefix.lower() or "t" in prefix.lower()) and _backslash_in_braces(requoted):
        raise Unsupported("a backslash in an f-string field")
    added = requoted.count("\\") - body.count("\\")
    if added > 0 or (added == 0 and own == '"'):
        return text
    return prefix + other + requoted + other


def _backslash_in_braces(body: str) -> bool:
    """Is there a backslash between a { and a later } (maybe in a replacement field)?"""
    start, end = body.find("{"), body.rfind("}")
    return 0 <= start < end and "\\" in body[start:end]


def _requote(piece: str, own: str, other: str) -> str:
    """A body piece under the other quotes: the old quote needs no backslash, the new one does."""
    if piece == "\\" + own:
        return own
    if piece == other:
        return "\\" + other
    return piece


def _has_bare(body: str, quote: str) -> bool:
    """Does the body hold the quote character without a backslash before it?"""
    return any(piece == quote for piece in _pieces(body))


def _triple_single(prefix: str, quoted: str) -> str:
    """'''...''' as \"\"\"...\"\"\": only where the body holds neither a double quote nor a
    backslash (what black decides there is not restated)."""
    body = quoted[3:-3]
    if '"' in body or "\\" in body:
        raise Unsupported("a '''string''' holding a double quote or a backslash")
    return f'{prefix}"""{body}"""'


def normalize_number(text: str) -> str:
    """Lower-case letters (hex digits upper-case), floats completed, no + in an exponent."""
    text = text.lower()
    if text[:2] in ("0o", "0b"):
        return text
    if text[:2] == "0x":
        return "0x" + text[2:].upper()
    if "e" in text:
        mantissa, exponent = text.split("e")
        return _complete_float(mantissa) + "e" + exponent.removeprefix("+")
    if text.endswith("j"):
        return _complete_float(text[:-1]) + "j"
    return _complete_float(text)


def _complete_float(text: str) -> str:
    """`5.` as `5.0`, `.5` as `0.5`; an integer as it is."""
    whole, dot, fraction = text.partition(".")
    if not dot:
        return text
    return f"{whole or '0'}.{fraction or '0'}"


def make_comment(content: str) -> str:
    """A comment's text as black writes it: `# text`, trailing spaces gone; `#!`, `#:`, `#'`
    and `##` kept as written."""
    content = content.rstrip()
    if _DIRECTIVE.search(content):
        raise Unsupported("a formatter, type or coding directive in a comment")
    text = content.removeprefix("#")
    if text.startswith("\N{NO-BREAK SPACE}"):
        raise Unsupported("a comment starting with a no-break space")
    if text and text[0] not in _KEPT_COMMENT_STARTS:
        text = " " + text
    return "#" + text


def fix_docstring(docstring: str, indent: str) -> str:
    """A multi-line docstring's body re-indented: the first line stripped, the others' common
    indentation replaced by the block's (`indent`), trailing spaces dropped, blank lines empty
    but the last (the closing quotes' line, indented)."""
    if "\t" in docstring:
        raise Unsupported("a tab in a docstring")
    first, *rest = docstring.split("\n")
    depths = [len(line) - len(line.lstrip()) for line in rest if line.strip()]
    if not depths:
        return first.strip()
    common = min(depths)
    lines = [first.strip()]
    for number, line in enumerate(rest, start=1):
        kept = line[common:].rstrip()
        lines.append(indent + kept if kept or number == len(rest) else "")
    return "\n".join(lines)


def docstring_value(value: str, depth: int, line_length: int) -> str:
    """A docstring leaf as black rewrites it: prefix and quotes normalised, the body
    re-indented (multi-line) or stripped, padded where it would touch its quotes, and the
    closing quotes moved to their own line where the last line would pass the limit."""
    text = normalize_string_quotes(normalize_string_prefix(value))
    prefix = string_prefix(text)
    quoted = text[len(prefix) :]
    quote = quoted[0] * (3 if quoted[1] == quoted[0] else 1)  # "" counts as triple, as black's
    body = quoted[len(quote) : -len(quote)]
    indent = " " * 4 * depth
    multiline = value.lstrip(STRING_PREFIX_CHARS)[:3] in ('"""', "'''") and "\n" in value
    padded = _pad(fix_docstring(body, indent) if multiline else body.strip(), quote[0], body)
    if padded is None:
        return prefix + quote + " " + quote
    body, backslash_padded = padded
    if len(quote) == 3 and not backslash_padded and _last_line_too_long(body, indent, line_length):
        return prefix + quote + body + "\n" + indent + quote
    return prefix + quote + body + quote


def _pad(body: str, quote_char: str, original: str) -> tuple[str, bool] | None:
    """The body with a space where it would touch a quote or end on an odd backslash, and
    whether that backslash got one; None for a body of spaces only (written as one space)."""
    if not body:
        return (body, False) if not original else None
    if body[0] == quote_char:
        body = " " + body
    if body[-1] == quote_char:
        body += " "
    odd_backslash = (len(body) - len(body.rstrip("\\"))) % 2 == 1
    return (body + " ", True) if odd_backslash else (body, False)


def _last_line_too_long(body: str, indent: str, line_length: int) -> bool:
    """Would the closing quotes, after a multi-line body's last line, pass the limit? (Never
    when they stood on a line of their own: that line is then the block's indentation.)"""
    lines = body.splitlines()
    if len(lines) < 2:
        return False
    last = 0 if body.endswith("\n") else len(lines[-1])
    return last + 3 > line_length and len(indent) + 3 <= line_length
