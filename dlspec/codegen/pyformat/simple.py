"""The fast path: black's output for a one-line statement that fits, without a syntax tree.

Most statements dlspec emits are one physical line, fit in 100 columns and need only black's
spacing and string/number normalisation. `format_simple` decides that spacing from each token
and the bracket it is in, for a deliberately small subset of Python; whatever it is not sure
of (redundant parentheses black would hide, magic trailing commas, slices with expressions,
lambdas, power operators, annotations, ...) returns None and goes to the full formatter."""

from __future__ import annotations

import re
from typing import Optional

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat.tokens import NUMBER_PATTERN, STRING_PATTERN

_TOKEN = re.compile(
    rf"(?P<space>[ ]+)|(?P<comment>#.*)|(?P<string>{STRING_PATTERN})|(?P<number>{NUMBER_PATTERN})"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*=|//=|>>=|<<=|->|:=|\*\*|//|<<|>>|<=|>=|==|!=|[-+*/%&|^@]=|[-+*/%&|^~<>()\[\]{}:;,.=@])"
)
_KEYWORDS = frozenset(
    "and as assert async await break class continue def del elif else except finally for from"
    " global if import in is lambda nonlocal not or pass raise return try while with yield".split()
)
_REFUSED_KEYWORDS = frozenset("assert async await del lambda nonlocal yield".split())
_CONSTANTS = frozenset(("None", "True", "False"))
_BINARY = frozenset("+ - * / // % @ | & ^ << >> == != < > <= >=".split())
_UNARY = frozenset("- + ~".split())
_AUGMENTED = frozenset("+= -= *= /= //= %= &= |= ^= <<= >>= @=".split())
_OPENING = {"(": ")", "[": "]", "{": "}"}
_CLOSING = frozenset(")]}")
# bracket kinds
CALL, PAREN, DEF, SUB, LIST, DICT = "call", "paren", "def", "sub", "list", "dict"

# token classes
NAME, KEYWORD, NUMBER, STRING, OP = "name", "keyword", "number", "string", "op"


class _Refused(Exception):
    """Not for the fast path."""


def _operand_end(kind: str, value: str) -> bool:
    """Does a token of this class end an operand (so that `-` after it is binary)?"""
    if kind in (NAME, NUMBER, STRING):
        return True
    if kind == KEYWORD:
        return False
    return value in _CLOSING


class _Line:
    """Spacing state while walking one statement's tokens."""

    def __init__(self, first_word: str) -> None:
        self.first_word = first_word
        self.stack: list[list] = []  # [kind, commas, colon seen, opening index]
        self.parts: list[str] = []
        self.prev_kind = ""
        self.prev_value = ""
        self.prev_role = ""  # "unary", "kwarg", "assign", "binary", "vararg", "slice", "dict"
        self.def_seen = first_word in ("def", "class")

    def context(self) -> str:
        return self.stack[-1][0] if self.stack else ""

    def gap(self, kind: str, value: str) -> str:
        """The space black puts before this token (raises _Refused when unsure)."""
        prev_kind, prev_value, role = self.prev_kind, self.prev_value, self.prev_role
        if not prev_kind:
            return ""
        if value in _CLOSING or value == ",":
            return ""
        if prev_kind == OP and prev_value in _OPENING:
            return ""
        if value == "(":
            if prev_kind == NAME or prev_value in _CLOSING:
                return ""
            if not self.stack:
                raise _Refused("parentheses at statement level")
        elif value == "[":
            if prev_kind in (NAME, STRING) or prev_value in _CLOSING:
                return ""
        elif value == ".":
            if prev_kind in (NAME, STRING) or prev_value in _CLOSING:
                return ""
            raise _Refused("a dot after something else")
        if prev_value == "." and prev_kind == OP:
            return ""
        if role in ("unary", "kwarg", "vararg", "slice"):
            return ""
        return " "

    def add(self, kind: str, value: str, gap: str, role: str = "") -> None:
        self.parts.append(gap)
        self.parts.append(value)
        self.prev_kind, self.prev_value, self.prev_role = kind, value, role


