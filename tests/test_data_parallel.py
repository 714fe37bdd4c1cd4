"""Data-parallel PyTorch scripts under torchrun: 2 replicas train the weights of one process, and
a lost replica stops the others with an error instead of a hang, leaving no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import replica_runs
from replica_runs import (
    ENDLESS,
    FAILURE_TIMEOUT,
    MLP,
    RUN_TIMEOUT,
    STEPS,
    WEIGHTS_TOL,
    check_two_replicas,
    child_with,
    relative_error,
    run,
    session_processes,
    stop,
    wait_for,
    write_npz,
)

from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build
from dlspec.runtimes import runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.replicas import run_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework
torch = pytest.importorskip("torch", reason="torch is not installed: data-parallel tests skipped")

# batch norm over a feature map and over features; BatchNormExplicit for the biased form
BATCHNORM = """
model bn {
    input image: float32[2, 6, 6]
    conv2d(4, kernel=3, padding=same, bias=false)
    batchnorm -> relu
    flatten
    dense(6, bias=false)
    batchnorm(running_var=biased) -> tanh
    dense(3)
}
train {
    optimizer = sgd(lr=0.1, momentum=0.9)
    batch = 8
    SYNC
}
"""

PYTORCH = runtime("pytorch")


def script(text: str, folder: Path, name: str = "net.py") -> Path:
    """The PyTorch script of a spec text."""
    return replica_runs.script(text, folder, "pytorch", name)


def one_process(path: Path, tag: str, *flags: str) -> tuple[dict, dict]:
    """Run the script as one process; its results and trained weights."""
    return run(PYTORCH, path, tag, 1, *flags)


def replicas(path: Path, tag: str, count: int, *flags: str) -> tuple[dict, dict]:
    """Run the script as `count` replicas under torchrun; the results and weights rank 0 wrote."""
    return run(PYTORCH, path, tag, count, *flags)


def test_two_replicas_train_the_weights_of_one_process(tmp_path: Path) -> None:
    """Real data, reshuffled each epoch, whose last batch (3 samples) splits 1 and 2: each
    replica's mean loss is weighted by its share, so the mean gradient is the global batch's."""
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 11, 5))
    single = one_process(path, "single", *STEPS, "--data", data)
    check_two_replicas(single, replicas(path, "double", 2, *STEPS, "--data", data), 11, 5)


def test_synchronised_batchnorm_trains_the_weights_of_one_process(tmp_path: Path) -> None:
    """batchnorm_sync: statistics over the global batch (GlobalBatchNorm on the CPU), running
    statistics included; per-replica statistics train other weights."""
    synced = script(BATCHNORM.replace("SYNC", "batchnorm_sync = true"), tmp_path, "synced.py")
    local = script(BATCHNORM.replace("SYNC", ""), tmp_path, "local.py")
    flags = (*STEPS, "--max-steps", "6")
    _, w_single = one_process(synced, "single", *flags)
    _, w_synced = replicas(synced, "synced", 2, *flags)
    results, w_local = replicas(local, "local", 2, *flags)
    assert relative_error(w_synced, w_single) <= WEIGHTS_TOL
    assert validate_results(results) == []
    assert relative_error(w_local, w_single) > 1e-3  # each replica normalised its own 4 rows


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path: Path) -> None:
    path = script(MLP.replace("batch = 4", "batch = 5"), tmp_path)
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    done = subprocess.run(
        [sys.executable, str(path), "--device", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 1
    assert "batch 5 is the global batch: it must split evenly over the 2 replicas" in done.stderr


def test_a_last_batch_smaller_than_the_replica_count_is_refused(tmp_path: Path) -> None:
    path = script(MLP, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 9, 5))  # batches 4, 4, 1
    done, tail = run_replicas(
        runtime("pytorch"), str(path), 2, [*STEPS, "--data", data], tmp_path / "run", RUN_TIMEOUT
    )
    assert done.returncode != 0 and not done.timed_out, tail
    message = "the last batch of each epoch has 1 samples, fewer than the 2 replicas"
    assert message in (tmp_path / "run.err").read_text()


def test_an_inference_script_refuses_replicas(tmp_path: Path) -> None:
    path = script("model f {\n input x: float32[6]\n dense(3)\n}\n", tmp_path)
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT
    )
    assert done.returncode == 1
    assert "an inference script runs as one process, not 2 replicas" in done.stderr


# ---- a lost replica --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(launcher: int, rank: int) -> int:
    """The process of a replica torchrun started (a child whose environment has RANK=rank)."""
    return child_with(launcher, f"RANK={rank}")


def start_rank(path: Path, rank: int, port: int, log: Path, *flags: str) -> subprocess.Popen:
    """One replica started by hand (no launcher to stop the others), in a session of its own."""
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank)}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    argv = [sys.executable, str(path), *STEPS, "--epochs", "100000", *flags]
    with open(log, "wb") as err:
        return subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True
        )


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_the_survivor_of_a_lost_replica_stops_with_an_error(tmp_path: Path, fault: str) -> None:
    """Rank 1 is killed (its sockets close) or stopped (it never answers: --replica-timeout
    runs out): rank 0 exits 1 within the timeout, saying a replica was lost."""
    path = script(ENDLESS, tmp_path)
    port = free_port()
    logs = [tmp_path / "rank0.err", tmp_path / "rank1.err"]
    procs = [start_rank(path, r, port, logs[r], "--replica-timeout", "10") for r in (0, 1)]
    try:
        wait_for(logs[0], "epoch 3:", time.monotonic() + RUN_TIMEOUT)
        procs[1].send_signal(signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        code = procs[0].wait(timeout=FAILURE_TIMEOUT)
    finally:
        for proc in procs:
            stop(proc)
    tail = logs[0].read_text(errors="replace")[-3000:]
    assert code == 1, tail
    assert "replica 0 of 2 stopped: its run, or a step shared with the other replicas" in tail
    assert not session_processes(procs[0].pid)


def test_torchrun_stops_every_replica_when_one_is_lost(tmp_path: Path) -> None:
    """Under torchrun a killed replica ends the run: the launcher exits non-zero within the
    timeout, naming the lost rank, and no process of the run is left."""
    path = script(ENDLESS, tmp_path)
    err = tmp_path / "torchrun.err"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    argv += ["2", str(path), *STEPS, "--epochs", "100000", "--replica-timeout", "10"]
    with open(err, "wb") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        wait_for(err, "epoch 3:", time.monotonic() + RUN_TIMEOUT)
        os.kill(worker(proc.pid, 1), signal.SIGKILL)
        code = proc.wait(timeout=FAILURE_TIMEOUT)
        time.sleep(1)  # the launcher's own children are reaped before it exits
        left = session_processes(proc.pid)
    finally:
        stop(proc)
    tail = err.read_text(errors="replace")[-4000:]
    assert code != 0, tail
    assert "exitcode" in tail and "-9" in tail, tail
    assert not left, left


# ---- dlspec verify --replicas ------------------------------------------------------------------

CNN = """
model cnn {
    input image: float32[2, 7, 7]
    conv2d(3, kernel=3, padding=same) -> tanh
    maxpool2d(2)
    flatten
    dense(4)
}
train { optimizer = adam(lr=0.01) }
"""
SYNCED_LINEAR = BATCHNORM.replace("SYNC", "batchnorm_sync = true\n    lr_scaling = linear")


def test_verify_two_replicas_against_one_process_and_the_oracle(tmp_path: Path) -> None:
    """A CNN without batch norm: the replicas' steps equal the one process's and the oracle's."""
    checks = verify_replicas(build(CNN, "cnn.dl").model, ["pytorch"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["pytorch x2", "trained weights vs 1 process"].rel_err <= WEIGHTS_TOL
    assert rows["pytorch x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL


def test_verify_synchronised_batchnorm_with_linear_scaling(tmp_path: Path) -> None:
    """Synchronised batch norm at twice the learning rate (lr_scaling = linear): the replicas
    against the oracle at that rate, the one process at the stated one."""
    checks = verify_replicas(build(SYNCED_LINEAR, "bn.dl").model, ["pytorch"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert ("pytorch x2", "trained weights vs 1 process") not in rows  # not the same rate
    assert rows["pytorch x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL
    with np.load(tmp_path / "result_pytorch_x2_float32.npz") as multi:
        with np.load(tmp_path / "result_pytorch.npz") as single:
            assert np.allclose(multi["lrs"], 2 * single["lrs"])


# ---- teardown: the process group is freed by destroy_process_group, not at interpreter exit -----

# Runs a generated script under torchrun with dist.destroy_process_group wrapped: each replica
# writes how many references to the default group remain once it is destroyed. A group still
# referenced is torn down during interpreter finalization, where gloo aborts now and then
# ("terminate called without an active exception": seen in CI under load).
PROBE = """
import os, runpy, sys
import torch.distributed as dist

destroy = dist.destroy_process_group


def probed(group=None):
    world = dist.group.WORLD
    destroy(group)
    held = sys.getrefcount(world) - 2  # less this function's name and getrefcount's argument
    with open(os.path.join(os.environ["PROBE_DIR"], os.environ["RANK"]), "w") as f:
        f.write(str(held))


dist.destroy_process_group = probed
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.parametrize("mode", ["train", "train_synchronised_batchnorm", "verify"])
def test_destroy_process_group_frees_the_group(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once destroy_process_group returns, nothing holds the group (torch.distributed.nn, which
    DDP imports, bound it into its functions' defaults when imported after the group was made)."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    if mode == "train":
        path = script(MLP, tmp_path)
        data = write_npz(tmp_path / "d.npz", 11, 5)
        args = [str(path), *STEPS, "--data", str(data), "--results", str(tmp_path / "r.json")]
    elif mode == "train_synchronised_batchnorm":
        path = script(BATCHNORM.replace("SYNC", "batchnorm_sync = true"), tmp_path)
        args = [str(path), *STEPS, "--max-steps", "3", "--results", str(tmp_path / "r.json")]
    else:
        checks = verify_replicas(build(CNN, "cnn.dl").model, ["pytorch"], 2, 1, tmp_path)
        assert all(c.passed for c in checks), matrix(checks)
        path = tmp_path / "script_pytorch.py"
        args = [str(path), "--verify", str(tmp_path), "--verify-name", "probe", *STEPS[:2]]
    done, tail = run_replicas(
        runtime("pytorch"), str(probe), 2, args, tmp_path / "probe", RUN_TIMEOUT
    )
    assert done.returncode == 0, tail
    held = {rank: (tmp_path / rank).read_text() for rank in ("0", "1")}
    assert held == {"0": "0", "1": "0"}
