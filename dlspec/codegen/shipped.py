"""What an install ships beside the templates, written when it is built (setup.py) or by `make
venv` and `make generate` in a checkout, as an install writes Python's bytecode: the compiled
templates (templating.precompile) and the fast formatter's memo of the statements and segments
that the example specs' scripts share (item_cache), so that a first compile, its cache empty,
formats only what is its own.

    python -m dlspec.codegen.shipped [SPEC.dl ...]

writes both into dlspec's templates folder (the memo only when specs are given)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from dlspec.codegen import item_cache

# an entry is shipped when the scripts of at least this many specs hold it: the fixed parts of
# every script, not one example's own layers (measured on the 14 examples: 2,685 of 10,704
# entries, 0.7 MB, read in 4 ms; all of them: 6.2 MB, 20 ms)
SHARED_BY = 2


def used_entries(spec: Path) -> dict[tuple, tuple]:
    """The memo entries formatting the spec's script for every target uses (an empty memo,
    filled as it formats)."""
    from dlspec.backends import TARGETS
    from dlspec.codegen.compile import unformatted
    from dlspec.codegen.pyformat import format_python
    from dlspec.frontend.load import build_file

    memo = item_cache.StatementMemo(Path(os.devnull), {})
    model = build_file(str(spec)).model
    for target in TARGETS:
        source, mode = unformatted(model, target)
        format_python(source, mode.py2, memo)
    return memo.used


def shared_entries(specs: Sequence[Path], least: int = SHARED_BY) -> dict[tuple, tuple]:
    """The entries that the scripts of at least `least` of the specs use."""
    counts: Counter[tuple] = Counter()
    entries: dict[tuple, tuple] = {}
    for spec in specs:
        used = used_entries(spec)
        counts.update(used.keys())
        entries.update(used)
    return {key: value for key, value in entries.items() if counts[key] >= least}


def seed(templates: Path, specs: Sequence[Path]) -> int:
    """Write the shipped memo of the specs' shared entries for the formatter in use into the
    templates folder, dropping other formatters' memos; the number of entries."""
    path = item_cache.shipped_path(templates)
    entries = shared_entries(specs)
    item_cache.write_file(path, entries)
    for other in path.parent.glob("*.marshal"):
        if other != path:
            other.unlink()
    return len(entries)


def main(argv: Sequence[str]) -> int:
    """Compile the templates and, given specs, seed the memo, in dlspec's templates folder.
    The templates are read from the package, with no cache folder of the user's touched."""
    from dlspec.codegen.templating import precompile
    from dlspec.resources import templates_dir

    templates = templates_dir()
    compiled = precompile(templates)
    print(f"compiled {len(compiled)} templates into {templates}", file=sys.stderr)
    if argv:
        previous = os.environ.get("DLSPEC_CACHE_DIR")
        with tempfile.TemporaryDirectory() as cache:
            os.environ["DLSPEC_CACHE_DIR"] = cache  # the compiled templates' user cache
            try:
                count = seed(templates, [Path(spec) for spec in argv])
            finally:
                if previous is None:
                    del os.environ["DLSPEC_CACHE_DIR"]
                else:
                    os.environ["DLSPEC_CACHE_DIR"] = previous
        print(f"shipped {count} formatted statements of {len(argv)} specs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
