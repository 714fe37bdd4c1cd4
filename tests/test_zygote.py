"""Verify's zygotes: a warm interpreter forks a fresh process per script, which runs as
`python script.py` would (argv, environment, exit status, stderr, a deadline) and, in every
framework that uses one, gives the bytes a process of its own gives."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dlspec.codegen.compile import compile_model
from dlspec.codegen.interface import BATCHES_FILE, WEIGHTS_FILE
from dlspec.frontend.load import build
from dlspec.runtimes import Runtime, runtime
from dlspec.verify import zygote
from dlspec.verify.run import VERIFY_SEED, oracle, run_script
from dlspec.weights import canonical as W

SCRIPT = """
import json, os, sys
print("out", json.dumps(sys.argv[1:]))
print("err", os.environ["ZYGOTE_PROBE"], file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


def plain() -> Runtime:
    """A runtime of this interpreter whose zygote preloads only json (no framework)."""
    return Runtime("plain", "plain", (sys.executable,))


def forked(warm: zygote.Zygote, tmp: Path, text: str, *args: str, timeout: float = 60):
    script = tmp / "s.py"
    script.write_text(text, encoding="utf-8")
    files = (tmp / "out.txt", tmp / "err.txt")
    env = {**os.environ, "ZYGOTE_PROBE": "seen"}
    done = warm.run(str(script), list(args), env, files, timeout)
    return done, files[0].read_text(), files[1].read_text()


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(zygote.PRELOAD, "plain", ("json",))
    started = zygote.Zygote(plain())
    yield started
    started.close()


def test_a_forked_script_sees_its_argv_and_environment_and_exits_with_its_status(
    warm: zygote.Zygote, tmp_path: Path
) -> None:
    done, out, err = forked(warm, tmp_path, SCRIPT, "3", "--x")
    assert (done.returncode, done.timed_out) == (3, False)
    assert out == 'out ["3", "--x"]\n' and err == "err seen\n"
    done, out, _ = forked(warm, tmp_path, SCRIPT, "0")  # the same zygote runs the next
    assert done.returncode == 0 and out == 'out ["0"]\n'


def test_an_exception_or_a_message_exit_is_status_1_with_its_text(
    warm: zygote.Zygote, tmp_path: Path
) -> None:
    done, _, err = forked(warm, tmp_path, "raise ValueError('bad weights')\n")
    assert done.returncode == 1 and "ValueError: bad weights" in err
    done, _, err = forked(warm, tmp_path, "import sys\nsys.exit('no such file')\n")
    assert done.returncode == 1 and err == "no such file\n"


def test_a_script_past_its_deadline_is_killed_and_the_zygote_goes_on(
    warm: zygote.Zygote, tmp_path: Path
) -> None:
    text = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n"
    done, out, _ = forked(warm, tmp_path, text, timeout=1)
    assert (done.returncode, done.timed_out) == (None, True)
    with pytest.raises(ProcessLookupError):
        os.kill(int(out), 0)
    assert warm.alive() and forked(warm, tmp_path, SCRIPT, "0")[0].returncode == 0


def test_an_interpreter_that_never_answers_is_not_a_zygote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(zygote.PRELOAD, "plain", ("json",))
    silent = Runtime("plain", "plain", ("sh", "-c", "sleep 30", "sh"))
    with pytest.raises(OSError, match="did not start"):
        zygote.Zygote(silent, timeout=1)


# ---- the frameworks ----------------------------------------------------------------------------

# dropout (a random stream), batch norm, a convolution
SPEC = """
model z {
    input x: float32[1, 8, 8]
    conv2d(3, kernel=3) -> relu
    batchnorm
    dropout(0.25)
    flatten
    dense(6) -> tanh
    dense(3)
}
train {
    optimizer = adam(lr=0.01)
    batch = 4
}
"""


@pytest.mark.framework
@pytest.mark.parametrize(
    "name", ["pytorch", "tensorflow", "keras[tensorflow]", "keras[jax]", "keras[torch]"]
)
def test_a_forked_script_gives_the_bytes_of_a_process_of_its_own(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build(SPEC, "z.dl").model
    rt = runtime(name)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        start = W.draw_weights(model, VERIFY_SEED)
        W.save_npz(work / WEIGHTS_FILE, start)
        np.savez(work / BATCHES_FILE, **oracle(model, start, 3)[1])
        source = compile_model(model, rt.target).source
        monkeypatch.setenv(zygote.ENABLE, "0")
        alone = run_script(rt, source, work)
        monkeypatch.setenv(zygote.ENABLE, "1")
        assert zygote.enabled(rt)
        warm = run_script(rt, source, work)
    assert sorted(warm) == sorted(alone)
    assert all(np.array_equal(warm[k], alone[k]) for k in alone)
