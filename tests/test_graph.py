"""`dlspec graph`'s DOT text (no graphviz needed) and the command's files and errors."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from example_specs import EXAMPLES, ROOT

from dlspec import doctor
from dlspec.cli import main
from dlspec.frontend.load import build_file
from dlspec.graph import dot_source, format_of, key_attributes, quote
from dlspec.ir.model import Model
from dlspec.runtimes import Config

NODE = re.compile(r'^  "((?:[^"\\]|\\.)*)" \[label="((?:[^"\\]|\\.)*)"', re.M)
EDGE = re.compile(r'^  "((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)";$', re.M)
# two inputs, a merge (add) of a layer and an input (the IR can hold several outputs; the passes
# accept one today, so the several-outputs test sets them on the built model)
BRANCHED = """model branched {
    input a: float32[4]
    input b: float32[4]
    [a] -> dense(4) -> x: relu
    [x, b] -> s: add -> t: relu -> d: dense(2)
    output d
}
"""


def _model(path: Path) -> Model:
    return build_file(str(path), None).model


def _nodes(text: str) -> dict[str, str]:
    return {name: label.replace("\\n", "\n") for name, label in NODE.findall(text)}


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture
def branched(tmp_path: Path) -> Path:
    spec = tmp_path / "branched.dl"
    spec.write_text(BRANCHED, encoding="utf-8")
    return spec


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_has_a_node_per_input_and_layer_and_an_edge_per_read(spec: Path) -> None:
    model = _model(spec)
    text = dot_source(model)
    nodes = _nodes(text)
    assert list(nodes) == [i.name for i in model.inputs] + [ly.name for ly in model.layers]
    for inp in model.inputs:
        assert (
            nodes[inp.name]
            == f"{inp.name}: input {inp.dtype}\n(N, " + ", ".join(str(d) for d in inp.shape) + ")"
        )
    for layer in model.layers:
        label = nodes[layer.name]
        assert label.startswith(f"{layer.name}: {layer.op}")
        out = "(N, " + ", ".join(str(d) for d in layer.out_shape) + ")"
        assert f"-> {out}\n" in label
        assert f"params: {layer.param_count:,}" in label
    edges = EDGE.findall(text)
    assert edges == [(src, ly.name) for ly in model.layers for src in ly.inputs]
    assert sum(layer.param_count for layer in model.layers) == model.param_count
    assert f"{model.param_count:,} parameters" in text.splitlines()[1]


def test_the_text_is_deterministic() -> None:
    spec = ROOT / "examples" / "resnet50.dl"
    first = dot_source(_model(spec))
    assert dot_source(_model(spec)) == first
    assert dot_source(_model(spec), "LR") == first.replace("rankdir=TB", "rankdir=LR")


def test_a_merge_has_an_edge_per_operand_and_every_input_shows() -> None:
    model = _model(ROOT / "examples" / "daquar_vqa.dl")
    text = dot_source(model)
    edges = EDGE.findall(text)
    assert [src for src, dst in edges if dst == "concat_1"] == ["encoded_question", "encoded_image"]
    nodes = _nodes(text)
    assert nodes["image"] == "image: input float32\n(N, 3, 50, 50)"
    assert nodes["question"] == "question: input int32\n(N, 100)"
    assert "(N, 256) + (N, 2304) -> (N, 2560)" in nodes["concat_1"]
    assert "filters=64, kernel=3x3, padding=1x1" in nodes["conv2d_1"]
    assert nodes["answer"].endswith("params: 3,654,547\noutput")


def test_resnet_adds_read_two_tensors() -> None:
    model = _model(ROOT / "examples" / "resnet50.dl")
    edges = EDGE.findall(dot_source(model))
    adds = [ly.name for ly in model.layers if ly.op == "add"]
    assert len(adds) == 16  # one per bottleneck block
    for name in adds:
        assert len([1 for _, dst in edges if dst == name]) == 2


def test_several_inputs_and_outputs(branched: Path) -> None:
    model = _model(branched)
    assert _nodes(dot_source(model))["d"].endswith("\noutput")
    text = dot_source(replace(model, outputs=("d", "s")))
    nodes = _nodes(text)
    assert list(nodes)[:2] == ["a", "b"]
    assert ("b", "s") in EDGE.findall(text) and ("x", "s") in EDGE.findall(text)
    assert nodes["d"].endswith("\noutput 1") and nodes["s"].endswith("\noutput 2")
    assert "(N, 4) + (N, 4) -> (N, 4)" in nodes["s"]
    assert "output" not in nodes["t"]


def test_quote_escapes_backslashes_quotes_and_newlines() -> None:
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert quote("plain") == '"plain"'


def test_key_attributes_are_the_stated_ones_in_short_form() -> None:
    model = _model(ROOT / "examples" / "mnist_cnn.dl")
    conv = next(ly for ly in model.layers if ly.op == "conv2d")
    shown = key_attributes(conv)
    assert shown.startswith("filters=") and "init=" not in shown


def test_format_from_suffix_or_flag() -> None:
    assert format_of("m.SVG", None) == "svg"
    assert format_of("m.png", None) == "png"
    assert format_of("m.gv", None) == "dot"
    assert format_of("m.img", "png") == "png"
    with pytest.raises(Exception, match="name it .svg, .png or .dot"):
        format_of("m.txt", None)


def test_cli_writes_dot_without_graphviz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_dot(tmp_path, monkeypatch)
    out = tmp_path / "m.dot"
    assert main(["graph", "examples/daquar_vqa.dl", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == dot_source(_model(ROOT / "examples/daquar_vqa.dl"))
    assert out.stat().st_mode & 0o044 == 0o044  # readable like any new file, not the stage's 0600
    assert not list(tmp_path.glob(".*.tmp"))


def _no_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No dot anywhere: an empty PATH, no DLSPEC_DOT, runtimes looked for under tmp_path."""
    config = tmp_path / "dlspec-runtimes.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("DLSPEC_RUNTIMES", str(config))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("DLSPEC_DOT", raising=False)


