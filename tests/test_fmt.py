"""`dlspec fmt`: canonical layout, comments kept, idempotent, the same model, --check and --diff."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dlspec.cli import main
from dlspec.codegen.compile import compile_model
from dlspec.errors import SpecError
from dlspec.frontend.fmt import format_source
from dlspec.frontend.load import build
from dlspec.summary import summary_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))
SPECS = sorted((ROOT / "tests" / "specs").glob("*.dl"))
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("*/*.dl"))

sys.path.insert(0, str(ROOT / "tools"))  # the fuzzer's corpus and mutations live in tools/
import fuzz  # noqa: E402
import fuzz_mutations as mutations  # noqa: E402


def _meaning(text: str, path: str) -> tuple[str, str]:
    """What a spec builds to, less its source: the summary and the PyTorch script without the
    header line that records the spec's sha256."""
    model = build(text, path).model
    script = compile_model(model, "pytorch").source
    body = "\n".join(line for line in script.splitlines() if "spec sha256" not in line)
    return summary_text(model), body


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :].rstrip() for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("path", EXAMPLES + SPECS, ids=lambda p: p.name)
def test_fmt_keeps_the_model_and_comments_and_is_idempotent(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = format_source(text, str(path))
    assert format_source(once, str(path)) == once
    assert _comments(once) == _comments(text)
    assert _meaning(once, str(path)) == _meaning(text, str(path))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fmt_of_fixtures_parses_again_and_is_idempotent(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        once = format_source(text, str(path))
    except SpecError:
        return  # a syntax-error fixture
    assert format_source(once, str(path)) == once
    assert _comments(once) == _comments(text)


def test_fmt_over_the_fuzz_corpus() -> None:
    """Mutated specs (the fuzzer's seeded cases): whatever parses formats to a fixed point, and
    whatever builds builds to the same model once formatted."""
    corpus = mutations.load_corpus(ROOT)
    built = 0
    for index in range(60):
        case = fuzz.make_case(11, index, corpus)
        try:
            text = case.data.decode("utf-8")
            once = format_source(text)
        except (UnicodeDecodeError, SpecError):
            continue
        assert format_source(once) == once, case.base
        try:
            meaning = _meaning(text, "case.dl")
        except SpecError:
            continue
        except Exception:  # noqa: BLE001 - the fuzzer's business, not the formatter's
            continue
        assert _meaning(once, "case.dl") == meaning, case.base
        built += 1
    assert built > 8


MESSY = """\
# head comment
defaults=keras   # trailing
model   m{input x:float32[4,]   dense(8)->relu dense( 2 , )
  # inside the body


  [relu_1]->out:dense(1)   # named
output out }
# between
train{loss=mse
optimizer=sgd( lr = 0.1 ) batch=2}
"""

CANONICAL = """\
# head comment
defaults = keras  # trailing

model m {
    input x: float32[4]
    dense(8) -> relu
    dense(2)
    # inside the body

    [relu_1] -> out: dense(1)  # named
    output out
}

# between
train {
    loss      = mse
    optimizer = sgd(lr=0.1)
    batch     = 2
}
"""


def test_fmt_layout() -> None:
    assert format_source(MESSY) == CANONICAL
    assert format_source(CANONICAL) == CANONICAL


def test_comment_inside_a_statement_ends_its_line() -> None:
    text = "model m {\n    input x: float32[4]\n    dense(8,  # width\n      init=zeros)\n}\n"
    once = format_source(text)
    assert (
        once
        == "model m {\n    input x: float32[4]\n    dense(8,  # width\n        init=zeros)\n}\n"
    )
    assert format_source(once) == once


def test_every_example_is_formatted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", "--check", *map(str, EXAMPLES)]) == 0


def test_check_diff_and_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "m.dl"
    spec.write_text(MESSY, encoding="utf-8")
    spec.chmod(0o640)
    assert main(["fmt", "--check", str(spec)]) == 1
    assert "would reformat" in capsys.readouterr().err
    assert spec.read_text(encoding="utf-8") == MESSY
    assert main(["fmt", "--diff", str(spec)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("---") and "+    dense(2)" in out
    assert spec.read_text(encoding="utf-8") == MESSY
    assert main(["fmt", str(spec)]) == 0
    assert spec.read_text(encoding="utf-8") == CANONICAL
    assert spec.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["m.dl"]  # no temporary file left
    assert main(["fmt", "--check", str(spec)]) == 0


def test_syntax_error_is_reported_and_file_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.dl"
    text = "model m {\n    input x: float32[4]\n    dense(8) $\n}\n"
    bad.write_text(text, encoding="utf-8")
    good = tmp_path / "good.dl"
    good.write_text(MESSY, encoding="utf-8")
    assert main(["fmt", str(bad), str(good)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:14: error: unexpected character '$'" in err
    assert "    dense(8) $\n" in err and "^" in err
    assert bad.read_text(encoding="utf-8") == text
    assert good.read_text(encoding="utf-8") == CANONICAL  # the other files are still formatted
