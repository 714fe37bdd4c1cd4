"""Data-parallel runs without a framework: launchers, verify's batch and refusals, the CLI's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlspec.backends import TARGETS
from dlspec.cli import main
from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import flags
from dlspec.frontend.load import build
from dlspec.ir.model import Model
from dlspec.runtimes import RUNTIMES, runtime
from dlspec.verify.parallel import check_replicable, replica_batch, replica_tolerance, scaled
from dlspec.verify.replicas import (
    NotSupported,
    replica_command,
    run_replicas,
    stderr_tail,
    supports_replicas,
)
from dlspec.verify.run import VERIFY_BATCH, VerifyError

MLP = """
model mlp {
    input x: float32[6]
    dense(5) -> relu
    dense(3)
}
train {
    optimizer = sgd(lr=0.1)
    schedule = step(every=2, gamma=0.5, unit=step)
    SETTINGS
}
"""
BATCHNORM = MLP.replace("dense(5) -> relu", "dense(5, bias=false)\n    batchnorm -> relu")


def model(text: str, settings: str = "") -> Model:
    return build(text.replace("SETTINGS", settings), "m.dl").model


def test_pytorch_scripts_run_as_replicas_under_torchrun() -> None:
    command = replica_command(runtime("pytorch"), "s.py", 3, "--verify", "D")
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3"]
    assert command == [*runtime("pytorch").python, *launcher, "s.py", "--verify", "D"]


def test_tensorflow_scripts_start_their_own_replicas() -> None:
    command = replica_command(runtime("tensorflow"), "s.py", 3, "--verify", "D")
    assert command == [*runtime("tensorflow").python, "s.py", "--replicas", "3", "--verify", "D"]


def test_a_flag_may_name_its_attribute() -> None:
    """TensorFlow's --replicas is parsed into start_replicas: main sets args.replicas itself."""
    flag = next(f for f in flags("tensorflow") if f.name == "--replicas")
    assert flag.dest == "start_replicas" and "dest='start_replicas'" in flag.argument()
    assert all("dest=" not in f.argument() for f in flags("pytorch"))


def test_mxnet_scripts_start_their_own_replicas_on_a_kvstore() -> None:
    """--replicas N: the script is its own local launcher (scheduler, server, N workers)."""
    command = replica_command(runtime("mxnet"), "s.py", 2, "--verify", "D")
    assert command == [*runtime("mxnet").python, "s.py", "--replicas", "2", "--verify", "D"]
    source = compile_model(model(MLP), "mxnet").source
    assert 'KVSTORE = mx.kv.create("dist_sync")' in source
    assert "batchnorm_sync = true: MXNet synchronises" not in source


def test_mxnet_scripts_refuse_synchronised_batchnorm_over_replicas() -> None:
    """MXNet synchronises batch norm only within one process: the replicas refuse it."""
    source = compile_model(model(BATCHNORM, "batchnorm_sync = true"), "mxnet").source
    assert "batchnorm_sync = true: MXNet synchronises batch norm only over the devices" in source
    assert "batchnorm_sync = true: MXNet" not in compile_model(model(BATCHNORM), "mxnet").source


def test_a_target_without_a_launcher_refuses_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TARGETS["mxnet"], "replica_launcher", ())
    monkeypatch.setattr(TARGETS["mxnet"], "replica_flags", ())
    assert not supports_replicas(runtime("mxnet"))
    with pytest.raises(NotSupported, match="mxnet: data-parallel runs are not yet supported"):
        replica_command(runtime("mxnet"), "s.py", 2)


def test_a_script_that_launches_its_own_replicas_takes_flags_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TARGETS["mxnet"], "replica_launcher", ())
    monkeypatch.setattr(TARGETS["mxnet"], "replica_flags", ("--replicas", "{replicas}"))
    command = replica_command(runtime("mxnet"), "s.py", 3, "--verify", "D")
    assert command == [*runtime("mxnet").python, "s.py", "--replicas", "3", "--verify", "D"]


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_every_runtime_either_runs_replicas_or_says_why_not(name: str) -> None:
    refusal = TARGETS[runtime(name).target].replica_refusal(name)
    if refusal:
        with pytest.raises(NotSupported, match=re.escape(refusal)):
            replica_command(runtime(name), "s.py", 2)
    else:
        command = replica_command(runtime(name), "s.py", 2)
        assert "s.py" in command and "2" in command  # the replica count reaches the launcher


def test_keras_runs_replicas_on_jax_and_tensorflow_and_says_why_not_on_torch() -> None:
    for name in ("keras[jax]", "keras[tensorflow]"):
        command = replica_command(runtime(name), "s.py", 2)
        assert command[-3:] == ["s.py", "--replicas", "2"]
    keras = TARGETS["keras"]
    assert "no distribution API for its torch backend" in keras.replica_refusal("keras[torch]")
    assert keras.replica_refusal("keras[tensorflow]") == ""
    assert keras.replica_refusal("keras[jax]") == ""


@pytest.mark.parametrize("replicas, batch", [(1, 4), (2, 4), (3, 6), (4, 4), (5, 5), (8, 8)])
def test_verify_batch_splits_evenly(replicas: int, batch: int) -> None:
    assert replica_batch(replicas) == batch and batch % replicas == 0 and batch >= VERIFY_BATCH


def test_replicas_are_held_to_a_tenth_of_the_oracle_bound() -> None:
    adam = model(MLP.replace("sgd(lr=0.1)", "adam(lr=0.1)"))
    assert replica_tolerance(model(MLP), "float32") == pytest.approx(1e-5)
    assert replica_tolerance(adam, "float32") == pytest.approx(5e-5)
    assert replica_tolerance(adam, "float64") == pytest.approx(1e-10)


