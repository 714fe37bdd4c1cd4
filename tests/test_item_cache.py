"""The fast formatter's statements kept between runs (dlspec.codegen.item_cache): read back as
written, bounded, damage is an empty memo, and an edited spec formats only its new statements."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlspec.codegen import item_cache
from dlspec.codegen.compile import unformatted
from dlspec.codegen.pyformat import format_python
from dlspec.codegen.pyformat.segments import SEGMENT
from dlspec.frontend.load import build

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "mnist_mlp.dl"


def _scripts(text: str) -> list[tuple[str, bool]]:
    """(unformatted source, py2) of a spec's five scripts."""
    model = build(text, "spec.dl").model
    out = []
    for target in ("pytorch", "tensorflow", "keras", "mxnet", "cntk"):
        source, mode = unformatted(model, target)
        out.append((source, mode.py2))
    return out


def _memo(path: Path) -> item_cache.StatementMemo:
    return item_cache.StatementMemo(path, *item_cache.read_whole(path))


def test_written_statements_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "statements" / "memo.marshal"
    memo = _memo(path)
    formatted = [format_python(source, py2, memo) for source, py2 in _scripts(MLP.read_text())]
    assert memo.learnt > 1000
    item_cache.write(memo)
    again = _memo(path)
    assert len(again.stored) == len(memo.used)
    assert [format_python(s, py2, again) for s, py2 in _scripts(MLP.read_text())] == formatted
    assert again.learnt == 0


def test_an_edited_spec_formats_only_its_new_statements(tmp_path: Path) -> None:
    """The edit-compile loop: a changed batch size is a few statements per script."""
    memo = _memo(tmp_path / "memo.marshal")
    text = MLP.read_text()
    for source, py2 in _scripts(text):
        format_python(source, py2, memo)
    before = memo.learnt
    assert "batch     = 128" in text
    for source, py2 in _scripts(text.replace("batch     = 128", "batch = 100")):
        assert format_python(source, py2, memo) == format_python(source, py2)
    assert 0 < memo.learnt - before <= 10


def test_a_damaged_or_foreign_file_is_an_empty_memo(tmp_path: Path) -> None:
    path = tmp_path / "memo.marshal"
    memo = _memo(path)
    format_python("x = f( 1 )\n", False, memo)
    item_cache.write(memo)
    data = path.read_bytes()
    path.write_bytes(data[:-3] + b"xyz")
    assert item_cache.read(path) == {}
    path.write_bytes(b"not a memo at all")
    assert item_cache.read(path) == {}
    path.write_bytes(data)
    assert len(item_cache.read(path)) == 2  # the statement, and the file's one segment


