"""Hostile and careless input: bytes, huge numbers, deep nesting, odd line breaks, limits, paths.

Each case is a class of input that once gave a traceback, a hang, a wrong position or code
injection; the front end must answer with its own error at the right place, or compile safely.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

from dlspec import __version__, cli, errors
from dlspec.backends.pytorch import PyTorchBackend
from dlspec.codegen.compile import compile_model
from dlspec.codegen.files import write_all
from dlspec.errors import Pos, Problem, SpecError, display_path, format_problem, format_problems
from dlspec.frontend.load import build, build_file, decode
from dlspec.ir.model import Model
from dlspec.limits import MAX_LAYERS, MAX_PROBLEMS_SHOWN

ROOT = Path(__file__).resolve().parent.parent
GOOD = "model m {\n    input x: float32[4]\n    dense(2)\n}\n"


def problems(text: str) -> list[Problem]:
    """The problems the front end reports for `text`."""
    with pytest.raises(SpecError) as info:
        build(text, "s.dl")
    return info.value.problems


def only(text: str) -> Problem:
    """The one problem reported for `text`."""
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# ---- bytes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, line, col",
    [
        (b"model m {\n  input x: float32[4]\n  de\xffnse(2)\n}\n", 3, 5),
        (b"\xef\xbb\xbfmo\xc3del m {}", 1, 3),  # a BOM is not a column
        (b"# caf\xc3\xa9 \xe9\nmodel m {}", 1, 8),  # a Latin-1 byte after valid UTF-8
        (b"model m {\r\n\x80}", 2, 1),
    ],
)
def test_bytes_that_are_not_utf8_are_an_error_at_their_place(
    data: bytes, line: int, col: int
) -> None:
    with pytest.raises(SpecError) as info:
        decode(data, "s.dl")
    (problem,) = info.value.problems
    assert (problem.pos.line, problem.pos.col) == (line, col)
    assert "not UTF-8" in problem.message


def test_crlf_file_header_hashes_the_files_bytes(tmp_path: Path) -> None:
    spec = tmp_path / "crlf.dl"
    spec.write_bytes(GOOD.replace("\n", "\r\n").encode())
    source = compile_model(build_file(str(spec)).model, "pytorch").source
    assert f"# spec sha256: {hashlib.sha256(spec.read_bytes()).hexdigest()}" in source
    assert "\r" not in source


# ---- numbers and nesting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "template, line",
    [
        ("model m {{ input x: float32[4]\n dense({n})\n}}", 2),
        ("model m {{\n input x: float32[{n}]\n dense(2)\n}}", 2),
        ("model m {{ input x: float32[4]\n dense(2)\n}}\ntrain {{ optimizer = sgd(lr={n}) }}", 4),
        ("model m {{ input x: float32[4]\n dense(2)\n}}\ntrain {{ seed = -{n} }}", 4),
    ],
)
@pytest.mark.parametrize("digits", [41, 400, 5000, 50000])
def test_integers_of_any_length_are_an_error_with_a_position(
    template: str, line: int, digits: int
) -> None:
    problem = only(template.format(n="7" * digits))
    assert problem.pos.line == line
    assert f"{digits} digits" in problem.message


def test_leading_zeros_do_not_count_as_digits() -> None:
    model = build("model m { input x: float32[4]\n dense(" + "0" * 5000 + "2)\n}").model
    assert model.layers[0]["units"] == 2


@pytest.mark.parametrize("depth", [17, 300, 5000])
@pytest.mark.parametrize("opening, closing", [("[", "]"), ("normal(std=", ")")])
def test_deep_nesting_is_an_error_not_a_recursion(depth: int, opening: str, closing: str) -> None:
    value = opening * depth + "1" + closing * depth
    problem = only(f"model m {{ input x: float32[4]\n dense(2, init={value})\n}}")
    assert problem.kind == "SyntaxProblem" and problem.pos.line == 2
    assert "nested more than" in problem.message


# ---- limits -----------------------------------------------------------------------------------


def test_too_many_layers_is_an_error_at_the_first_layer_over_the_limit() -> None:
    body = "\n".join(" relu" for _ in range(MAX_LAYERS + 5))
    problem = only(f"model m {{ input x: float32[4]\n{body}\n}}")
    assert problem.pos.line == MAX_LAYERS + 2
    assert f"the limit is {MAX_LAYERS}" in problem.message


def test_layers_at_the_limit_compile() -> None:
    body = "\n".join(" relu" for _ in range(MAX_LAYERS - 1))
    assert len(build(f"model m {{ input x: float32[4]\n{body}\n dense(2)\n}}").model.layers) == (
        MAX_LAYERS
    )


def test_automatic_names_skip_the_input_names() -> None:
    model = build("model m { input dense_1: float32[4]\n dense(2)\n}").model
    assert [layer.name for layer in model.layers] == ["dense_2"]


# ---- positions --------------------------------------------------------------------------------


@pytest.mark.parametrize("odd", ["\x0c", "\x0b", "\u2028", "\u2029", "\x85", "\r", "\x1c"])
def test_odd_line_breaks_in_comments_do_not_shift_lines(odd: str) -> None:
    text = f"model m {{ # a{odd}comment{odd}\n input x: float32[4]\n dense(0)\n}}"
    problem = only(text)
    assert problem.pos.line == 3
    shown = format_problem(problem, "s.dl", text).splitlines()
    assert shown[1] == "     dense(0)"
    assert shown[2] == "           ^"


def test_control_characters_are_not_printed() -> None:
    text = "model m {\n input x: float32[4]\n dense(0) # \x1b[31m\x07\n}"
    shown = format_problem(only(text), "s.dl", text)
    assert "\x1b" not in shown and "\x07" not in shown
    assert "dense(0) # ?[31m?" in shown


def test_caret_follows_tabs() -> None:
    text = "model m {\n\tinput x: float32[4]\n\t\tdense(0)\n}"
    shown = format_problem(only(text), "s.dl", text).splitlines()
    assert shown[1] == "    \t\tdense(0)"
    assert shown[2] == "    \t\t      ^"


def test_end_of_file_position_lies_inside_the_file() -> None:
    for text in ["model m {", "model m {\n", "model m {\r\n\r\n", "model m { # x\x0c"]:
        problem = only(text)
        lines = errors.source_lines(text)
        assert 1 <= problem.pos.line <= len(lines)
        assert problem.pos.col <= len(lines[problem.pos.line - 1]) + 1


def test_many_problems_are_formatted_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    body = "\n".join(" dense(0)" for _ in range(MAX_PROBLEMS_SHOWN + 50))
    text = f"model m {{ input x: float32[4]\n{body}\n}}"
    found = problems(text)
    calls = []
    real = errors.source_lines
    monkeypatch.setattr(errors, "source_lines", lambda text: calls.append(1) or real(text))
    shown = format_problems(found, "s.dl", text)
    assert len(calls) == 1
    assert shown.count("error: dense: units") == MAX_PROBLEMS_SHOWN
    assert shown.endswith("s.dl: 50 more problem(s) not shown")


# ---- the spec path ----------------------------------------------------------------------------

HOSTILE_PATHS = [
    "a\nimport os; os.system('echo pwned')\n.dl",
    "a\rprint('pwned')\r.dl",
    "a\r\nx = 1\r\n.dl",
    "a\u2028b\u2029c\x85d\x0b\x0c.dl",
    "caf\u00e9 \U0001f600.dl",
    "bad\udcff\udcfebytes.dl",  # os.fsdecode of bytes that are not UTF-8
    'quote"s\'\\back"""slash.dl',
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_spec_path_cannot_leave_the_header_comment(path: str) -> None:
    benign = compile_model(build(GOOD, "benign.dl").model, "pytorch").source
    hostile = compile_model(build(GOOD, path).model, "pytorch").source
    assert ast.dump(ast.parse(hostile)) == ast.dump(ast.parse(benign))
    header = hostile.split("\n")[0]
    assert header == f"# Generated by dlspec {__version__} from {display_path(path)}. Do not edit."
    assert all(ch == "\n" or 0x20 <= ord(ch) < 0x7F for ch in hostile)


