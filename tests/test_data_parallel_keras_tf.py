"""Data-parallel Keras scripts on the tensorflow backend (tf.distribute's
MultiWorkerMirroredStrategy under model.fit): 2 replicas train the weights of one process, with
per-replica or synchronised batch norm, and a lost replica stops the run with an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from replica_runs import MLP, WEIGHTS_TOL
from test_data_parallel_keras import (  # the keras[jax] tests: the same run and process checks
    a_killed_replica_stops_the_run,
    trains_the_weights_of_one_process,
)

from dlspec.frontend.load import build
from dlspec.runtimes import runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework
pytest.importorskip("tensorflow", reason="tensorflow is not installed: keras[tensorflow] skipped")
pytest.importorskip("keras", reason="keras is not installed: keras[tensorflow] tests skipped")

TF = runtime("keras[tensorflow]")
# a tiny CNN whose batch norm is the global batch's (Keras's synchronized=True)
SYNC_CNN = """
model cnn {
    input x: float32[2, 6, 6]
    conv2d(3, kernel=3, bias=false) -> batchnorm -> relu
    flatten
    dense(3)
}
train {
    optimizer = sgd(lr=0.1, momentum=0.9)
    batch = 4
    batchnorm_sync = true
}
"""


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path) -> None:
    assert trains_the_weights_of_one_process(TF, tmp_path)["runtime"] == "keras[tensorflow]"


@pytest.mark.parametrize("spec", [MLP, SYNC_CNN], ids=["mlp", "sync_batchnorm_cnn"])
def test_verify_two_replicas_against_one_process_and_the_oracle(spec: str, tmp_path: Path) -> None:
    checks = verify_replicas(build(spec, "net.dl").model, ["keras[tensorflow]"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["keras[tensorflow] x2", "trained weights vs 1 process"].rel_err <= WEIGHTS_TOL
    assert rows["keras[tensorflow] x2", "step losses vs 1 process"].rel_err <= WEIGHTS_TOL


def test_a_killed_replica_stops_the_run_with_an_error(tmp_path: Path) -> None:
    a_killed_replica_stops_the_run(TF, tmp_path)
