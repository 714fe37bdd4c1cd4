"""The runtimes mapping (config file, lookup order, env overrides) and doctor's table, no framework."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dlspec import doctor, runtimes
from dlspec.backends import TARGETS
from dlspec.cli import main
from dlspec.errors import DlspecError
from dlspec.runtimes import CONFIG_NAME, Config, Runtime, load_config, parse_config, runtime

TARGET_NAMES = ("pytorch", "tensorflow", "keras", "mxnet", "cntk")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DLSPEC_PYTHON_* or DLSPEC_RUNTIMES from the caller; start in an empty folder."""
    for target in TARGET_NAMES:
        monkeypatch.delenv(f"DLSPEC_PYTHON_{target.upper()}", raising=False)
    monkeypatch.delenv(runtimes.CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def write_config(folder: Path, text: str) -> Path:
    path = folder / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


# --- the file's format ---------------------------------------------------------------------------


def test_python_as_a_command_line_with_a_relative_path_is_relative_to_the_file(
    tmp_path: Path,
) -> None:
    config = parse_config('[mxnet]\npython = "envs/mx/bin/python -X utf8"\n', tmp_path / "c.toml")
    assert config.python["mxnet"] == (str(tmp_path / "envs/mx/bin/python"), "-X", "utf8")


def test_python_as_a_list_and_a_bare_command_name_stay_as_written(tmp_path: Path) -> None:
    text = '[pytorch]\npython = ["python3.12", "-u"]\n[cntk]\npython = "/opt/py27/bin/python"\n'
    config = parse_config(text, tmp_path / "c.toml")
    assert config.python == {"pytorch": ("python3.12", "-u"), "cntk": ("/opt/py27/bin/python",)}


def test_env_is_read_per_target(tmp_path: Path) -> None:
    config = parse_config('[keras]\nenv = { OMP_NUM_THREADS = "2" }\n', tmp_path / "c.toml")
    assert config.env == {"keras": {"OMP_NUM_THREADS": "2"}} and config.python == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[mxnett]\npython = 'x'\n", "[mxnett]: unknown target (known: cntk, keras, mxnet"),
        ("[mxnet]\npyhton = 'x'\n", "[mxnet]: unknown key 'pyhton' (known: python, env)"),
        ("[mxnet]\npython = 3\n", "[mxnet]: python must be a string or a list of strings"),
        ("[mxnet]\npython = ''\n", "[mxnet]: python is empty"),
        ("[mxnet]\nenv = { A = 1 }\n", "[mxnet]: env must be a table of strings"),
        ("mxnet = 'x'\n", "[mxnet]: must be a table with python and/or env"),
        ("[mxnet\n", "not valid TOML"),
    ],
)
def test_every_mistake_in_the_file_is_an_error_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DlspecError) as err:
        parse_config(text, tmp_path / "bad.toml")
    assert str(tmp_path / "bad.toml") in str(err.value) and message in str(err.value)


def test_the_committed_config_parses_and_names_the_built_runtimes(root: Path) -> None:
    path = root / CONFIG_NAME
    config = parse_config(path.read_text(encoding="utf-8"), path)
    assert config.python == {
        "mxnet": (str(root / ".runtimes/mxnet/bin/python"),),
        "cntk": (str(root / ".runtimes/cntk/python"),),
    }


# --- where the file is found ---------------------------------------------------------------------


