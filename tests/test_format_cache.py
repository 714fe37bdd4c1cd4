"""The cache of black's output (for what the fast formatter leaves to black): black's bytes, hits skip
black, damage and failures are misses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import black
import pytest

from dlspec.codegen import format_cache
from dlspec.codegen.render import BLACK_MODE, PY2_BLACK_MODE
from dlspec.codegen.templating import COMPILED, TemplateBytecode, environment
from dlspec.resources import templates_dir

SOURCE = "def f( a,b ):\n  return {'x':a,   'y':b}\n"
ROOT = Path(__file__).resolve().parent.parent


def _folder(directory: Path) -> Path:
    """Where format_cached keeps entries: a folder per black version."""
    return directory / f"black-{black.__version__}"


def test_a_miss_formats_with_black_and_stores(tmp_path: Path) -> None:
    out = format_cache.format_cached(SOURCE, BLACK_MODE, tmp_path)
    assert out == black.format_str(SOURCE, mode=BLACK_MODE)
    key = format_cache.cache_key(SOURCE, BLACK_MODE)
    assert format_cache.lookup(_folder(tmp_path), key) == out


def test_a_hit_does_not_run_black(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = format_cache.format_cached(SOURCE, BLACK_MODE, tmp_path)

    def refuse(*_: object, **__: object) -> str:
        raise AssertionError("black ran on a cache hit")

    monkeypatch.setattr(black, "format_str", refuse)
    assert format_cache.format_cached(SOURCE, BLACK_MODE, tmp_path) == first


def test_the_key_covers_source_mode_and_black_version(monkeypatch: pytest.MonkeyPatch) -> None:
    key = format_cache.cache_key(SOURCE, BLACK_MODE)
    assert key != format_cache.cache_key(SOURCE + "\n", BLACK_MODE)
    assert key != format_cache.cache_key(SOURCE, PY2_BLACK_MODE)
    monkeypatch.setattr(black, "__version__", "0.0.0")
    assert key != format_cache.cache_key(SOURCE, BLACK_MODE)


def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    good = format_cache.format_cached(SOURCE, BLACK_MODE, tmp_path)
    key = format_cache.cache_key(SOURCE, BLACK_MODE)
    entry = _folder(tmp_path) / key[:2] / key
    entry.write_bytes(entry.read_bytes().replace(b"return", b"retrun"))
    assert format_cache.lookup(_folder(tmp_path), key) is None
    assert format_cache.format_cached(SOURCE, BLACK_MODE, tmp_path) == good
    assert format_cache.lookup(_folder(tmp_path), key) == good


def test_an_unwritable_cache_still_formats(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = format_cache.format_cached(SOURCE, BLACK_MODE, blocker / "cache")
    assert out == black.format_str(SOURCE, mode=BLACK_MODE)
    assert list(tmp_path.iterdir()) == [blocker]


def test_the_environment_chooses_or_disables_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DLSPEC_NO_CACHE", raising=False)
    monkeypatch.setenv("DLSPEC_CACHE_DIR", str(tmp_path))
    assert format_cache.default_directory() == tmp_path
    monkeypatch.delenv("DLSPEC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert format_cache.default_directory() == tmp_path / "xdg" / "dlspec"
    monkeypatch.setenv("DLSPEC_NO_CACHE", "1")
    assert format_cache.default_directory() is None


def _shipped_current(empty: Path) -> bool:
    """Whether every template's compiled form shipped in templates/__jinja__ is current."""
    env = environment()
    shipped = TemplateBytecode(str(empty), templates_dir() / COMPILED)
    for name in env.list_templates(extensions=["j2"]):
        source, filename, _ = env.loader.get_source(env, name)
        if shipped.get_bucket(env, name, filename, source).code is None:
            return False
    return True


