"""The MXNet target: what it writes (framework-free) and that every example and edge spec verifies
on the built MXNet runtime, the edge specs in float64 too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from built_runtimes import ready, run_json
from example_specs import TRAINED

from dlspec.codegen.compile import compile_model
from dlspec.codegen.contract import TARGET_STDLIB
from dlspec.frontend.load import build_file
from dlspec.verify.run import matrix, verify_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))
SPECS = sorted((ROOT / "tests" / "specs").glob("*.dl"))
STDLIB = {"argparse", "contextlib", "gzip", "json", "math", "os", "pickle", "struct", "sys", "time"}
STDLIB |= {"zipfile"}  # imdb.npz's object arrays, read without np.load's pickle


def _imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("path", EXAMPLES + SPECS, ids=lambda p: p.stem)
def test_every_spec_compiles_standalone(path: Path) -> None:
    """No spec is refused, and each script imports only the standard library, NumPy and MXNet."""
    source = compile_model(build_file(str(path)).model, "mxnet").source
    assert _imports(source) <= STDLIB | set(TARGET_STDLIB["mxnet"]) | {"numpy", "mxnet"}


def test_report_names_the_written_out_forms() -> None:
    pools = compile_model(build_file(str(ROOT / "tests/specs/pools_ceil.dl")).model, "mxnet")
    assert "avgpool_explicit divides each window's sum by its real and padded cells" in pools.report
    assert "def avgpool_explicit(F, x" in pools.source
    rnns = compile_model(build_file(str(ROOT / "tests/specs/rnn_bias_forms.dl")).model, "mxnet")
    assert "gru_1: reset_after=false: rnn.GRU has only the reset-after" in rnns.report
    assert "class GRUResetBefore(gluon.HybridBlock)" in rnns.source
    assert "GRUResetBefore" not in compile_model(build_file(str(EXAMPLES[0])).model, "mxnet").source


def _verify(path: Path, precision: str) -> None:
    ready("mxnet")
    model = build_file(str(path.relative_to(ROOT))).model
    checks = verify_model(model, ["mxnet"], steps=3, precision=precision)
    print(matrix(checks))
    assert checks and all(c.passed for c in checks), matrix(checks)


@pytest.mark.framework
@pytest.mark.parametrize("path", TRAINED + SPECS, ids=lambda p: p.stem)
def test_verifies(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forward, training steps, learning rates and trained weights (running statistics
    included) against the oracle, in the spec's precision (float32 unless it says)."""
    monkeypatch.chdir(ROOT)
    _verify(path, "spec")


@pytest.mark.framework
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_edge_specs_verify_in_float64(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The edge specs again in float64 (tolerance 1e-9): the written-out forms are exact."""
    monkeypatch.chdir(ROOT)
    _verify(path, "float64")


TIE_GRADIENT = """
import json
import mxnet as mx
from mxnet import autograd
x = mx.nd.array([[[[1.0, 0.0], [0.0, 1.0]]]])
x.attach_grad()
with autograd.record():
    y = mx.nd.max(x, axis=(2, 3)).sum()
y.backward()
print(json.dumps(x.grad.asnumpy().tolist()))
"""


@pytest.mark.framework
def test_max_gives_each_tied_maximum_the_whole_gradient(tmp_path: Path) -> None:
    # docs/semantics.md, global_maxpool2d: canonical splits dy over tied maxima, MXNet's max does
    # not, so exact ties are a known difference that verify's margins redraw away
    grad = run_json(ready("mxnet"), TIE_GRADIENT, {}, tmp_path)
    assert grad == [[[[1.0, 0.0], [0.0, 1.0]]]]
