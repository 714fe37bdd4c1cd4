"""The fast path: black's lines for a one-line statement, without a syntax tree.

Most statements dlspec emits are one physical line, fit in 100 columns and need only black's
spacing and string/number normalisation; most of the others are a call black splits after its
opening parenthesis. `format_simple` decides the spacing from each token and the bracket it is
in, and that split the way black's right-hand split does, for a deliberately small subset of
Python; whatever it is not sure of (parentheses black would hide, magic trailing commas, slices
with expressions, lambdas, power operators, annotations, other splits, ...) returns None and
goes to the full formatter."""

from __future__ import annotations

import re
from typing import Optional

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat.fits import LINE_LENGTH
from dlspec.codegen.pyformat.tokens import (
    KEYWORDS,
    NUMBER_PATTERN,
    STRING_PATTERN,
    check_f_string,
)
from dlspec.codegen.pyformat.tree import Unsupported

_OPERATORS = (
    r"\*\*=|//=|>>=|<<=|->|:=|\*\*|//|<<|>>|<=|>=|==|!=|[-+*/%&|^@]=|[-+*/%&|^~<>()\[\]{}:;,.=@]"
)
# every token is a whole match; a character no alternative matches is caught by comparing the
# joined pieces with the text
_PIECES = re.compile(
    rf"[ ]+|#.*|{STRING_PATTERN}|{NUMBER_PATTERN}|[A-Za-z_][A-Za-z0-9_]*|{_OPERATORS}"
)
_REFUSED_KEYWORDS = frozenset("assert async await del lambda nonlocal yield".split())
_HEADERS = frozenset("if elif else for while with try except finally def class".split())
# statements whose parts after a top-level comma black may unwrap
_COMMA_CHILDREN = frozenset("with assert del except import from global".split())
_BINARY = frozenset("+ - * / // % @ | & ^ << >> == != < > <= >=".split())
_UNARY = frozenset("- + ~".split())
_AUGMENTED = frozenset("+= -= *= /= //= %= &= |= ^= <<= >>= @=".split())
_OPENING = {"(": ")", "[": "]", "{": "}"}
_CLOSING = frozenset(")]}")
_QUOTES = "\"'"

# token classes
NAME, KEYWORD, NUMBER, STRING, OP = "name", "keyword", "number", "string", "op"
# bracket kinds
CALL, PAREN, SUB, LIST, DICT = "call", "paren", "sub", "list", "dict"
# what a token does, where that decides the next token's space
UNARY, KWARG, VARARG, SLICE, ASSIGN, BINARY = (
    "unary",
    "kwarg",
    "vararg",
    "slice",
    "assign",
    "binary",
)
_NO_SPACE_AFTER = frozenset((UNARY, KWARG, VARARG, SLICE))

_NUMBERS: dict[str, str] = {}


class _Refused(Exception):
    """Not for the fast path."""


class _Bracket:
    """An open bracket: its kind, where it is, and what was seen directly inside it."""

    __slots__ = ("kind", "index", "commas", "colon", "first_paren", "after_assign")

    def __init__(self, kind: str, index: int, after_assign: bool) -> None:
        self.kind = kind
        self.index = index
        self.commas = 0
        self.colon = False
        self.first_paren = -1  # a `(` right after this bracket: its index
        self.after_assign = after_assign  # a statement-level `(` after `=` or `return`


class _Statement:
    """A statement's tokens, the space before each, and what the split needs."""

    def __init__(self, first_word: str) -> None:
        self.first_word = first_word
        self.kinds: list[str] = []
        self.values: list[str] = []
        self.gaps: list[str] = []
        self.roles: list[str] = []
        self.closing: dict[int, int] = {}  # an opening bracket's index -> its closing one's
        self.commas: dict[int, list[int]] = {}  # an opening bracket's index -> its commas
        self.paren_commas: dict[int, int] = {}  # a `(`'s index -> the commas directly in it
        self.comment = ""

    def text(self, start: int, end: int) -> str:
        """Tokens start..end-1 with their spaces, the first one's left out."""
        if start >= end:
            return ""
        pieces = [self.values[start]]
        gaps, values = self.gaps, self.values
        for index in range(start + 1, end):
            pieces.append(gaps[index])
            pieces.append(values[index])
        return "".join(pieces)


