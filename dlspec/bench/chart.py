"""PNG charts of bench records (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from dlspec.bench.report import Row

BAR_WIDTH = 0.8


def _pyplot():  # type: ignore[no-untyped-def]
    """matplotlib.pyplot on the Agg backend, imported only when a chart is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rates(rows: list[Row]) -> tuple[list[str], list[float]]:
    """Bar labels (runtime, and its thread count when set) and samples/s (0 for a failed run)."""
    labels, values = [], []
    for row in rows:
        labels.append(row.name if row.threads is None else f"{row.name} x{row.threads}")
        values.append((row.median or {}).get("samples_per_second") or 0.0)
    return labels, values


def error_bars(rows: list[Row], values: list[float]) -> Optional[list[list[float]]]:
    """With --repeat: how far each bar's fewest and most ok samples/s lie below and above it
    (matplotlib's yerr); None when no row has two ok runs."""
    if not any(len(row.rates) > 1 for row in rows):
        return None
    pairs = list(zip(rows, values, strict=True))
    below = [value - row.rates[0] if row.rates else 0.0 for row, value in pairs]
    above = [row.rates[-1] - value if row.rates else 0.0 for row, value in pairs]
    return [below, above]


def bar_chart(groups: dict[str, list[Row]], path: Path) -> None:
    """One panel per spec, a bar per runtime: samples/s (failed runs have no bar, only a label);
    with --repeat, error bars from the fewest to the most samples/s of the ok runs."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 3.2 * len(groups)), squeeze=False)
    for ax, (spec, rows) in zip(axes[:, 0], groups.items(), strict=True):
        labels, values = _rates(rows)
        spread = error_bars(rows, values)
        bars = ax.bar(range(len(values)), values, BAR_WIDTH, color="tab:blue", yerr=spread,
                      capsize=4)  # fmt: skip
        for i, (bar, row, value) in enumerate(zip(bars, rows, values, strict=True)):
            text = f"{value:.0f}" if value else row.status.split(":")[0]
            top = value + (spread[1][i] if spread else 0.0)  # above the error bar
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, top), ha="center",
                        va="bottom", fontsize=8)  # fmt: skip
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("samples/s")
        ax.margins(y=0.12)  # room for the labels above the tallest bar
        ax.set_title(f"{spec} ({rows[0].runs[0]['kind']}): higher is faster", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def thread_chart(groups: dict[str, list[Row]], path: Path) -> None:
    """One panel per spec, a line per runtime: samples/s against the thread count (a log2 axis
    ticked at the counts that ran; the legend beside the panel, off the lines)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 3.2 * len(groups)), squeeze=False)
    for ax, (spec, rows) in zip(axes[:, 0], groups.items(), strict=True):
        counts: set[int] = set()
        for name, xs, ys in _thread_lines(rows):
            ax.plot(xs, ys, marker="o", label=name)
            counts.update(xs)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(counts), [str(n) for n in sorted(counts)])
        ax.minorticks_off()
        ax.set_xlabel("threads")
        ax.set_ylabel("samples/s")
        ax.set_title(f"{spec}: thread scaling", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def _thread_lines(rows: list[Row]) -> list[tuple[str, tuple[int, ...], tuple[float, ...]]]:
    """Per runtime with a rate: its thread counts, in order, and samples/s at each."""
    lines = []
    for name in dict.fromkeys(r.name for r in rows):
        points = [
            (r.threads, r.median["samples_per_second"])
            for r in rows
            if r.name == name and r.threads and r.median
        ]
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            lines.append((name, xs, ys))
    return lines