def test_display_path_escapes_what_is_not_printable_ascii() -> None:
    assert display_path("examples/mnist_mlp.dl") == "examples/mnist_mlp.dl"
    assert display_path("a\nb\\c\udcffd\u00e9\U0001f600") == "a\\x0ab\\\\c\\xffd\\xe9\\U0001f600"


def test_messages_show_the_escaped_path() -> None:
    head = format_problem(Problem("m", Pos(1, 1, 2)), "a\nb.dl", "x").splitlines()[0]
    assert head == "a\\x0ab.dl:1:1: error: m"


# ---- writing ----------------------------------------------------------------------------------


def test_write_all_writes_nothing_when_one_file_fails(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder must go")
    first = tmp_path / "new" / "deeper" / "a.py"
    with pytest.raises(OSError):
        write_all([(first, "a = 1\n"), (tmp_path / "blocker" / "b.py", "b = 1\n")])
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_cli_writes_nothing_when_a_later_target_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every target now computes every spec it accepts: a refusal is made up for the test
    def refuse(self: PyTorchBackend, model: Model) -> list[Problem]:
        return [errors.Unsupported("pytorch: refused for this test", model.layers[0].pos)]

    monkeypatch.setattr(PyTorchBackend, "unsupported", refuse)
    spec = tmp_path / "s.dl"
    spec.write_text("model m { input x: float32[5, 4]\n gru(3)\n dense(2)\n}\n")
    out = tmp_path / "out"
    assert cli.main(["compile", str(spec), "--target", "keras,pytorch", "--out-dir", str(out)]) == 1
    assert "pytorch: refused for this test" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compile", "{spec}", "--out-dir", "{file}"], "exists and is not a directory"),
        (["compile", "{spec}", "-o", "{dir}"], "is a directory"),
        (["compile", "{spec}", "--target", ","], "no target named"),
        (["compile", "{spec}", "--target", ""], "no target named"),
        (["verify", "{spec}", "--targets", " , "], "no target named"),
        (["verify", "{spec}", "--targets", "keras[nope]"], "known: pytorch, keras, tensorflow"),
        (["verify", "{spec}", "--steps", "-1"], "--steps: must be >= 1"),
        (["verify", "{spec}", "--steps", "0"], "--steps: must be >= 1"),
        (["verify", "{spec}", "--json", "{dir}"], "is a directory"),
    ],
)
def test_cli_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    spec, file, folder = tmp_path / "s.dl", tmp_path / "f", tmp_path / "d"
    spec.write_text(GOOD)
    file.write_text("")
    folder.mkdir()
    args = [a.format(spec=spec, file=file, dir=folder) for a in argv]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlspec: error: ") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f", "s.dl"]
    assert not any(folder.iterdir())


def test_verify_targets_accept_runtime_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlspec import runtimes

    probed = []
    monkeypatch.setattr(runtimes, "probe", lambda rt: probed.append(rt.name) or (False, "absent"))
    spec = tmp_path / "s.dl"
    spec.write_text(GOOD)
    # a runtime name is a target list, not a usage error: verify goes on to probe that runtime
    assert cli.main(["verify", str(spec), "--targets", "keras[jax], pytorch"]) == 1
    assert probed == ["keras[jax]"]
    assert "runtime keras[jax] is not available: absent" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["d" * 300, "d" * 100 + "/" + "e" * 300])
def test_cli_paths_too_long_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    spec = tmp_path / "s.dl"
    spec.write_text(GOOD)
    assert cli.main(["compile", str(spec), "--out-dir", str(tmp_path / name)]) == 1
    assert cli.main(["compile", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("dlspec: error: ") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.dl"]
