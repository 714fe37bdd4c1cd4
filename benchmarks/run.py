"""Train every generated script briefly in each of its runtimes; print a table, append JSONL.

Used by `make demo` (CPU, a few steps) and for GPU timings:
    python benchmarks/run.py generated --device gpu --epochs 1 --out benchmarks/results/X.jsonl
Needs only the standard library, dlspec.runtimes and dlspec.codegen.interface (no dlspec
dependencies), so it runs on a machine where only the frameworks are installed (PYTHONPATH=.).
Each script's results are checked against the results schema; a run whose results break it fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from dlspec.codegen.interface import validate_results
from dlspec.runtimes import RUNTIMES, probe, runtime


def run_one(name: str, script: Path, args: argparse.Namespace) -> Optional[dict]:
    """Run `script` in runtime `name`; its results JSON, or None (the error is printed)."""
    rt = runtime(name)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        flags = ["--data", "synthetic", "--device", args.device, "--warmup", str(args.warmup)]
        flags += [
            "--epochs",
            str(args.epochs),
            "--max-steps",
            str(args.max_steps),
            "--results",
            str(out),
        ]
        done = subprocess.run(
            rt.command(str(script), *flags), capture_output=True, text=True, env=rt.environment()
        )
        if done.returncode != 0:
            print(f"   {script.stem:<32} FAILED: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            return None
        results = json.loads(out.read_text())
        problems = validate_results(results)
        if not problems and results["runtime"] != name:
            problems = [f"runtime: {results['runtime']!r}, run on {name}"]
        if problems:
            print(f"   {script.stem:<32} FAILED: results break the schema: {'; '.join(problems)}")
            return None
        return {"script": script.name, **results}


def line(r: dict) -> str:
    """One table row (an inference run has no loss and no epochs)."""
    speed = r["samples_per_second"] or 0.0
    loss = "" if r.get("final_loss") is None else f"loss {r['final_loss']:.4f}"
    epoch = f"last epoch {r['epoch_seconds'][-1]:7.2f} s" if r.get("epoch_seconds") else ""
    return (
        f"   {Path(r['script']).stem:<32} {r['steps']:>6} steps  {loss:<11}  "
        f"{speed:10.1f} samples/s  {epoch:<20}  on {r['device']}"
    )


def main(argv: Optional[list[str]] = None) -> int:
    """Every script under FOLDER/<target>/ in every available runtime of that target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="out/demo")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=5, help="0: whole epochs")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runtimes", default="", help="comma list (default: all available)")
    parser.add_argument("--out", help="append one JSON line per run here")
    args = parser.parse_args(argv)
    wanted = [r for r in args.runtimes.split(",") if r] or list(RUNTIMES)
    failed = 0
    for name in wanted:
        target = RUNTIMES[name].target
        scripts = sorted((Path(args.folder) / target).glob("*.py"))
        ok, info = probe(runtime(name))
        if not ok or not scripts:
            print(f"== {name}: skipped ({info if not ok else 'no scripts'})")
            continue
        print(f"== {name} ({info}) on {args.device}")
        for script in scripts:
            result = run_one(name, script, args)
            failed += result is None
            if result is not None:
                print(line(result))
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(result, sort_keys=True) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
