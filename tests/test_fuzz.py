"""Hostile input: a bounded run of the seeded mutation fuzzer, hostile paths and destinations."""

from __future__ import annotations

import ast
import os
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pytest

from dlspec.backends import TARGETS

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "mnist_mlp.dl"
FUZZ_SECONDS = float(os.environ.get("DLSPEC_FUZZ_SECONDS", "45"))
FUZZ_SEED = int(os.environ.get("DLSPEC_FUZZ_SEED", "20260"))
CASE_SECONDS = float(os.environ.get("DLSPEC_FUZZ_CASE_SECONDS", "30"))


sys.path.insert(0, str(ROOT / "tools"))  # the fuzzer and its modules live in tools/
import fuzz  # noqa: E402
import fuzz_mutations as mutations  # noqa: E402
import fuzz_oracle as oracle  # noqa: E402

# ---- (a) the fuzzer, bounded -------------------------------------------------------------


def test_fuzz_campaign_finds_nothing(tmp_path: Path) -> None:
    """The seeded campaign for DLSPEC_FUZZ_SECONDS (45 s); failing inputs are kept for replay.

    A case that runs past DLSPEC_FUZZ_CASE_SECONDS (30 s) per target it compiles is a failure:
    a hang."""
    folder = tmp_path / "fuzz-failures"
    print(f"fuzz seed {FUZZ_SEED} for {FUZZ_SECONDS:g} s (DLSPEC_FUZZ_SEED/DLSPEC_FUZZ_SECONDS)")
    stats = fuzz.fuzz_serial(FUZZ_SEED, FUZZ_SECONDS, folder, CASE_SECONDS)
    report = fuzz.summary(stats, folder)
    print(report)
    assert stats.cases > 0
    assert not stats.failures, report


# ---- (b) hostile spec paths --------------------------------------------------------------

HOSTILE_PARTS: dict[str, bytes] = {
    "newline": b"a\nb",
    "cr": b"a\rb",
    "crlf": b"a\r\nb",
    "u2028": "a\u2028b".encode(),
    "nel": "a\x85b".encode(),
    "hash": b"a#b",
    "quotes": b"a'b\"c",
    "backslash": b"a\\b",
    "triple-quote": b'a"""b',
    "injection": b"x\nimport os; os.system('echo pwned')\n#",
    "terminal-escape": b"a\x1b[2Jb",
    "tab": b"a\tb",
    "jinja": b"{{ x }}{% raw %}",
    "long": b"a" * 247,
    "non-utf8": b"a\xff\xfeb",
    "overlong": b"a\xc0\xafb",
}


@lru_cache(maxsize=1)
def _benign_dumps() -> dict[str, str]:
    """ast.dump of each target's script for the MLP compiled from a benign file name."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spec.dl").write_bytes(MLP.read_bytes())
        outcome = oracle.run_cli(_argv("spec.dl", "out"), cwd=Path(tmp))
        assert outcome.rc == 0, outcome.stderr
        scripts = _scripts(Path(tmp) / "out")
    return {target: ast.dump(ast.parse(src)) for target, src in scripts.items()}


def _argv(spec: str, out_dir: str, target: str = "all") -> list[str]:
    return ["compile", spec, "--target", target, "--out-dir", out_dir]


def _scripts(out_dir: Path) -> dict[str, str]:
    """target -> script text, for every file written under out_dir."""
    files = oracle.files_under(out_dir)
    return {p.relative_to(out_dir).parts[0]: p.read_bytes().decode("utf-8") for p in files}


def _control_chars(text: str) -> list[str]:
    return sorted({repr(c) for c in text if c not in "\n" and not c.isprintable()})


def _clear_failure(outcome: oracle.Outcome) -> list[str]:
    """rc 1 or 2, no traceback, a message, no raw control character a terminal would obey."""
    problems = [f.detail for f in oracle.check_escape(outcome)]
    if outcome.rc not in (1, 2):
        problems.append(f"exit code {outcome.rc}, wanted 1 or 2")
    if not outcome.stderr.strip():
        problems.append("no message")
    if _control_chars(outcome.stderr):
        problems.append(f"control characters in stderr: {_control_chars(outcome.stderr)}")
    return problems


def _one_line_error(outcome: oracle.Outcome) -> list[str]:
    """A single `dlspec: error:` line."""
    text = outcome.stderr.rstrip("\n")
    if not text.startswith("dlspec: error:") or "\n" in text:
        return [f"wanted one `dlspec: error:` line, got {outcome.stderr[:300]!r}"]
    return []


def _place(cwd: Path, part: bytes, placement: str) -> str:
    """Create the MLP spec under a hostile file or folder name; return its relative path."""
    relative = part + b".dl" if placement == "file" else part + b"/spec.dl"
    path = os.fsdecode(relative)
    try:
        (cwd / path).parent.mkdir(parents=True, exist_ok=True)
        (cwd / path).write_bytes(MLP.read_bytes())
    except (OSError, UnicodeEncodeError) as err:
        pytest.skip(f"this file system refuses {relative!r}: {err}")
    return path


def _same_program(out_dir: Path, targets: list[str]) -> list[str]:
    """Each script is clean and is the benign script's program (the path only in comments)."""
    problems, scripts = [], _scripts(out_dir)
    if sorted(scripts) != sorted(targets):
        problems.append(f"wrote {sorted(scripts)} for {targets}")
    for target, src in scripts.items():
        problems += [f"{target}: {f.kind}: {f.detail}" for f in oracle.check_script(src)]
        if ast.dump(ast.parse(src)) != _benign_dumps().get(target):
            problems.append(f"{target}: the path changed the program, not only a comment")
    return problems


