"""Write tests/fixtures/fast_path_statements.tsv: one-line statements pinning the fast path.

Every one-line statement of the examples', the test specs' and some fuzz cases' scripts (all
targets, before formatting) goes through pyformat.simple with a line tracer on; one statement,
the shortest, is kept for each distinct set of line-to-line steps taken and outcome (taken, no
lines, or the refusal's reason). tests/test_pyformat_simple.py then asserts each outcome and,
where the statement is taken, black's lines. Run it as `python tools/fast_path_corpus.py` when
the fast path learns new statements on purpose, and review the fixture's diff."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Optional

import fuzz
import fuzz_mutations

from dlspec.backends import TARGETS
from dlspec.codegen.compile import unformatted
from dlspec.codegen.pyformat import simple
from dlspec.codegen.pyformat.scan import scan
from dlspec.errors import SpecError
from dlspec.frontend.load import build
from dlspec.ir.model import Model

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "fast_path_statements.tsv"
FUZZ_SEED, FUZZ_CASES = 7, 300
HEADER = "# depth\tfirst word\theader\toutcome\tstatement (written by tools/fast_path_corpus.py)\n"

Statement = tuple[str, int, str, bool]  # text, depth, first word, header
Trace = Callable[[FrameType, str, Any], Optional[Callable]]


def outcome(text: str, depth: int, first_word: str) -> str:
    """What the fast path does with a statement: `taken`, `none` or `refused: REASON`."""
    try:
        lines = simple._format(text, depth, first_word)
    except simple._Refused as refusal:
        return f"refused: {refusal}"
    return "none" if lines is None else "taken"


def _statements(source: str, into: dict[Statement, None]) -> None:
    items, _ = scan(source)
    for item in items:
        if not (item.comment or item.docstring or item.multiline):
            into.setdefault((item.text, item.depth, item.first_word, item.header), None)


def _models() -> list[Model]:
    """The examples', the test specs' and the seeded fuzz cases' models that build."""
    texts = [(p.read_text(encoding="utf-8"), p.name) for p in sorted(ROOT.glob("examples/*.dl"))]
    texts += [
        (p.read_text(encoding="utf-8"), p.name) for p in sorted(ROOT.glob("tests/specs/*.dl"))
    ]
    corpus = fuzz_mutations.load_corpus()
    for index in range(FUZZ_CASES):
        data = fuzz.make_case(FUZZ_SEED, index, corpus).data
        texts.append((data.decode("utf-8", errors="replace"), "fuzz.dl"))
    models = []
    for text, name in texts:
        try:
            models.append(build(text, name).model)
        except SpecError:
            continue
    return models


def collect() -> dict[Statement, None]:
    """Every one-line statement of every target's script for every model, in order."""
    found: dict[Statement, None] = {}
    for model in _models():
        for target in TARGETS:
            try:
                source, _ = unformatted(model, target)
            except SpecError:
                continue
            _statements(source, found)
    return found


def steps(statement: Statement) -> tuple[frozenset, str]:
    """The (function, line, next line) steps the fast path takes on a statement, and its
    outcome."""
    taken: set[tuple[str, int, int]] = set()
    last = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Optional[Trace]:
        if event == "line":
            taken.add((frame.f_code.co_name, last[0], frame.f_lineno))
            last[0] = frame.f_lineno
        return local

    def call(frame: FrameType, event: str, arg: Any) -> Optional[Trace]:
        if frame.f_code.co_filename != simple.__file__:
            return None
        last[0] = -frame.f_code.co_firstlineno
        return local

    sys.settrace(call)
    try:
        result = outcome(*statement[:3])
    finally:
        sys.settrace(None)
    return frozenset(taken), result


def main() -> None:
    kept: dict[tuple[frozenset, str], Statement] = {}
    for statement in collect():
        key = steps(statement)
        if key not in kept or len(statement[0]) < len(kept[key][0]):
            kept[key] = statement
    rows = sorted((s[1], s[2], int(s[3]), key[1], s[0]) for key, s in kept.items())
    lines = ["\t".join(str(field) for field in row) + "\n" for row in rows]
    FIXTURE.write_text(HEADER + "".join(lines), encoding="utf-8")
    print(f"{FIXTURE.relative_to(ROOT)}: {len(rows)} statements", file=sys.stderr)


if __name__ == "__main__":
    main()