_OPERATOR_PIECES = (
    "**= //= >>= <<= -> := ** // << >> <= >= == != -= += *= /= %= &= |= ^= @="
    " - + * / % & | ^ ~ < > ( ) [ ] { } : ; , . = @"
).split()
# a piece's class when its text decides it (operators, keywords); None for the rest
_PIECE_CLASS: dict[str, str] = {
    **{piece: OP for piece in _OPERATOR_PIECES},
    **{word: KEYWORD for word in KEYWORDS},
}


def _tokens(text: str, statement: _Statement) -> None:
    """Fill in the statement's token classes and normalised texts, and its trailing comment."""
    pieces = _PIECES.findall(text)
    if "".join(pieces) != text:
        raise _Refused("cannot tokenize")
    kinds, values = statement.kinds, statement.values
    word_before = False  # the previous piece was a name, number or string
    for piece in pieces:
        kind = _PIECE_CLASS.get(piece)
        if kind is OP:
            if piece == "." and word_before and kinds[-1] == NUMBER:
                raise _Refused("a number before a dot")
            word_before = False
            kinds.append(OP)
            values.append(piece)
            continue
        first = piece[0]
        if first == " ":
            word_before = False
            continue
        if first == "#":
            statement.comment = _comment(piece)
            return
        if word_before:
            raise _Refused("two words without a space between them")
        word_before = True
        if kind is KEYWORD:
            if piece in _REFUSED_KEYWORDS:
                raise _Refused(f"keyword {piece}")
            value = piece
        elif first in _QUOTES or piece[-1] in _QUOTES:
            kind, value = STRING, _normalize_string(piece)
        elif first.isdigit() or first == ".":
            kind, value = NUMBER, _normalize_number(piece)
        else:
            kind, value = NAME, piece
        kinds.append(kind)
        values.append(value)


def _normalize_number(piece: str) -> str:
    value = _NUMBERS.get(piece)
    if value is None:
        value = _NUMBERS[piece] = literals.normalize_number(piece)
    return value


def _comment(value: str) -> str:
    try:
        return literals.make_comment(value)
    except Unsupported as error:
        raise _Refused(str(error)) from None


def _normalize_string(value: str) -> str:
    if "\n" in value:
        raise _Refused("a multiline string")
    if value[0] not in _QUOTES and "f" in literals.string_prefix(value).lower():
        try:
            check_f_string(value)
        except Unsupported as error:
            raise _Refused(str(error)) from None
    return literals.normalize_string(value)


def _operand_end(kind: str, value: str) -> bool:
    """Does a token of this class end an operand (so that `-` after it is binary)?"""
    if kind in (NAME, NUMBER, STRING):
        return True
    return kind == OP and value in _CLOSING


