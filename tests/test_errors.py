"""Bad specs under tests/fixtures/errors: every expected problem, its kind, line and column.

Each fixture starts with one or more lines `# expect: Kind LINE:COL [message fragment]`, one per
problem the front end must report (in position order, and nothing else).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlspec import errors
from dlspec.cli import main
from dlspec.errors import Pos, SpecError, SyntaxProblem, UnknownName, format_problem
from dlspec.frontend.load import build
from dlspec.frontend.parse import parse

FIXTURES = Path(__file__).parent / "fixtures" / "errors"
SPECS = sorted(FIXTURES.glob("*.dl"))
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_mlp.dl"
EXPECT = re.compile(r"# expect: (?P<kind>\w+) (?P<line>\d+):(?P<col>\d+)(?: (?P<text>.*))?$")


@dataclass(frozen=True)
class Expected:
    """One `# expect:` line."""

    kind: str
    line: int
    col: int
    text: str


def expectations(path: Path) -> list[Expected]:
    """The `# expect:` lines at the top of a fixture."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = EXPECT.match(line)
        if not match:
            break
        found.append(
            Expected(
                match["kind"], int(match["line"]), int(match["col"]), (match["text"] or "").strip()
            )
        )
    return found


def problems_of(path: Path) -> list[errors.Problem]:
    """The problems building this fixture raises."""
    with pytest.raises(SpecError) as info:
        build(path.read_text(encoding="utf-8"), str(path))
    return info.value.problems


