"""black's normalisation of strings, numbers, docstrings and comments, on leaf text."""

from __future__ import annotations

import re
import sys
from functools import lru_cache

from dlspec.codegen.pyformat.tree import Unsupported

STRING_PREFIX_CHARS = "fturbFTURB"
_UNICODE_ESCAPE = re.compile(
    r"(?P<backslashes>\\+)(?P<body>"
    r"(u(?P<u>[a-fA-F0-9]{4}))"
    r"|(U(?P<U>[a-fA-F0-9]{8}))"
    r"|(x(?P<x>[a-fA-F0-9]{2}))"
    r"|(N\{(?P<N>[a-zA-Z0-9 \-]{2,})\})"
    r")?"
)
_COMMENT_EXCEPTIONS = " !:#'"
_DIRECTIVE = re.compile(r"fmt\s*:|yapf\s*:|type\s*:|coding[:=]")


def string_prefix(text: str) -> str:
    """The prefix letters of a string literal."""
    return text[: len(text) - len(text.lstrip(STRING_PREFIX_CHARS))]


def normalize_unicode_escapes(text: str) -> str:
    """Lower-case hex digits of \\x, \\u, \\U escapes; upper-case \\N{} names (not in raw strings)."""
    if "\\" not in text or "r" in string_prefix(text).lower():
        return text

    def replace(match: re.Match[str]) -> str:
        groups = match.groupdict()
        slashes = groups["backslashes"]
        if groups["body"] is None or len(slashes) % 2 == 0:
            return match.group(0)
        if groups["u"]:
            return slashes + "u" + groups["u"].lower()
        if groups["U"]:
            return slashes + "U" + groups["U"].lower()
        if groups["x"]:
            return slashes + "x" + groups["x"].lower()
        return slashes + "N{" + groups["N"].upper() + "}"

    return _UNICODE_ESCAPE.sub(replace, text)


def normalize_string_prefix(text: str) -> str:
    """Lower-case F and B, drop u and U; a two-letter prefix has its r first... as black."""
    prefix = string_prefix(text)
    new = prefix.replace("F", "f").replace("B", "b").replace("U", "").replace("u", "")
    if len(new) == 2 and new[0].lower() != "r":
        new = new[::-1]
    return new + text[len(prefix) :]


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _sub_twice(regex: re.Pattern[str], replacement: str, original: str) -> str:
    return regex.sub(replacement, regex.sub(replacement, original))


def _ends_with_unescaped_quote(body: str) -> bool:
    if body[-1:] != '"':
        return False
    before = body[:-1]
    return (len(before) - len(before.rstrip("\\"))) % 2 == 0


def normalize_string(text: str) -> str:
    """black's normalisation of a string that is not a docstring: escapes, prefix, quotes."""
    cached = _STRINGS.get(text)
    if cached is None:
        if "\\" not in text and text[0] in "\"'" and text[:3] not in ('"""', "'''"):
            body = text[1:-1]  # the common case, decided directly
            if text[0] == '"' or '"' in body:
                cached = text
            else:
                cached = '"' + body + '"'
        else:
            cached = normalize_string_quotes(
                normalize_string_prefix(normalize_unicode_escapes(text))
            )
        if len(_STRINGS) > 50000:
            _STRINGS.clear()
        _STRINGS[text] = cached
    return cached


_STRINGS: dict[str, str] = {}


def normalize_string_quotes(text: str) -> str:
    """Prefer double quotes unless that needs more backslashes (black's rule, as it is)."""
    value = text.lstrip(STRING_PREFIX_CHARS)
    if value[:3] == '"""':
        return text
    if value[:3] == "'''":
        orig_quote, new_quote = "'''", '"""'
    elif value[0] == '"':
        orig_quote, new_quote = '"', "'"
    else:
        orig_quote, new_quote = "'", '"'
    first = text.find(orig_quote)
    prefix = text[:first]
    unescaped_new = _compile(rf"(([^\\]|^)(\\\\)*){new_quote}")
    escaped_new = _compile(rf"([^\\]|^)\\((?:\\\\)*){new_quote}")
    escaped_orig = _compile(rf"([^\\]|^)\\((?:\\\\)*){orig_quote}")
    body = text[first + len(orig_quote) : -len(orig_quote)]
    if "r" in prefix.casefold():
        if unescaped_new.search(body):
            return text
        new_body = body
    else:
        new_body = _sub_twice(escaped_new, rf"\1\2{new_quote}", body)
        if body != new_body:
            body = new_body
            text = f"{prefix}{orig_quote}{body}{orig_quote}"
        new_body = _sub_twice(escaped_orig, rf"\1\2{orig_quote}", new_body)
        new_body = _sub_twice(unescaped_new, rf"\1\\{new_quote}", new_body)
    if "f" in prefix.casefold() or "t" in prefix.casefold():
        for field in re.findall(r"(?:(?<!\{)|^)\{([^{].*?)\}(?:(?!\})|$)", new_body):
            if "\\" in str(field):
                return text
    if new_quote == '"""' and _ends_with_unescaped_quote(new_body):
        new_body = new_body[:-1] + '\\"'
    orig_escapes = body.count("\\")
    new_escapes = new_body.count("\\")
    if new_escapes > orig_escapes:
        return text
    if new_escapes == orig_escapes and orig_quote == '"':
        return text
    return f"{prefix}{new_quote}{new_body}{new_quote}"