class _Spacer:
    """Walks a statement's tokens, deciding each one's space and checking the subset."""

    def __init__(self, statement: _Statement, inside: str) -> None:
        self.s = statement
        self.stack: list[_Bracket] = [_Bracket(inside, -1, False)] if inside else []
        self.outer = len(self.stack)  # brackets open before the text starts (an item's)

    def run(self) -> None:
        s = self.s
        kinds, values, gaps, roles = s.kinds, s.values, s.gaps, s.roles
        for index in range(len(kinds)):
            kind, value = kinds[index], values[index]
            gap, role = "", ""
            if kind != OP:
                if index:  # a name, number or string: the common case, decided here
                    prev_kind, prev_value = kinds[index - 1], values[index - 1]
                    glued = prev_kind == OP and (prev_value in _OPENING or prev_value == ".")
                    gap = "" if glued or roles[index - 1] in _NO_SPACE_AFTER else " "
            elif value in _OPENING:
                gap = self.gap(index, kind, value)
                self.open(index, value)
            elif value in _CLOSING:
                self.close(index, value)
            elif value == ",":
                self.comma(index)
            elif value == ":":
                role = self.colon(index)
                gap = " " if role == SLICE and index and values[index - 1] == "," else ""
            elif value == ".":
                gap = self.gap(index, kind, value)
            elif value == "@" and index == 0 and s.first_word == "@":
                role = UNARY
            else:
                role = self.operator(index, value)
                gap = self.operator_gap(index, role)
            gaps.append(gap)
            roles.append(role)
        if len(self.stack) != self.outer:
            raise _Refused("unbalanced brackets")

    def gap(self, index: int, kind: str, value: str) -> str:
        """The space black puts before a name, number, string, opening bracket or dot."""
        if not index:
            return ""
        s = self.s
        prev_kind, prev_value, prev_role = (
            s.kinds[index - 1],
            s.values[index - 1],
            s.roles[index - 1],
        )
        if prev_kind == OP and prev_value in _OPENING:
            return ""
        if value == "(":
            if prev_kind == NAME or (prev_kind == OP and prev_value in _CLOSING):
                return ""
            if not self.stack and not self.parenthesized_value(index):
                raise _Refused("parentheses at statement level")
        elif value == "[":
            if prev_kind in (NAME, STRING) or (prev_kind == OP and prev_value in _CLOSING):
                return ""
        elif value == "." and kind == OP:
            if prev_kind in (NAME, STRING) or (prev_kind == OP and prev_value in _CLOSING):
                return ""
            raise _Refused("a dot after something else")
        if prev_role in _NO_SPACE_AFTER:
            return ""
        return " "

    def parenthesized_value(self, index: int) -> bool:
        """May a statement-level `(` that is no call stay? black hides the parentheses of an
        atom that is the whole value after a statement's keyword (if, for, in, with, except,
        ...), an assignment's `=` or `return`, unless they hold a tuple (checked at the `)`
        for `=` and `return`). After an operator, or a keyword inside an expression, the
        atom is only part of the value and keeps them."""
        s = self.s
        prev_kind, prev_value, prev_role = (
            s.kinds[index - 1],
            s.values[index - 1],
            s.roles[index - 1],
        )
        if prev_role in (BINARY, UNARY):
            return True
        if prev_kind == KEYWORD:
            if prev_value in ("not", "and", "or", "is"):
                return True
            if prev_value == "in" and s.first_word != "for":
                return True
            if prev_value in ("if", "else") and index > 1 and s.first_word != "elif":
                return True
        if prev_value == "," and s.first_word not in _COMMA_CHILDREN:
            return True
        return (prev_role == ASSIGN and prev_value == "=") or (
            index == 1 and prev_kind == KEYWORD and prev_value == "return"
        )

    def open(self, index: int, value: str) -> None:
        s = self.s
        prev_kind = s.kinds[index - 1] if index else ""
        prev_value = s.values[index - 1] if index else ""
        follows_operand = prev_kind == NAME or (prev_kind == OP and prev_value in _CLOSING)
        if value == "(":
            kind = CALL if follows_operand else PAREN  # a def's parameters space as arguments
            if self.stack and prev_kind == OP and prev_value in ("[", "{"):
                self.stack[-1].first_paren = index
        elif value == "[":
            kind = SUB if follows_operand or prev_kind == STRING else LIST
        else:
            kind = DICT
        at_statement_level = not self.stack and kind == PAREN
        if at_statement_level and not index:
            raise _Refused("a statement starting with parentheses (black may hide them)")
        self.stack.append(_Bracket(kind, index, at_statement_level))

    def close(self, index: int, value: str) -> None:
        s = self.s
        if len(self.stack) == self.outer:
            raise _Refused("unbalanced brackets")
        bracket = self.stack.pop()
        if _OPENING[s.values[bracket.index]] != value:
            raise _Refused("unbalanced brackets")
        s.closing[bracket.index] = index
        if value == ")":
            s.paren_commas[bracket.index] = bracket.commas
        if s.values[index - 1] == ",":
            # a trailing comma: magic (one item per line) unless it makes a one-item tuple
            if not (bracket.kind == PAREN and bracket.commas == 1):
                raise _Refused("a magic trailing comma")
        if bracket.colon:
            _check_simple_slice(s, bracket.index, index)
        if bracket.kind == CALL and index == bracket.index + 1 and s.first_word == "class":
            if not self.stack:
                raise _Refused("empty class parentheses")
        if bracket.after_assign and index == len(s.kinds) - 1:
            if bracket.commas == 0 and index != bracket.index + 1:
                raise _Refused("parentheses black hides")
        if bracket.first_paren >= 0 and bracket.commas == 0 and value in "]}":
            inner = bracket.first_paren
            if s.closing.get(inner) == index - 1 and s.paren_commas.get(inner) == 0:
                raise _Refused("parentheses black hides in a one-item list or set")

    def comma(self, index: int) -> None:
        s = self.s
        if self.stack:
            bracket = self.stack[-1]
            bracket.commas += 1
            s.commas.setdefault(bracket.index, []).append(index)
        elif index == len(s.kinds) - 1:
            raise _Refused("a one-item tuple at statement level")
        elif s.values[index + 1] in ("=", ":") or (
            s.kinds[index + 1] == KEYWORD and s.values[index + 1] == "in"
        ):
            # a target or an iterable that ends in a comma (`x, = y`, `for x, in y`,
            # `for x in y,:`): black parenthesizes a one-item tuple, explodes a longer one
            raise _Refused("a statement-level tuple ending in a comma")

    def colon(self, index: int) -> str:
        """The role of `:`: a dict's, a simple slice's, a block's; else _Refused."""
        context = self.stack[-1].kind if self.stack else ""
        if context == DICT:
            return "dict"
        if context == SUB:
            self.stack[-1].colon = True
            return SLICE
        s = self.s
        if not context and index == len(s.kinds) - 1 and s.first_word in _HEADERS:
            return "block"
        raise _Refused("a colon black may space otherwise")

    def operator(self, index: int, value: str) -> str:
        """How black reads an operator here: binary, unary, vararg, kwarg `=`, assignment."""
        s = self.s
        context = self.stack[-1].kind if self.stack else ""
        prev_kind = s.kinds[index - 1] if index else ""
        prev_value = s.values[index - 1] if index else ""
        if value in _UNARY or value in ("*", "**"):
            if _operand_end(prev_kind, prev_value):
                if value == "**":
                    raise _Refused("a power operator")
                return BINARY
            if value in ("*", "**"):
                if context == CALL and prev_value in ("(", ",") and len(self.stack) > self.outer:
                    return VARARG
                raise _Refused("unpacking outside a call")
            return UNARY
        if value in _BINARY:
            if not _operand_end(prev_kind, prev_value):
                raise _Refused("a binary operator without a left operand")
            return BINARY
        if value == "=":
            if context == CALL and prev_kind == NAME:
                return KWARG
            if not context and s.first_word not in KEYWORDS:
                return ASSIGN
            raise _Refused("`=` in an unexpected place")
        if value in _AUGMENTED and not context:
            return ASSIGN
        raise _Refused(f"operator {value}")

    def operator_gap(self, index: int, role: str) -> str:
        if role in (BINARY, ASSIGN):
            return " "
        if role == KWARG or not index:
            return ""
        s = self.s
        prev_kind, prev_value = s.kinds[index - 1], s.values[index - 1]
        if prev_kind == OP and prev_value in _OPENING:
            return ""
        if s.roles[index - 1] in _NO_SPACE_AFTER:
            return ""
        return " "


