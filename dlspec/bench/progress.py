"""What bench shows while it runs: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any, Optional, TextIO

from dlspec.bench.runner import Job


def summary(record: dict[str, Any]) -> str:
    """One finished run in a line: its status and speed, or why it failed."""
    if record["status"] != "ok":
        return f"{record['status']}: {record['error']}"
    rate = record["samples_per_second"]
    speed = f"{rate:.1f} samples/s" if rate else "not timed"
    epoch = record["seconds_per_epoch"]
    return f"ok, {speed}" + (f", {epoch:.3f} s/epoch" if epoch is not None else "")


class Plain:
    """A line per run started and finished, on stderr."""

    def __init__(self, total: int, stream: Optional[TextIO] = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.count = 0

    def __enter__(self) -> Plain:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, job: Job) -> None:
        """A run begins."""
        self.count += 1
        print(f"[{self.count}/{self.total}] {job.label} ...", file=self.stream, flush=True)

    def finish(self, job: Job, record: dict[str, Any]) -> None:
        """A run ended (its record is written)."""
        print(f"[{self.count}/{self.total}] {job.label}: {summary(record)}", file=self.stream)


class Live(Plain):
    """rich's progress bar: the run in progress, runs done and left, elapsed time."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        super().__init__(total)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task("bench", total=total)

    def __enter__(self) -> Live:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, job: Job) -> None:
        """Show the run in progress."""
        self.count += 1
        self.progress.update(self.task, description=f"running {job.label}")

    def finish(self, job: Job, record: dict[str, Any]) -> None:
        """Print its line above the bar and advance the bar."""
        self.progress.console.print(f"{job.label}: {summary(record)}", markup=False)
        self.progress.advance(self.task)


class Silent(Plain):
    """Nothing shown (`dlspec --quiet bench`): the records and reports still say everything."""

    def start(self, job: Job) -> None:
        """A run begins: count it only."""
        self.count += 1

    def finish(self, job: Job, record: dict[str, Any]) -> None:
        """A run ended: nothing to show."""


def display(total: int, stream: TextIO = sys.stderr, quiet: bool = False) -> Plain:
    """Silent with `quiet`, Live on a terminal (colour allowed: not NO_COLOR), else Plain."""
    from dlspec.console import color_enabled

    if quiet:
        return Silent(total, stream)
    return Live(total) if color_enabled(stream) else Plain(total, stream)
