"""The fast formatter's statements and segments kept between runs: a script not formatted
before is mostly top-level defs and classes, and statements, that were (the scripts' fixed
parts, and all but the edited lines of an edited spec), so only the new ones are formatted.

One file per formatter fingerprint (its modules' source and the Python version, which also
fixes marshal's format) holds the entries most recently used, at most CAPACITY of them,
behind a checksum of the rest: a damaged file is an empty memo, never wrong code. It is read
when a script misses the formatted-output cache and written when the process is done with the
folder (use_format_cache moving away from it, or the interpreter exiting), atomically, and
only when it learnt something; a cache that cannot be read or written is skipped."""

from __future__ import annotations

import atexit
import hashlib
import marshal
import os
import tempfile
from pathlib import Path
from typing import Iterator, MutableMapping, Optional

from dlspec.codegen.pyformat.segments import SEGMENT

# about 330 bytes a statement: 20,000 statements (all the examples' five scripts hold 10,080
# distinct ones) are a 6.5 MB file, read in about 15 ms
CAPACITY = 20_000
# and segments (pyformat.segments: a top-level def or class, formatted), about 4.5 kB each,
# read faster than statements (a few long strings): all the examples' scripts hold 614
# distinct ones, a 2.8 MB part of the file
SEGMENT_CAPACITY = 2_000


class StatementMemo(MutableMapping[tuple, tuple]):
    """The statements read from the file, and those used or learnt since (written first)."""

    def __init__(self, path: Path, stored: dict[tuple, tuple]) -> None:
        self.path = path
        self.stored = stored
        self.used: dict[tuple, tuple] = {}
        self.learnt = 0

    def get(self, key: tuple, default: Optional[tuple] = None) -> Optional[tuple]:
        """The statement's entry (now among those used), or default."""
        value = self.used.get(key)
        if value is None:
            value = self.stored.get(key)
            if value is None:
                return default
            self.used[key] = value
        return value

    def __getitem__(self, key: tuple) -> tuple:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: tuple, value: tuple) -> None:
        self.used[key] = value
        self.learnt += 1
        if len(self.used) > 2 * CAPACITY:  # a long-lived process keeps the newest only
            self.used = dict(list(self.used.items())[-CAPACITY:])

    def __delitem__(self, key: tuple) -> None:
        self.used.pop(key, None)
        self.stored.pop(key, None)

    def __iter__(self) -> Iterator[tuple]:
        yield from self.used
        yield from (key for key in self.stored if key not in self.used)

    def __len__(self) -> int:
        return len(self.used) + sum(1 for key in self.stored if key not in self.used)

    def kept(self) -> dict[tuple, tuple]:
        """What the file will hold: the entries of this run, newest first, then the stored
        ones, up to CAPACITY, of which SEGMENT_CAPACITY segments."""
        kept: dict[tuple, tuple] = {}
        segments = 0
        for key, value in [*reversed(self.used.items()), *self.stored.items()]:
            if len(kept) >= CAPACITY:
                break
            if key in kept:
                continue
            if key[0] == SEGMENT:
                if segments >= SEGMENT_CAPACITY:
                    continue
                segments += 1
            kept[key] = value
        return kept


def memo_path(directory: Path) -> Path:
    """The memo file for the formatter in use."""
    from dlspec.codegen.format_cache import formatter_fingerprint

    return directory / "statements" / f"{formatter_fingerprint()}.marshal"


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).hexdigest().encode("ascii")


def read(path: Path) -> dict[tuple, tuple]:
    """The stored statements, or none when the file is absent, damaged or not a memo."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    checksum, _, body = data.partition(b"\n")
    if checksum != _digest(body):
        return {}
    try:
        stored = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return {}
    return stored if isinstance(stored, dict) else {}


def write(memo: StatementMemo) -> None:
    """Store what the memo keeps, atomically, dropping the files of other fingerprints."""
    folder = memo.path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        body = marshal.dumps(memo.kept())
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(_digest(body) + b"\n" + body)
            os.replace(temporary, memo.path)
        except BaseException:
            os.unlink(temporary)
            raise
        for other in folder.glob("*.marshal"):
            if other != memo.path:
                other.unlink()
    except OSError:
        return


_open: dict[Path, StatementMemo] = {}


def memo_for(directory: Path) -> StatementMemo:
    """This process's memo for a cache folder, read on first use."""
    memo = _open.get(directory)
    if memo is None:
        if not _open:
            atexit.register(close_all)
        path = memo_path(directory)
        memo = _open[directory] = StatementMemo(path, read(path))
    return memo


def close(directory: Optional[Path]) -> None:
    """Write and forget the memo of a folder, if this process opened it."""
    memo = _open.pop(directory, None) if directory is not None else None
    if memo is not None and memo.learnt:
        write(memo)


def close_all() -> None:
    """Write every open memo (at exit)."""
    for directory in list(_open):
        close(directory)
