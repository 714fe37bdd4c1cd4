"""Split source into black's logical lines without parsing: statements, comment lines, depths.

The scanner reproduces where blib2to3 puts comments and blank lines (the prefix of the next
token, or of a dedent when a comment is indented as deep as the block it closes), so that each
statement can be formatted on its own and black's blank-line rules applied between them."""

from __future__ import annotations

import re
from typing import Optional

from dlspec.codegen.pyformat.literals import make_comment
from dlspec.codegen.pyformat.tokens import KEYWORDS, STRING_PATTERN, kept_in_block
from dlspec.codegen.pyformat.tree import Unsupported

# what matters for finding where a logical line ends: strings, comments, brackets, newlines
_EVENT = re.compile(
    rf"(?P<string>{STRING_PATTERN})|(?P<comment>#[^\n]*)|(?P<open>[(\[{{])|(?P<close>[)\]}}])|(?P<newline>\n)"
)
_STRING = re.compile(STRING_PATTERN)
_FIRST_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|@")
_ONLY_STRING = re.compile(rf"(?:{STRING_PATTERN})(?P<comment>[ ]*#[^\n]*)?")
_HEADER_WORDS = frozenset("if elif else for while with try except finally def class".split())
# Statements from which black infers newer target versions (and so adds trailing commas after
# *args and **kwargs when it splits a call or a def anywhere in the file) that the statement
# formatters would take without parsing: type parameters, a soft keyword's statement (`type
# X = ...`, `lazy import x`, `match x:`) and an `except` naming types without parentheses.
_TYPE_PARAMETERS = re.compile(r"(?:def|class)[ ]+[A-Za-z_][A-Za-z0-9_]*[ ]*\[")
_SECOND_WORD = re.compile(r"[ ]+([A-Za-z_][A-Za-z0-9_]*|[0-9\"'])")
_EXPRESSION_WORDS = frozenset("if in not and or is".split())  # `x if ...`, `x in ...`
# what each clause may continue: the header closed last at its depth (its first word)
_CONTINUES = {
    "elif": ("if", "elif"),
    "else": ("if", "elif", "for", "while", "except"),
    "except": ("try", "except"),
    "finally": ("try", "except", "else"),
}
_DECORATED = frozenset(("@", "def", "class", "async"))


class Item:
    """A logical line black emits: a statement (its source text, first line unindented) or a
    standalone comment (its normalised text)."""

    __slots__ = (
        "text",
        "depth",
        "before",
        "comment",
        "docstring",
        "first_word",
        "multiline",
        "header",
    )

    def __init__(self, text: str, depth: int, before: int, comment: bool) -> None:
        self.text = text
        self.depth = depth
        self.before = before  # blank lines before it, as black counts them
        self.comment = comment
        self.docstring = False
        self.first_word = ""
        self.multiline = False
        self.header = False  # a compound statement's line, ending with its colon

    def __repr__(self) -> str:
        kind = "comment" if self.comment else "statement"
        return f"Item({kind}, depth={self.depth}, before={self.before}, {self.text!r})"


def _comments(prefix: str, depth: int, items: list[Item]) -> int:
    """Append the comment lines of a prefix (each with the blank lines before it); return the
    newlines after the last comment (black's count of blank lines before the statement)."""
    if "#" not in prefix:
        return prefix.count("\n")
    newlines = consumed = after = 0
    for full_line in prefix.split("\n"):
        consumed += len(full_line) + 1
        line = full_line.lstrip()
        if not line:
            newlines += 1
        elif line.startswith("#"):
            items.append(Item(make_comment(line), depth, newlines, True))
            newlines = 0
            after = consumed
    return prefix.count("\n", after)