def _check_simple_slice(s: _Statement, start: int, end: int) -> None:
    """A subscript with a colon is fast only when it holds names, numbers and unary signs:
    black spaces the colons of other slices (its `complex_subscript`)."""
    previous = "["
    for index in range(start + 1, end):
        kind, value = s.kinds[index], s.values[index]
        if kind in (NAME, NUMBER) or value in (":", ","):
            previous = value
            continue
        if value in ("-", "+") and previous in ("[", ":", ","):
            previous = value
            continue
        raise _Refused("a slice with an expression")


def _check_statement(s: _Statement) -> None:
    """Statement-level cases black rewrites beyond spacing."""
    kinds, values = s.kinds, s.values
    if s.comment and len(kinds) >= 2 and kinds[-1] == STRING and kinds[-2] == STRING:
        raise _Refused("a comment after implicitly concatenated strings")
    if values[0] == "@":
        for kind, value in zip(kinds[1:], values[1:], strict=True):
            if kind != NAME and value != ".":
                raise _Refused("a decorator that is not a dotted name")


def _parse(text: str, first_word: str, inside: str = "") -> _Statement:
    statement = _Statement(first_word)
    _tokens(text, statement)
    if not statement.kinds:
        raise _Refused("no code")
    _Spacer(statement, inside).run()
    return statement


