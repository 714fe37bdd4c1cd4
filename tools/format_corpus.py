"""Compare dlspec's formatter with black on Python code it was not written for.

Each top-level statement of each file under the given paths (with its decorators and the
comment lines right above it) is formatted as a file of its own by pyformat.format_python,
alone and through one memo shared by all; wherever the formatter does not refuse it, black
must write the same bytes. Variants make the code harder: `unparsed` (ast.unparse's one line
per statement, nested 0-3 blocks deep, so that long lines must be split), `mutated` (magic
trailing commas added, lines inside brackets joined, comments after commas, at random from a
seed per statement), `whole` (each file as it is). Prints a unified diff per disagreement and
exits 1 if there is one:

    python tools/format_corpus.py /usr/lib/python3.11 --variant mutated --jobs 2
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import multiprocessing
import random
import sys
import tokenize
from pathlib import Path
from typing import Iterator, Optional

from dlspec.codegen import pyformat
from dlspec.codegen.render import PY2_FORMAT, PY3_FORMAT, FormatMode

VARIANTS = ("plain", "unparsed", "mutated", "whole")
Statement = tuple[str, str]  # file:line (and variant detail), source


def statements(path: Path, variant: str = "plain") -> list[Statement]:
    """The file's statements as the variant makes them ([] for a file Python cannot parse)."""
    try:
        source = path.read_text(encoding="utf-8")
        module = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    if variant == "whole":
        return [(str(path), source)]
    lines = _lines(source)
    found: list[Statement] = []
    previous_end = 0
    for node in module.body:
        start = _first_line(node, lines, previous_end)
        previous_end = node.end_lineno or node.lineno
        name = f"{path}:{start}"
        text = "".join(lines[start - 1 : previous_end])
        if variant == "unparsed":
            depth = (start * 7 + previous_end) % 4
            found.append((f"{name} (depth {depth})", _nested(ast.unparse(node) + "\n", depth)))
        elif variant == "mutated":
            mutated = mutate(text, random.Random(f"{path.name}:{start}"))  # same on any machine
            if mutated is not None:
                found.append((name, mutated))
        else:
            found.append((name, text))
    return found


def _lines(text: str) -> list[str]:
    """The lines as Python counts them, ends kept (str.splitlines also ends one at a form
    feed, which the standard library holds)."""
    return io.StringIO(text).readlines()


def _first_line(node: ast.stmt, lines: list[str], previous_end: int) -> int:
    """The statement's first line: its first decorator's, or a comment right above it."""
    decorators = getattr(node, "decorator_list", [])
    start = min([node.lineno, *(decorator.lineno for decorator in decorators)])
    while start - 2 >= previous_end and lines[start - 2].lstrip().startswith("#"):
        start -= 1
    return start


def _nested(text: str, depth: int) -> str:
    """The statement inside `depth` nested if blocks."""
    heads = "".join("    " * level + f"if c{level}:\n" for level in range(depth))
    indent = "    " * depth
    return heads + "".join(indent + line if line.strip() else line for line in _lines(text))


def mutate(text: str, rng: random.Random) -> Optional[str]:
    """The statement with magic trailing commas added before closing brackets (15%), lines
    inside brackets joined (50%) and comments after line-ending commas (10%); None where the
    result is no valid Python."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    starts = [0]
    for line in _lines(text):
        starts.append(starts[-1] + len(line))
    edits = [
        (starts[start[0] - 1] + start[1], starts[end[0] - 1] + end[1], new)
        for start, end, new in _edits(tokens, rng)
    ]
    for start, end, new in sorted(edits, key=lambda edit: (edit[0], edit[1]), reverse=True):
        text = text[:start] + new + text[end:]
    try:
        ast.parse(text)
    except SyntaxError:
        return None
    return text


def _edits(tokens: list[tokenize.TokenInfo], rng: random.Random) -> Iterator[tuple]:
    """(start, end, replacement) positions for `mutate`."""
    skipped = (tokenize.NL, tokenize.COMMENT)
    depth, last = 0, None  # the last token that is no line break or comment
    for index, token in enumerate(tokens):
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
            if last is not None and last.string not in ",([{" and rng.random() < 0.15:
                yield last.end, last.end, ","
        elif token.type == tokenize.NL and depth > 0 and index + 1 < len(tokens):
            before, after = tokens[index - 1], tokens[index + 1]
            if before.type in skipped or after.type in skipped:
                continue
            if rng.random() < 0.5:
                yield before.end, after.start, "" if before.string in "([{" else " "
            elif before.string == "," and rng.random() < 0.2:
                yield before.end, before.end, "  # note"
        if token.type not in skipped:
            last = token


def compare(
    statement: Statement, mode: FormatMode, memo: pyformat.ItemMemo
) -> tuple[bool, Optional[str]]:
    """Whether the formatter takes the statement, and a report where it then disagrees with
    black (alone or through the memo)."""
    import black

    name, text = statement
    try:
        ours = pyformat.format_python(text, mode.py2)
    except pyformat.Unsupported:
        return False, None
    try:
        theirs = black.format_str(text, mode=mode.black_mode())
    except black.InvalidInput as error:
        return True, f"==== {name}: black refuses what the formatter takes: {error}\n"
    with_memo = pyformat.format_python(text, mode.py2, memo)
    for label, output in (("alone", ours), ("through the memo", with_memo)):
        if output != theirs:
            diff = difflib.unified_diff(
                theirs.splitlines(True), output.splitlines(True), "black", "dlspec"
            )
            return True, f"==== {name} ({label})\n{''.join(diff)}"
    return True, None


_MEMO: pyformat.ItemMemo = {}


def _work(job: tuple[Statement, bool]) -> tuple[bool, Optional[str]]:
    """(taken, report) for one statement, through this process's memo."""
    statement, py2 = job
    return compare(statement, PY2_FORMAT if py2 else PY3_FORMAT, _MEMO)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="Python files or folders")
    parser.add_argument("--variant", choices=VARIANTS, default="plain")
    parser.add_argument("--py2", action="store_true", help="the cntk target's mode")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    files = sorted(
        file for path in args.paths for file in ([path] if path.is_file() else path.rglob("*.py"))
    )
    jobs = [(statement, args.py2) for file in files for statement in statements(file, args.variant)]
    print(f"{len(files)} files, {len(jobs)} statements ({args.variant})", flush=True)
    taken = problems = 0
    with multiprocessing.Pool(args.jobs) as pool:
        for was_taken, report in pool.imap_unordered(_work, jobs, chunksize=20):
            taken += was_taken
            if report:
                problems += 1
                print(report, flush=True)
    print(f"{taken} of {len(jobs)} statements taken, {problems} differ from black")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