def test_cli_compile_is_byte_identical_cold_and_warm(tmp_path: Path) -> None:
    """Two compiles, the first with empty caches, write the same bytes."""
    cache = tmp_path / "cache"
    env = {**os.environ, "DLSPEC_CACHE_DIR": str(cache)}
    env.pop("DLSPEC_NO_CACHE", None)
    spec = ROOT / "examples" / "mnist_mlp.dl"
    outputs = []
    for _ in range(2):
        run = subprocess.run(
            [str(Path(sys.executable).parent / "dlspec"), "compile", str(spec), "--target", "all"],
            env=env,
            capture_output=True,
            check=True,
        )
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert b"import torch" in outputs[0]
    assert not list(cache.glob("black-*/*/*"))  # the fast formatter needed black for none
    # the compiled templates were kept: in the cache exactly when the install shipped no current
    # compiled form of some template (make venv and make generate write them)
    assert bool(list(cache.glob("templates-*/*"))) == (not _shipped_current(tmp_path / "none"))
    assert len(list(cache.glob("formatted/*/*"))) == 5  # each target's formatted script


def test_a_formatted_script_is_read_back_without_formatting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the cache in use, format_source formats a source once: a second call reads the
    stored text (the formatter is not run), the same bytes."""
    from dlspec.codegen import render

    source = "x = {'a':1,   'b':[1,2]}\n"
    previous = render.use_format_cache(tmp_path)
    try:
        first = render.format_source(source)
        assert first == black.format_str(source, mode=BLACK_MODE)

        def refuse(*_: object) -> str:
            raise AssertionError("formatted again on a cache hit")

        monkeypatch.setattr(render, "format_python", refuse)
        assert render.format_source(source) == first
        with pytest.raises(AssertionError):  # another mode is another entry
            render.format_source(source, render.PY2_FORMAT)
    finally:
        render.use_format_cache(previous)


def test_the_output_key_covers_source_mode_and_the_formatter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A changed formatter (its modules' source) is a changed key, so its old outputs are never
    read back; the fingerprint is computed from those files."""
    key = format_cache.output_key(SOURCE, False)
    assert key != format_cache.output_key(SOURCE + "\n", False)
    assert key != format_cache.output_key(SOURCE, True)
    monkeypatch.setattr(format_cache, "formatter_fingerprint", lambda: "another formatter")
    assert key != format_cache.output_key(SOURCE, False)
    monkeypatch.undo()
    pyformat = ROOT / "dlspec" / "codegen" / "pyformat"
    assert len(list(pyformat.glob("*.py"))) > 3
    assert len(format_cache.formatter_fingerprint()) == 64


def test_source_the_formatter_leaves_to_black_is_not_kept_as_formatted(tmp_path: Path) -> None:
    """What the fast formatter refuses goes to black (whose own cache keeps it under black's
    version); the formatted-output cache holds only the fast formatter's text."""
    from dlspec.codegen import render
    from dlspec.codegen.pyformat import Unsupported, format_python

    source = "async def f():\n    await g( 1 )\n"  # not template code: the formatter refuses
    with pytest.raises(Unsupported):
        format_python(source, False)
    previous = render.use_format_cache(tmp_path)
    try:
        assert render.format_source(source) == black.format_str(source, mode=BLACK_MODE)
    finally:
        render.use_format_cache(previous)
    assert not list(tmp_path.glob("formatted/*/*"))
    assert list(tmp_path.glob("black-*/*/*"))


def test_each_folder_keeps_its_most_recently_used_entries(tmp_path: Path) -> None:
    folder = tmp_path / "ab"
    folder.mkdir()
    for age in range(5):
        entry = folder / f"ab{age}"
        entry.write_text("x")
        os.utime(entry, (1000 - age, 1000 - age))  # ab0 the newest
    (folder / ".tmp-writing").write_text("x")  # another process's entry being written
    format_cache.prune(folder, keep=3)
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-writing", "ab0", "ab1", "ab2"]


def test_a_hit_marks_its_entry_used(tmp_path: Path) -> None:
    format_cache.format_cached(SOURCE, BLACK_MODE, tmp_path)
    key = format_cache.cache_key(SOURCE, BLACK_MODE)
    entry = _folder(tmp_path) / key[:2] / key
    os.utime(entry, (1, 1))
    assert format_cache.lookup(_folder(tmp_path), key) is not None
    assert entry.stat().st_mtime > 1
