"""The files a script's user names: every way the weights file it reads (--weights-in) can be
wrong is one line naming the file and the reason, never a traceback, and nothing that is not a
finite number loads; the files it writes (--weights-out, --results) are checked before the run,
and the weights land at exactly the path given.

The section (templates/common/files.py.j2) is NumPy and the standard library only; it is
rendered here and run as a module, without any deep-learning framework."""

from __future__ import annotations

import types
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from dlspec.codegen.render import environment

PARAMETERS = [("dense_1.weight", (3, 2)), ("dense_1.bias", (3,))]


def files_module() -> types.ModuleType:
    """The files section with a two-parameter PARAMETERS, as a module."""
    section = environment().get_template("common/files.py.j2").render()
    source = f"import os\n\nimport numpy as np\n\nPARAMETERS = {PARAMETERS!r}\n{section}"
    module = types.ModuleType("user_files")
    exec(compile(source, module.__name__, "exec"), module.__dict__)
    return module


def good() -> dict[str, np.ndarray]:
    return {
        name: np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
        for name, shape in PARAMETERS
    }


def test_a_good_file_loads_every_parameter_as_float32(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", **good())
    weights = files_module().read_weights(str(tmp_path / "w.npz"))
    assert list(weights) == [name for name, _ in PARAMETERS]
    for name, value in good().items():
        assert weights[name].dtype == np.float32 and np.array_equal(weights[name], value)
    ints = {name: value.astype(np.int64) for name, value in good().items()}
    np.savez(tmp_path / "i.npz", **ints)  # whole numbers are numbers too
    assert files_module().read_weights(str(tmp_path / "i.npz"))["dense_1.bias"].dtype == np.float32


def _with(name: str, value: Any) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **{**good(), name: value})


def _zip_cut(path: Path) -> None:
    np.savez(path, **good())
    path.write_bytes(path.read_bytes()[:60])


def _one_array(path: Path) -> None:
    """np.save's single array (closed, so its bytes are on disk), under an npz name."""
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    assert path.read_bytes().startswith(b"\x93NUMPY")


def _pickled(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        with z.open("dense_1.weight.npy", "w") as f:
            np.save(f, np.array([object()] * 6).reshape(3, 2), allow_pickle=True)


BAD = [
    ("missing", lambda path: None, "No such file or directory"),
    ("text", lambda path: path.write_text("dense_1.weight = 1\n"), "not an npz archive"),
    ("one npy array", _one_array, "not an npz archive"),
    ("cut zip", _zip_cut, "BadZipFile"),
    ("pickled objects", _pickled, "allow_pickle=False"),
    (
        "name missing",
        lambda path: np.savez(path, **{"dense_1.bias": np.zeros(3)}),
        "missing ['dense_1.weight']",
    ),
    ("extra name", _with("dense_9.bias", np.zeros(3)), "unexpected ['dense_9.bias']"),
    (
        "wrong shape",
        _with("dense_1.bias", np.zeros(4)),
        "dense_1.bias has shape (4,), expected (3,)",
    ),
    (
        "strings",
        _with("dense_1.bias", np.array(["a", "b", "c"])),
        "dense_1.bias holds <U1 values, not numbers",
    ),
    (
        "booleans",
        _with("dense_1.bias", np.ones(3, bool)),
        "dense_1.bias holds bool values, not numbers",
    ),
    (
        "nan",
        _with("dense_1.bias", np.array([0.0, np.nan, 1.0])),
        "dense_1.bias holds NaN, infinity",
    ),
    (
        "past float32",
        _with("dense_1.weight", np.full((3, 2), 1e300)),
        "dense_1.weight holds NaN, infinity or values past float32's range",
    ),
]


@pytest.mark.parametrize("what, write, reason", BAD, ids=[b[0] for b in BAD])
def test_a_bad_weights_file_exits_with_its_path_and_the_reason(
    what: str, write: Callable[[Path], None], reason: str, tmp_path: Path
) -> None:
    path = tmp_path / "w.npz"
    write(path)
    with pytest.raises(SystemExit) as exit:
        files_module().read_weights(str(path))
    message = str(exit.value.code)
    assert message.startswith(f"weights {path}: ") and reason in message, message
    assert "\n" not in message


def test_weights_are_written_at_exactly_the_path_given(tmp_path: Path) -> None:
    module = files_module()
    module.write_weights(str(tmp_path / "tuned"), good().items())  # np.savez would add .npz
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]
    assert module.read_weights(str(tmp_path / "tuned")).keys() == good().keys()


@pytest.mark.parametrize(
    "flag, path, reason",
    [
        ("--results", "{tmp}", "--results {tmp}: is a folder; name a file"),
        ("--weights-out", "{tmp}/no/w.npz", "--weights-out {tmp}/no/w.npz: no folder {tmp}/no"),
        ("--results", "{tmp}/file/r.json", "--results {tmp}/file/r.json: no folder {tmp}/file"),
    ],
)
def test_an_output_that_cannot_be_written_stops_the_run_before_it_starts(
    flag: str, path: str, reason: str, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit:
        files_module().check_outputs(file_flags(**{flag: path.format(tmp=tmp_path)}))
    assert exit.value.code == reason.format(tmp=tmp_path)


def file_flags(**named: str) -> types.SimpleNamespace:
    """The script's file flags as argparse gives them: each flag named by its option
    ("--weights-out"), the rest at their defaults."""
    flags = {"--data": "synthetic", "--weights-in": None, "--results": None, "--weights-out": None}
    flags.update(named)
    return types.SimpleNamespace(**{k[2:].replace("-", "_"): v for k, v in flags.items()})


@pytest.mark.parametrize(
    "named, reason",
    [
        ({"--results": "a", "--weights-out": "a"}, "--results a: the file --weights-out names too"),
        ({"--results": "a", "--weights-in": "./a"}, "--results a: the file --weights-in names too"),
        ({"--weights-out": "d.npz", "--data": "d.npz"}, "--weights-out d.npz: the file --data"),
        ({"--weights-out": "a", "--results": "x/../a"}, "--results x/../a: the file --weights-out"),
    ],
)
def test_an_output_naming_an_input_or_the_other_output_stops_the_run(
    named: dict[str, str], reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        files_module().check_outputs(file_flags(**named))
    assert str(exit.value.code).startswith(reason), exit.value.code


def test_outputs_that_can_be_written_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check = files_module().check_outputs
    check(file_flags(**{"--results": str(tmp_path / "r.json"), "--weights-out": "w.npz"}))
    check(file_flags())  # a bare name above is in the working folder
    # updating the weights in place: they are read before the run, written after it
    check(file_flags(**{"--weights-in": "w.npz", "--weights-out": "w.npz"}))
    monkeypatch.chdir(tmp_path)
    check(file_flags(**{"--results": "synthetic"}))  # the default --data is no file
