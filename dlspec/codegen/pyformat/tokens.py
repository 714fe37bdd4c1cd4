"""Split Python source into leaves with black's prefixes (blank lines, comments, indentation)."""

from __future__ import annotations

import re

from dlspec.codegen.pyformat.tree import (
    DEDENT,
    ENDMARKER,
    INDENT,
    NAME,
    NEWLINE,
    NUMBER,
    OPERATORS,
    STRING,
    Leaf,
    Unsupported,
)

STRING_PATTERN = (
    r"[rRbBuUfF]{0,2}(?:'''(?:[^'\\]|\\[\s\S]|'(?!''))*'''"
    r'|"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""'
    r"|'(?:[^'\\\n]|\\[^\n])*'"
    r'|"(?:[^"\\\n]|\\[^\n])*")'
)
# Python's keywords (the soft ones, `match`, `case`, `type` and `lazy`, are names here)
KEYWORDS = frozenset(
    "and as assert async await break class continue def del elif else except finally for from"
    " global if import in is lambda nonlocal not or pass raise return try while with yield".split()
)
NUMBER_PATTERN = (
    r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9][0-9_]*)?[jJ]?"
)
_OPERATOR = (
    r"\*\*=|//=|>>=|<<=|->|:=|\*\*|//|<<|>>|<=|>=|==|!=|[-+*/%&|^@]=|[-+*/%&|^~<>()\[\]{}:;,.=@]"
)
TOKEN = re.compile(
    rf"(?P<space>[ ]+)|(?P<comment>#[^\n]*)|(?P<string>{STRING_PATTERN})|(?P<number>{NUMBER_PATTERN})"
    rf"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>{_OPERATOR})|(?P<newline>\n)"
)
_INDENT = re.compile(r"[ ]*")
_OPENING = frozenset("([{")
_CLOSING = frozenset(")]}")
# Characters the fast path leaves to black: other line breaks, tabs (column arithmetic), and
# anything outside ASCII (black measures width by East Asian width).
REFUSED = re.compile(r"[^\n\x20-\x7e]|\\\n")
_F_STRING_FIELD = re.compile(r"\{([^{}]*)\}")
_SIMPLE_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def kept_in_block(prefix: str, column: int) -> str:
    """Of the blank and comment lines before a dedent (`prefix`), the ones that stay in the
    block being closed: every comment line up to the first indented less than the block
    (`column`), each with the blank lines above it. (Where blib2to3 puts them: black formats
    those comments inside the block.)"""
    kept = position = 0
    while True:
        end = prefix.find("\n", position)
        if end < 0:
            return prefix[:kept]
        line = prefix[position:end]
        position = end + 1
        if not line.strip(" "):
            continue  # a blank line goes with the comment below it
        if len(line) - len(line.lstrip(" ")) < column:
            return prefix[:kept]
        kept = position


def check_f_string(text: str) -> None:
    """Accept an f-string only when every field is a plain (dotted) name: black's handling
    of the rest (nested quotes, `=`, conversions, format specs) is not reproduced."""
    body = text.replace("{{", "").replace("}}", "")
    for field in _F_STRING_FIELD.findall(body):
        if not _SIMPLE_FIELD.fullmatch(field):
            raise Unsupported(f"f-string field {field!r}")
    if body.count("{") != body.count("}") or "\\" in text:
        raise Unsupported("f-string with escapes or unbalanced braces")


class _Tokenizer:
    """One pass over the source; `leaves` ends with ENDMARKER."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.leaves: list[Leaf] = []
        self.indents = [0]
        self.depth = 0
        self.pending = 0  # where the prefix of the next leaf starts
        self.f_strings = False
        self.variables = 0  # names, numbers and strings so far

    def emit(self, type: int, value: str, start: int, end: int) -> None:
        origin = -1
        if type in (NAME, NUMBER, STRING):
            origin = self.variables
            self.variables += 1
        self.leaves.append(Leaf(type, value, self.source[self.pending : start], origin))
        self.pending = end

    def run(self) -> list[Leaf]:
        source, pos, size = self.source, 0, len(self.source)
        line_start = True
        while pos < size:
            if line_start and self.depth == 0:
                pos, line_start = self.line_start(pos)
                continue
            match = TOKEN.match(source, pos)
            if match is None:
                raise Unsupported(f"cannot tokenize at offset {pos}")
            kind, end = match.lastgroup, match.end()
            if kind == "newline":
                if self.depth == 0:
                    self.emit(NEWLINE, "\n", pos, end)
                    line_start = True
            elif kind == "name":
                self.emit(NAME, match.group(), pos, end)
            elif kind == "op":
                self.operator(match.group(), pos, end)
            elif kind == "string":
                self.string(match.group(), pos, end)
            elif kind == "number":
                self.emit(NUMBER, match.group(), pos, end)
            pos = end
        if self.depth:
            raise Unsupported("unbalanced brackets")
        if not line_start:
            self.emit(NEWLINE, "\n", size, size)
        self.dedent_to(0, size)
        self.emit(ENDMARKER, "", size, size)
        return self.leaves

    def line_start(self, pos: int) -> tuple[int, bool]:
        """At the start of a line outside brackets: a blank or comment line joins the prefix;
        a statement's indentation may open or close blocks."""
        source = self.source
        column = _INDENT.match(source, pos).end() - pos
        first = pos + column
        if first >= len(source):
            return first, True
        if source[first] in "#\n":
            newline = source.find("\n", first)
            return (len(source) if newline < 0 else newline + 1), True
        if column > self.indents[-1]:
            self.indents.append(column)
            self.leaves.append(Leaf(INDENT, ""))
        elif column < self.indents[-1]:
            self.dedent_to(column, first)
            if column != self.indents[-1]:
                raise Unsupported("inconsistent dedent")
        return first, False

    def dedent_to(self, column: int, where: int) -> None:
        while self.indents[-1] > column:
            block = self.indents.pop()
            kept = kept_in_block(self.source[self.pending : where], block)
            self.leaves.append(Leaf(DEDENT, "", kept))
            self.pending += len(kept)

    def operator(self, value: str, start: int, end: int) -> None:
        if value in _OPENING:
            self.depth += 1
        elif value in _CLOSING:
            self.depth -= 1
            if self.depth < 0:
                raise Unsupported("unbalanced brackets")
        elif value in (";", ":=", "->", "@="):
            raise Unsupported(f"operator {value}")
        self.emit(OPERATORS[value], value, start, end)

    def string(self, value: str, start: int, end: int) -> None:
        prefix = value[: len(value) - len(value.lstrip("rRbBuUfF"))].lower()
        if "f" in prefix:
            check_f_string(value)
            self.f_strings = True
        self.emit(STRING, value, start, end)


def tokenize(source: str) -> tuple[list[Leaf], bool]:
    """The leaves of `source` (black's prefixes, INDENT/DEDENT/NEWLINE/ENDMARKER leaves) and
    whether it holds an f-string; Unsupported for anything the fast path does not handle."""
    refused = REFUSED.search(source)
    if refused:
        raise Unsupported(f"character {refused.group()!r}")
    tokenizer = _Tokenizer(source)
    return tokenizer.run(), tokenizer.f_strings