def test_per_replica_batchnorm_cannot_be_verified_against_one_process() -> None:
    with pytest.raises(VerifyError, match="needs batchnorm_sync = true"):
        check_replicable(model(BATCHNORM))
    check_replicable(model(BATCHNORM, "batchnorm_sync = true"))
    check_replicable(model(MLP))


def test_an_inference_spec_has_nothing_to_split() -> None:
    with pytest.raises(VerifyError, match="no training to split over replicas"):
        check_replicable(build("model f {\n input x: float32[6]\n dense(3)\n}\n", "f.dl").model)


def test_linear_scaling_multiplies_the_learning_rate_the_oracle_uses() -> None:
    plain = model(MLP)
    assert scaled(plain, 4) is plain
    faster = scaled(model(MLP, "lr_scaling = linear"), 4)
    assert faster.train.optimizer["lr"] == pytest.approx(0.4)
    assert faster.train.schedule == plain.train.schedule


def test_cli_refuses_replicas_on_a_target_without_a_launcher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for target in ("keras", "mxnet"):
        monkeypatch.setattr(TARGETS[target], "replica_launcher", ())
        monkeypatch.setattr(TARGETS[target], "replica_flags", ())
    spec = tmp_path / "m.dl"
    spec.write_text(MLP.replace("SETTINGS", ""), encoding="utf-8")
    code = main(["verify", str(spec), "--targets", "keras,mxnet", "--replicas", "2"])
    err = capsys.readouterr().err
    assert code == 2  # mxnet, named, cannot: a usage error naming it alone
    assert "--replicas 2: mxnet: data-parallel runs are not yet supported on this target" in err
    assert "keras[" not in err  # keras's runtimes came with the target's name: skipped
    code = main(["verify", str(spec), "--targets", "keras", "--replicas", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "--replicas 2: no runtime to run (keras[tensorflow]: " in err


def test_a_target_s_runtimes_that_cannot_are_skipped_and_a_named_one_is_refused() -> None:
    """--targets keras --replicas 2 runs keras[jax] and keras[tensorflow] and says why not
    keras[torch]; naming keras[torch] itself is a usage error."""
    from dlspec.cli import UsageError, _replica_runtimes

    names = ["keras[tensorflow]", "keras[jax]", "keras[torch]"]
    run, skipped = _replica_runtimes(names, "keras", 2)
    assert run == ["keras[tensorflow]", "keras[jax]"]
    assert skipped == [
        "skipped, --replicas 2: keras[torch]: " + TARGETS["keras"].REPLICA_REFUSALS["keras[torch]"]
    ]
    with pytest.raises(UsageError, match=r"--replicas 2: keras\[torch\]: Keras 3 has no"):
        _replica_runtimes(["pytorch", "keras[torch]"], "pytorch,keras[torch]", 2)


def test_cntk_starts_its_replicas_through_its_own_flag_under_mpiexec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The script's --replicas N; without any mpiexec to run them under, the runtime says so."""
    python = tmp_path / "python"
    monkeypatch.setenv("DLSPEC_PYTHON_CNTK", str(python))
    monkeypatch.delenv("DLSPEC_MPIEXEC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotSupported, match="cntk: no mpiexec to start its replicas under"):
        replica_command(runtime("cntk"), "s.py", 2)
    (tmp_path / "mpiexec").write_text("")  # the built runtime's launcher beside its interpreter
    command = replica_command(runtime("cntk"), "s.py", 2, "--seed", "1")
    assert command == [str(python), "s.py", "--replicas", "2", "--seed", "1"]


def test_the_stderr_tail_keeps_the_replica_s_own_message_above_the_launcher_s_summary() -> None:
    """torchrun closes with a summary of 30 lines that names only the signal; the replica's own
    line ('terminate called ...') above it is kept."""
    text = "banner\nepoch 1: loss 1.0\nterminate called without an active exception\n"
    text += "\n".join(f"summary line {i}" for i in range(30))
    tail = stderr_tail(text).splitlines()
    assert tail[0] == "terminate called without an active exception"
    assert tail[1] == "..." and tail[-1] == "summary line 29" and len(tail) == 17
    assert stderr_tail("a\nb") == "a\nb"


def test_the_stderr_tail_keeps_a_fatal_line_of_absl_s_log() -> None:
    """XLA and TensorFlow say why they abort in a fatal log line ("F<month><day> <time> ...")
    that names no error word; it is kept above a long stack dump."""
    fatal = "F1207 05:53:18.486408   31352 client.h:80] Terminating process because ..."
    text = "banner\n" + fatal + "\n" + "\n".join(f"    @ frame {i}" for i in range(40))
    assert stderr_tail(text).splitlines()[0] == fatal
    assert stderr_tail("Fine 12:00:00\n" + "\n".join(map(str, range(40)))).startswith("25\n")


def test_a_replica_killed_by_a_signal_prints_where_it_was(tmp_path: Path) -> None:
    """Replicas run with faulthandler on: an abort in C++ leaves the Python stack in the tail."""
    script = tmp_path / "aborts.py"
    script.write_text("import os\n\n\ndef deep():\n    os.abort()\n\n\ndeep()\n")
    done, tail = run_replicas(runtime("tensorflow"), str(script), 2, [], tmp_path / "log", 60)
    assert done.returncode != 0
    assert "Fatal Python error: Aborted" in tail
    assert 'aborts.py", line 5 in deep' in tail
