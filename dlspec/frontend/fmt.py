"""`dlspec fmt`: the canonical layout of a spec's source, comments kept (a pass over its tokens)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from dlspec.frontend.parse import _parser, parse

INDENT = "    "

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\f\r\n]+)
      | (?P<comment>\#[^\n]*)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<arrow>->)
      | (?P<number>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[{}()\[\],:=*])""",
    re.VERBOSE,
)
_BRACED = ("model", "block", "train")


@dataclass(frozen=True)
class Tok:
    """One source token: its kind, text, offset and 1-based line."""

    kind: str
    text: str
    start: int
    line: int


def tokens(source: str) -> list[Tok]:
    """Every token of a spec that parses, comments included, whitespace left out."""
    out: list[Tok] = []
    pos, line = 0, 1
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:  # parse() has accepted the text, so this cannot happen
            raise ValueError(f"cannot tokenise offset {pos}")
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, match.group(), pos, line))
        line += match.group().count("\n")
        pos = match.end()
    return out


def _space(prev: Tok, cur: Tok, depth: int) -> str:
    """The space between two tokens of one statement (depth: open brackets before cur)."""
    if cur.text in (",", ")", "]", ":"):
        return ""
    if prev.text in ("(", "["):
        return ""
    if cur.text in ("(", "[") and prev.kind == "name":
        return ""
    if cur.text == "=" or prev.text == "=":
        return "" if depth > 0 else " "
    return " "


def _drop_trailing_commas(toks: list[Tok]) -> list[Tok]:
    """A comma just before a closing bracket says nothing: the canonical form has none."""
    code = [t for t in toks if t.kind != "comment"]
    dropped = {
        id(a)
        for a, b in zip(code, code[1:], strict=False)
        if a.text == "," and b.text in (")", "]")
    }
    return [t for t in toks if id(t) not in dropped]


@dataclass
class _Line:
    """One output line: indent level, code text, trailing comment, setting key (for alignment),
    and whether a blank line precedes it."""

    level: int
    code: str
    comment: str = ""
    key: Optional[str] = None
    blank_before: bool = False


def _unit_lines(toks: list[Tok], level: int) -> list[_Line]:
    """A statement (or header) on one line; a comment inside it ends its line, and the rest
    continues one level deeper."""
    toks = _drop_trailing_commas(toks)
    lines: list[_Line] = []
    parts: list[str] = []
    prev: Optional[Tok] = None
    depth = 0
    for tok in toks:
        if tok.kind == "comment":
            lines.append(
                _Line(level if not lines else level + 1, "".join(parts), tok.text.rstrip())
            )
            parts, prev = [], None
            continue
        if prev is not None:
            parts.append(_space(prev, tok, depth))
        parts.append(tok.text)
        depth += tok.text in ("(", "[")
        depth -= tok.text in (")", "]")
        prev = tok
    if parts:
        lines.append(_Line(level if not lines else level + 1, "".join(parts)))
    is_setting = len(toks) >= 2 and toks[0].kind == "name" and toks[1].text == "="
    if is_setting and len(lines) == 1:
        lines[0].key = toks[0].text
    return lines


class _Layout:
    """Lay out the token stream by the statement boundaries the parse tree gives."""

    def __init__(self, source: str, toks: list[Tok]) -> None:
        self.source = source
        self.toks = toks
        self.lines: list[_Line] = []
        self.last_line = 0  # source line of the last token placed

    def _index(self, offset: int) -> int:
        for i, tok in enumerate(self.toks):
            if tok.start >= offset:
                return i
        return len(self.toks)

    def _comments_then(self, i: int, end: int, level: int, first_in_body: bool) -> int:
        """Place the comments in toks[i:end] that stand on their own lines; return the index of
        the first token that is not such a comment."""
        while i < end and self.toks[i].kind == "comment":
            tok = self.toks[i]
            if self.lines and tok.line == self.last_line:
                self._trail(tok)
            else:
                blank = tok.line > self.last_line + 1 and not first_in_body
                self.lines.append(_Line(level, "", tok.text.rstrip(), blank_before=blank))
                first_in_body = False
            self.last_line = tok.line
            i += 1
        return i

    def _trail(self, tok: Tok) -> None:
        last = self.lines[-1]
        if last.comment:  # cannot happen: a comment runs to the end of its line
            last.comment += " " + tok.text.rstrip()
        else:
            last.comment = tok.text.rstrip()

    def _unit(self, i: int, end: int, level: int, blank: bool) -> int:
        """Place toks[i:end] (one statement, comments inside kept) and the comments that trail
        its last line."""
        unit = self.toks[i:end]
        # comments after the statement's last code token belong after it, not inside it
        while unit and unit[-1].kind == "comment":
            unit.pop()
        lines = _unit_lines(unit, level)
        if lines:
            lines[0].blank_before = blank
        self.lines.extend(lines)
        self.last_line = unit[-1].line if unit else self.last_line
        return i + len(unit)

    def _blank(self, i: int, first_in_body: bool) -> bool:
        return not first_in_body and bool(self.lines) and self.toks[i].line > self.last_line + 1

    def body(self, starts: list[int], close: int, level: int) -> None:
        """The statements of a braced item, starts[k] the token index of each, close the index
        of its `}`."""
        first = True
        bounds = [*starts, close]
        i = starts[0] if starts else close
        for k, start in enumerate(starts):
            i = self._comments_then(i, start, level, first)
            first = first and (not self.lines or self.lines[-1].code.endswith("{"))
            i = self._unit(start, bounds[k + 1], level, self._blank(start, first))
            first = False
        i = self._comments_then(i, close, level, first)

    def item(self, tree: Any, top_blank: bool) -> int:
        """One top-level item (setting or braced block); return the token index after it."""
        start = self._index(tree.meta.start_pos)
        kind = tree.data
        if kind not in _BRACED:
            end = self._index(tree.meta.end_pos)
            return self._unit(start, end, 0, top_blank)
        close = self._index(tree.meta.end_pos) - 1  # the `}`
        brace = next(j for j in range(start, close + 1) if self.toks[j].text == "{")
        self._unit(start, brace + 1, 0, top_blank)
        j = brace + 1
        if j < close and self.toks[j].kind == "comment" and self.toks[j].line == self.last_line:
            self._trail(self.toks[j])
            j += 1
        stmts = [c for c in tree.children if hasattr(c, "meta") and c.data != "params"]
        starts = [max(j, self._index(c.meta.start_pos)) for c in stmts]
        if starts:
            self._comments_then(j, starts[0], 1, True)
            self.body(starts, close, 1)
        else:
            self._comments_then(j, close, 1, True)
        self.lines.append(_Line(0, "}"))
        self.last_line = self.toks[close].line
        return close + 1


