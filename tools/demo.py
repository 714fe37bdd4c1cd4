"""`make demo`'s last step: train every generated script briefly in each of its runtimes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from dlspec.backends import TARGETS
from dlspec.runtimes import RUNTIMES, probe, runtime


def run_one(name: str, script: Path, steps: int) -> str:
    """Train `script` for `steps` updates on synthetic data in runtime `name`; a summary line."""
    rt = runtime(name)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        args = [
            "--data",
            "synthetic",
            "--max-steps",
            str(steps),
            "--warmup",
            "2",
            "--results",
            str(out),
        ]
        done = subprocess.run(
            rt.command(str(script), *args), capture_output=True, text=True, env=rt.environment()
        )
        if done.returncode != 0:
            return f"FAILED: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
        r = json.loads(out.read_text())
    speed = r.get("samples_per_sec") or 0.0
    return f"loss {r['final_loss']:.4f}  {speed:9.1f} samples/s  on {r['device']}"


def main() -> int:
    """Run every script under the folder given (default out/demo) in every available runtime."""
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo")
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    failed = 0
    for name, (target, _, _) in RUNTIMES.items():
        if target not in TARGETS:
            continue
        ok, info = probe(runtime(name))
        if not ok:
            print(f"== {name}: skipped, runtime not available ({info})")
            continue
        print(f"== {name} ({info}), {steps} steps on synthetic data")
        for script in sorted((folder / target).glob("*.py")):
            line = run_one(name, script, steps)
            failed += line.startswith("FAILED")
            print(f"   {script.stem:<32} {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
