"""Data-parallel CNTK scripts under Open MPI's mpiexec: 2 replicas train the weights of one process,
and a lost replica ends the run with an error instead of a hang, leaving no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import replica_runs
from built_runtimes import ready
from replica_runs import (
    ENDLESS,
    FAILURE_TIMEOUT,
    MLP,
    RUN_TIMEOUT,
    STEPS,
    WEIGHTS_TOL,
    check_two_replicas,
    outputs,
    relative_error,
    run,
    session_processes,
    stop,
    wait_for,
    write_npz,
)

from dlspec.frontend.load import build
from dlspec.runtimes import Runtime
from dlspec.verify.parallel import verify_replicas
from dlspec.verify.replicas import replica_command, run_replicas
from dlspec.verify.run import matrix

pytestmark = pytest.mark.framework

# one per path of the script: a summed learner (C.momentum_sgd), a mean learner (C.adam), the
# written-out update (RMSprop)
OPTIMIZERS = ["sgd(lr=0.2, momentum=0.9)", "adam(lr=0.05)", "rmsprop(lr=0.01, momentum=0.5)"]


def mlp(optimizer: str, spec: str = MLP) -> str:
    """The MLP (or ENDLESS) trained by this optimiser."""
    return spec.replace("optimizer = sgd(lr=0.2, momentum=0.9)", f"optimizer = {optimizer}")


@pytest.fixture(scope="module")
def cntk() -> Runtime:
    """The CNTK runtime, with the mpiexec its replicas start under (the tree's openmpi-bin)."""
    rt = ready("cntk")
    if "DLSPEC_MPIEXEC" not in os.environ and not (Path(rt.python[0]).parent / "mpiexec").exists():
        pytest.skip("the cntk runtime predates its mpiexec launcher; fix: make runtimes")
    return rt


def script(text: str, folder: Path, name: str = "net.py") -> Path:
    return replica_runs.script(text, folder, "cntk", name)


def test_replicas_start_through_the_scripts_own_flag(cntk: Runtime) -> None:
    assert replica_command(cntk, "s.py", 2, "--seed", "1") == [
        *cntk.python,
        "s.py",
        "--replicas",
        "2",
        "--seed",
        "1",
    ]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_two_replicas_train_the_weights_of_one_process(
    cntk: Runtime, tmp_path: Path, optimizer: str
) -> None:
    """Real data, reshuffled each epoch, whose last batch (3 samples) splits 1 and 2: the
    replicas' summed gradients over the global rows are the global batch's mean gradient."""
    path = script(mlp(optimizer), tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 11, 5))
    single = run(cntk, path, "single", 1, *STEPS, "--data", data)
    double = run(cntk, path, "double", 2, *STEPS, "--data", data)
    check_two_replicas(single, double, 11, 5, rel=1e-5, accuracy=False)


def refused(cntk: Runtime, tmp_path: Path, text: str, train: int = 11) -> str:
    """Run a spec as 2 replicas that must refuse: its stderr."""
    path = script(text, tmp_path)
    data = str(write_npz(tmp_path / "data.npz", train, 5))
    done, tail = run_replicas(cntk, str(path), 2, [*STEPS, "--data", data], tmp_path / "run", 120)
    assert done.returncode == 1 and not done.timed_out, tail
    return (tmp_path / "run.err").read_text(errors="replace")


def test_a_batch_that_does_not_split_evenly_is_refused(cntk: Runtime, tmp_path: Path) -> None:
    text = mlp(OPTIMIZERS[0]).replace("batch = 4", "batch = 5")
    err = refused(cntk, tmp_path, text)
    assert "batch 5 is the global batch: it must split evenly over the 2 replicas" in err
    assert "the 2 replicas stopped: mpiexec exited with status" in err


def test_a_last_batch_smaller_than_the_replica_count_is_refused(
    cntk: Runtime, tmp_path: Path
) -> None:
    err = refused(cntk, tmp_path, mlp(OPTIMIZERS[0]), train=9)
    assert "the last batch of each epoch has 1 samples, fewer than the 2 replicas" in err


def test_synchronised_batchnorm_is_refused(cntk: Runtime, tmp_path: Path) -> None:
    """CNTK 2.7 has no batch norm synchronised over replicas: the replicas refuse to start."""
    text = mlp(OPTIMIZERS[0]).replace("dense(5) -> tanh", "dense(5)\n    batchnorm -> tanh")
    err = refused(
        cntk, tmp_path, text.replace("data = npz", "data = npz\n    batchnorm_sync = true")
    )
    assert "batchnorm_sync = true: CNTK 2.7 has no batch normalisation synchronised" in err


# ---- a lost replica --------------------------------------------------------------------------