def format_source(text: str, path: str = "<spec>") -> str:
    """The canonical layout of a spec (SpecError on a syntax error, as parse raises it)."""
    parse(text, path)
    source = text.removeprefix("\ufeff")
    tree = _parser().parse(source)
    toks = tokens(source)
    layout = _Layout(source, toks)
    items = list(tree.children)
    i = 0
    prev_braced: Optional[bool] = None
    for item in items:
        start = layout._index(item.meta.start_pos)
        braced = item.data in _BRACED
        force = prev_braced is not None and (prev_braced or braced)
        # the comments just above an item stay with it; a braced item is set off by a blank line
        group_start = len(layout.lines)
        i = layout._comments_then(i, start, 0, not layout.lines)
        if force and group_start < len(layout.lines):
            layout.lines[group_start].blank_before = True
            blank = layout._blank(start, False)
        else:
            blank = force or layout._blank(start, not layout.lines)
        i = layout.item(item, blank)
        prev_braced = braced
    trailing_start = len(layout.lines)
    layout._comments_then(i, len(toks), 0, not layout.lines)
    if prev_braced and trailing_start < len(layout.lines):
        layout.lines[trailing_start].blank_before = True
    return _render(layout.lines)


def _key_widths(lines: list[_Line]) -> dict[int, int]:
    """For each setting line, the width its key is padded to: the longest key of its run of
    consecutive settings at one level, not parted by a blank line."""
    widths: dict[int, int] = {}
    run: list[int] = []

    def close_run() -> None:
        width = max((len(lines[k].key or "") for k in run), default=0)
        for k in run:
            widths[k] = width
        run.clear()

    for k, line in enumerate(lines):
        if line.key is not None and not line.blank_before and run:
            prev = lines[run[-1]]
            if prev.level == line.level and run[-1] == k - 1:
                run.append(k)
                continue
        close_run()
        if line.key is not None:
            run.append(k)
    close_run()
    return widths


def _comment_columns(lines: list[_Line], texts: list[str]) -> dict[int, int]:
    """The column of each trailing comment: lined up within each run of lines not parted by a
    blank line, two spaces past the longest code that has one."""
    columns: dict[int, int] = {}
    section: list[int] = []
    for k in [*range(len(lines)), len(lines)]:
        if k == len(lines) or (lines[k].blank_before and section):
            commented = [j for j in section if lines[j].comment and lines[j].code]
            column = max((len(texts[j]) for j in commented), default=0) + 2
            columns.update((j, column) for j in commented)
            section = []
        if k < len(lines):
            section.append(k)
    return columns


def _render(lines: list[_Line]) -> str:
    """Text of the lines: setting keys aligned within each run of consecutive settings, trailing
    comments within each run of lines."""
    widths = _key_widths(lines)
    texts: list[str] = []
    for k, line in enumerate(lines):
        code = line.code
        if line.key is not None:
            rest = code[len(line.key) :].lstrip()
            code = line.key.ljust(widths[k]) + " " + rest
        texts.append(INDENT * line.level + code if code else "")
    columns = _comment_columns(lines, texts)
    out: list[str] = []
    for k, line in enumerate(lines):
        if line.blank_before and out:
            out.append("")
        text = texts[k]
        if line.comment:
            text = (
                text.ljust(columns[k]) + line.comment
                if line.code
                else INDENT * line.level + line.comment
            )
        out.append(text.rstrip())
    return "\n".join(out) + "\n" if out else ""