@pytest.mark.parametrize("placement", ["file", "dir"])
@pytest.mark.parametrize("name", sorted(HOSTILE_PARTS))
def test_hostile_spec_path(tmp_path: Path, name: str, placement: str) -> None:
    """A hostile spec path compiles to the same program, or fails with a clear dlspec error."""
    path = _place(tmp_path, HOSTILE_PARTS[name], placement)
    targets = list(TARGETS)
    if placement == "dir":  # one target each, in turn, to keep the suite quick
        targets = [targets[sorted(HOSTILE_PARTS).index(name) % len(targets)]]
    outcome = oracle.run_cli(_argv(path, "out", ",".join(targets)), cwd=tmp_path)
    if outcome.rc == 0:
        problems = _same_program(tmp_path / "out", targets)
        problems += [f"stderr: {c}" for c in _control_chars(outcome.stderr)]
    else:
        problems = _clear_failure(outcome) + [
            f.detail for f in oracle.check_nothing_written(tmp_path / "out")
        ]
    assert not problems, f"{path!r}: {problems}\n{outcome.stderr[-2000:]}"


# ---- (b) hostile destinations ------------------------------------------------------------


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _out_dir_is_file(tmp: Path) -> list[str]:
    (tmp / "taken").write_text("keep\n")
    return ["compile", str(MLP), "--out-dir", str(tmp / "taken")]


def _output_is_dir(tmp: Path) -> list[str]:
    (tmp / "folder").mkdir()
    return ["compile", str(MLP), "-o", str(tmp / "folder")]


def _output_under_file(tmp: Path) -> list[str]:
    (tmp / "taken").write_text("keep\n")
    return ["compile", str(MLP), "-o", str(tmp / "taken" / "x.py")]


def _out_dir_name_too_long(tmp: Path) -> list[str]:
    return ["compile", str(MLP), "--out-dir", str(tmp / ("d" * 300))]


def _out_dir_path_too_long(tmp: Path) -> list[str]:
    return ["compile", str(MLP), "--out-dir", str(tmp.joinpath(*["d" * 200] * 25))]


DESTINATIONS: dict[str, Callable[[Path], list[str]]] = {
    "out-dir-is-file": _out_dir_is_file,
    "output-is-dir": _output_is_dir,
    "output-under-file": _output_under_file,
    "out-dir-name-too-long": _out_dir_name_too_long,
    "out-dir-path-too-long": _out_dir_path_too_long,
}


@pytest.mark.parametrize("case", sorted(DESTINATIONS))
def test_hostile_destination(tmp_path: Path, case: str) -> None:
    """A destination the system refuses: one `dlspec: error:` line, exit 1 or 2, no files."""
    argv = DESTINATIONS[case](tmp_path)
    before = _tree(tmp_path)
    outcome = oracle.run_cli(argv)
    problems = _clear_failure(outcome) + _one_line_error(outcome)
    assert not problems, f"{case}: {problems}\n{outcome.stderr[-2000:]}"
    assert _tree(tmp_path) == before, "files were left behind"
    assert all(p.read_text() == "keep\n" for p in tmp_path.glob("taken") if p.is_file())


