"""Write generated files atomically, and compare them with committed ones for `dlspec check`."""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: never a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def stale_diff(path: Path, expected: str) -> str:
    """'' when `path` holds exactly `expected`, else a unified diff (or a 'missing' line)."""
    if not path.exists():
        return f"missing: {path}\n"
    actual = path.read_text(encoding="utf-8")
    if actual == expected:
        return ""
    diff = difflib.unified_diff(
        actual.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=f"{path} (committed)",
        tofile=f"{path} (generated now)",
    )
    return "".join(diff)