_LINES: dict[tuple[str, int], Optional[list[str]]] = {}


def format_simple(text: str, depth: int, first_word: str) -> Optional[list[str]]:
    """black's lines for a one-line statement (without newlines), or None when the fast path
    is not sure."""
    key = (text, depth)
    if key in _LINES:
        return _LINES[key]
    try:
        lines = _format(text, depth, first_word)
    except _Refused:
        lines = None
    if len(_LINES) > 100000:
        _LINES.clear()
    _LINES[key] = lines
    return lines


def _format(text: str, depth: int, first_word: str) -> Optional[list[str]]:
    if first_word in _REFUSED_KEYWORDS or (first_word == "@" and "(" in text):
        raise _Refused("statement kind")
    s = _parse(text, first_word)
    _check_statement(s)
    line = "    " * depth + s.text(0, len(s.kinds)) + ("  " + s.comment if s.comment else "")
    if len(line) <= LINE_LENGTH:
        return [line]
    if s.comment:
        return None
    return _split_call(s, depth)


def format_element(text: str, depth: int, bracket: str) -> Optional[str]:
    """black's line for one item of an exploded collection (`item,`) directly inside
    `bracket` (a list's `[`, a dict's or set's `{`, a call's `(`), or None."""
    inside = {"[": LIST, "{": DICT, "(": CALL}[bracket]
    try:
        if not text.endswith(","):
            raise _Refused("an item that is not `item,`")
        s = _parse(text[:-1], "", inside)
        if s.comment or s.commas.get(-1):
            raise _Refused("not one item")
    except _Refused:
        return None
    line = "    " * depth + s.text(0, len(s.kinds)) + ","
    return line if len(line) <= LINE_LENGTH else None


# ---- black's right-hand split of a call --------------------------------------------------


def _dotted_name(s: _Statement, start: int) -> int:
    """The index after a dotted name starting at `start` (start itself when there is none)."""
    kinds, values = s.kinds, s.values
    if start >= len(kinds) or kinds[start] != NAME:
        return start
    index = start + 1
    while index + 1 < len(kinds) and values[index] == "." and kinds[index + 1] == NAME:
        index += 2
    return index


