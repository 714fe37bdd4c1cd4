"""The lints: known traps from the hand-written benchmarks that still compile."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from dlspec.cli import main
from dlspec.frontend.load import build, build_file
from dlspec.passes.lint import LINTS

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.dl"))


def spec(layers: list[str], input: str, train: str) -> str:
    """A spec whose first layer is on line 4."""
    body = "\n".join(f"    {line}" for line in layers)
    return f"# lint\nmodel m {{\n    input x: {input}\n{body}\n}}\ntrain {{\n{train}\n}}\n"


def warnings_of(text: str, profile: Optional[str] = None) -> list[tuple[str, int, int, str]]:
    """(kind, line, col, message) of every warning; building must succeed."""
    built = build(text, "lint.dl", profile)
    for w in built.warnings:
        assert w.severity == "warning"
    return [(w.kind, w.pos.line, w.pos.col, w.message) for w in built.warnings]


IMDB = ["embedding(20000, 16)", "gru(8)", "dense(2)"]

FIRES = [
    # layers, input, train, profile -> [(line, col, message start)]
    pytest.param(
        ["flatten", "dense(10)", "softmax"],
        "float32[1, 28, 28]",
        "data = mnist",
        None,
        [(6, 5, "softmax before softmax_cross_entropy")],
        id="softmax-layer",
    ),
    pytest.param(
        ["dense(10, activation=softmax)"],
        "float32[784]",
        "loss = softmax_cross_entropy",
        None,
        [(4, 26, "softmax before softmax_cross_entropy")],
        id="softmax-activation",
    ),
    pytest.param(
        ["dense(3, activation=sigmoid)"],
        "float32[8]",
        "loss = binary_cross_entropy",
        None,
        [(4, 25, "sigmoid before binary_cross_entropy, which takes logits: sigmoid is applied")],
        id="sigmoid-before-binary-cross-entropy",
    ),
    pytest.param(
        ["dense(10, activation=tanh)"],
        "float32[784]",
        "data = mnist",
        None,
        [
            (
                4,
                26,
                "tanh before softmax_cross_entropy, which takes logits: they stay in (-1, 1)",
            )
        ],
        id="tanh-on-the-logits",
    ),
    pytest.param(
        ["dense(3) -> softmax"],
        "float32[8]",
        "loss = binary_cross_entropy",
        None,
        [
            (
                4,
                17,
                "softmax before binary_cross_entropy, which takes logits: they stay in (0, 1)",
            )
        ],
        id="softmax-before-binary-cross-entropy",
    ),
    pytest.param(
        ["dense(10) -> relu"],
        "float32[784]",
        "data = mnist",
        None,
        [(4, 18, "relu before softmax_cross_entropy, which takes logits: no logit can go below")],
        id="relu-on-the-logits",
    ),
    pytest.param(
        ["dense(3)", "relu"],
        "float32[8]",
        "loss = binary_cross_entropy",
        None,
        [
            (
                5,
                5,
                "relu before binary_cross_entropy, which takes logits: no logit can go below 0, so",
            )
        ],
        id="relu-on-binary-logits",
    ),
    pytest.param(
        ["conv2d(4, 3)", "dense(5)", "flatten", "dense(2)"],
        "float32[3, 8, 8]",
        "",
        None,
        [(5, 5, "dense over a (C, H, W) map [4, 6, 6] works along each row (its last axis, W)")],
        id="dense-over-a-map",
    ),
    pytest.param(
        ["time_distributed(conv2d(4, 3))", "time_distributed(dense(5))", "flatten", "dense(2)"],
        "float32[2, 3, 8, 8]",
        "",
        None,
        [(5, 5, "dense over a (C, H, W) map [4, 6, 6]")],
        id="dense-over-each-step-map",
    ),
    pytest.param(
        IMDB,
        "int32[80]",
        "data = imdb(pad=post)",
        None,
        [(5, 5, "gru_1 reads the last time step but imdb sequences are post-padded")],
        id="gru-post-pad",
    ),
    pytest.param(
        ["embedding(20000, 16)", "lstm(8, readout=last)", "dense(2)"],
        "int32[80]",
        "data = imdb(vocab=20000, pad=post)",
        "pytorch",
        [(5, 5, "lstm_1 reads the last time step")],
        id="lstm-post-pad",
    ),
    pytest.param(
        ["embedding(20000, 16)", "gru(8, readout=sequence)", "gru(4)", "dense(2)"],
        "int32[80]",
        "data = imdb(pad=post)",
        None,
        [(6, 5, "gru_2 reads the last time step")],
        id="stacked-post-pad",
    ),
    pytest.param(
        ["dense(10)", "dropout(0.5)"],
        "float32[784]",
        "data = mnist",
        None,
        [(5, 5, "dropout is the last layer")],
        id="dropout-last",
    ),
    pytest.param(
        ["dense(10) -> dropout(0.5)"],
        "float32[784]",
        "",
        None,
        [(4, 18, "dropout is the last layer")],
        id="dropout-last-in-chain",
    ),
    pytest.param(
        ["embedding(20000, 16)", "gru(8)", "dense(2)", "dropout(0.1)"],
        "int32[80]",
        "data = imdb(pad=post)",
        None,
        [(5, 5, "gru_1 reads the last time step"), (7, 5, "dropout is the last layer")],
        id="two-lints-sorted",
    ),
    pytest.param(
        ["dense(10)"],
        "float32[784]",
        "batch = 64\nbatchnorm_sync = true",
        None,
        [(8, 1, "batchnorm_sync = true, but the model has no batchnorm layer")],
        id="batchnorm-sync-without-batchnorm",
    ),
    pytest.param(
        ["a: dense(8) -> relu", "dense(8) -> tanh", "[a, tanh_1] -> add", "dense(2)"],
        "float32[8]",
        "",
        None,
        [(4, 5, "label 'a' names the dense, not the relu after it: 'a' at 6:6 reads the dense's")],
        id="label-before-its-chain",
    ),
    pytest.param(
        ["a: dense(8, activation=relu)", "dense(8)", "[a, dense_1] -> add", "dense(2)"],
        "float32[8]",
        "",
        None,
        [(4, 5, "label 'a' names the dense, not the relu after it: 'a' at 6:6")],
        id="label-before-its-activation",
    ),
    pytest.param(
        ["dense(8) -> s: relu -> dropout(0.1)", "dense(8)", "[s, dense_2] -> add", "dense(2)"],
        "float32[8]",
        "",
        None,
        [(4, 17, "label 's' names the relu, not the dropout after it")],
        id="label-mid-chain",
    ),
    pytest.param(
        ["a: time_distributed(dense(8, activation=relu))", "dense(8)", "[a, dense_1] -> add"]
        + ["flatten", "dense(2)"],
        "float32[5, 8]",
        "",
        None,
        [
            (
                4,
                5,
                "label 'a' names the time_distributed(dense), not the time_distributed(relu) "
                "after it: 'a' at 6:6 reads the time_distributed(dense)'s output; to read the "
                "time_distributed(relu), label it: `time_distributed(dense(...)) -> a: "
                "time_distributed(relu)`",
            )
        ],
        id="label-before-a-wrapped-activation",
    ),
]


@pytest.mark.parametrize("layers, input, train, profile, expected", FIRES)
def test_lint_fires(
    layers: list[str], input: str, train: str, profile: Optional[str], expected: list
) -> None:
    got = warnings_of(spec(layers, input, train), profile)
    assert [(kind, line, col) for kind, line, col, _ in got] == [
        ("LintWarning", line, col) for line, col, _ in expected
    ]
    for (_, _, _, message), (_, _, start) in zip(got, expected, strict=True):
        assert message.startswith(start)


QUIET = [
    pytest.param(["flatten", "dense(10)"], "float32[1, 28, 28]", "data = mnist", None, id="logits"),
    pytest.param(["dense(10)", "softmax"], "float32[4]", "loss = mse", None, id="softmax-mse"),
    pytest.param(["softmax", "dense(10)"], "float32[4]", "", None, id="softmax-not-last"),
    pytest.param(["dense(3)", "sigmoid"], "float32[4]", "loss = mse", None, id="sigmoid-mse"),
    pytest.param(
        ["dense(3)", "flatten", "dense(2)"], "float32[5, 4]", "", None, id="dense-per-step"
    ),
    pytest.param(
        ["conv2d(4, 3)", "flatten", "dense(2)"], "float32[3, 8, 8]", "", None, id="dense-flattened"
    ),
    pytest.param(["dense(3) -> relu"], "float32[4]", "loss = mae", None, id="relu-mae"),
    pytest.param(
        ["dense(3) -> sigmoid -> dense(3)"],
        "float32[4]",
        "loss = binary_cross_entropy",
        None,
        id="sigmoid-inside",
    ),
    pytest.param(IMDB, "int32[80]", "data = imdb(pad=pre)", None, id="pre-pad"),
    pytest.param(IMDB, "int32[80]", "data = imdb", None, id="default-pad"),
    pytest.param(
        ["embedding(20000, 16)", "gru(8, readout=sequence)", "flatten", "dense(2)"],
        "int32[80]",
        "data = imdb(pad=post)",
        None,
        id="post-pad-sequence",
    ),
    pytest.param(
        ["embedding(20000, 16)", "gru(8)", "flatten", "dense(2)"],
        "int32[80]",
        "data = imdb(pad=post)",
        "pytorch",
        id="post-pad-pytorch-readout",
    ),
    pytest.param(IMDB, "int32[80]", "", None, id="synthetic-tokens"),
    pytest.param(["dropout(0.5)", "dense(10)"], "float32[784]", "", None, id="dropout-inside"),
    pytest.param(
        ["dense(10, bias=false)", "batchnorm", "dense(2)"],
        "float32[784]",
        "batchnorm_sync = true",
        None,
        id="batchnorm-sync",
    ),
    pytest.param(
        ["c: dense(8) -> r: relu", "dense(8)", "[c, dense_1] -> add", "dense(2)"],
        "float32[8]",
        "",
        None,
        id="label-and-the-next-layer-labelled",
    ),
    pytest.param(["a: dense(8) -> relu", "dense(2)"], "float32[8]", "", None, id="label-unread"),
    pytest.param(
        ["a: dense(8)", "relu", "dense(8)", "[a, dense_1] -> add", "dense(2)"],
        "float32[8]",
        "",
        None,
        id="label-on-its-own-line",
    ),
    pytest.param(
        ["dense(8) -> a: relu", "dense(8)", "[a, dense_2] -> add", "dense(2)"],
        "float32[8]",
        "",
        None,
        id="label-on-the-chain-end",
    ),
]


@pytest.mark.parametrize("layers, input, train, profile", QUIET)
def test_lint_stays_quiet(
    layers: list[str], input: str, train: str, profile: Optional[str]
) -> None:
    assert warnings_of(spec(layers, input, train), profile) == []


BLOCK_EARLY_LABEL = """\
block unit(width) {
    input x
    s: conv2d(width, 3, padding=same) -> relu
    conv2d(width, 3, padding=same)
    [s, conv2d_1] -> add
    [s, add_1] -> multiply
}
model m {
    input image: float32[3, 8, 8]
    unit(3)
    unit(3)
    flatten
    dense(2)
}
"""


def test_an_early_label_in_a_block_warns_once_at_the_label() -> None:
    """Read twice, the block called twice: one warning at the definition, naming the first read."""
    got = warnings_of(BLOCK_EARLY_LABEL)
    message = "label 's' names the conv2d, not the relu after it: 's' at 5:6 reads the conv2d's"
    assert [(kind, line, col) for kind, line, col, _ in got] == [("LintWarning", 3, 5)]
    assert got[0][3].startswith(message)
    assert got[0][3].endswith("to read the relu, label it: `conv2d(...) -> s: relu`")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("profile", [None, "dlspec", "keras"])
def test_examples_are_lint_free(path: Path, profile: Optional[str]) -> None:
    assert build_file(str(path), profile).warnings == ()


def test_strict_makes_warnings_fail_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lint.dl"
    path.write_text(spec(["dense(10)", "dropout(0.5)"], "float32[784]", ""), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["compile", str(path), "--strict", "--target", "all", "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(
        "warning: dropout is the last layer: it perturbs the logits in training only"
    )
    assert err[-1] == f"dlspec: error: {path}: 1 lint warning (--strict)"
    assert not out.exists()
    assert main(["summary", str(path), "--strict"]) == 1
    assert main(["compile", str(EXAMPLES[0]), "--strict", "--out-dir", str(out)]) == 0
    assert out.exists()


def test_cli_prints_warnings_and_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lint.dl"
    path.write_text(spec(["dense(10)", "dropout(0.5)"], "float32[784]", ""), encoding="utf-8")
    assert main(["summary", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0]
        == f"{path}:5:5: warning: dropout is the last layer: it perturbs the logits in training only"
    )
    assert err[1] == "        dropout(0.5)"
    assert err[2] == "        ^~~~~~~"


def test_the_language_page_lists_every_lint() -> None:
    """docs/language.md's Errors section has one bullet per lint (LINTS, in order)."""
    page = (EXAMPLES[0].parent.parent / "docs" / "language.md").read_text(encoding="utf-8")
    section = page.split("## Errors\n", 1)[1].split("\n## ", 1)[0]
    bullets = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(bullets) == len(LINTS), [check.__name__ for check in LINTS]