def _role_of_operator(line: _Line, value: str) -> str:
    """How black reads an operator here: binary, unary, vararg, kwarg `=`, assignment, ..."""
    context = line.context()
    if value in _UNARY or value in ("*", "**"):
        if _operand_end(line.prev_kind, line.prev_value):
            if value == "**":
                raise _Refused("a power operator")
            return "binary"
        if value in ("*", "**"):
            if context in (CALL, DEF) and line.prev_value in ("(", ",") and line.stack[-1][3] >= 0:
                return "vararg"
            raise _Refused("unpacking outside a call")
        return "unary"
    if value in _BINARY:
        if not _operand_end(line.prev_kind, line.prev_value):
            raise _Refused("a binary operator without a left operand")
        return "binary"
    if value == "=":
        if context in (CALL, DEF) and line.prev_kind == NAME:
            return "kwarg"
        if not context and line.first_word not in _KEYWORDS:
            return "assign"
        raise _Refused("`=` in an unexpected place")
    if value in _AUGMENTED:
        if not context:
            return "assign"
        raise _Refused("augmented assignment inside brackets")
    raise _Refused(f"operator {value}")


def _colon(line: _Line, tokens: list[tuple[str, str]], index: int) -> str:
    """The role of `:` (a dict's, a simple slice's, a block's), or _Refused."""
    context = line.context()
    if context == DICT:
        return "dict"
    if context == SUB:
        line.stack[-1][2] = True
        return "slice"
    if not context and _is_last_code_token(tokens, index) and line.first_word in _HEADERS:
        return "block"
    raise _Refused("a colon black may space otherwise")


_HEADERS = frozenset("if elif else for while with try except finally def class".split())


def _is_last_code_token(tokens: list[tuple[str, str]], index: int) -> bool:
    return index == len(tokens) - 1


def _check_simple_slice(tokens: list[tuple[str, str]], start: int, end: int) -> None:
    """A subscript with a colon is fast only when it holds names, numbers and unary signs:
    black spaces the colons of other slices (its `complex_subscript`)."""
    previous = "["
    for kind, value in tokens[start + 1 : end]:
        if kind in (NAME, NUMBER) or value in (":", ","):
            previous = value
            continue
        if value in ("-", "+") and previous in ("[", ":", ","):
            previous = value
            continue
        raise _Refused("a slice with an expression")


def _tokens(text: str) -> tuple[list[tuple[str, str]], str]:
    """(class, text) of each token, normalised, and the trailing comment (or "")."""
    tokens: list[tuple[str, str]] = []
    comment = ""
    pos, size = 0, len(text)
    word_before = False  # the previous token was a name, number or string, with no space
    while pos < size:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _Refused("cannot tokenize")
        group, value = match.lastgroup, match.group()
        pos = match.end()
        if group == "space":
            word_before = False
            continue
        if group in ("name", "number", "string"):
            if word_before:
                raise _Refused("two words without a space between them")
            word_before = True
        else:
            word_before = False
        if group == "comment":
            comment = _comment(value)
            break
        if group == "name":
            if value in _KEYWORDS:
                if value in _REFUSED_KEYWORDS:
                    raise _Refused(f"keyword {value}")
                tokens.append((KEYWORD, value))
            else:
                tokens.append((NAME, value))
        elif group == "number":
            if text.startswith(".", pos):
                raise _Refused("a number before a dot")
            tokens.append((NUMBER, literals.normalize_number(value)))
        elif group == "string":
            tokens.append((STRING, _normalize_string(value)))
        else:
            tokens.append((OP, value))
    return tokens, comment


def _comment(value: str) -> str:
    from dlspec.codegen.pyformat.tree import Unsupported

    try:
        return literals.make_comment(value)
    except Unsupported as error:
        raise _Refused(str(error)) from None


def _normalize_string(value: str) -> str:
    if "\n" in value:
        raise _Refused("a multiline string")
    if value[0] not in "\"'" and "f" in literals.string_prefix(value).lower():
        _check_f_string(value)
    return literals.normalize_string(value)


def _check_f_string(value: str) -> None:
    from dlspec.codegen.pyformat.tokens import check_f_string
    from dlspec.codegen.pyformat.tree import Unsupported

    try:
        check_f_string(value)
    except Unsupported as error:
        raise _Refused(str(error)) from None


def _open(line: _Line, value: str, index: int) -> None:
    prev_kind, prev_value = line.prev_kind, line.prev_value
    follows_operand = prev_kind == NAME or prev_value in _CLOSING
    if value == "(":
        if line.def_seen and not line.stack and prev_kind == NAME:
            kind = DEF if line.first_word == "def" else CALL
        else:
            kind = CALL if follows_operand else PAREN
    elif value == "[":
        kind = SUB if follows_operand or prev_kind == STRING else LIST
    else:
        kind = DICT
    line.stack.append([kind, 0, False, index])


