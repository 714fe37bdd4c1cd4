"""The fast formatter's statements and segments kept between runs: a script not formatted
before is mostly top-level defs and classes, and statements, that were (the scripts' fixed
parts, and all but the edited lines of an edited spec), so only the new ones are formatted.

One file per formatter fingerprint (its modules' source and the Python version, which also
fixes marshal's format) holds the entries most recently used, at most CAPACITY of them,
behind a checksum of the rest: a damaged file is an empty memo, never wrong code. It is read
when a script misses the formatted-output cache. What a process learnt is appended, when it is
done with the folder (use_format_cache moving away from it, or the interpreter exiting), to a
journal beside the file, one checksummed record a process, and read back after the file (up
to a damaged record); once the journal would pass JOURNAL_LIMIT bytes the two are written
again as one file, atomically. A cache that cannot be read or written is skipped.

An install ships a memo file too (dlspec.codegen.shipped, in the templates folder's SHIPPED
folder, named by the same fingerprint): the entries its build's examples share, which every
script holds (its fixed parts). It is read, on the first statement the user's memo lacks,
beneath the user's file; what is used from it is written to the user's file as learnt."""

from __future__ import annotations

import atexit
import gc
import hashlib
import marshal
import os
import struct
from pathlib import Path
from typing import Iterator, MutableMapping, Optional

from dlspec.codegen.files import write_bytes_atomic
from dlspec.codegen.pyformat.segments import SEGMENT

# about 330 bytes a statement: 20,000 statements (all the examples' five scripts hold 10,080
# distinct ones) are a 6.5 MB file, read in about 15 ms
CAPACITY = 20_000
# and segments (pyformat.segments: a top-level def or class, formatted), about 4.5 kB each,
# read faster than statements (a few long strings): all the examples' scripts hold 614
# distinct ones, a 2.8 MB part of the file
SEGMENT_CAPACITY = 2_000
# the journal's size at which the next process writes the memo as one file again: an edit of
# a small example appends about 10 kB, of DenseNet-121 (its model's segments) about 1 MB
JOURNAL_LIMIT = 8 << 20
_RECORD = struct.Struct("<I16s")  # a journal record's length and blake2b digest, then its body
# the folder, inside the templates folder, of the memo an install ships
SHIPPED = "__formatted__"


class StatementMemo(MutableMapping[tuple, tuple]):
    """The statements read from the file, and those used or learnt since (written first);
    beneath them, those of the memo file at `shipped` (read on the first miss)."""

    def __init__(
        self,
        path: Path,
        stored: dict[tuple, tuple],
        whole: bool = False,
        shipped: Optional[Path] = None,
    ) -> None:
        self.path = path
        self.stored = stored
        self.whole = whole  # the file and its journal were read whole: the journal may grow
        self.used: dict[tuple, tuple] = {}
        self.new: dict[tuple, tuple] = {}  # learnt by this process: its journal record
        self.learnt = 0
        self.shipped_path = shipped
        self._shipped: Optional[dict[tuple, tuple]] = None

    @property
    def shipped(self) -> dict[tuple, tuple]:
        """The shipped memo's entries (none when it is absent or damaged), read once."""
        if self._shipped is None:
            path = self.shipped_path
            self._shipped = (read_file(path) if path is not None else None) or {}
        return self._shipped

    def get(self, key: tuple, default: Optional[tuple] = None) -> Optional[tuple]:
        """The statement's entry (now among those used; one from the shipped memo is learnt:
        the user's file gains it), or default."""
        value = self.used.get(key)
        if value is None:
            value = self.stored.get(key)
            if value is None:
                value = self.shipped.get(key)
                if value is None:
                    return default
                self.new[key] = value
                self.learnt += 1
            self.used[key] = value
        return value

    def __getitem__(self, key: tuple) -> tuple:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: tuple, value: tuple) -> None:
        self.used[key] = value
        self.new[key] = value
        self.learnt += 1
        if len(self.used) > 2 * CAPACITY:  # a long-lived process keeps the newest only
            self.used = dict(list(self.used.items())[-CAPACITY:])
            self.new = {key: value for key, value in self.new.items() if key in self.used}

    def __delitem__(self, key: tuple) -> None:
        self.used.pop(key, None)
        self.new.pop(key, None)
        self.stored.pop(key, None)
        self.shipped.pop(key, None)

    def __iter__(self) -> Iterator[tuple]:
        yield from self.used
        yield from (key for key in self.stored if key not in self.used)
        yield from (key for key in self.shipped if key not in self.used and key not in self.stored)

    def __len__(self) -> int:
        return sum(1 for _ in self)

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


