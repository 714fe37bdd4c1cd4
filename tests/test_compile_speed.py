"""benchmarks/compile_speed.py: its edit of a spec, and a run against a git revision (the
table it prints; its times are a benchmark's, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "compile_speed.py"

sys.path.insert(0, str(ROOT / "benchmarks"))
import compile_speed  # noqa: E402


def test_an_edit_changes_the_batch_or_else_the_last_repeat() -> None:
    assert (
        compile_speed.edited("training {\n  batch = 64\n}\n", 3) == "training {\n  batch = 67\n}\n"
    )
    spec = "model m {\n  block(32) * 6\n  block(64) * 4\n}\n"
    assert compile_speed.edited(spec, 1) == spec.replace("* 4", "* 2")
    assert compile_speed.edited(spec, 2) == spec.replace("* 4", "* 3")


def test_a_run_against_a_revision_prints_both_sides_and_their_ratio() -> None:
    """With the cache filled by the other examples first (the first column: a new spec)."""
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--repeat", "1", "--specs", "examples/mnist_mlp.dl"]
        + ["--baseline", "HEAD", "--filled"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| spec | new spec, cache filled | warm | edited |" in run.stdout
    row = next(line for line in run.stdout.splitlines() if line.startswith("| mnist_mlp |"))
    cells = row.strip("|").split("|")[1:]
    assert len(cells) == 3
    for cell in cells:  # "baseline -> this (min), xratio"
        before, after = cell.split("->")
        assert float(before) > 0 and float(after.split()[0]) > 0
        assert float(after.rsplit("x", 1)[1]) > 0


def test_a_missing_shipped_memo_is_named(tmp_path: Path) -> None:
    """The memo a first compile reads is looked for where an install has it, by the formatter's
    fingerprint: named when absent (the script then stops), None once it is there."""
    missing = compile_speed.missing_shipped_memo(tmp_path)
    assert missing is not None and missing.parent.parent == tmp_path
    missing.parent.mkdir()
    missing.write_bytes(b"")
    assert compile_speed.missing_shipped_memo(tmp_path) is None