def test_cli_without_dot_fails_in_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_dot(tmp_path, monkeypatch)
    (tmp_path / ".runtimes").mkdir()
    (tmp_path / ".runtimes" / "graphviz.unavailable").write_text("apt-get download failed\n")
    out = tmp_path / "m.svg"
    assert main(["graph", "examples/daquar_vqa.dl", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("dlspec: error: graphviz's dot not found")
    assert "(the last build failed: apt-get download failed)" in err[0]
    assert "make runtimes" in err[0] and "-o FILE.dot" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".runtimes", "dlspec-runtimes.toml"]


def test_cli_bad_spec_is_a_diagnostic_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "bad.dl"
    spec.write_text(BRANCHED.replace("dense(4)", "dense(4, nonsense=1)"), encoding="utf-8")
    out = tmp_path / "m.dot"
    assert main(["graph", str(spec), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert re.search(r"bad\.dl:4:\d+: ", err), err
    assert "^" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_unknown_suffix_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "examples/mnist_mlp.dl", "-o", str(tmp_path / "m.txt")]) == 1
    assert "name it .svg, .png or .dot, or pass --format" in capsys.readouterr().err
    assert (
        main(["graph", "examples/mnist_mlp.dl", "-o", str(tmp_path / "m.txt"), "--format", "gif"])
        == 2
    )
    assert list(tmp_path.iterdir()) == []


def test_doctor_says_where_dot_is_or_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_dot(tmp_path, monkeypatch)
    config = Config(tmp_path / "dlspec-runtimes.toml", {}, {})
    line = doctor.graphviz_line(config)
    assert line.startswith("graphviz (dlspec graph -o FILE.svg|png): graphviz's dot not found;")
    assert "fix: make runtimes" in line
    fake = tmp_path / ".runtimes" / "graphviz" / "dot"  # a dot that prints a version, as dot -V
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'dot - graphviz version 9.9' >&2\n", encoding="utf-8")
    fake.chmod(0o755)
    line = doctor.graphviz_line(config)
    assert line.endswith("graphviz/dot: dot - graphviz version 9.9"), line


def test_doctor_quiet_names_graphviz_only_when_dot_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_dot(tmp_path, monkeypatch)
    config = Config(tmp_path / "dlspec-runtimes.toml", {}, {})
    runnable = lambda rt: (True, "9.9")  # noqa: E731  (every target's runtime imports)
    out = io.StringIO()
    doctor.print_report(out, runnable, config, quiet=True)
    assert out.getvalue().startswith("graphviz (dlspec graph -o FILE.svg|png): graphviz's dot")
    fake = tmp_path / ".runtimes" / "graphviz" / "dot"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'dot - graphviz version 9.9' >&2\n", encoding="utf-8")
    fake.chmod(0o755)
    out = io.StringIO()
    doctor.print_report(out, runnable, config, quiet=True)
    assert out.getvalue() == ""
    out = io.StringIO()
    doctor.print_report(out, runnable, config)  # not a terminal: the plain report
    assert out.getvalue().rstrip().endswith("graphviz/dot: dot - graphviz version 9.9")