def _close(line: _Line, tokens: list[tuple[str, str]], value: str, index: int) -> None:
    if not line.stack or line.stack[-1][3] < 0 or _OPENING[tokens[line.stack[-1][3]][1]] != value:
        raise _Refused("unbalanced brackets")
    kind, commas, colon, start = line.stack.pop()
    if tokens[index - 1][1] == ",":
        # a trailing comma: magic (one item per line) unless it makes a one-item tuple
        if not (kind == PAREN and commas == 1):
            raise _Refused("a magic trailing comma")
    if colon:
        _check_simple_slice(tokens, start, index)
    if index == start + 1 and kind == CALL and line.first_word == "class" and not line.stack:
        raise _Refused("empty class parentheses")


def format_simple(text: str, depth: int, first_word: str) -> Optional[str]:
    """black's line for a one-line statement, or None when the fast path is not sure."""
    key = (text, depth)
    if key in _LINES:
        return _LINES[key]
    try:
        line = _format(text, depth, first_word)
    except _Refused:
        line = None
    if len(_LINES) > 100000:
        _LINES.clear()
    _LINES[key] = line
    return line


_LINES: dict[tuple[str, int], Optional[str]] = {}


def format_element(text: str, depth: int, bracket: str) -> Optional[str]:
    """black's line for one item of an exploded collection (`item,`) directly inside
    `bracket` (a list's `[`, a dict's or set's `{`, a call's `(`), or None."""
    kind = {"[": LIST, "{": DICT, "(": CALL}[bracket]
    try:
        return _format(text, depth, "", kind)
    except _Refused:
        return None


def _format(text: str, depth: int, first_word: str, inside: str = "") -> Optional[str]:
    if first_word in _REFUSED_KEYWORDS or first_word == "@" and "(" in text:
        raise _Refused("statement kind")
    tokens, comment = _tokens(text)
    line = _Line(first_word)
    if inside:
        if comment or not tokens or tokens[-1][1] != ",":
            raise _Refused("an item that is not `item,`")
        line.stack.append([inside, 0, False, -1])
        tokens.pop()
    for index, (kind, value) in enumerate(tokens):
        role = ""
        if kind == OP:
            if value in _OPENING:
                gap = line.gap(kind, value)
                if line.prev_value in ("[", "{") and value == "(":
                    raise _Refused("parentheses alone in a list or set")
                _open(line, value, index)
                line.add(kind, value, gap)
                continue
            if value in _CLOSING:
                _close(line, tokens, value, index)
                line.add(kind, value, "")
                continue
            if value == ",":
                if line.stack:
                    line.stack[-1][1] += 1
                elif index == len(tokens) - 1:
                    raise _Refused("a one-item tuple at statement level")
                line.add(kind, value, "")
                continue
            if value == ":":
                role = _colon(line, tokens, index)
                gap = " " if role == "slice" and line.prev_value == "," else ""
                line.add(kind, value, gap, role)
                continue
            if value == ".":
                line.add(kind, value, line.gap(kind, value))
                continue
            if value == "@" and index == 0:
                line.add(kind, value, "", "unary")
                continue
            role = _role_of_operator(line, value)
            gap = _operator_gap(line, role)
            line.add(kind, value, gap, role)
            continue
        gap = line.gap(kind, value)
        line.add(kind, value, gap)
    if inside:
        if len(line.stack) != 1 or line.stack[0][1]:
            raise _Refused("not one item")
        line.stack.pop()
        line.parts.append(",")
    elif tokens:
        _check_statement(tokens, comment)
    if line.stack or not tokens:
        raise _Refused("unbalanced brackets")
    body = "".join(line.parts)
    result = "    " * depth + body + ("  " + comment if comment else "")
    if len(result) > 100:
        return None
    return result


def _operator_gap(line: _Line, role: str) -> str:
    if role in ("binary", "assign"):
        return "" if not line.prev_kind else " "
    if role in ("kwarg",):
        return ""
    return line.gap(OP, "")


def _check_statement(tokens: list[tuple[str, str]], comment: str) -> None:
    """Statement-level cases black rewrites beyond spacing."""
    if comment and len(tokens) >= 2 and tokens[-1][0] == STRING and tokens[-2][0] == STRING:
        raise _Refused("a comment after implicitly concatenated strings")
    first_kind, first_value = tokens[0]
    if first_value == "@":
        for kind, value in tokens[1:]:
            if kind != NAME and value != ".":
                raise _Refused("a decorator that is not a dotted name")
    if first_value in ("import", "from"):
        if first_value == "from" and tokens[1][1] == ".":
            raise _Refused("a relative import")
        if any(value == "(" for _, value in tokens):
            raise _Refused("a parenthesized import")