def shipped_path(templates: Optional[Path] = None) -> Path:
    """The memo file an install ships for the formatter in use, in the templates folder
    (dlspec's own by default)."""
    from dlspec.codegen.format_cache import formatter_fingerprint

    if templates is None:
        from dlspec.resources import templates_dir

        templates = templates_dir()
    return templates / SHIPPED / f"{formatter_fingerprint()}.marshal"


def journal_path(path: Path) -> Path:
    """The journal of the memo file at path."""
    return path.with_suffix(".journal")


def _check(body: bytes) -> bytes:
    """The blake2b digest a journal record carries."""
    return hashlib.blake2b(body, digest_size=16).digest()


def _digest(body: bytes) -> bytes:
    """The file's first line: _check's digest in hexadecimal."""
    return _check(body).hex().encode("ascii")


def _loads(body: bytes) -> Optional[dict]:
    """marshal.loads of a memo's dict (None for anything else), with the cyclic collector off:
    the tuples it makes are no garbage, and collecting as they come tripled its time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        value = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    finally:
        if enabled:
            gc.enable()
    return value if isinstance(value, dict) else None


def read(path: Path) -> dict[tuple, tuple]:
    """The stored entries: the file's, then its journal's records up to a damaged one; none
    when the file is absent, damaged or not a memo."""
    return read_whole(path)[0]


def read_whole(path: Path) -> tuple[dict[tuple, tuple], bool]:
    """read(path), and whether the file and its journal were whole (no damage, no torn
    record): if not, the next write is the whole memo as one file."""
    stored = read_file(path)
    if stored is None:
        return {}, False
    try:
        journal = journal_path(path).read_bytes()
    except OSError:
        return stored, True
    start = 0
    while start + _RECORD.size <= len(journal):
        size, digest = _RECORD.unpack_from(journal, start)
        body = journal[start + _RECORD.size : start + _RECORD.size + size]
        record = _loads(body) if len(body) == size and _check(body) == digest else None
        if record is None:
            return stored, False
        stored.update(record)
        start += _RECORD.size + size
    return stored, start == len(journal)


def read_file(path: Path) -> Optional[dict[tuple, tuple]]:
    """The entries of the memo file at path (its journal aside); None when it is absent,
    damaged or not a memo."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    checksum, _, body = data.partition(b"\n")
    return _loads(body) if checksum == _digest(body) else None


def write_file(path: Path, entries: dict[tuple, tuple]) -> None:
    """A memo file holding entries, written atomically (folders made as needed)."""
    body = marshal.dumps(entries)
    write_bytes_atomic(path, _digest(body) + b"\n" + body)


def write(memo: StatementMemo) -> None:
    """Append what the memo learnt to its journal, or (no file yet, or the journal full) store
    what it keeps as the file, atomically, dropping the journal and other fingerprints' files."""
    if memo.new and memo.whole and _append(memo):
        return
    folder = memo.path.parent
    try:
        write_file(memo.path, memo.kept())
        journal_path(memo.path).unlink(missing_ok=True)
        for other in (*folder.glob("*.marshal"), *folder.glob("*.journal")):
            if other.stem != memo.path.stem:
                other.unlink()
    except OSError:
        return


def _append(memo: StatementMemo) -> bool:
    """Append the memo's new entries to its journal as one record (one write, so that records
    of processes appending at once do not interleave); False when the journal is full."""
    body = marshal.dumps(memo.new)
    record = _RECORD.pack(len(body), _check(body)) + body
    journal = journal_path(memo.path)
    try:
        if journal.exists() and journal.stat().st_size + len(record) > JOURNAL_LIMIT:
            return False
        handle = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(handle, record)  # a short write is a torn record: the next reader compacts
        finally:
            os.close(handle)
    except OSError:
        return True  # an unwritable folder: skipped, as a failed file write is
    return True


_open: dict[Path, StatementMemo] = {}


def memo_for(directory: Path) -> StatementMemo:
    """This process's memo for a cache folder, read on first use."""
    memo = _open.get(directory)
    if memo is None:
        if not _open:
            atexit.register(close_all)
        path = memo_path(directory)
        memo = _open[directory] = StatementMemo(path, *read_whole(path), shipped_path())
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