def test_model_name_too_long_for_a_file_name(tmp_path: Path) -> None:
    """A model name longer than a file name may be: a clear error, no partial files."""
    text = MLP.read_bytes().replace(b"model mnist_mlp", b"model " + b"m" * 300)
    spec = tmp_path / "long.dl"
    spec.write_bytes(text)
    outcome = oracle.run_cli(_argv(str(spec), str(tmp_path / "out")))
    problems = _clear_failure(outcome)
    positions = oracle.check_positions(outcome.stderr, str(spec), text)
    if outcome.stderr.startswith("dlspec: error:"):
        problems += _one_line_error(outcome)
    elif not outcome.stderr.startswith(f"{spec}:"):
        problems.append("neither a `dlspec: error:` line nor a positioned spec error")
    problems += [f.detail for f in positions + oracle.check_nothing_written(tmp_path / "out")]
    assert not problems, f"{problems}\n{outcome.stderr[-2000:]}"


# ---- (c) the fuzzer itself ---------------------------------------------------------------


def test_cases_are_reproducible_from_seed_and_index() -> None:
    corpus = mutations.load_corpus()
    first = [fuzz.make_case(3, i, corpus) for i in range(60)]
    assert first == [fuzz.make_case(3, i, corpus) for i in range(60)]
    assert first != [fuzz.make_case(4, i, corpus) for i in range(60)]


def test_corpus_holds_examples_specs_and_fixtures() -> None:
    names = [s.name for s in mutations.load_corpus()]
    for folder in ("examples/", "tests/specs/", "tests/fixtures/errors/"):
        assert any(n.startswith(folder) for n in names), folder


def test_every_mutator_and_target_is_reached() -> None:
    corpus = mutations.load_corpus()
    cases = [fuzz.make_case(5, i, corpus) for i in range(600)]
    assert {m for c in cases for m in c.mutations} == set(mutations.MUTATORS)
    assert {t for c in cases for t in c.targets} == set(TARGETS)
    assert any(not _is_utf8(c.data) for c in cases), "invalid UTF-8 is never produced"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _has_any(items: tuple[bytes, ...]) -> Callable[[bytes, bytes], bool]:
    return lambda before, after: any(i in after and i not in before for i in items)


def _nested(before: bytes, after: bytes) -> bool:
    runs = (b"[" * 50, b"f(" * 50, b"(" * 50, b"{" * 50, b"]" * 50, b")" * 50, b"}" * 50)
    return any(r in after for r in runs)


PRODUCES: dict[str, Callable[[bytes, bytes], bool]] = {
    "delete": lambda before, after: len(after) < len(before),
    "insert": lambda before, after: len(after) > len(before),
    "duplicate": lambda before, after: len(after) > len(before),
    "swap": lambda before, after: sorted(after) == sorted(before) and after != before,
    "splice": lambda before, after: after.count(b"\n") > before.count(b"\n"),
    "hostile_char": _has_any(mutations.HOSTILE_CHARS),
    "line_breaks": _has_any(mutations.LINE_BREAKS),
    "comment": lambda before, after: after.count(b"#") > before.count(b"#"),
    "number": _has_any(mutations.HOSTILE_NUMBERS),
    "name": _has_any(tuple(n.encode() for n in mutations.HOSTILE_NAMES)),
    "label": lambda before, after: after.count(b":") > before.count(b":"),
    "rename": _has_any(tuple(n.encode() for n in mutations.HOSTILE_NAMES)),
    "string": _has_any(mutations.HOSTILE_STRINGS),
    "nesting": _nested,
    "braces": lambda before, after: sum(after.count(c) for c in b"{}()[]")
    != sum(before.count(c) for c in b"{}()[]"),
    "repeat_layer": lambda before, after: after.count(b"\n") >= before.count(b"\n") + 999,
    "huge_attribute": _has_any((b"1000", b"100000", b"2147483648", b"9223372036854775808")),
}


@pytest.mark.parametrize("name", sorted(mutations.MUTATORS))
def test_each_mutator_produces_its_kind_of_input(name: str) -> None:
    assert set(PRODUCES) == set(mutations.MUTATORS)
    corpus = [s.data for s in mutations.load_corpus()]
    base = (ROOT / "tests" / "specs" / "stacked_rnn.dl").read_bytes()
    hits = 0
    for i in range(30):
        after = mutations.MUTATORS[name](mutations.random.Random(i), base, corpus)
        hits += PRODUCES[name](base, after)
    assert hits >= 10, f"{name} produced its kind of input {hits} times in 30"


