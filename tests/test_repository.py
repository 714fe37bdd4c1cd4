"""The repository itself: what a fresh clone gets must not depend on this machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tracked() -> list[str]:
    """`git ls-files -s` lines of the checkout (mode, hash, stage, path)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing tracked to check")
    done = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_no_symlink_is_tracked() -> None:
    """A link committed from a worktree (to the shared .venv or .runtimes) points at this
    machine's folders, or at itself in a fresh clone, where it shadows what make builds."""
    links = [line.split("\t", 1)[1] for line in tracked() if line.startswith("120000 ")]
    assert links == []


@pytest.mark.parametrize("name", [".venv", ".runtimes", ".cache", "out", "sitecustomize.py"])
def test_local_state_is_not_tracked(name: str) -> None:
    paths = [line.split("\t", 1)[1] for line in tracked()]
    assert not [p for p in paths if p == name or p.startswith(name + "/")]
