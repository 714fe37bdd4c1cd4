"""The markdown report of bench records: per spec a table of runtimes, ratios to the fastest, and
thread- and replica-scaling tables when runs used several thread or replica counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from dlspec.bench.record import OK
from dlspec.codegen.interface import INFERENCE, RUNTIME_NAMES

Record = dict[str, Any]


@dataclass(frozen=True)
class Row:
    """The runs of one (spec, runtime, thread count, replica count, setup): the median ok run
    stands for them. `setup` numbers the host and settings the runs had, from 1, when the
    records hold several (`bench --report` of several sessions); 0 when they hold one."""

    spec: str
    runtime: str
    threads: Optional[int]
    replicas: int
    runs: list[Record]
    setup: int = 0

    @property
    def runtime_label(self) -> str:
        """The runtime, and its setup's number when the records hold several."""
        return f"{self.runtime}, setup {self.setup}" if self.setup else self.runtime

    @property
    def name(self) -> str:
        """The runtime (and setup), and its replica count when it ran data-parallel."""
        label = self.runtime_label
        return label if self.replicas == 1 else f"{label}, {self.replicas} replicas"

    @property
    def ok(self) -> list[Record]:
        """The runs that finished with valid results."""
        return [r for r in self.runs if r["status"] == OK]

    @property
    def rates(self) -> list[float]:
        """The ok runs' samples/s, fewest first."""
        return sorted(r["samples_per_second"] for r in self.ok if r["samples_per_second"])

    @property
    def median(self) -> Optional[Record]:
        """The ok run with the median samples/s (the lower one of an even count), or None."""
        ok = sorted(self.ok, key=lambda r: r["samples_per_second"] or 0.0)
        return ok[(len(ok) - 1) // 2] if ok else None

    @property
    def status(self) -> str:
        """ok, ok k/n when some repeats failed, else the last run's status and error."""
        if len(self.ok) == len(self.runs):
            return OK
        if self.ok:
            return f"{OK} {len(self.ok)}/{len(self.runs)}"
        last = self.runs[-1]
        return f"{last['status']}: {_cell(last['error'] or '')}"


def _order(runtime: str) -> int:
    return RUNTIME_NAMES.index(runtime) if runtime in RUNTIME_NAMES else len(RUNTIME_NAMES)


def _setup(r: Record) -> tuple[str, str]:
    """The host and settings lines of a run."""
    return _host_line(r.get("host") or {}), _runs_line(r.get("settings") or {})


def setups(records: list[Record]) -> list[tuple[str, str]]:
    """The (host, settings) lines the records hold, in the order they first appear: one for
    the runs of one session; a run of another machine or with other settings adds one."""
    return list(dict.fromkeys(_setup(r) for r in records)) or [("?", "?")]


def group(records: list[Record]) -> dict[str, list[Row]]:
    """Rows per spec: specs in the order they first appear, rows by setup (when the records
    hold several), runtime (the schema's order), replica count, then thread count (the
    framework's default first). Runs of different setups never share a row."""
    found = setups(records)
    number = {pair: index + 1 for index, pair in enumerate(found)} if len(found) > 1 else {}
    runs: dict[tuple[str, str, Optional[int], int, int], list[Record]] = {}
    for r in records:
        key = (r["spec"], r["runtime"], r["settings"]["threads"], r.get("replicas", 1))
        runs.setdefault((*key, number.get(_setup(r), 0)), []).append(r)
    specs = list(dict.fromkeys(r["spec"] for r in records))
    key = lambda k: (k[4], _order(k[1]), k[1], k[3], -1 if k[2] is None else k[2])  # noqa: E731
    return {
        spec: [
            Row(*k[:4], runs[k], k[4]) for k in sorted((k for k in runs if k[0] == spec), key=key)
        ]
        for spec in specs
    }


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (one line, no bars), at most 80 characters."""
    one = " ".join(text.replace("|", "/").split())
    return one if len(one) <= 80 else one[:77] + "..."


def _num(value: Optional[float], digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ratio(value: Optional[float], best: Optional[float], faster_is_lower: bool) -> str:
    """How many times slower than the fastest row (1.00 for it)."""
    if value is None or not best:
        return ""
    return f"{(value / best if faster_is_lower else best / value):.2f}x"


def _best(rows: list[Row], pick: Callable[[Record], Optional[float]], low: bool) -> Optional[float]:
    values = [pick(r.median) for r in rows if r.median and pick(r.median)]
    return (min(values) if low else max(values)) if values else None


TRAINING_HEAD = (
    "runtime", "threads", "status", "s/epoch", "vs fastest", "samples/s", "warm-up s",
    "final loss", "accuracy", "peak MB", "framework",
)  # fmt: skip
INFERENCE_HEAD = (
    "runtime", "threads", "status", "samples/s", "s/1000 samples", "vs fastest", "peak MB",
    "framework",
)  # fmt: skip


def _version(r: Optional[Record]) -> str:
    if not r:
        return ""
    v = r["versions"]
    name = f"{v['framework']} {v['framework_version']}"
    if v["backend"] != v["framework"]:
        name += f" on {v['backend']} {v['backend_version']}"
    return f"{name}, {v['device']}"


def _threads(row: Row) -> str:
    m = row.median
    shown = m["switches"].get("threads") if m else None
    asked = "default" if row.threads is None else str(row.threads)
    return asked if shown in (None, row.threads) else f"{asked} ({shown} reported)"


GPU_HEAD = ("GPU MB", "tensors MB", "GPU util %")


def _gpu(rows: list[Row]) -> bool:
    """Whether any row's median run sampled a GPU (a GPU host, --device not cpu)."""
    return any((row.median or {}).get("gpu") for row in rows)


def _gpu_cells(row: Row) -> list[str]:
    """The median run's peak GPU memory above the run's start, the peak its framework counts
    for tensors, and its mean utilisation over the timed steps (over the whole run when the
    record has no timed window: older records)."""
    median = row.median or {}
    gpu = median.get("gpu") or {}
    busy = gpu.get("timed_mean_utilization_percent")
    if busy is None:
        busy = gpu.get("mean_utilization_percent")
    tensors = (median.get("results") or {}).get("device_peak_memory_mb")
    return [_num(gpu.get("peak_memory_mb"), 0), _num(tensors, 0), _num(busy, 0)]


def training_table(rows: list[Row]) -> list[list[str]]:
    """The cells of a training spec's table."""
    best = _best(rows, lambda r: r["samples_per_second"], False)
    gpu = _gpu(rows)
    out = []
    for row in rows:
        m = row.median or {}
        out.append([
            row.name, _threads(row), row.status, _num(m.get("seconds_per_epoch"), 3),
            _ratio(m.get("samples_per_second"), best, False), _num(m.get("samples_per_second"), 1),
            _num(m.get("warmup_seconds"), 2), _num(m.get("final_loss"), 4),
            _num(m.get("test_accuracy"), 4), _num(m.get("peak_rss_mb"), 0),
            *(_gpu_cells(row) if gpu else []), _version(row.median),
        ])  # fmt: skip
    return out


def inference_table(rows: list[Row]) -> list[list[str]]:
    """The cells of an inference spec's table."""
    best = _best(rows, lambda r: r["samples_per_second"], False)
    gpu = _gpu(rows)
    out = []
    for row in rows:
        m = row.median or {}
        out.append([
            row.name, _threads(row), row.status, _num(m.get("samples_per_second"), 1),
            _num(m.get("seconds_per_1000_samples"), 4),
            _ratio(m.get("samples_per_second"), best, False), _num(m.get("peak_rss_mb"), 0),
            *(_gpu_cells(row) if gpu else []), _version(row.median),
        ])  # fmt: skip
    return out


def markdown(head: tuple[str, ...], cells: list[list[str]]) -> str:
    """A markdown table, numbers right-aligned."""
    right = {"s/epoch", "vs fastest", "samples/s", "warm-up s", "final loss", "accuracy"}
    right |= {"peak MB", "s/1000 samples", "speed-up", "per replica"}
    right |= {"ok runs", "fewest", "median", "most", "spread", *GPU_HEAD}
    align = [
        "---:" if h in right or h.endswith(("thread(s)", "replica(s)")) else "---" for h in head
    ]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def thread_table(rows: list[Row]) -> Optional[tuple[tuple[str, ...], list[list[str]]]]:
    """samples/s per runtime and thread count, and the speed-up of the most threads over the
    fewest; None unless the spec ran with two thread counts or more."""
    counts = sorted({r.threads for r in rows if r.threads is not None})
    if len(counts) < 2:
        return None
    head = ("runtime", *(f"{n} thread(s)" for n in counts), "speed-up")
    cells = []
    for name in dict.fromkeys(r.name for r in rows):
        mine = [r for r in rows if r.name == name]
        rate = {r.threads: (r.median or {}).get("samples_per_second") for r in mine}
        first, last = rate.get(counts[0]), rate.get(counts[-1])
        speedup = f"{last / first:.2f}x" if first and last else ""
        cells.append([name, *(_num(rate.get(n), 1) for n in counts), speedup])
    return head, cells


def replica_table(rows: list[Row]) -> Optional[tuple[tuple[str, ...], list[list[str]]]]:
    """samples/s (every replica's) per runtime and thread count at each replica count, the
    most replicas' samples/s per replica, and their speed-up over the fewest; None unless the
    spec ran with two replica counts or more."""
    counts = sorted({r.replicas for r in rows})
    if len(counts) < 2:
        return None
    head = ("runtime", *(f"{n} replica(s)" for n in counts), "per replica", "speed-up")
    cells = []
    for label, threads in dict.fromkeys((r.runtime_label, r.threads) for r in rows):
        mine = [r for r in rows if (r.runtime_label, r.threads) == (label, threads)]
        rate = {r.replicas: (r.median or {}).get("samples_per_second") for r in mine}
        first, last = rate.get(counts[0]), rate.get(counts[-1])
        speedup = f"{last / first:.2f}x" if first and last else ""
        each = last / counts[-1] if last else None
        name = label if threads is None else f"{label}, {threads} thread(s)"
        cells.append([name, *(_num(rate.get(n), 1) for n in counts), _num(each, 1), speedup])
    return head, cells


def repeat_table(rows: list[Row]) -> Optional[tuple[tuple[str, ...], list[list[str]]]]:
    """Each row's ok runs' samples/s (the fewest, the median that the table shows, the most)
    and their spread, the most less the fewest over the median; None unless a row has two ok
    runs or more (--repeat)."""
    if not any(len(row.ok) > 1 for row in rows):
        return None
    head = ("runtime", "ok runs", "fewest", "median", "most", "spread")
    cells = []
    for row in rows:
        rates = row.rates
        middle = (row.median or {}).get("samples_per_second")
        name = row.name if row.threads is None else f"{row.name}, {row.threads} thread(s)"
        if not rates or not middle:
            cells.append([name, str(len(row.ok)), "", "", "", ""])
            continue
        spread = f"{(rates[-1] - rates[0]) / middle:.1%}"
        low, high = _num(rates[0], 1), _num(rates[-1], 1)
        cells.append([name, str(len(row.ok)), low, _num(middle, 1), high, spread])
    return head, cells


def _host_line(facts: dict[str, Any]) -> str:
    gpus = ", ".join(f"{g['name']} (driver {g['driver']})" for g in facts.get("gpus", [])) or "none"
    return f"{facts.get('cpu_model', '?')}, {facts.get('cpus', '?')} CPUs; GPUs: {gpus}"


def _runs_line(s: dict[str, Any]) -> str:
    epochs = "the spec's" if s.get("epochs") is None else s.get("epochs")
    return (
        f"device {s.get('device')}, data {s.get('data')}, epochs {epochs}, warm-up steps"
        f" {s.get('warmup')}, max steps {s.get('max_steps') or 'no limit'}"
        f"{', --quick' if s.get('quick') else ''}"
    )


def header(records: list[Record]) -> list[str]:
    """The report's title and what the runs had in common: host and settings; when the records
    disagree (those of several sessions may: `bench --report`), each setup, numbered as the
    rows name theirs."""
    found = setups(records)
    lines = ["# dlspec bench", ""]
    if len(found) == 1:
        lines += [f"- host: {found[0][0]}", f"- runs: {found[0][1]}"]
    else:
        lines.append("- setups (the records' hosts or settings differ; each row names its own):")
        lines += [f"  - setup {n}: host {h}; runs {r}" for n, (h, r) in enumerate(found, 1)]
    if any(r.get("gpu") for r in records):
        lines.append(
            "- peak MB: the host's; GPU MB: the whole GPU's memory in use at the run's peak above"
            " its start (nvidia-smi; JAX and TensorFlow reserve a pool up front by default, and"
            " theirs is the pool); tensors MB: the most the framework itself counts as held for"
            " tensors (the results' device_peak_memory_mb; blank where it does not count); GPU"
            " util %: the mean over the timed steps (nvidia-smi, once a second; over the whole"
            " run in records older than the timed window)"
        )
    lines.append(
        "- s/epoch: a whole epoch without warm-up (blank when no whole epoch ran after the"
        " first); warm-up s: the epochs' time beyond their steps at the timed rate (compilation,"
        " tracing); vs fastest: the fastest runtime's samples/s over this one's"
    )
    return lines


def report(records: list[Record]) -> str:
    """The whole markdown report."""
    lines = header(records)
    for spec, rows in group(records).items():
        kind = rows[0].runs[0]["kind"]
        lines += ["", f"## {spec} ({kind})", ""]
        head, table = (INFERENCE_HEAD, inference_table) if kind == INFERENCE else (
            TRAINING_HEAD, training_table)  # fmt: skip
        if _gpu(rows):  # beside peak MB (the host's), before the framework column
            head = (*head[:-1], *GPU_HEAD, head[-1])
        lines.append(markdown(head, table(rows)))
        scaling = thread_table(rows)
        if scaling:
            lines += ["", "Thread scaling (samples/s):", "", markdown(*scaling)]
        spread = replica_table(rows)
        if spread:
            lines += ["", "Data-parallel scaling (samples/s):", "", markdown(*spread)]
        repeats = repeat_table(rows)
        if repeats:
            lines += ["", "Repeats (samples/s of the ok runs):", "", markdown(*repeats)]
    return "\n".join(lines) + "\n"
