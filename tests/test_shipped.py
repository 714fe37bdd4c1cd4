"""What an install ships beside the templates (dlspec.codegen.shipped): the formatter's memo of
the statements and segments several specs' scripts share, read beneath the user's memo, never
changing a script's bytes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dlspec.codegen import item_cache, shipped
from dlspec.codegen.compile import unformatted
from dlspec.codegen.pyformat import format_python
from dlspec.codegen.templating import COMPILED
from dlspec.frontend.load import build_file
from dlspec.resources import templates_dir

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [ROOT / "examples" / "mnist_mlp.dl", ROOT / "examples" / "mnist_cnn.dl"]
NEW = ROOT / "examples" / "cifar_vgg.dl"  # not among the seeds


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A templates folder whose shipped memo is the two seed specs' shared entries."""
    templates = tmp_path_factory.mktemp("templates")
    stale = templates / item_cache.SHIPPED / ("0" * 64 + ".marshal")
    stale.parent.mkdir()
    stale.write_bytes(b"another formatter's memo")
    assert shipped.seed(templates, SEEDS) > 1000
    assert not stale.exists()
    return item_cache.shipped_path(templates)


def _scripts(spec: Path) -> list[tuple[str, bool]]:
    model = build_file(str(spec)).model
    out = []
    for target in ("pytorch", "tensorflow", "keras", "mxnet", "cntk"):
        source, mode = unformatted(model, target)
        out.append((source, mode.py2))
    return out


def test_the_memo_ships_what_the_specs_share_and_not_what_one_holds(seeded: Path) -> None:
    entries = item_cache.read_file(seeded)
    assert entries
    first, second = (shipped.used_entries(spec) for spec in SEEDS)
    assert set(entries) == set(first) & set(second)
    assert all(entries[key] == first[key] for key in entries)
    assert any(key[0] == item_cache.SEGMENT for key in entries)  # whole defs, not only lines


def test_a_new_specs_first_compile_reads_the_shipped_memo_and_writes_black_s_bytes(
    seeded: Path, tmp_path: Path
) -> None:
    """The user's memo is empty: most of a new spec's scripts come from the shipped memo, the
    bytes are those of a format without any memo, and what was used is the user's afterwards."""
    path = tmp_path / "statements" / "memo.marshal"
    memo = item_cache.StatementMemo(path, *item_cache.read_whole(path), seeded)
    for source, py2 in _scripts(NEW):
        assert format_python(source, py2, memo) == format_python(source, py2)
    from_shipped = [key for key in memo.used if key in memo.shipped]
    assert len(from_shipped) > 100
    assert set(from_shipped) <= set(memo.new)  # learnt: the user's file gains them
    item_cache.write(memo)
    again = item_cache.StatementMemo(path, *item_cache.read_whole(path), tmp_path / "absent")
    assert set(from_shipped) <= set(again.stored)
    for source, py2 in _scripts(NEW):
        assert format_python(source, py2, again) == format_python(source, py2)
    assert again.learnt == 0 and again.shipped == {}


def test_the_user_s_entries_are_read_before_the_shipped_ones(seeded: Path, tmp_path: Path) -> None:
    key = next(iter(item_cache.read_file(seeded) or {}))
    own = (("own\n",), None)
    memo = item_cache.StatementMemo(tmp_path / "m.marshal", {key: own}, True, seeded)
    assert memo.get(key) == own and memo.learnt == 0
    assert memo._shipped is None  # no miss yet: the shipped memo is not read


def test_a_damaged_shipped_memo_is_no_memo(seeded: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.marshal"
    data = seeded.read_bytes()
    damaged.write_bytes(data[:-10] + b"0123456789")
    memo = item_cache.StatementMemo(tmp_path / "m.marshal", {}, False, damaged)
    assert format_python("x = f( 1 )\n", False, memo) == "x = f(1)\n"
    assert memo.shipped == {} and memo.learnt == 2


def test_the_module_compiles_the_templates_and_seeds_the_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(
        templates_dir(), templates, ignore=shutil.ignore_patterns(COMPILED, item_cache.SHIPPED)
    )
    monkeypatch.setattr("dlspec.resources.templates_dir", lambda: templates)
    monkeypatch.delenv("DLSPEC_CACHE_DIR", raising=False)
    assert shipped.main([]) == 0
    assert (templates / COMPILED / "pytorch" / "script.py.j2.jinja").is_file()
    assert not (templates / item_cache.SHIPPED).exists()
    assert shipped.main([str(spec) for spec in SEEDS]) == 0
    assert len(item_cache.read_file(item_cache.shipped_path(templates)) or {}) > 1000
    assert "DLSPEC_CACHE_DIR" not in os.environ  # the user's cache folder as it was