def _split_call(s: _Statement, depth: int) -> Optional[list[str]]:
    """black's lines for `callee(args)`, `target = callee(args)`, `return callee(args)`,
    `raise callee(args)` or `target = callee(args)(name)` when it does not fit.

    black splits at the last bracket pair, leaving out the optional parentheses around an
    assignment's or a return's value (the value has no delimiters and the target no
    brackets): `head(` / args / `)`, the args one per line with a trailing comma when they do
    not fit on theirs. For `(name)` after the call the first try splits there; when that
    head does not fit, the call's parentheses are split instead."""
    kinds, values = s.kinds, s.values
    size = len(kinds)
    start, assign = 0, False
    if kinds[0] == KEYWORD:
        if values[0] not in ("return", "raise"):
            return None
        start = 1
    else:
        target_end = _dotted_name(s, 0)
        if target_end < size and values[target_end] == "=" and s.roles[target_end] == ASSIGN:
            start, assign = target_end + 1, True
            if ASSIGN in s.roles[start:]:
                return None  # a chained assignment
        elif s.first_word in KEYWORDS:
            return None
    opening = _dotted_name(s, start)
    if opening == start or opening >= size or values[opening] != "(":
        return None
    closing = s.closing[opening]
    if closing == opening + 1:
        return None  # black does not split empty parentheses
    indent = "    " * depth
    tail = ")"
    if closing != size - 1:
        second = closing + 1
        if not (
            assign
            and closing + 4 == size
            and values[second] == "("
            and kinds[second + 1] == NAME
            and values[second + 2] == ")"
        ):
            return None
        first_head = indent + s.text(0, second + 1)
        if len(first_head) <= LINE_LENGTH:
            return [first_head, indent + "    " + values[second + 1], indent + ")"]
        tail = ")(" + values[second + 1] + ")"
    return _call_lines(s, 0, opening, closing, indent, tail)


def _call_lines(
    s: _Statement, start: int, opening: int, closing: int, indent: str, tail: str
) -> Optional[list[str]]:
    """`head(` (tokens start..opening) / the arguments one level deeper, on one line when they
    fit, else one per line / `)` and what follows it (`tail`)."""
    head = indent + s.text(start, opening + 1)
    if len(head) > LINE_LENGTH:
        return None
    body = indent + "    " + s.text(opening + 1, closing)
    if len(body) <= LINE_LENGTH:
        return [head, body, indent + tail]
    items = _exploded_arguments(s, opening, closing, indent + "    ")
    if items is None:
        return None
    return [head, *items, indent + tail]


def _exploded_arguments(
    s: _Statement, opening: int, closing: int, indent: str
) -> Optional[list[str]]:
    """The arguments one per line, a comma after each (black's delimiter split at commas),
    when nothing outranks the commas or forbids the trailing one; an argument that does not
    fit must itself be a call (maybe a keyword's value) black splits after its parenthesis."""
    commas = s.commas.get(opening, [])
    if not commas:
        return None
    bounds = [opening, *commas, closing]
    lines: list[str] = []
    for first, last in zip(bounds, bounds[1:], strict=False):
        if s.roles[first + 1] == VARARG:
            return None  # its trailing comma depends on the target versions
        for index in range(first + 1, last):
            if s.values[index] == "for" and s.kinds[index] == KEYWORD:
                if _depth_in(s, opening, index) == 0:
                    return None  # a generator argument: black splits at `for`
        line = indent + s.text(first + 1, last) + ","
        if len(line) <= LINE_LENGTH:
            lines.append(line)
            continue
        split = _split_argument(s, first + 1, last, indent)
        if split is None:
            return None
        lines += split
    return lines


def _split_argument(s: _Statement, start: int, end: int, indent: str) -> Optional[list[str]]:
    """An argument `callee(args)` or `name=callee(args)` (tokens start..end-1) too long for
    its line: black splits it after the parenthesis, the comma after the `)`."""
    if end - start > 2 and s.roles[start + 1] == KWARG:
        start_of_call = start + 2
    else:
        start_of_call = start
    opening = _dotted_name(s, start_of_call)
    if opening == start_of_call or opening >= end or s.values[opening] != "(":
        return None
    closing = s.closing[opening]
    if closing != end - 1 or closing == opening + 1:
        return None
    return _call_lines(s, start, opening, closing, indent, "),")


def _depth_in(s: _Statement, opening: int, index: int) -> int:
    """How many brackets, opened after `opening`, enclose token `index`."""
    depth = 0
    for position in range(opening + 1, index):
        value = s.values[position]
        if s.kinds[position] == OP:
            if value in _OPENING:
                depth += 1
            elif value in _CLOSING:
                depth -= 1
    return depth