def test_there_are_enough_fixtures() -> None:
    assert len(SPECS) >= 20


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_fixture_states_its_expectation_first(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert EXPECT.match(first), f"{path.name}: first line must be `# expect: Kind LINE:COL`"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_fixture_reports_exactly_the_expected_problems(path: Path) -> None:
    expected = expectations(path)
    problems = problems_of(path)
    got = [(p.kind, p.pos.line, p.pos.col) for p in problems]
    assert got == [(e.kind, e.line, e.col) for e in expected]
    for want, problem in zip(expected, problems, strict=True):
        assert want.text in problem.message
        assert problem.severity == "error"


def test_fixtures_cover_every_error_kind() -> None:
    kinds = {e.kind for path in SPECS for e in expectations(path)}
    assert kinds >= {
        "SyntaxProblem",
        "UnknownName",
        "BadValue",
        "MissingValue",
        "DuplicateName",
        "ShapeProblem",
    }


def test_problems_are_sorted_by_position() -> None:
    unsorted = [
        UnknownName("b", Pos(3, 1, 2)),
        UnknownName("a", Pos(1, 9, 10)),
        UnknownName("c", Pos(1, 2, 3)),
    ]
    error = SpecError(unsorted, "x.dl", "")
    assert [p.message for p in error.problems] == ["c", "a", "b"]


def test_a_problem_found_twice_is_listed_once() -> None:
    found = [
        UnknownName("a", Pos(2, 1, 2)),
        UnknownName("a", Pos(2, 1, 2)),  # the same problem, found again (a block called twice)
        UnknownName("a", Pos(3, 1, 2)),
        errors.BadValue("a", Pos(2, 1, 2)),
    ]
    error = SpecError(found, "x.dl", "")
    assert [(p.kind, p.pos.line) for p in error.problems] == [
        ("UnknownName", 2),
        ("BadValue", 2),  # another kind of problem at the same place stays
        ("UnknownName", 3),
    ]


def test_every_problem_kind_is_named_after_its_class() -> None:
    for cls in (
        errors.SyntaxProblem,
        errors.UnknownName,
        errors.BadValue,
        errors.MissingValue,
        errors.DuplicateName,
        errors.ShapeProblem,
        errors.Unsupported,
        errors.LintWarning,
    ):
        assert issubclass(cls, errors.Problem)
        assert cls("m").kind == cls.__name__


def test_spec_error_is_a_dlspec_error() -> None:
    assert issubclass(SpecError, errors.DlspecError)
    assert issubclass(errors.UsageError, errors.DlspecError)


def test_syntax_errors_hide_lark() -> None:
    with pytest.raises(SpecError) as info:
        parse("model m {\n    input x: float32[3]\n    dense(3\n}\n", "x.dl")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    (problem,) = info.value.problems
    assert isinstance(problem, SyntaxProblem)
    assert (problem.pos.line, problem.pos.col) == (4, 1)
    assert problem.message == "unexpected '}'; expected ')', ','"


FORMAT_CASES = [
    # (problem position, expected caret line under "    conv2e(4, kernel=3)")
    (Pos(1, 5, 11), "        ^~~~~~"),
    (Pos(1, 12, 13), "               ^"),
    (Pos(1, 5, 5), "        ^"),
]


@pytest.mark.parametrize("pos, caret", FORMAT_CASES)
def test_format_problem_underlines_the_span(pos: Pos, caret: str) -> None:
    text = "    conv2e(4, kernel=3)\n"
    shown = format_problem(UnknownName("unknown layer", pos), "net.dl", text)
    assert shown.splitlines() == [
        f"net.dl:1:{pos.col}: error: unknown layer",
        "        conv2e(4, kernel=3)",
        caret,
    ]


def test_format_problem_without_a_source_line_prints_the_head_only() -> None:
    shown = format_problem(UnknownName("oops", Pos(7, 1, 2)), "net.dl", "one line\n")
    assert shown == "net.dl:7:1: error: oops"


# ---- the command line -------------------------------------------------------------------------


def expected_head(path: Path) -> tuple[Expected, str]:
    """The first expected problem and its source line."""
    first = expectations(path)[0]
    lines = path.read_text(encoding="utf-8").splitlines()
    return first, lines[first.line - 1]


def check_report(stderr: str, path: Path) -> None:
    """`path:line:col: error: message`, the source line and a caret under the column."""
    first, source = expected_head(path)
    lines = stderr.splitlines()
    assert lines[0].startswith(f"{path}:{first.line}:{first.col}: error: ")
    assert first.text in lines[0]
    assert lines[1] == "    " + source
    assert lines[2].index("^") == 4 + first.col - 1
    assert set(lines[2].strip()) <= {"^", "~"}
    assert "Traceback" not in stderr


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_cli_compile_reports_and_writes_nothing(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "out.py"
    assert main(["compile", str(path), "-o", str(out_file)]) == 1
    captured = capsys.readouterr()
    check_report(captured.err, path)
    assert captured.out == ""
    assert not out_file.exists()


def test_cli_out_dir_stays_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "gen"
    path = FIXTURES / "unknown_op.dl"
    assert main(["compile", str(path), "--target", "all", "--out-dir", str(out_dir)]) == 1
    check_report(capsys.readouterr().err, path)
    assert not out_dir.exists() or not any(out_dir.rglob("*"))


def test_cli_prints_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "several_value_problems.dl"
    assert main(["compile", str(path)]) == 1
    heads = [line for line in capsys.readouterr().err.splitlines() if line.startswith(str(path))]
    assert [h.split(": ")[0] for h in heads] == [
        f"{path}:{e.line}:{e.col}" for e in expectations(path)
    ]


def test_cli_entry_point_in_a_subprocess(tmp_path: Path) -> None:
    path = FIXTURES / "unknown_op.dl"
    out_file = tmp_path / "out.py"
    exe = Path(sys.executable).parent / "dlspec"
    result = subprocess.run(
        [str(exe), "compile", str(path), "-o", str(out_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    check_report(result.stderr, path)
    assert result.stdout == ""
    assert not out_file.exists()


USAGE_CASES = [
    pytest.param([], id="no-command"),
    pytest.param(["compile"], id="no-spec"),
    pytest.param(["compile", "no/such/file.dl"], id="missing-file"),
    pytest.param(["compile", str(EXAMPLE), "--defaults", "tensorflow"], id="bad-profile"),
    pytest.param(["compile", str(EXAMPLE), "--target", "fortran"], id="bad-target"),
    pytest.param(["compile", str(EXAMPLE), "-o", "a.py", "--out-dir", "gen"], id="o-and-out-dir"),
    pytest.param(["frobnicate", str(EXAMPLE)], id="bad-command"),
]


@pytest.mark.parametrize("argv", USAGE_CASES)
def test_cli_usage_errors_exit_2(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlspec: error: ")
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())
