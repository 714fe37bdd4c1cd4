"""The docs site's generated pages (docs/reference.md, docs/support.md) and regions (the grammar)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dlspec.backends import TARGETS
from dlspec.ir.attrs import PROFILES, AttrSpec
from dlspec.ir.ops import OPS, OpSpec
from dlspec.ir.settings import (
    DATASETS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    TOP_SETTINGS,
    TRAIN_DEFAULT_DATA,
    TRAIN_DEFAULT_OPTIMIZER,
    TRAIN_DEFAULT_SCHEDULE,
    TRAIN_SETTINGS,
    VERIFY_TOLERANCES,
)
from dlspec.support import (
    _default_text,
    _mark,
    attribute_table,
    flags_table,
    results_table,
    support_table,
)

GENERATED = "<!-- generated from dlspec/ir/ops.py and settings.py by `make generate` (dlspec/docpages.py); do not edit -->"
GRAMMAR_BEGIN = "<!-- grammar:begin (generated from grammar/dlspec.lark; do not edit) -->"
GRAMMAR_END = "<!-- grammar:end -->"
LANGUAGE_BEGIN = "<!-- language:begin (generated from README.md's 'The language'; do not edit) -->"
LANGUAGE_END = "<!-- language:end -->"
README_LANGUAGE = ("## The language\n", "### Attributes and their defaults per profile")
CATEGORIES = (
    ("layer", "Layers"),
    ("activation", "Activations"),
    ("wrapper", "Wrappers"),
    ("merge", "Merges"),
)
# the train block's keys that are no TRAIN_SETTINGS entry: each names a table of its own below
TRAIN_KEYS = (
    (
        "optimizer",
        TRAIN_DEFAULT_OPTIMIZER,
        "the update rule: a name or a call, [Optimisers](#optimisers)",
    ),
    ("schedule", TRAIN_DEFAULT_SCHEDULE, "the learning rate over time, [Schedules](#schedules)"),
    ("init", "the profile's", "initialiser of every layer's kernel (a layer's own init= wins)"),
    ("bias_init", "the profile's", "initialiser of every bias (a layer's own bias_init= wins)"),
    ("recurrent_init", "the profile's", "initialiser of every recurrent kernel"),
    ("data", TRAIN_DEFAULT_DATA, "the dataset: a name or a call, [Datasets](#datasets)"),
)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _html_safe(line: str) -> str:
    """A Markdown line with `<` outside code spans written `&lt;`: `result_<target>` is no tag."""
    parts = line.split("`")
    return "`".join(p.replace("<", "&lt;") if i % 2 == 0 else p for i, p in enumerate(parts))


def _page(lines: list[str]) -> str:
    """The page's text: every line but the generated-file comment made HTML-safe."""
    safe = [line if line == GENERATED else _html_safe(line) for line in lines]
    return "\n".join(safe).rstrip("\n") + "\n"


def _attr_rows(table: dict[str, AttrSpec]) -> list[str]:
    head = "| attribute | " + " | ".join(PROFILES) + " | meaning |"
    rows = [head, "|---|" + "---|" * len(PROFILES) + "---|"]
    for key, spec in table.items():
        values = " | ".join(_default_text(spec, p) for p in PROFILES)
        rows.append(f"| `{key}` | {values} | {_escape(spec.doc)} |")
    return rows


def _op_section(spec: OpSpec, backends: dict[str, object]) -> list[str]:
    lines = [f"### {spec.name}", "", _escape(spec.doc) + ".", ""]
    if spec.positional:
        args = ", ".join(spec.positional)
        lines += [f"Positional arguments, in order: `{spec.name}({args})`.", ""]
    if spec.params:
        lines += ["Parameters: " + ", ".join(f"`{p}`" for p in spec.params) + ".", ""]
    marks = ", ".join(f"{name} {_mark(b, spec.name)}" for name, b in backends.items())
    lines += [f"Targets: {marks}.", ""]
    if spec.attrs:
        lines += _attr_rows(spec.attrs) + [""]
    for key, meaning in spec.derived.items():
        lines += [f"Set by the shapes pass, never written: `{key}`, {_escape(meaning)}.", ""]
    return lines


def _layers() -> list[str]:
    backends = {name: cls() for name, cls in TARGETS.items()}
    lines: list[str] = []
    for category, title in CATEGORIES:
        lines += [f"## {title}", ""]
        for spec in OPS.values():
            if spec.category == category:
                lines += _op_section(spec, backends)
    return lines


