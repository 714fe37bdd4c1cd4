"""`dlspec graph` through graphviz's dot: every example as SVG, one as PNG, the README's picture.

They need dot (`make runtimes` builds .runtimes/graphviz): without it they skip printing why (the
failed build's reason), or fail where DLSPEC_REQUIRE_RUNTIMES is set."""

from __future__ import annotations

import os
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from built_runtimes import REQUIRE
from example_specs import EXAMPLES, ROOT

from dlspec import graph
from dlspec.cli import main
from dlspec.frontend.load import build_file

SVG = "{http://www.w3.org/2000/svg}"
PICTURE = ROOT / "docs" / "images" / "daquar_vqa.svg"


@pytest.fixture(scope="module")
def dot() -> str:
    """The dot `dlspec graph` runs here, or skip (fail under DLSPEC_REQUIRE_RUNTIMES) saying why."""
    home = graph.runtimes_home()  # where the CLI looks: the runtimes config's folder
    found = graph.find_dot(home)
    ok, info = graph.dot_version(found) if found else (False, graph.missing_dot_reason(home))
    if not ok:
        why = f"graphviz not runnable here: {info}"
        if os.environ.get(REQUIRE):
            pytest.fail(f"{why} ({REQUIRE} is set)")
        pytest.skip(why)
    assert found is not None
    return found


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _groups(svg: ET.Element, kind: str) -> list[str]:
    """The titles of the SVG's node (or edge) groups: a node's name, an edge's `a->b`."""
    return [g.findtext(f"{SVG}title") or "" for g in svg.iter(f"{SVG}g") if g.get("class") == kind]


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_to_svg(spec: Path, dot: str, tmp_path: Path) -> None:
    model = build_file(str(spec), None).model
    out = tmp_path / f"{spec.stem}.svg"
    assert main(["graph", str(spec), "-o", str(out)]) == 0
    svg = ET.parse(out).getroot()
    assert svg.tag == f"{SVG}svg"
    names = [i.name for i in model.inputs] + [ly.name for ly in model.layers]
    assert sorted(_groups(svg, "node")) == sorted(names)
    reads = [f"{src}->{ly.name}" for ly in model.layers for src in ly.inputs]
    assert sorted(_groups(svg, "edge")) == sorted(reads)
    text = out.read_text(encoding="utf-8")
    assert f"params: {model.layers[-1].param_count:,}" in text


def test_png_has_the_signature_and_a_size(dot: str, tmp_path: Path) -> None:
    out = tmp_path / "m.png"
    assert main(["graph", "examples/daquar_vqa.dl", "-o", str(out), "--rankdir", "LR"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > height > 100  # left to right: wider than tall


def test_the_readme_picture_is_current(dot: str) -> None:
    """docs/images/daquar_vqa.svg is what `make graphs` draws with the built runtime (another
    dot, with other fonts, lays text out differently: then only the nodes are compared)."""
    drawn = graph.render(
        graph.dot_source(build_file(str(ROOT / "examples/daquar_vqa.dl"), None).model), "svg", dot
    )
    committed = PICTURE.read_bytes()
    if Path(dot) == ROOT / graph.BUILT_DOT:
        assert drawn == committed, "docs/images/daquar_vqa.svg is stale: run make graphs"
    else:
        ours = ET.fromstring(drawn)
        theirs = ET.fromstring(committed)
        assert _groups(ours, "node") == _groups(theirs, "node")


def test_the_built_dot_loads_only_the_trees_libraries(dot: str) -> None:
    """The wrapper runs the tree's loader, so dot and its plugins load no host library (a host
    that is not the Debian release the packages came from would otherwise mix two libcs)."""
    if Path(dot) != ROOT / graph.BUILT_DOT:
        pytest.skip(f"dot here is {dot}, not the built runtime")
    tree = str((ROOT / graph.BUILT_DOT).parent.resolve() / "tree")
    done = subprocess.run(
        [dot, "-Tpng", "-o", os.devnull],
        input=b"digraph { a -> b }",
        capture_output=True,
        env={**os.environ, "LD_DEBUG": "libs"},
        timeout=60,
    )
    assert done.returncode == 0
    by_pid: dict[str, list[str]] = {}
    for line in done.stderr.decode().splitlines():
        if "calling init: " in line:
            pid, path = line.split("calling init: ")
            by_pid.setdefault(pid.strip(" \t:"), []).append(os.path.realpath(path))
    # the wrapper's shell, then (exec, same process) the loader that runs dot, then dot's libraries
    (inits,) = [paths for paths in by_pid.values() if any(p.startswith(tree) for p in paths)]
    loaders = [i for i, path in enumerate(inits) if Path(path).name.startswith("ld-linux")]
    ours = inits[loaders[-1] :]
    assert len(ours) > 20 and all(path.startswith(tree) for path in ours), ours


def test_the_built_fonts_conf_names_no_absolute_folder(dot: str) -> None:
    """fontconfig finds the tree's fonts wherever the tree is: its folders are relative to the
    file (a runtime built at a path that later went away drew text with made-up widths)."""
    if Path(dot) != ROOT / graph.BUILT_DOT:
        pytest.skip(f"dot here is {dot}, not the built runtime")
    conf = (ROOT / graph.BUILT_DOT).parent / "tree" / "etc" / "dlspec-fonts" / "fonts.conf"
    folders = ET.parse(conf).getroot()
    assert {f.tag for f in folders} == {"dir", "cachedir"}
    assert all(f.get("prefix") == "relative" and not f.text.startswith("/") for f in folders)