# ---- (c) the oracle flags planted failures -----------------------------------------------

GOOD_SCRIPT = "# Generated by dlspec 0 from spec.dl. Do not edit.\nx = 1\n"


def _paths(argv: list[str]) -> tuple[Path, Path, list[str]]:
    """(spec, out dir, targets) of the oracle's command line."""
    return Path(argv[1]), Path(argv[argv.index("--out-dir") + 1]), argv[3].split(",")


def _write_scripts(argv: list[str], text: str) -> None:
    _, out, targets = _paths(argv)
    for target in targets:
        (out / target).mkdir(parents=True, exist_ok=True)
        (out / target / f"m_{target}.py").write_text(text)


def _raises(argv: list[str]) -> int:
    raise ValueError("planted")


def _partial_file(argv: list[str]) -> int:
    _write_scripts(argv, "# Generated by dlspec")
    print("dlspec: error: planted", file=sys.stderr)
    return 1


def _outside(argv: list[str]) -> int:
    print(f"{argv[1]}:99:1: error: planted", file=sys.stderr)
    return 1


def _wrong_source(argv: list[str]) -> int:
    print(f"{argv[1]}:1:1: error: planted\n    not the line\n    ^", file=sys.stderr)
    return 1


def _traceback(argv: list[str]) -> int:
    print("Traceback (most recent call last):\nValueError: planted", file=sys.stderr)
    return 1


def _utf8_wrong_line(argv: list[str]) -> int:
    print(f"{argv[1]}:1:1: error: the file is not UTF-8", file=sys.stderr)
    return 1


def _hangs(argv: list[str]) -> int:
    time.sleep(5)
    return 0


def _silent(argv: list[str]) -> int:
    return 1


def _exit_3(argv: list[str]) -> int:
    print("dlspec: error: planted", file=sys.stderr)
    return 3


def _writes(text: str) -> Callable[[list[str]], int]:
    def cli(argv: list[str]) -> int:
        _write_scripts(argv, text)
        return 0

    return cli


PLANTED: dict[str, tuple[Callable[[list[str]], int], bytes, str]] = {
    "raises": (_raises, b"model m {}\n", "exception"),
    "partial-file": (_partial_file, b"model m {}\n", "wrote-on-failure"),
    "outside": (_outside, b"model m {}\n", "position-outside"),
    "wrong-source": (_wrong_source, b"model m {}\n", "position-wrong-source"),
    "traceback": (_traceback, b"model m {}\n", "traceback-in-stderr"),
    "hangs": (_hangs, b"model m {}\n", "timeout"),
    "utf8-wrong-line": (_utf8_wrong_line, b"model m {}\n\xff\n", "non-utf8-position"),
    "silent": (_silent, b"model m {}\n", "silent-failure"),
    "exit-3": (_exit_3, b"model m {}\n", "exit-code"),
    "non-utf8-accepted": (_writes(GOOD_SCRIPT), b"model \xff {}\n", "non-utf8-accepted"),
    "unparsable": (_writes(GOOD_SCRIPT + "def (\n"), b"", "output-unparsable"),
    "not-black": (_writes(GOOD_SCRIPT + "y=[1,2]\n"), b"", "output-not-black-stable"),
    "bad-char": (_writes(GOOD_SCRIPT + "# \u2028\n"), b"", "output-bad-char"),
    "crlf": (_writes(GOOD_SCRIPT.replace("\n", "\r\n")), b"", "output-line-ending"),
    "no-header": (_writes("x = 1\n"), b"", "output-header"),
}


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_oracle_flags_a_planted_failure(planted: str) -> None:
    cli, data, kind = PLANTED[planted]
    _, findings = oracle.run_case(data, ("pytorch",), cli=cli, seconds=0.5)
    assert kind in {f.kind for f in findings}, findings


def test_oracle_passes_a_good_compile_and_a_good_error() -> None:
    """The real compiler on a valid spec, and on a spec with a plain syntax error."""
    _, findings = oracle.run_case(MLP.read_bytes(), ("pytorch",))
    assert findings == []
    outcome, findings = oracle.run_case(b"model m {\n    dense(10\n}\n", ("pytorch",))
    assert outcome.rc == 1 and findings == []