def _train() -> list[str]:
    lines = ["## The train block", "", "| setting | default | meaning |", "|---|---|---|"]
    for key, spec in TRAIN_SETTINGS.items():
        lines.append(f"| `{key}` | {_default_text(spec, 'dlspec')} | {_escape(spec.doc)} |")
    for key, default, doc in TRAIN_KEYS:
        lines.append(f"| `{key}` | {default} | {doc} |")
    lines += ["", "Losses: " + ", ".join(f"`{name}`" for name in LOSSES) + ".", ""]
    lines += ["### Optimisers", ""]
    for name, table in OPTIMIZERS.items():
        lines += [f"#### {name}", ""] + _attr_rows(table) + [""]
    lines += ["### Schedules", ""]
    for name, table in SCHEDULES.items():
        lines += [f"#### {name}", ""] + (_attr_rows(table) if table else ["No attributes."]) + [""]
    return lines


def _datasets() -> list[str]:
    lines = ["### Datasets", "", "| dataset | sample | meaning | attributes |", "|---|---|---|---|"]
    for name, spec in DATASETS.items():
        shape = f"{spec.dtype}{list(spec.shape)}" if spec.shape else "the input's"
        attrs = ", ".join(
            f"`{k}` ({_default_text(a, 'dlspec')}): {a.doc}" for k, a in spec.attrs.items()
        )
        lines.append(f"| `{name}` | {shape} | {_escape(spec.doc)} | {_escape(attrs) or 'none'} |")
    return lines + [""]


def _top() -> list[str]:
    lines = ["## Top-level settings", "", "| setting | default | meaning |", "|---|---|---|"]
    for key, spec in TOP_SETTINGS.items():
        default = "none" if spec.default is None else _default_text(spec, "dlspec")
        lines.append(f"| `{key}` | {default} | {_escape(spec.doc)} |")
    lines += ["", "`verify = tolerance(...)` takes:", "", "| bound | meaning |", "|---|---|"]
    for key, spec in VERIFY_TOLERANCES.items():
        lines.append(f"| `{key}` | {_escape(spec.doc)} |")
    return lines + [""]


def reference_page() -> str:
    """docs/reference.md: every layer, setting and dataset with its attributes and defaults."""
    intro = [
        "# Reference",
        "",
        GENERATED,
        "",
        "Every op, train setting and dataset that a spec may name, generated from the op and settings tables. "
        "Each attribute's default is given per defaults profile (`defaults = dlspec | pytorch | "
        "keras`); how to write them is in [The language](language.md), what each means exactly "
        "in [Semantics](semantics.md).",
        "",
    ]
    return _page(intro + _layers() + _train() + _datasets() + _top())


def support_page() -> str:
    """docs/support.md: the README's generated tables (support, attributes, flags, results)."""
    parts = [
        "# Support tables",
        "",
        GENERATED,
        "",
        "The same tables as the README's, from the same code (`dlspec/support.py`).",
        "",
        "## Layer x target support",
        "",
        support_table(),
        "",
        "## Attributes and their defaults per profile",
        "",
        attribute_table(),
        "",
        "## Flags of the generated scripts",
        "",
        flags_table(),
        "",
        "## The results JSON",
        "",
        results_table(),
    ]
    return _page("\n".join(parts).split("\n"))


def grammar_text(root: Path) -> str:
    """The grammar file, as the fenced block that docs/language.md shows."""
    text = (root / "grammar" / "dlspec.lark").read_text(encoding="utf-8").rstrip("\n")
    return "```text\n" + text + "\n```"


def readme_language(root: Path) -> str:
    """The README's language section for the site: spec fences marked `dl`, links made relative."""
    readme = (root / "README.md").read_text(encoding="utf-8")
    begin, end = README_LANGUAGE
    section = readme[readme.index(begin) + len(begin) : readme.index(end)].strip("\n")
    section = section.replace("](docs/", "](")
    lines, inside = [], False
    for line in section.split("\n"):
        if line == "```":
            line = "```" if inside else "```dl"
            inside = not inside
        lines.append(line)
    return "\n".join(lines)


def _region(text: str, begin: str, end: str, body: str) -> str:
    start = text.index(begin) + len(begin)
    return text[:start] + "\n" + body + "\n" + text[text.index(end) :]


def language_page(text: str, root: Path) -> str:
    """docs/language.md with its generated regions (README's section, the grammar) current."""
    text = _region(text, LANGUAGE_BEGIN, LANGUAGE_END, readme_language(root))
    return _region(text, GRAMMAR_BEGIN, GRAMMAR_END, grammar_text(root))


def pages(root: Path) -> dict[str, Callable[[str], str]]:
    """Each generated docs file (relative to root) and the function that makes its new text."""
    return {
        "docs/reference.md": lambda _old: reference_page(),
        "docs/support.md": lambda _old: support_page(),
        "docs/language.md": lambda old: language_page(old, root),
    }


def stale(root: Path) -> list[str]:
    """The generated docs files whose committed text differs from what `make generate` writes."""
    out = []
    for rel, make in pages(root).items():
        path = root / rel
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if make(old) != old:
            out.append(rel)
    return out


def update(root: Path) -> list[str]:
    """Rewrite the generated docs files; the ones that changed."""
    changed = []
    for rel, make in pages(root).items():
        path = root / rel
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        new = make(old)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(rel)
    return changed
