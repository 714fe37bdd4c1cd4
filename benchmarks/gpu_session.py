"""The GPU benchmarks as one prepared run for a lent device, inside a fixed time budget.

    python benchmarks/gpu_session.py --out DIR [--budget 540] [--steps headline,bench,compare]
        [--smoke]

benchmarks/gpu_session.sh sets a bare GPU machine up (the carried wheels, dlspec) and calls
this. Steps, in order, each started only when the time it needs is left:
1. check: the GPU tests of the recorded training step (--cuda-graphs trains eager's weights);
2. headline: the emitted PyTorch CIFAR VGG, 10 epochs of 50,000 synthetic samples, with each
   performance switch (default, --cuda-graphs, with bf16, --compile --cuda-graphs, --amp bf16,
   --compile); its own timeout;
3. bench: `dlspec bench` on the default suite for pytorch, keras[torch] and keras[jax] (the GPU
   runtimes the device image holds), one epoch cut at --bench-steps steps;
4. compare: benchmarks/handwritten/compare.py on the GPU for the same runtimes.
Everything lands in --out as at most eight files (what a device call brings back): session.md
(host, steps, the headline table), session.log, headline.jsonl, bench.jsonl/md/png,
compare.jsonl/md. A device call runs at most 10 minutes and a session has 15 minutes of device
time, the machine's start included: the first call runs `--steps check,headline,bench`, a second one
`--steps compare` into another folder if time is left. --smoke runs the steps on the CPU, tiny,
to test this script (tests/test_gpu_session.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
GPU_RUNTIMES = "pytorch,keras[torch],keras[jax]"
HEADLINE_SCRIPT = "generated/pytorch/cifar_vgg_pytorch.py"
# the performance switches of the emitted PyTorch script, each a headline run
# (the likely fastest early: a short device call still measures the goal)
VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("default", ()),
    ("cuda-graphs", ("--cuda-graphs",)),
    ("cuda-graphs + bf16", ("--cuda-graphs", "--amp", "bf16")),
    ("compile + cuda-graphs", ("--compile", "--cuda-graphs")),
    ("bf16", ("--amp", "bf16")),
    ("compile", ("--compile",)),
)
# the GPU tests the check step runs (skipped without a GPU: the smoke run's check passes them by)
CHECK_TESTS = ("tests/test_pytorch_runtime.py", "-k", "recorded_steps")
# the seconds kept after `dlspec bench` for the report of what ran, should the budget cut it
REPORT_SECONDS = 20.0
# each step and the seconds it needs left to start
STEPS = {"check": 30.0, "headline": 30.0, "bench": 60.0, "compare": 60.0}
BROUGHT_BACK = (
    "session.md",
    "session.log",
    "headline.jsonl",
    "bench.jsonl",
    "bench.md",
    "bench.png",
    "compare.jsonl",
    "compare.md",
)


@dataclass(frozen=True)
class Settings:
    """What the steps run: the device, sizes and per-run timeouts (full or smoke)."""

    device: str
    epochs: int
    max_steps: int
    warmup: int
    headline_timeout: float
    check_timeout: float
    bench_steps: int
    bench_timeout: float
    bench_specs: tuple[str, ...]
    compare_models: str
    compare_repeat: int
    compare_steps: int
    targets: str
    variants: tuple[tuple[str, tuple[str, ...]], ...]


def settings(smoke: bool) -> Settings:
    """The full GPU session, or the CPU smoke run of the same steps."""
    if smoke:
        return Settings(
            device="cpu",
            epochs=1,
            max_steps=6,
            warmup=2,
            headline_timeout=300,
            check_timeout=300,
            bench_steps=6,
            bench_timeout=300,
            bench_specs=("examples/mnist_mlp.dl",),
            compare_models="imdb_gru",
            compare_repeat=1,
            compare_steps=4,
            targets="pytorch",
            variants=VARIANTS[:1],
        )
    return Settings(
        device="gpu",
        epochs=10,
        max_steps=0,
        warmup=20,
        headline_timeout=150,
        check_timeout=180,
        bench_steps=200,
        bench_timeout=120,
        bench_specs=(),
        compare_models="cifar_vgg,imdb_gru",
        compare_repeat=2,
        compare_steps=300,
        targets=GPU_RUNTIMES,
        variants=VARIANTS,
    )


class Session:
    """The budget, the log and the step statuses of one run."""

    def __init__(self, out: Path, budget: float, clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.clock = clock
        self.deadline = clock() + budget
        self.steps: list[tuple[str, str]] = []
        self.log = open(out / "session.log", "a", encoding="utf-8")  # noqa: SIM115 - closed in end

    def left(self) -> float:
        """Seconds of the budget left."""
        return self.deadline - self.clock()

    def say(self, text: str) -> None:
        """A line to the log and to stdout (what a device call shows)."""
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def run(
        self,
        argv: Sequence[str],
        timeout: float,
        env: Optional[dict[str, str]] = None,
        cwd: Path = ROOT,
    ) -> int:
        """argv with its output in the log, killed past timeout seconds (or the budget's end)."""
        limit = max(1.0, min(timeout, self.left()))
        self.say("$ " + " ".join(argv) + f"   (timeout {limit:.0f} s)")
        try:
            done = subprocess.run(
                list(argv),
                cwd=cwd,
                env=env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                timeout=limit,
            )
        except subprocess.TimeoutExpired:
            self.say(f"timed out after {limit:.0f} s")
            return 124
        return done.returncode

    def last_line(self) -> str:
        """The log's last non-blank line (what the last command printed last)."""
        self.log.flush()
        lines = (self.out / "session.log").read_text(encoding="utf-8").splitlines()
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    def step(self, name: str, needs: float, body: Callable[[], str]) -> None:
        """Run body when `needs` seconds are left, and note how it ended."""
        if self.left() < needs:
            status = f"not ok: skipped, {self.left():.0f} s left, needs {needs:.0f}"
        else:
            started = self.clock()
            try:
                status = body()
            except Exception as error:  # noqa: BLE001 - a failed step must not stop the others
                status = f"not ok: {type(error).__name__}: {error}"
            status += f" ({self.clock() - started:.0f} s)"
        self.steps.append((name, status))
        self.say(f"== {name}: {status}")


def python() -> str:
    """The interpreter that runs everything (the device image's python3 with the wheels)."""
    return sys.executable


def dlspec_command() -> str:
    """The installed `dlspec` beside this interpreter or on PATH (`python -m dlspec.cli` from
    the checkout's root would import the source package, which has no templates beside it)."""
    folders = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("dlspec", path=folders)
    if found is None:
        raise FileNotFoundError("no dlspec installed (benchmarks/gpu_session.sh installs it)")
    return found


def host_lines() -> list[str]:
    """The machine and software the numbers come from."""
    lines = [f"- Python {platform.python_version()} ({sys.executable}), {platform.platform()}"]
    smi = shutil.which("nvidia-smi")
    if smi:
        query = "--query-gpu=name,driver_version,memory.total"
        done = subprocess.run([smi, query, "--format=csv,noheader"], capture_output=True, text=True)
        lines += [f"- GPU: {line}" for line in done.stdout.splitlines() if line.strip()]
    probe = (
        "import importlib\n"
        "for name in ('torch', 'jax', 'keras', 'numpy'):\n"
        "    try:\n"
        "        m = importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        print(name, 'missing:', type(error).__name__)\n"
        "    else:\n"
        "        print(name, m.__version__)\n"
        "import torch\n"
        "print('cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(),"
        " 'gpu', torch.cuda.is_available())\n"
    )
    done = subprocess.run([python(), "-c", probe], capture_output=True, text=True, cwd=ROOT)
    lines += [f"- {line}" for line in done.stdout.splitlines()]
    return lines


def headline_row(variant: str, flags: Sequence[str], results: dict[str, Any], wall: float) -> dict:
    """One headline run's record: the switch, the per-epoch seconds and their sum, the rate."""
    epochs = results.get("epoch_seconds") or []
    return {
        "variant": variant,
        "flags": list(flags),
        "epochs": len(epochs),
        "epoch_seconds": epochs,
        "train_seconds": sum(epochs),
        "later_epochs_mean": sum(epochs[1:]) / (len(epochs) - 1) if len(epochs) > 1 else None,
        "samples_per_second": results.get("samples_per_second"),
        "final_loss": results.get("final_loss"),
        "test_accuracy": results.get("test_accuracy"),
        "process_seconds": wall,
        "results": results,
    }


def headline_table(rows: Sequence[dict]) -> list[str]:
    """The headline runs as a markdown table."""
    lines = [
        "| switches | epochs | train s (sum of epochs) | first epoch s | later epochs, mean s "
        "| samples/s (timed) | final loss | process s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        first = row["epoch_seconds"][0] if row["epoch_seconds"] else None
        cells = [
            row["variant"],
            str(row["epochs"]),
            _num(row["train_seconds"], ".2f"),
            _num(first, ".2f"),
            _num(row["later_epochs_mean"], ".3f"),
            _num(row["samples_per_second"], ",.0f"),
            _num(row["final_loss"], ".4f"),
            _num(row["process_seconds"], ".1f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _num(value: Optional[float], spec: str) -> str:
    return "" if value is None else format(value, spec)


def check(session: Session, config: Settings) -> str:
    """The recorded-step GPU tests, run from outside the checkout (its source package would
    shadow the installed one); pytest's summary line becomes the status (on the GPU, ok only
    when they ran and passed)."""
    argv = [python(), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
    argv += [str(ROOT / CHECK_TESTS[0]), *CHECK_TESTS[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        code = session.run(argv, config.check_timeout, cwd=Path(tmp))
    summary = session.last_line()
    ran = "passed" in summary or config.device == "cpu"  # on the CPU (--smoke) they skip
    return _status(code == 0 and ran, f"exit {code}: {summary}")


def headline(session: Session, config: Settings, rows: list[dict]) -> str:
    """The CIFAR VGG in PyTorch for the spec's epochs, once per switch; rows collects them."""
    ended, ok = [], True
    for variant, flags in config.variants:
        if session.left() < 20:
            ended.append(f"{variant} skipped")
            ok = False
            continue
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "r.json"
            argv = [python(), HEADLINE_SCRIPT, "--data", "synthetic", "--device", config.device]
            argv += ["--epochs", str(config.epochs), "--warmup", str(config.warmup)]
            argv += ["--max-steps", str(config.max_steps), "--results", str(results), *flags]
            started = time.perf_counter()
            code = session.run(argv, config.headline_timeout)
            wall = time.perf_counter() - started
            if code != 0 or not results.is_file():
                ended.append(f"{variant} exit {code}")
                ok = False
                continue
            row = headline_row(variant, flags, json.loads(results.read_text()), wall)
        rows.append(row)
        with open(session.out / "headline.jsonl", "a", encoding="utf-8") as jsonl:
            jsonl.write(json.dumps(row, sort_keys=True) + "\n")
        session.say(f"{variant}: {row['train_seconds']:.2f} s for {row['epochs']} epochs")
        ended.append(f"{variant} ok")
    return _status(ok, ", ".join(ended))


def bench(session: Session, config: Settings) -> str:
    """`dlspec bench` on the suite; its JSONL, table and chart copied into --out. When the budget
    cuts it short, `dlspec bench --report` writes the table and chart of the runs it finished."""
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    argv = [dlspec_command(), "bench", *config.bench_specs]
    argv += ["--targets", config.targets, "--device", config.device, "--epochs", "1"]
    argv += ["--max-steps", str(config.bench_steps), "--warmup", str(config.warmup)]
    argv += ["--timeout", str(config.bench_timeout), "--out", str(folder), "-q"]
    code = session.run(argv, session.left() - REPORT_SECONDS)
    jsonl = folder / "bench.jsonl"
    if jsonl.is_file() and not (folder / "bench.md").is_file():
        session.run([dlspec_command(), "bench", "--report", str(jsonl), "-q"], session.left() - 2)
    copied = _copy(folder, session.out, ("bench.jsonl", "bench.md", "bench.png"))
    return _status(code == 0, f"exit {code}, wrote {', '.join(copied) or 'nothing'}")


def compare(session: Session, config: Settings) -> str:
    """Emitted against hand-written scripts on the device, interleaved."""
    folder = Path(tempfile.mkdtemp(prefix="compare-"))
    argv = [python(), "benchmarks/handwritten/compare.py", "--targets", config.targets]
    argv += ["--models", config.compare_models]
    argv += ["--device", config.device, "--repeat", str(config.compare_repeat), "--threads", "0"]
    argv += ["--max-steps", str(config.compare_steps), "--warmup", str(config.warmup)]
    argv += ["--timeout", str(config.bench_timeout), "--out", str(folder)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), _pythonpath()]))}
    code = session.run(argv, session.left() - 5, env)
    copied = _copy(folder, session.out, ("compare.jsonl", "compare.md"))
    return _status(code == 0, f"exit {code}, wrote {', '.join(copied) or 'nothing'}")


def _status(ok: bool, text: str) -> str:
    return ("ok: " if ok else "not ok: ") + text


def _pythonpath() -> str:
    return os.environ.get("PYTHONPATH", "")


def _copy(source: Path, target: Path, names: Sequence[str]) -> list[str]:
    copied = []
    for name in names:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
            copied.append(name)
    return copied


def report(session: Session, config: Settings, hosts: list[str], rows: Sequence[dict]) -> str:
    """session.md: the host, how each step ended, the headline table."""
    lines = ["# GPU session", "", *hosts, "", "## Steps", ""]
    lines += [f"- {name}: {status}" for name, status in session.steps]
    lines += ["", f"## Headline: {HEADLINE_SCRIPT}, {config.epochs} epochs, synthetic data", ""]
    lines += headline_table(rows) if rows else ["(no headline run finished)"]
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder of the eight result files")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for every step")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma list of steps to run")
    parser.add_argument("--smoke", action="store_true", help="the same steps, tiny, on the CPU")
    args = parser.parse_args(argv)
    args.steps = [s for s in args.steps.split(",") if s]
    if not args.steps or set(args.steps) - set(STEPS):
        parser.error(f"--steps: a comma list of {', '.join(STEPS)}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the steps inside the budget; exit 1 when a step did not end ok."""
    args = parse_args(argv)
    config = settings(args.smoke)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    session = Session(out, args.budget)
    hosts = host_lines()
    for line in hosts:
        session.say(line)
    rows: list[dict] = []
    bodies = {
        "check": lambda: check(session, config),
        "headline": lambda: headline(session, config, rows),
        "bench": lambda: bench(session, config),
        "compare": lambda: compare(session, config),
    }
    for name in args.steps:
        session.step(name, STEPS[name], bodies[name])
    (out / "session.md").write_text(report(session, config, hosts, rows), encoding="utf-8")
    session.log.close()
    return 0 if all(s.startswith("ok: ") for _, s in session.steps) else 1


if __name__ == "__main__":
    sys.exit(main())