def normalize_number(text: str) -> str:
    """Lower-case number letters, upper-case hex digits, complete `1.` and `.5` floats."""
    text = text.lower()
    if text.startswith(("0o", "0b")):
        return text
    if text.startswith("0x"):
        return text[:2] + text[2:].upper()
    if "e" in text:
        before, after = text.split("e")
        sign = ""
        if after.startswith("-"):
            after, sign = after[1:], "-"
        elif after.startswith("+"):
            after = after[1:]
        return f"{_float_or_int(before)}e{sign}{after}"
    if text.endswith("j"):
        return _float_or_int(text[:-1]) + "j"
    return _float_or_int(text)


def _float_or_int(text: str) -> str:
    if "." not in text:
        return text
    before, after = text.split(".")
    return f"{before or 0}.{after or 0}"


def make_comment(content: str) -> str:
    """A comment as black writes it: `# text`, the few exceptions kept as they are."""
    content = content.rstrip()
    if not content:
        return "#"
    if _DIRECTIVE.search(content):
        raise Unsupported("a formatter, type or coding directive in a comment")
    if content[0] == "#":
        content = content[1:]
    if content and content[0] not in _COMMENT_EXCEPTIONS:
        content = " " + content
    return "#" + content


def fix_docstring(docstring: str, indent: str) -> str:
    """PEP 257 indentation: the common indentation of all but the first line is removed and
    replaced by the block's; trailing spaces go."""
    lines = docstring.split("\n")
    common = sys.maxsize
    for line in lines[1:]:
        stripped = line.lstrip()
        if stripped:
            common = min(common, len(line) - len(stripped))
    trimmed = [lines[0].strip()]
    if common < sys.maxsize:
        last = len(lines) - 2
        for index, line in enumerate(lines[1:]):
            rest = line[common:].rstrip()
            if rest or index == last:
                trimmed.append(indent + rest)
            else:
                trimmed.append("")
    return "\n".join(trimmed)


def docstring_value(value: str, depth: int, line_length: int) -> str:
    """black's rewrite of a docstring leaf (prefix and quotes normalised first)."""
    text = normalize_string_quotes(normalize_string_prefix(value))
    prefix = string_prefix(text)
    text = text[len(prefix) :]
    quote_char = text[0]
    quote_len = 1 if text[1] != quote_char else 3
    body = text[quote_len:-quote_len]
    started_empty = not body
    indent = " " * 4 * depth
    multiline = value.lstrip(STRING_PREFIX_CHARS)[:3] in ('"""', "'''") and "\n" in value
    body = fix_docstring(body, indent) if multiline else body.strip()
    trailing_backslash = False
    if body:
        if body[0] == quote_char:
            body = " " + body
        if body[-1] == quote_char:
            body += " "
        if body[-1] == "\\":
            count = len(body) - len(body.rstrip("\\"))
            if count % 2:
                body += " "
                trailing_backslash = True
    elif not started_empty:
        body = " "
    quote = quote_char * quote_len
    if quote_len == 3:
        lines = body.splitlines()
        last_length = len(lines[-1]) if body and not body.endswith("\n") else 0
        if (
            len(lines) > 1
            and last_length + quote_len > line_length
            and len(indent) + quote_len <= line_length
            and not trailing_backslash
        ):
            if value[-1 - quote_len] == "\n":
                return prefix + quote + body + quote
            return prefix + quote + body + "\n" + indent + quote
    return prefix + quote + body + quote
