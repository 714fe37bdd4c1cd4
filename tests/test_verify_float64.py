"""The float64 verify mode on real runtimes: tests/specs/float64_verify.dl (batch norms, ReLUs,
Adam, an embedding and a GRU), which float32 cannot follow, matches the oracle to float64
rounding; a float32 leak is caught. (tests/test_verify.py, test_tensorflow_backend.py and
test_keras_backend.py verify the spec on all five runtimes, as every tests/specs file.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlspec.codegen.compile import compile_model
from dlspec.frontend.load import build_file
from dlspec.ir.model import Model
from dlspec.runtimes import runtime
from dlspec.verify import run as V

pytestmark = pytest.mark.framework

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tests" / "specs" / "float64_verify.dl"


class Verify:
    """verify's files for the spec in one folder, its oracle, and runs of scripts against it."""

    def __init__(self, work: Path) -> None:
        self.model: Model = build_file(str(SPEC)).model
        self.work = work
        start = V.W.draw_weights(self.model, V.VERIFY_SEED)
        V.W.save_npz(work / V.WEIGHTS_FILE, start)
        self.ref, batches = V.oracle(self.model, start, 5, min_margin=V.MIN_MARGIN_FLOAT64)
        np.savez(work / V.BATCHES_FILE, **batches)

    def checks(self, name: str, precision: str, source: str = "") -> dict[str, V.Check]:
        """The checks of one run of `name`'s script (or `source`), every one against the oracle."""
        rt = runtime(name)
        source = source or compile_model(self.model, rt.target).source
        got = V.run_script(rt, source, self.work, precision=precision)
        checks = V.compare("float64_verify", name, self.model, self.ref, got, precision, True)
        print(V.matrix(checks))
        return {c.check.rsplit(" (", 1)[0]: c for c in checks}


@pytest.fixture(scope="module")
def verify(tmp_path_factory: pytest.TempPathFactory) -> Verify:
    return Verify(tmp_path_factory.mktemp("float64"))


def source(verify: Verify, name: str, old: str, new: str) -> str:
    text = compile_model(verify.model, runtime(name).target).source
    assert old in text, f"injection point not found: {old!r}"
    return text.replace(old, new)


def test_float64_follows_the_oracle_where_float32_cannot(verify: Verify) -> None:
    pytest.importorskip("torch")
    wide = verify.checks("pytorch", "float64")
    assert all(c.passed for c in wide.values())
    assert wide["forward vs oracle"].rel_err < 1e-14
    assert wide["step losses vs oracle"].rel_err < 1e-12
    assert wide["trained weights vs oracle"].rel_err < V.WEIGHTS_TOL_FLOAT64
    # the same script in float32: its forward is fine, its five Adam steps are not
    narrow = verify.checks("pytorch", "float32")
    assert narrow["forward vs oracle"].passed
    assert (
        narrow["trained weights vs oracle"].rel_err
        > 1e4 * wide["trained weights vs oracle"].rel_err
    )


def test_a_float32_learning_rate_is_caught(verify: Verify) -> None:
    """lr rounded to float32 (0.01 by 2.2e-9 of itself) moves every weight that much off."""
    pytest.importorskip("torch")
    leak = source(
        verify,
        "pytorch",
        '        group["lr"] = lr\n',
        '        group["lr"] = float(np.float32(lr))\n',
    )
    checks = verify.checks("pytorch", "float64", leak)
    failed = {name for name, c in checks.items() if not c.passed}
    assert "trained weights vs oracle" in failed  # and the losses of the steps after the first
    assert checks["forward vs oracle"].rel_err < 1e-14


def test_keras_jax_computes_in_float64_only_with_the_narrowing_undone(verify: Verify) -> None:
    """Keras 3 on JAX (and torch) narrows float64 results to float32 (ops.mean, ...): without
    use_precision's fix the float64 run is a float32 one."""
    pytest.importorskip("keras")
    pytest.importorskip("jax")
    fix = '    dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"\n'
    narrowed = verify.checks("keras[jax]", "float64", source(verify, "keras[jax]", fix, ""))
    assert not narrowed["forward vs oracle"].passed
    assert not narrowed["trained weights vs oracle"].passed