class _Scanner:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Item] = []
        self.indents = [0]
        self.pending = 0  # start of the text before the next statement
        self.after_indent = True  # the next statement opens a block (or the file)
        self.f_strings = False
        self.needs_body = False  # the last statement is a block's header
        # per depth: the last statement's first word and its compound statement's first
        # clause's, where that statement is a header; None where it is not
        self.clauses: list[Optional[tuple[str, str]]] = []
        self.decorator_depth = -1  # a decorator's, until its def or class

    def run(self) -> list[Item]:
        source, size, pos = self.source, len(self.source), 0
        while pos < size:
            line_end = source.find("\n", pos)
            if line_end < 0:
                line_end = size
            segment = source[pos:line_end]
            column = len(segment) - len(segment.lstrip(" "))
            first = pos + column
            if first == line_end or source[first] == "#":
                pos = line_end + 1
                continue
            self.indent_to(column, first)
            pos = self.statement(first)
        if self.needs_body or self.decorator_depth >= 0:
            raise Unsupported("a header or decorator that ends the file")
        _check_tries_closed(self.clauses)
        self.dedent_to(0, size)
        self.finish(source[self.pending :])
        return self.items

    def indent_to(self, column: int, first: int) -> None:
        if self.needs_body and column <= self.indents[-1]:
            raise Unsupported("a block with no body")
        if column > self.indents[-1]:
            if not self.after_indent:
                raise Unsupported("an indented line that does not open a block")
            self.indents.append(column)
        elif column < self.indents[-1]:
            self.dedent_to(column, first)
            if column != self.indents[-1]:
                raise Unsupported("inconsistent dedent")

    def dedent_to(self, column: int, where: int) -> None:
        while self.indents[-1] > column:
            block = self.indents[-1]
            kept = kept_in_block(self.source[self.pending : where], block)
            _comments(kept, len(self.indents) - 1, self.items)
            self.pending += len(kept)
            self.indents.pop()

    def finish(self, prefix: str) -> None:
        _comments(prefix, 0, self.items)

    def statement(self, start: int) -> int:
        """Record the statement starting at `start`; return where the next line starts."""
        source = self.source
        depth = len(self.indents) - 1
        before = _comments(source[self.pending : start], depth, self.items)
        end = self.statement_end(start)
        text = source[start:end]
        item = Item(text, depth, before, False)
        word = _FIRST_WORD.match(text)
        item.first_word = word.group() if word else text[:1]
        item.multiline = "\n" in text
        if self.after_indent and _ONLY_STRING.fullmatch(text):
            prefix = text[: len(text) - len(text.lstrip("rRuUbBfF"))]
            item.docstring = not set(prefix) & set("bBfF")
        if text == "...":
            raise Unsupported("an ellipsis statement (black may join it to its def)")
        _check_target_versions(item.first_word, text)
        self.items.append(item)
        item.header = item.first_word in _HEADER_WORDS and _ends_with_colon(text)
        self.check_structure(item)
        self.after_indent = self.needs_body = item.header
        self.pending = end + 1
        return end + 1

    def check_structure(self, item: Item) -> None:
        """Refuse what black refuses but the statement formatters would take, as they never
        parse: a clause (`elif`, `else`, `except`, `finally`) that continues no compound
        statement, a try statement closed after its `try` block, and a decorator that no def
        or class follows at its depth. (A block with no body is refused where the next line
        is not indented, and what is still open at the end of the file in `run`.)"""
        depth, word = item.depth, item.first_word
        clauses = self.clauses
        clauses.extend([None] * (depth + 1 - len(clauses)))
        previous = clauses[depth]
        _check_tries_closed(clauses[depth + 1 :])
        if word not in ("except", "finally"):
            _check_tries_closed(clauses[depth : depth + 1])
        del clauses[depth + 1 :]  # the blocks deeper than this statement are closed
        first = word
        if word in _CONTINUES:
            if previous is None or previous[0] not in _CONTINUES[word]:
                raise Unsupported(f"`{word}` continues no compound statement it may continue")
            if word == "finally" and previous[0] == "else" and previous[1] != "try":
                raise Unsupported("`finally` after the `else` of no try statement")
            first = previous[1]
        clauses[depth] = (word, first) if item.header else None
        if self.decorator_depth >= 0:
            if depth != self.decorator_depth or word not in _DECORATED:
                raise Unsupported("a decorator that no def or class follows")
            self.decorator_depth = -1
        if word == "@":
            self.decorator_depth = depth

    def statement_end(self, start: int) -> int:
        """Where the logical line ends: the first newline outside brackets and strings."""
        source = self.source
        newline = source.find("\n", start)
        if newline < 0:
            newline = len(source)
        line = source[start:newline]
        if "#" in line:
            return self.events_end(start)
        if "'" in line or '"' in line:
            strings = _STRING.findall(line)
            line = _STRING.sub("", line)
            if "'" in line or '"' in line:
                return self.events_end(start)  # a string going on after this line
            for value in strings:
                if value[0] not in "\"'" and "f" in value[:3].lower():
                    self.f_strings = self.f_strings or "f" in _prefix(value).lower()
        opened = line.count("(") + line.count("[") + line.count("{")
        if opened == line.count(")") + line.count("]") + line.count("}"):
            return newline  # the common case: no comment, strings closed, brackets closed
        return self.events_end(start)

    def events_end(self, start: int) -> int:
        """statement_end by the strings, comments, brackets and newlines (f-strings noted)."""
        depth = 0
        for match in _EVENT.finditer(self.source, start):
            kind = match.lastgroup
            if kind == "newline":
                if depth == 0:
                    return match.start()
            elif kind == "open":
                depth += 1
            elif kind == "close":
                depth -= 1
                if depth < 0:
                    raise Unsupported("unbalanced brackets")
            elif kind == "string" and not self.f_strings:
                value = match.group()
                if value[0] not in "\"'" and "f" in value[:3].lower():
                    self.f_strings = "f" in _prefix(value).lower()
        if depth:
            raise Unsupported("unbalanced brackets")
        return len(self.source)


