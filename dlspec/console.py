"""Terminal output: colour only on a terminal and never with NO_COLOR; rich tables, highlighting."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Optional, Sequence, TextIO

from dlspec.errors import Problem, format_problems

if TYPE_CHECKING:
    from dlspec.verify.run import Check

WIDE = 1000  # columns of a table written with colour to something that is not a terminal
RED, GREEN, RESET = "\x1b[31m", "\x1b[32m", "\x1b[0m"
Style = Callable[[int, int, str], Optional[str]]  # (row, column, cell) -> a rich style or None


def color_enabled(stream: TextIO) -> bool:
    """Colour on `stream`: never when NO_COLOR is set (any non-empty value), always when
    FORCE_COLOR is, otherwise only when the stream is a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return _is_terminal(stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def print_table(
    stream: TextIO,
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[int] = (),
    style: Optional[Style] = None,
    caption: str = "",
) -> None:
    """A rich table with a bold header, the `right` columns right-aligned, cells styled by
    `style`, and a caption line under it (colour forced: call it only when colour_enabled)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold", box=None, pad_edge=False)
    for i, name in enumerate(head):
        table.add_column(name, justify="right" if i in right else "left", overflow="fold")
    for r, row in enumerate(rows):
        cells = [
            Text(cell, style=(style(r, c, cell) if style else None) or "")
            for c, cell in enumerate(row)
        ]
        table.add_row(*cells)
    console = Console(
        file=stream,
        force_terminal=True,
        highlight=False,
        color_system="standard",
        width=None if _is_terminal(stream) else WIDE,  # FORCE_COLOR into a pipe: no folding
    )
    console.print(table)
    if caption:
        console.print(Text(caption))


def verdict_style(column: int) -> Style:
    """Green for ok/yes cells of `column`, red for the others."""

    def style(_row: int, col: int, cell: str) -> Optional[str]:
        if col != column:
            return None
        return "green" if cell.split()[0] in ("ok", "yes") else "bold red"

    return style


def verify_table(checks: list[Check], stream: TextIO) -> None:
    """`dlspec verify`'s matrix as a rich table: the same columns and numbers as the plain one."""
    head = ("spec", "runtime", "check", "max abs", "rel", "tol", "result")
    rows = []
    for c in checks:
        verdict = "ok" if c.passed else "FAIL"
        extra = f" (worst: {c.detail})" if c.detail and not c.passed else ""
        numbers = (f"{c.abs_err:.2e}", f"{c.rel_err:.2e}", f"{c.tol:.0e}")
        rows.append((c.spec, c.runtime, c.check, *numbers, verdict + extra))
    failed = sum(not c.passed for c in checks)
    caption = f"{len(checks) - failed} passed, {failed} failed"
    print_table(stream, head, rows, right=(3, 4, 5), style=verdict_style(6), caption=caption)


def highlight_spec(line: str) -> str:
    """One line of a spec coloured by dlspec's Pygments lexer (ANSI escapes, no newline)."""
    from pygments import highlight
    from pygments.formatters import TerminalFormatter

    from dlspec.lexer import DlspecLexer

    return highlight(line, DlspecLexer(), TerminalFormatter()).rstrip("\n")


def _paint(source: str, caret: str) -> tuple[str, str]:
    """A diagnostic's source line highlighted by dlspec's lexer, its caret red."""
    return highlight_spec(source), RED + caret + RESET


def problems_text(problems: list[Problem], path: str, text: str, color: bool) -> str:
    """The diagnostics as format_problems writes them; with colour, each source line is
    highlighted and its caret red, while the first line stays plain `file:line:col: ...`."""
    return format_problems(problems, path, text, _paint if color else None)


def diff_text(diff: str, color: bool) -> str:
    """A unified diff, coloured (removed red, added green, hunks cyan) when `color`."""
    if not color or not diff:
        return diff
    from pygments import highlight
    from pygments.formatters import TerminalFormatter
    from pygments.lexers import DiffLexer

    return highlight(diff, DiffLexer(), TerminalFormatter())
