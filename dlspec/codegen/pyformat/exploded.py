"""The fast path for a collection or call written one item per line with a magic comma.

black splits such a statement at its bracket (an assignment's optional parentheses are left
out when the target holds no brackets), and the magic trailing comma puts each item on its
own line; each item is then formatted on its own, one level deeper: as it is when it fits,
the same way again when it is itself exploded, else by the full formatter."""

from __future__ import annotations

import re
from typing import Callable, Optional

from dlspec.codegen.pyformat.literals import make_comment, normalize_string
from dlspec.codegen.pyformat.simple import format_element
from dlspec.codegen.pyformat.tokens import KEYWORDS, STRING_PATTERN
from dlspec.codegen.pyformat.tree import Unsupported

_KEYWORDS = KEYWORDS | {"None", "True", "False"}
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
# `NAME = [`, `return {`, `name.attr(`, `x = f(`: what black keeps on the first line
_HEAD = re.compile(
    rf"(?:(?P<target>{_DOTTED}) = |(?P<ret>return ))?(?P<callee>{_DOTTED})?(?P<open>[\[{{(])"
)
# an item's first line: `"key": [`, `name=f(`, `[`, `f(`
_ITEM_HEAD = re.compile(
    rf"(?:(?P<key>{STRING_PATTERN}|[A-Za-z_][A-Za-z0-9_]*): |(?P<kwarg>[A-Za-z_][A-Za-z0-9_]*)=)?"
    rf"(?P<callee>{_DOTTED})?(?P<open>[\[{{(])"
)
_EVENT = re.compile(
    rf"(?P<string>{STRING_PATTERN})|(?P<comment>#.*)|(?P<open>[(\[{{])|(?P<close>[)\]}}])"
)
_CLOSING = {"[": "]", "{": "}", "(": ")"}
_CALL_AGAIN = re.compile(r"\)\([A-Za-z_][A-Za-z0-9_]*\)")
# formats one item `text` (its lines, unindented) at `depth` inside `bracket`, or None
ItemFormatter = Callable[[str, int, str], Optional[list[str]]]


def _names_ok(match: re.Match[str], groups: tuple[str, ...]) -> bool:
    for group in groups:
        name = match.group(group)
        if name and any(part in _KEYWORDS for part in name.split(".")):
            return False
    return True


def _bracket_ok(match: re.Match[str]) -> bool:
    """A call's parenthesis, a list's or a dict's brace: not a tuple (a one-item tuple's comma
    is not magic) and not a subscript."""
    if match.group("open") == "(":
        return bool(match.group("callee"))
    return not match.group("callee")


def format_exploded(text: str, depth: int, fallback: ItemFormatter) -> Optional[list[str]]:
    """black's lines for a statement already written one item per line with a trailing
    comma, or None. `fallback` formats an item the fast path cannot."""
    lines = text.split("\n")
    head = _HEAD.fullmatch(lines[0])
    if head is None or not _names_ok(head, ("target", "callee")) or not _bracket_ok(head):
        return None
    if not head.group("target") and not head.group("ret") and head.group("open") != "(":
        return None
    first = "    " * depth + lines[0]
    after = ""
    if head.group("callee") and _CALL_AGAIN.fullmatch(lines[-1].strip()):
        after = lines[-1].strip()[1:]  # `)(x)`: black splits the first call, not the second
    return _collection(first, lines, depth, head.group("open"), after, fallback)


def _collection(
    first: str, lines: list[str], depth: int, bracket: str, after: str, fallback: ItemFormatter
) -> Optional[list[str]]:
    """The head line, the items one level deeper, the closing bracket (then `after`)."""
    if len(first) > 100 or lines[-1].strip() != _CLOSING[bracket] + after:
        return None
    out = [first + "\n"]
    items = _items(lines[1:-1])
    if not items or items[0][0] == "comment" or items[-1][0] == "comment":
        return None
    for kind, item in items:
        if kind == "comment":
            try:
                out.append("    " * (depth + 1) + make_comment(item[0]) + "\n")
            except Unsupported:
                return None
            continue
        formatted = _item(item, depth + 1, bracket, fallback)
        if formatted is None:
            return None
        out += formatted
    out.append("    " * depth + _CLOSING[bracket] + after + "\n")
    return out


def _items(lines: list[str]) -> Optional[list[tuple[str, list[str]]]]:
    """The items (their lines, stripped) and comment lines between them; None unless every
    item ends with its comma."""
    out: list[tuple[str, list[str]]] = []
    current: list[str] = []
    depth = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not current and line.startswith("#"):
            out.append(("comment", [line]))
            continue
        current.append(line)
        code_end = len(line)
        for match in _EVENT.finditer(line):
            kind = match.lastgroup
            if kind == "open":
                depth += 1
            elif kind == "close":
                depth -= 1
                if depth < 0:
                    return None  # `a, ], b=[c,`: the collection closed mid-line
            elif kind == "comment":
                return None
        if depth == 0:
            if not line[:code_end].endswith(","):
                return None
            out.append(("item", current))
            current = []
    if current or depth:
        return None
    return out


def _item(
    lines: list[str], depth: int, bracket: str, fallback: ItemFormatter
) -> Optional[list[str]]:
    if len(lines) == 1:
        formatted = format_element(lines[0], depth, bracket)
        if formatted is not None:
            return [formatted + "\n"]
        return fallback(lines[0], depth, bracket)
    nested = _nested(lines, depth, bracket, fallback)
    if nested is not None:
        return nested
    return fallback("\n".join(lines), depth, bracket)


def _nested(
    lines: list[str], depth: int, bracket: str, fallback: ItemFormatter
) -> Optional[list[str]]:
    """An item that is itself exploded: `"key": [` ... `],` and the like."""
    head = _ITEM_HEAD.fullmatch(lines[0])
    if head is None or not _names_ok(head, ("callee", "kwarg")) or not _bracket_ok(head):
        return None
    key, kwarg = head.group("key"), head.group("kwarg")
    if key is not None and (bracket != "{" or key in _KEYWORDS):
        return None
    if kwarg is not None and bracket != "(":
        return None
    if key is None and kwarg is None and bracket == "{":
        return None
    prefix = ""
    if key is not None:
        if key[0] not in "\"'" and not key.isidentifier():
            return None  # a prefixed string
        prefix = (normalize_string(key) if key[0] in "\"'" else key) + ": "
    elif kwarg is not None:
        prefix = kwarg + "="
    first = "    " * depth + prefix + (head.group("callee") or "") + head.group("open")
    return _collection(first, lines, depth, head.group("open"), ",", fallback)