def _check_tries_closed(clauses: list[Optional[tuple[str, str]]]) -> None:
    """Refuse a try statement that ends after its `try` block (no `except`, no `finally`)."""
    if any(clause is not None and clause[0] == "try" for clause in clauses):
        raise Unsupported("a try statement with neither except nor finally")


def _prefix(string: str) -> str:
    """A string literal's prefix letters."""
    return string[: len(string) - len(string.lstrip("rRbBuUfF"))]


def _check_target_versions(word: str, text: str) -> None:
    """Refuse a statement from which black would infer newer target versions (see
    _TYPE_PARAMETERS); the parser refuses it too, so the file goes to black."""
    if word in ("def", "class"):
        if _TYPE_PARAMETERS.match(text):
            raise Unsupported("type parameters")
    elif word == "except":
        if "," in text and _top_level_comma(text):
            raise Unsupported("`except` with types not in parentheses")
    elif word not in KEYWORDS and word != "@":
        second = _SECOND_WORD.match(text, len(word))
        if second is not None and second.group(1) not in _EXPRESSION_WORDS:
            raise Unsupported(f"a statement opening with the soft keyword {word!r}")


def _top_level_comma(text: str) -> bool:
    """Whether a comma sits outside brackets in a statement's code (strings and comments
    aside)."""
    depth = 0
    for char in _STRING.sub("", text).partition("#")[0]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth <= 0:
            return True
    return False


def _ends_with_colon(text: str) -> bool:
    """Does the statement's code end with `:` (comments aside)?"""
    if "#" in text:
        pieces, start = [], 0
        for match in _EVENT.finditer(text):
            if match.lastgroup == "comment":
                pieces.append(text[start : match.start()])
                start = match.end()
        text = "".join(pieces) + text[start:]
    return text.rstrip().endswith(":")


def scan(source: str) -> tuple[list[Item], bool]:
    """The logical lines of `source` (black strips leading whitespace first), and whether it
    holds an f-string."""
    scanner = _Scanner(source.lstrip())
    return scanner.run(), scanner.f_strings


def scan_segment(segment: str, first: bool) -> tuple[list[Item], bool]:
    """scan for one of segments.split's segments (first: the file's first, which may open with
    a docstring), which begins outside any block."""
    scanner = _Scanner(segment)
    scanner.after_indent = first
    return scanner.run(), scanner.f_strings
