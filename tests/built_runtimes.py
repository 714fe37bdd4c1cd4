"""Test helpers for the runtimes `make runtimes` builds: use one, or skip saying why it is missing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest

from dlspec import runtimes
from dlspec.runtimes import Runtime

REQUIRE = "DLSPEC_REQUIRE_RUNTIMES"
# Python 2.7 source: is a file valid Python 2 syntax? compile() writes no .pyc, unlike py_compile
_PY2_COMPILE = """
import sys
path = sys.argv[1]
try:
    compile(open(path, 'rb').read(), path, 'exec', 0, True)
except SyntaxError as err:
    print('%s:%s:%s: %s' % (path, err.lineno, err.offset, err.msg))
    sys.exit(1)
"""


def ready(name: str) -> Runtime:
    """Runtime `name` when its framework imports here; else skip the test with the reason and
    the fix (the failed build's own reason when `make runtimes` left one), or fail it when
    DLSPEC_REQUIRE_RUNTIMES is set."""
    rt = runtimes.runtime(name)
    ok, info = runtimes.probe(rt)
    if not ok:
        why = f"{name} runtime not runnable here ({info}); fix: {runtimes.fix(rt)}"
        if os.environ.get(REQUIRE):  # where every runtime must build, a missing one fails
            pytest.fail(f"{why} ({REQUIRE} is set)")
        pytest.skip(why)
    return rt


def run_json(rt: Runtime, code: str, payload: Any, workdir: Path) -> Any:
    """Run `code` in the runtime with `payload` as JSON in argv[1]; the JSON its last line prints."""
    script = workdir / f"snippet_{rt.target}.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        rt.command(str(script), json.dumps(payload)),
        capture_output=True,
        text=True,
        env=rt.environment(),
        cwd=workdir,
        timeout=300,
    )
    assert done.returncode == 0, f"{rt.name} snippet failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def py2_syntax_error(path: Path) -> Optional[str]:
    """None when `path` parses as Python 2.7 (the CNTK runtime's interpreter), else the error as
    FILE:LINE:COL: message. Skips when that runtime is not built."""
    rt = ready("cntk")
    done = subprocess.run(
        [*rt.python, "-c", _PY2_COMPILE, str(path)],
        capture_output=True,
        text=True,
        env=rt.environment(),
        timeout=120,
    )
    if done.returncode == 0:
        return None
    return (done.stdout.strip() or done.stderr.strip() or f"exit {done.returncode}").splitlines()[
        -1
    ]
