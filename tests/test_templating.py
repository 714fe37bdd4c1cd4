"""Compiled templates shipped with an install (dlspec.codegen.templating.precompile): read when
the user's cache lacks them, and never trusted over the template itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import pytest

from dlspec.codegen.templating import COMPILED, TemplateBytecode, make_environment, precompile
from dlspec.resources import templates_dir


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of dlspec's templates, compiled as an install compiles them."""
    folder = tmp_path / "templates"
    shutil.copytree(templates_dir(), folder, ignore=shutil.ignore_patterns(COMPILED, "__pycache__"))
    names = precompile(folder)
    assert names and all((folder / COMPILED / f"{name}.jinja").is_file() for name in names)
    assert "pytorch/script.py.j2" in names
    return folder


def environment(folder: Path, cache: Path) -> jinja2.Environment:
    return make_environment(folder, TemplateBytecode(str(cache), folder / COMPILED))


def refuse_to_compile(env: jinja2.Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    def compile_(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled a template the install shipped")

    monkeypatch.setattr(env, "compile", compile_)


def test_every_template_loads_from_what_the_install_compiled(
    templates: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(templates, tmp_path / "empty-cache")
    refuse_to_compile(env, monkeypatch)
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)
    assert not (tmp_path / "empty-cache").exists()  # nothing compiled, nothing to keep


def test_a_template_edited_after_the_install_is_compiled_anew(
    templates: Path, tmp_path: Path
) -> None:
    (templates / "common" / "schedule.py.j2").write_text("edited {{ 1 + 1 }}\n")
    env = environment(templates, tmp_path / "cache")
    assert env.get_template("common/schedule.py.j2").render() == "edited 2\n"
    assert list((tmp_path / "cache").iterdir())  # the new one kept in the user's cache


@pytest.mark.parametrize("damage", ["another Python's", "truncated", "garbage"])
def test_a_shipped_entry_that_is_not_this_pythons_or_is_damaged_is_a_miss(
    templates: Path, tmp_path: Path, damage: str
) -> None:
    entry = templates / COMPILED / "common" / "schedule.py.j2.jinja"
    data = entry.read_bytes()
    if damage == "another Python's":  # the magic holds Python's version: change it
        data = data[:2] + bytes([data[2] ^ 1]) + data[3:]
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = b"\x00" * 64
    entry.write_bytes(data)
    context = {"schedule": {"doc": "Constant.", "body": ["return 0.1"]}}
    expected = make_environment(templates).get_template("common/schedule.py.j2").render(context)
    env = environment(templates, tmp_path / "cache")
    assert env.get_template("common/schedule.py.j2").render(context) == expected
    assert "return 0.1" in expected
