"""A content-addressed cache of formatted scripts: the fast formatter's text (folder `formatted`,
keyed also by a hash of the formatter's own modules) and black's, for what it leaves to black.

dlspec.codegen.pyformat writes black's bytes for the code the templates emit, so black only
runs on what that formatter does not reproduce (none of the examples; a template change may
bring some). black is slow (7.5 s for ResNet-50's five scripts), so its output is kept: it is a
pure function of the unformatted source, black's version and the mode, stored under a hash of
those three; a hit returns the same bytes black would. The library formats anew unless asked
(``dlspec.codegen.render.use_format_cache``); the command line and the test suite ask
(``DLSPEC_NO_CACHE=1`` turns it off, and ``DLSPEC_CACHE_DIR`` moves it from
``$XDG_CACHE_HOME/dlspec``, ``~/.cache/dlspec`` by default).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    import black


def cache_root() -> Path:
    """dlspec's cache folder: $DLSPEC_CACHE_DIR, else $XDG_CACHE_HOME/dlspec or ~/.cache/dlspec."""
    chosen = os.environ.get("DLSPEC_CACHE_DIR")
    if chosen:
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dlspec"


def default_directory() -> Optional[Path]:
    """Where the command line keeps black's output, or None when the environment turns it off."""
    if os.environ.get("DLSPEC_NO_CACHE", "") not in ("", "0"):
        return None
    return cache_root()


def cache_key(source: str, mode: black.Mode) -> str:
    """The hash of everything black's output depends on."""
    import black

    digest = hashlib.sha256()
    for part in (black.__version__, mode.get_cache_key(), source):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


# Entries kept per folder (the folder is the key's first two hex digits): at most 256 x 32 = 8192
# scripts, about 200 MB at the 25 KB an entry averaged in a test run (1378 entries, 35 MB).
PER_FOLDER = 32


def _checksum(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode("ascii")


def lookup(directory: Path, key: str) -> Optional[str]:
    """The stored output for key, or None (absent, unreadable, or not what was stored: each
    entry starts with its body's own hash, so a damaged file is a miss, never wrong code). A hit
    is touched, so that pruning drops the entries used least recently."""
    entry = directory / key[:2] / key
    try:
        stored = entry.read_bytes()
    except OSError:
        return None
    checksum, _, body = stored.partition(b"\n")
    if checksum != _checksum(body):
        return None
    try:
        os.utime(entry)
    except OSError:
        pass
    return body.decode("utf-8")


def prune(folder: Path, keep: int = PER_FOLDER) -> None:
    """Delete all but the `keep` most recently used entries of one of the 256 folders."""
    try:
        entries = [(p.stat().st_mtime, p) for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return
    for _, path in sorted(entries, reverse=True)[keep:]:
        try:
            path.unlink()
        except OSError:
            pass


def store(directory: Path, key: str, formatted: str) -> None:
    """Store atomically (a reader sees all of an entry or none); a cache that cannot be written
    (read-only home, full disk) is skipped, never an error."""
    folder = directory / key[:2]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            body = formatted.encode("utf-8")
            with os.fdopen(handle, "wb") as out:
                out.write(_checksum(body) + b"\n" + body)
            os.replace(temporary, folder / key)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return
    prune(folder)


def format_cached(source: str, mode: black.Mode, directory: Path) -> str:
    """black.format_str(source, mode), read from the cache in directory (in a folder named
    after black's version) when it holds it."""
    import black

    folder = directory / f"black-{black.__version__}"
    key = cache_key(source, mode)
    hit = lookup(folder, key)
    if hit is not None:
        return hit
    formatted = black.format_str(source, mode=mode)
    store(folder, key, formatted)
    return formatted


@functools.cache
def formatter_fingerprint() -> str:
    """A hash of dlspec's own formatter: the source of every module of dlspec.codegen.pyformat
    and the Python minor version (its tokenizer) — all its output depends on besides the input."""
    digest = hashlib.sha256(f"python {sys.version_info[0]}.{sys.version_info[1]}".encode())
    for path in sorted((Path(__file__).parent / "pyformat").glob("*.py")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def output_key(source: str, py2: bool) -> str:
    """The hash of everything the fast formatter's text depends on: its code, the mode and the
    unformatted source."""
    digest = hashlib.sha256()
    for part in (formatter_fingerprint(), "py2" if py2 else "py3", source):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def output_cached(source: str, py2: bool, directory: Path, format_now: Callable[[], str]) -> str:
    """format_now()'s text (the fast formatter's) for this unformatted source, read from the
    cache in directory when it holds it (a compile whose scripts are unchanged then formats
    nothing). What format_now raises (the formatter's Unsupported) is the caller's: nothing is
    stored, and black's output has its own cache (format_cached)."""
    folder = directory / "formatted"
    key = output_key(source, py2)
    hit = lookup(folder, key)
    if hit is not None:
        return hit
    formatted = format_now()
    store(folder, key, formatted)
    return formatted
