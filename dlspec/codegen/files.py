"""Write generated files atomically, and compare them with committed ones for `dlspec check`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: never a partial file."""
    write_all([(path, text)])


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write binary data via a temporary file in the same folder and rename (folders made as
    needed): never a partial file, and nothing left behind on failure."""
    made: list[Path] = []
    tmp = ""
    try:
        _make_dirs(path.parent, made)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        for folder in reversed(made):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _make_dirs(folder: Path, made: list[Path]) -> None:
    """mkdir -p that records each folder it creates, so a failed write can remove them."""
    missing = []
    for parent in [folder, *folder.parents]:
        if parent.is_dir():
            break
        missing.append(parent)
    for parent in reversed(missing):
        parent.mkdir()
        made.append(parent)


def write_all(files: list[tuple[Path, str]]) -> None:
    """Write several files all or nothing: each is staged beside its destination, and renamed
    into place only once every one is staged; on failure the staged files and any folders made
    for them are removed."""
    made: list[Path] = []
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in files:
            _make_dirs(path.parent, made)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for folder in reversed(made):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def stale_diff(path: Path, expected: str) -> str:
    """'' when `path` holds exactly `expected`, else a unified diff (or a 'missing' line)."""
    if not path.is_file():
        return f"missing: {path}\n"
    actual = path.read_bytes().decode("utf-8", "replace")  # no newline translation
    if actual == expected:
        return ""
    import difflib  # only on this path: not imported to compile

    diff = difflib.unified_diff(
        actual.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=f"{path} (committed)",
        tofile=f"{path} (generated now)",
    )
    return "".join(diff)