def test_the_nearest_file_in_the_current_folder_or_above_is_used(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    assert runtimes.find_config(inner) == path
    write_config(tmp_path / "a", "")
    assert runtimes.find_config(inner) == tmp_path / "a" / CONFIG_NAME


def test_dlspec_runtimes_names_the_file_and_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[mxnet]\npython = "here"\n')
    named = tmp_path / "elsewhere.toml"
    named.write_text('[mxnet]\npython = "there"\n', encoding="utf-8")
    monkeypatch.setenv(runtimes.CONFIG_ENV, str(named))
    assert load_config().python["mxnet"] == ("there",)


def test_a_missing_file_named_by_dlspec_runtimes_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(runtimes.CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(DlspecError, match="no such runtimes config file"):
        load_config()


def test_no_file_means_built_in_defaults(tmp_path: Path) -> None:
    config = load_config()
    assert config.path is None and config.home == tmp_path


# --- the interpreter each runtime gets -----------------------------------------------------------


def test_defaults_current_interpreter_and_the_built_runtimes_under_the_current_folder(
    tmp_path: Path,
) -> None:
    for name, entry in runtimes.RUNTIMES.items():
        if not entry.built:
            assert runtime(name).python == (sys.executable,)
            assert runtime(name).source == "current interpreter"
    assert runtime("mxnet").python == (str(tmp_path / ".runtimes/mxnet/bin/python"),)
    assert runtime("mxnet").source == "built by make runtimes"
    assert runtime("cntk").python == (str(tmp_path / ".runtimes/cntk/python"),)
    assert runtime("cntk").source == "built by make runtimes"


def test_built_runtimes_default_to_the_config_files_folder(tmp_path: Path) -> None:
    config = parse_config("", tmp_path / "project" / CONFIG_NAME)
    expected = tmp_path / "project/.runtimes/mxnet/bin/python"
    assert runtime("mxnet", config).python == (str(expected),)


def test_lookup_order_env_variable_then_file_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, '[cntk]\npython = "/from/file"\n[pytorch]\npython = "py-f"\n')
    assert runtime("cntk").python == ("/from/file",) and runtime("cntk").source == str(path)
    assert runtime("pytorch").python == ("py-f",)
    monkeypatch.setenv("DLSPEC_PYTHON_CNTK", "/from/env -E")
    assert runtime("cntk").python == ("/from/env", "-E")
    assert runtime("cntk").source == "DLSPEC_PYTHON_CNTK"
    assert runtime("pytorch").python == ("py-f",)
    assert runtime("tensorflow").python == (sys.executable,)


def test_one_keras_entry_serves_its_three_runtimes_each_keeping_its_backend(
    tmp_path: Path,
) -> None:
    write_config(tmp_path, '[keras]\npython = "k"\nenv = { KERAS_BACKEND = "x", A = "1" }\n')
    for backend in ("tensorflow", "jax", "torch"):
        rt = runtime(f"keras[{backend}]")
        assert rt.python == ("k",) and rt.env == {"KERAS_BACKEND": backend, "A": "1"}


def test_the_mapping_reaches_the_environment_a_script_runs_in(tmp_path: Path) -> None:
    write_config(tmp_path, '[mxnet]\nenv = { MXNET_ENGINE_TYPE = "NaiveEngine" }\n')
    rt = runtime("mxnet")
    assert rt.environment()["MXNET_ENGINE_TYPE"] == "NaiveEngine"
    assert rt.command("s.py", "--steps", "1")[-3:] == ["s.py", "--steps", "1"]


# --- pending runtimes: built, but not targets yet --------------------------------------------------
# Every built runtime has an emitter today (cntk was the last): a made-up pending entry stands in.
PENDING_ENTRY = runtimes.Entry("chainer", {}, "import chainer; print(chainer.__version__)", "ch/py")


@pytest.fixture
def pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime built before its target's emitter: in PENDING (and ALL_RUNTIMES), not in TARGETS."""
    monkeypatch.setitem(runtimes.PENDING, "chainer", PENDING_ENTRY)
    monkeypatch.setitem(runtimes.ALL_RUNTIMES, "chainer", PENDING_ENTRY)


def test_every_target_that_compiles_has_runtimes_and_pending_ones_do_not_compile(
    pending: None,
) -> None:
    assert {e.target for e in runtimes.RUNTIMES.values()} == set(TARGETS)
    assert not {e.target for e in runtimes.PENDING.values()} & set(TARGETS)
    assert sorted(runtimes.expand(list(TARGETS))) == sorted(runtimes.RUNTIMES)
    assert runtimes.expand(["mxnet", "cntk", "chainer"]) == ["mxnet", "cntk"]


def test_cntk_is_a_target_with_its_built_runtime() -> None:
    assert "cntk" in TARGETS and "cntk" in runtimes.RUNTIMES and not runtimes.PENDING
    assert runtimes.expand(["cntk"]) == ["cntk"]


@pytest.mark.parametrize("argv", [["compile", "x.dl", "--target", "chainer"]])
def test_naming_a_pending_target_says_it_has_no_emitter_yet(
    argv: list[str], capsys: pytest.CaptureFixture[str], pending: None
) -> None:
    assert main(argv) == 2
    assert "target 'chainer' has a runtime (see `dlspec doctor`) but no emitter yet" in (
        capsys.readouterr().err
    )


def test_verify_refuses_a_pending_target_too(
    capsys: pytest.CaptureFixture[str], pending: None
) -> None:
    assert main(["verify", "x.dl", "--targets", "chainer"]) == 2
    assert "no emitter yet" in capsys.readouterr().err


# --- why a runtime is missing, and what fixes it ---------------------------------------------------


def test_a_failed_build_leaves_its_reason_for_the_fix(tmp_path: Path) -> None:
    rt = runtime("cntk")
    assert runtimes.build_problem("cntk") is None
    assert runtimes.fix(rt).startswith("make runtimes, or point [cntk] python in")
    (tmp_path / ".runtimes").mkdir()
    (tmp_path / ".runtimes/cntk.unavailable").write_text("no root\n", encoding="utf-8")
    assert runtimes.build_problem("cntk") == "no root"
    assert runtimes.fix(rt).startswith("make runtimes (the last build failed: no root)")


def test_the_fix_follows_where_the_interpreter_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "pip install torch==2.13.0" in runtimes.fix(runtime("pytorch"))
    path = write_config(tmp_path, '[pytorch]\npython = "py"\n')
    assert runtimes.fix(runtime("pytorch")) == f"point [pytorch] python in {path} at a working one"
    monkeypatch.setenv("DLSPEC_PYTHON_PYTORCH", "py")
    assert runtimes.fix(runtime("pytorch")).startswith("DLSPEC_PYTHON_PYTORCH names an interpreter")


# --- doctor's report from fake probes ------------------------------------------------------------


def fake_probe(missing: set[str]) -> doctor.Probe:
    def probe(rt: Runtime) -> tuple[bool, str]:
        return (False, f"No module named {rt.target!r}") if rt.name in missing else (True, "9.9")

    return probe


def test_doctor_table_has_one_row_per_runtime_with_every_column() -> None:
    text = doctor.report(fake_probe({"keras[jax]"}), Config(None, {}, {}))
    lines = text.splitlines()
    assert lines[0] == "runtimes config: none (built-in defaults)"
    assert lines[1].split() == [
        "target",
        "runtime",
        "interpreter",
        "version",
        "runnable",
        "emitter",
    ]
    rows = {line.split()[1]: line.split() for line in lines[2:9]}
    assert list(rows) == list(runtimes.ALL_RUNTIMES)
    assert rows["pytorch"][0] == "pytorch" and rows["pytorch"][-3:] == ["9.9", "yes", "yes"]
    assert rows["keras[jax]"][-3:] == ["-", "no", "yes"]
    assert rows["mxnet"][2:] == [
        ".runtimes/mxnet/bin/python", "(built", "by", "make", "runtimes)", "9.9", "yes", "yes"
    ]  # fmt: skip
    assert rows["cntk"][2:] == [
        ".runtimes/cntk/python", "(built", "by", "make", "runtimes)", "9.9", "yes", "yes"
    ]  # fmt: skip


def test_doctor_shows_a_pending_runtime_without_an_emitter(pending: None) -> None:
    lines = doctor.report(fake_probe(set()), Config(None, {}, {})).splitlines()
    rows = {line.split()[1]: line.split() for line in lines[2:10]}
    assert rows["chainer"][2:] == [
        ".runtimes/ch/py", "(built", "by", "make", "runtimes)", "9.9", "yes", "not", "yet"
    ]  # fmt: skip


def test_doctor_notes_say_what_is_pending_and_how_to_fix_what_is_missing(
    tmp_path: Path, pending: None
) -> None:
    (tmp_path / ".runtimes").mkdir()
    (tmp_path / ".runtimes/mxnet.unavailable").write_text("debootstrap failed\n", encoding="utf-8")
    *notes, graphviz = doctor.report(fake_probe({"mxnet", "keras[jax]"})).splitlines()[10:]
    assert graphviz.startswith("graphviz (dlspec graph -o FILE.svg|png): ")  # tests/test_graph.py
    assert notes == [
        "chainer: runtime ready; no emitter yet (compile and verify do not offer these targets)",
        "keras[jax]: not runnable: No module named 'keras'",
        "  fix: " + runtimes.FIX_CURRENT["keras"],
        "mxnet: not runnable: No module named 'mxnet'",
        "  fix: make runtimes (the last build failed: debootstrap failed), or point [mxnet] python"
        f" in {CONFIG_NAME} at a working one",
    ]


def test_doctor_exits_0_even_when_runtimes_are_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runtimes, "probe", fake_probe(set(runtimes.ALL_RUNTIMES)))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.count("  fix: ") == len(runtimes.ALL_RUNTIMES)


def test_doctor_shows_the_config_file_and_where_each_interpreter_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[mxnet]\npython = "envs/mx/python"\n')
    monkeypatch.setenv("DLSPEC_PYTHON_CNTK", "/opt/py27/python -E")
    lines = doctor.report(fake_probe(set())).splitlines()
    assert lines[0] == f"runtimes config: {CONFIG_NAME}"
    assert "envs/mx/python (dlspec-runtimes.toml)" in lines[7]
    assert "/opt/py27/python -E (DLSPEC_PYTHON_CNTK)" in lines[8]


def test_a_broken_config_file_makes_doctor_fail_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, "[mxnet]\nnope = 1\n")
    assert main(["doctor"]) == 1
    assert f"{tmp_path / CONFIG_NAME}: [mxnet]: unknown key 'nope'" in capsys.readouterr().err
