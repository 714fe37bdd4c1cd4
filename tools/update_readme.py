"""Rewrite README.md's layer x target support table from the op table (run by `make generate`)."""

from __future__ import annotations

import sys
from pathlib import Path

from dlspec.support import replace_table


def main() -> int:
    """Replace the table between the markers; print whether anything changed."""
    path = Path(__file__).resolve().parent.parent / "README.md"
    text = path.read_text(encoding="utf-8")
    new = replace_table(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print("README.md: support table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