# a CNTK learner in a Trainer (its gradients summed inside train_minibatch), and Adam written out
# (the gradients summed by aggregate_in_place, which keeps Python's lock while it waits)
UPDATES = {
    path: mlp(optimizer, ENDLESS)
    for path, optimizer in (("learner", OPTIMIZERS[0]), ("written", OPTIMIZERS[1]))
}


def replica(sid: int, rank: int) -> int:
    """The process of replica `rank` in the session (mpiexec gives it OMPI_COMM_WORLD_RANK)."""
    for pid in session_processes(sid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in environ:
            return pid
    raise AssertionError(f"no replica of rank {rank} in session {sid}")


@pytest.mark.parametrize("updates", sorted(UPDATES))
@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_a_lost_replica_ends_the_run_with_an_error(
    cntk: Runtime, tmp_path: Path, fault: str, updates: str
) -> None:
    """Rank 1 is killed (mpiexec sees it die and stops rank 0) or stopped (rank 0's step never
    finishes: --replica-timeout runs out and rank 0's watcher stops it, saying so): the script
    started with --replicas 2 exits 1 within the timeout, and no process of the run is left.
    With Adam written out rank 0 waits in aggregate_in_place, where a watchdog thread never got
    a turn (the run hung)."""
    path = script(UPDATES[updates], tmp_path)
    err = tmp_path / "run.err"
    argv = cntk.command(str(path), "--replicas", "2", *STEPS, "--epochs", "100000")
    argv += ["--replica-timeout", "5"]
    with open(err, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=cntk.environment(),
            start_new_session=True,
        )
    try:
        wait_for(err, "epoch 3:", time.monotonic() + RUN_TIMEOUT)
        os.kill(replica(proc.pid, 1), signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        code = proc.wait(timeout=FAILURE_TIMEOUT)
        time.sleep(1)  # mpiexec's children are reaped before it exits
        left = session_processes(proc.pid)
    finally:
        stop(proc)
    tail = err.read_text(errors="replace")[-4000:]
    assert code == 1, tail
    assert "the 2 replicas stopped: mpiexec exited with status" in tail
    if fault == "hung":
        assert (
            "replica 0 of 2 stopped: a step shared with the other replicas did not finish" in tail
        )
    assert not left, left


# ---- dlspec verify --replicas ------------------------------------------------------------------


def test_verify_two_replicas_against_one_process_and_the_oracle(
    cntk: Runtime, tmp_path: Path
) -> None:
    text = mlp("adam(lr=0.01)").replace("data = npz", "lr_scaling = none")
    checks = verify_replicas(build(text, "mlp.dl").model, ["cntk"], 2, 3, tmp_path)
    assert all(c.passed for c in checks), matrix(checks)
    rows = {(c.runtime, c.check): c for c in checks}
    assert rows["cntk x2", "trained weights vs 1 process"].rel_err <= WEIGHTS_TOL
    assert rows["cntk x2", "trained weights vs oracle"].rel_err <= WEIGHTS_TOL


# ---- replicas on two hosts ---------------------------------------------------------------------

# stands in for ssh: drops the options and the host name, and runs the command on this host
FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) shift; break;; esac; done
echo "$*" >>"$(dirname "$0")/ssh.log"
exec /bin/sh -c "$*"
"""


def test_two_hosts_train_the_weights_of_one_process(cntk: Runtime, tmp_path: Path) -> None:
    """One replica on each of two "hosts": mpiexec starts the second host's daemon through the
    runtime's orted launcher (--launch-agent) over a stand-in for ssh, as on a real second host;
    the replicas then train the weights of one process."""
    folder = Path(cntk.python[0]).parent
    if not (folder / "orted").exists():
        pytest.skip("the cntk runtime predates its orted launcher; fix: make runtimes")
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    path = script(mlp(OPTIMIZERS[1]), tmp_path)
    data = str(write_npz(tmp_path / "data.npz", 11, 5))
    _, w_single = run(cntk, path, "single", 1, *STEPS, "--data", data)
    argv = [str(folder / "mpiexec"), "--oversubscribe", "--mca", "plm_rsh_agent", str(ssh)]
    argv += ["--allow-run-as-root"] if os.geteuid() == 0 else []
    argv += ["--launch-agent", str(folder / "orted"), "-n", "2", "-H", "localhost:1,host2:1"]
    argv += [*cntk.python, str(path), *STEPS, "--data", data]
    argv += [
        "--results",
        str(tmp_path / "hosts.json"),
        "--weights-out",
        str(tmp_path / "hosts.npz"),
    ]
    done = subprocess.run(
        argv,
        env=cntk.environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        start_new_session=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(folder / "orted") in (tmp_path / "ssh.log").read_text()  # host2's daemon
    results, weights = outputs(tmp_path, "hosts")
    assert results["replicas"] == 2
    assert relative_error(weights, w_single) <= WEIGHTS_TOL