def test_a_later_process_appends_what_it_learnt_to_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is written once; each later process appends a record (the file untouched),
    read back after it; a full journal is folded into the file again."""
    path = tmp_path / "memo.marshal"
    first = _memo(path)
    format_python("x = f( 1 )\n", False, first)
    item_cache.write(first)
    written = path.read_bytes()
    for number in range(2, 5):
        memo = _memo(path)
        assert memo.whole and len(memo.stored) == 2 * (number - 1)
        format_python(f"x = f( {number} )\n", False, memo)
        item_cache.write(memo)
        assert path.read_bytes() == written
    journal = item_cache.journal_path(path)
    assert len(item_cache.read(path)) == 8 and journal.stat().st_size < 1000
    assert format_python("x = f( 3 )\n", False, _memo(path)) == "x = f(3)\n"
    memo = _memo(path)
    format_python("x = f( 5 )\n", False, memo)
    monkeypatch.setattr(item_cache, "JOURNAL_LIMIT", journal.stat().st_size)
    item_cache.write(memo)
    assert not journal.exists() and len(item_cache.read(path)) == 10


def test_a_torn_or_damaged_journal_is_read_up_to_it_and_then_folded(tmp_path: Path) -> None:
    path = tmp_path / "memo.marshal"
    journal = item_cache.journal_path(path)
    for number in range(1, 4):
        memo = _memo(path)
        format_python(f"x = f( {number} )\n", False, memo)
        item_cache.write(memo)
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-5])  # the last record torn
    stored, intact = item_cache.read_whole(path)
    assert len(stored) == 4 and not intact
    memo = item_cache.StatementMemo(path, stored, intact)
    format_python("x = f( 4 )\n", False, memo)
    item_cache.write(memo)  # not appended after the torn record: one file again
    assert not journal.exists() and item_cache.read_whole(path) == (item_cache.read(path), True)
    assert len(item_cache.read(path)) == 6
    path.write_bytes(b"damaged")
    journal.write_bytes(whole)
    assert item_cache.read_whole(path) == ({}, False)  # a journal without its file: nothing


def test_the_file_keeps_the_newest_statements_up_to_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_cache, "CAPACITY", 3)
    stored = {("old", i): (("old\n",), None) for i in range(3)}
    memo = item_cache.StatementMemo(tmp_path / "m.marshal", stored)
    memo[("new", 1)] = (("one\n",), None)
    memo[("new", 2)] = (("two\n",), None)
    assert memo.get(("old", 1)) is not None  # used now: kept before the unused ones
    assert list(memo.kept()) == [("old", 1), ("new", 2), ("new", 1)]


def test_the_file_keeps_the_newest_segments_up_to_their_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_cache, "SEGMENT_CAPACITY", 2)
    stored = {(SEGMENT, b"old", False): ((False, False), ()), ("statement",): (("x\n",), None)}
    memo = item_cache.StatementMemo(tmp_path / "m.marshal", stored)
    memo[(SEGMENT, b"one", False)] = ((False, False), ())
    memo[(SEGMENT, b"two", False)] = ((False, False), ())
    assert list(memo.kept()) == [(SEGMENT, b"two", False), (SEGMENT, b"one", False), ("statement",)]


def test_nothing_is_written_unless_learnt_and_old_formatters_go(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    path = item_cache.memo_path(folder)
    stale = path.parent / ("0" * 64 + ".marshal")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a file of an older formatter")
    memo = item_cache.memo_for(folder)
    item_cache.close(folder)  # learnt nothing: nothing written
    assert not path.exists() and stale.exists()
    memo = item_cache.memo_for(folder)
    format_python("x = 1\n", False, memo)
    item_cache.close(folder)
    assert path.exists() and not stale.exists()


def test_an_unwritable_folder_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    memo = item_cache.StatementMemo(blocker / "statements" / "m.marshal", {})
    assert format_python("x = f( 1 )\n", False, memo) == "x = f(1)\n"
    item_cache.write(memo)
    assert list(tmp_path.iterdir()) == [blocker]


def test_the_command_line_keeps_the_statements(tmp_path: Path) -> None:
    """A compile writes the memo as it exits; a compile of an edited copy reads it, and both
    write the bytes of a compile without any cache."""
    env = {**os.environ, "DLSPEC_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("DLSPEC_NO_CACHE", None)
    dlspec = str(Path(sys.executable).parent / "dlspec")
    edited = tmp_path / "edited.dl"
    edited.write_text(MLP.read_text().replace("batch     = 128", "batch = 100"))
    outputs = []
    for spec, extra in ((MLP, env), (edited, env), (edited, {**env, "DLSPEC_NO_CACHE": "1"})):
        run = subprocess.run(
            [dlspec, "compile", str(spec), "--target", "all"],
            env=extra,
            capture_output=True,
            check=True,
        )
        outputs.append(run.stdout)
    assert outputs[1] == outputs[2] != outputs[0]
    # the scripts' segments (whole defs), and the statements of what no segment covered
    stored = item_cache.read(item_cache.memo_path(tmp_path / "cache"))
    assert sum(key[0] == SEGMENT for key in stored) > 100 and len(stored) > 300
