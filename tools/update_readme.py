"""Rewrite README.md's generated tables and the docs site's generated pages (run by `make generate`)."""

from __future__ import annotations

import sys
from pathlib import Path

from dlspec.docpages import stale, update
from dlspec.support import replace_table

ROOT = Path(__file__).resolve().parent.parent


def check() -> int:
    """Exit 1 naming the README or docs pages that `make generate` would change (make check)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    behind = (["README.md"] if replace_table(readme) != readme else []) + stale(ROOT)
    for rel in behind:
        print(f"{rel}: stale, run `make generate`", file=sys.stderr)
    return 1 if behind else 0


def main(argv: list[str]) -> int:
    """Replace the README's tables and the docs' generated pages (or, with --check, compare)."""
    if argv == ["--check"]:
        return check()
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    new = replace_table(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print("README.md: support table updated")
    for rel in update(ROOT):
        print(f"{rel}: updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
