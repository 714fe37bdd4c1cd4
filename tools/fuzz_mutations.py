"""The fuzzer's corpus and its seeded mutations: (rng, spec bytes, corpus) -> spec bytes."""

from __future__ import annotations

import keyword
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
CORPUS_GLOBS = ("examples/*.dl", "tests/specs/*.dl", "tests/fixtures/**/*.dl")
Mutator = Callable[[random.Random, bytes, Sequence[bytes]], bytes]

# ---- corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One corpus file: its path relative to the repository and its bytes."""

    name: str
    data: bytes


def load_corpus(root: Path = ROOT) -> list[Seed]:
    """Every example, regression spec and fixture spec, in a stable order."""
    paths = sorted({p for pattern in CORPUS_GLOBS for p in root.glob(pattern)})
    return [Seed(p.relative_to(root).as_posix(), p.read_bytes()) for p in paths]


# ---- hostile material --------------------------------------------------------------------

HOSTILE_CHARS: tuple[bytes, ...] = (
    b"\r",
    b"\r\n",
    b"\n\r",
    b"\x0b",
    b"\x0c",
    b"\x00",
    b"\t",
    b"\x1c",
    b"\x1d",
    b"\x1e",
    b"\x1b[2J",
    b"\x7f",
    "\u2028".encode(),
    "\u2029".encode(),
    "\x85".encode(),
    "\ufeff".encode(),
    "\u00a0".encode(),
    "\u200b".encode(),
    "\u202e".encode(),
    "\U0001f600".encode(),
    b"\xff\xfe",
    b"\x80",
    b"\xc0\xaf",  # overlong '/'
    b"\xe0\x80\xaf",  # overlong '/', three bytes
    b"\xf0\x80\x80\xaf",  # overlong '/', four bytes
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xe2\x82",  # a truncated sequence
    b"\xf8\x88\x80\x80\x80",  # a five-byte form
)
LINE_BREAKS: tuple[bytes, ...] = (
    b"\r\n",
    b"\r",
    b"\n\r",
    b"\x0c\n",
    b"\x0b",
    b"\x0c",
    b"\x1e",
    "\u2028".encode(),
    "\x85".encode(),
)

HOSTILE_NUMBERS: tuple[bytes, ...] = (
    b"0",
    b"-1",
    b"-0",
    b"+0",
    b"00",
    b"2147483648",
    b"9223372036854775808",
    b"1" * 500,
    b"1" + b"0" * 4999,
    b"1e999",
    b"-1e999",
    b"1e-999",
    b"1e308",
    b"4.9e-324",
    b"nan",
    b"inf",
    b"-inf",
    b"NaN",
    b"0.5",
    b"1.0",
    b"1.",
    b".5",
    b"1e3",
    b"0x10",
    b"1_000",
)
FRAMEWORK_NAMES = (
    "forward",
    "training",
    "name",
    "layers",
    "weights",
    "call",
    "build",
    "variables",
    "trainable_variables",
    "submodules",
    "parameters",
    "modules",
    "state_dict",
    "cuda",
    "to",
    "apply",
    "compile",
    "fit",
    "summary",
    "inputs",
    "outputs",
    "self",
    "super",
    "__init__",
    "__class__",
    "__dict__",
    "tf",
    "torch",
    "nn",
    "np",
    "keras",
    "ops",
    "F",
    "Net",
    "main",
    "model",
    "optimizer",
    "loss",
    "step",
    "x",
    "_",
    "__",
)
HOSTILE_NAMES: tuple[str, ...] = (
    *keyword.kwlist,
    *keyword.softkwlist,
    "print",
    "len",
    "list",
    "type",
    "object",
    "exec",
    "eval",
    "open",
    "__import__",
    *FRAMEWORK_NAMES,
    "a" * 300,
    "A" * 5000,
)
HOSTILE_STRINGS: tuple[bytes, ...] = (
    b'""',
    b'"a\\"b"',
    b'"\\\\"',
    b'"\\n"',
    b"\"'''\"",
    b'"\\"\\"\\""',
    b'"{{ x }}{% if %}"',
    b'"%s %d {0}"',
    b'"\r"',
    b'"\x0b\x0c"',
    '"\u2028"'.encode(),
    '"\x85"'.encode(),
    b'"\xff"',
    b"\"'); import os; os.system('id') #\"",
    b'"' + b"x" * 3000 + b'"',
)
PUNCTUATION = b"{}[](),:=-+.#\"'\\ \n\t0123456789e_xyz>"
TOKENS: tuple[bytes, ...] = (
    b"model",
    b"train",
    b"input",
    b"defaults",
    b"->",
    b"{",
    b"}",
    b"(",
    b")",
    b"[",
    b"]",
    b"=",
    b":",
    b",",
    b"#",
    b'"',
    b"float32",
    b"int32",
    b"dense(4)",
    b"relu",
    b"conv2d(3, kernel=1)",
    b"flatten",
    b"float32[3, 4]",
)

NUMBER_RE = re.compile(rb"(?<![\w.])[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.])")
NAME_RE = re.compile(rb"(?<![\w.])[A-Za-z_]\w*")
INPUT_RE = re.compile(rb"\binput\s+([A-Za-z_]\w*)")
MODEL_RE = re.compile(rb"\bmodel\s+([A-Za-z_]\w*)")
VALUE_RE = re.compile(rb"=\s*([^,\n)\]]+)")
LAYER_RE = re.compile(rb"^[ \t]*(?:[A-Za-z_]\w*\s*:\s*)?[A-Za-z_]\w*\s*(?:\(|->|$)", re.M)

# ---- mutators: (rng, data, corpus) -> data -----------------------------------------------


def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def _span(rng: random.Random, data: bytes) -> tuple[int, int]:
    start = _pos(rng, data)
    return start, min(len(data), start + rng.choice((1, 1, 2, 3, 5, 8, 32, 128)))


def _line_starts(data: bytes) -> list[int]:
    return [0] + [m.end() for m in re.finditer(rb"\n", data)]


def _log_int(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high], log-uniform: small values are as likely as big ones."""
    return min(high, int(low * (high / low) ** rng.random()))


def _replace_match(
    rng: random.Random, data: bytes, pattern: re.Pattern[bytes], new: bytes
) -> bytes:
    matches = list(pattern.finditer(data))
    if not matches:
        return new + b" " + data
    m = rng.choice(matches)
    group = 1 if pattern.groups else 0
    return data[: m.start(group)] + new + data[m.end(group) :]


def mut_delete(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Delete a span of bytes."""
    start, end = _span(rng, data)
    return data[:start] + data[end:]


def mut_insert(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Insert random punctuation or a grammar token."""
    if rng.random() < 0.5:
        chunk = bytes(rng.choice(PUNCTUATION) for _ in range(rng.randint(1, 6)))
    else:
        chunk = rng.choice(TOKENS)
    at = _pos(rng, data)
    return data[:at] + chunk + data[at:]


def mut_duplicate(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Duplicate a span of bytes in place."""
    start, end = _span(rng, data)
    return data[:end] + data[start:end] + data[end:]


def mut_swap(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Swap two non-overlapping spans."""
    a, b, c, d = sorted(_pos(rng, data) for _ in range(4))
    return data[:a] + data[c:d] + data[b:c] + data[a:b] + data[d:]


def mut_splice(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Insert a run of lines from another corpus file at a line boundary."""
    other = rng.choice(corpus).splitlines(keepends=True) or [b""]
    start = rng.randrange(len(other))
    chunk = b"".join(other[start : start + rng.randint(1, 8)])
    at = rng.choice(_line_starts(data))
    return data[:at] + chunk + data[at:]


def mut_hostile_char(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Insert a control, separator, BOM or invalid UTF-8 sequence, often at a line edge."""
    char = rng.choice(HOSTILE_CHARS)
    starts = _line_starts(data)
    where = rng.random()
    if where < 0.3:
        at = rng.choice(starts)
    elif where < 0.5:
        at = max(0, rng.choice(starts) - 1)
    elif where < 0.6:
        at = 0
    else:
        at = _pos(rng, data)
    return data[:at] + char * rng.choice((1, 1, 1, 2, 5)) + data[at:]


def mut_comment(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """End a line with a comment full of hostile characters (the spec stays valid)."""
    chars = [c for c in HOSTILE_CHARS if b"\n" not in c]
    body = b"".join(rng.choice(chars) for _ in range(rng.randint(1, 6)))
    ends = [m.start() for m in re.finditer(rb"\n", data)] or [len(data)]
    at = rng.choice(ends)
    return data[:at] + b"  # " + body + b" '''\"\"\"{{ x }}" + data[at:]


def mut_line_breaks(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Replace some or all newlines by another line-break-like sequence."""
    new = rng.choice(LINE_BREAKS)
    if rng.random() < 0.5:
        return data.replace(b"\n", new)
    parts = data.split(b"\n")
    return b"".join(p + (new if rng.random() < 0.3 else b"\n") for p in parts[:-1]) + parts[-1]


def mut_number(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Replace a number by an extreme, non-integral, non-finite or malformed one."""
    return _replace_match(rng, data, NUMBER_RE, rng.choice(HOSTILE_NUMBERS))


def mut_name(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Replace any name by a Python keyword, a builtin, a framework attribute or a long name."""
    return _replace_match(rng, data, NAME_RE, rng.choice(HOSTILE_NAMES).encode())


def _input_name(data: bytes) -> bytes:
    m = INPUT_RE.search(data)
    return m.group(1) if m else b"x"


def mut_label(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Label a layer with a hostile name or with the input's own name."""
    layers = list(LAYER_RE.finditer(data))
    name = _input_name(data) if rng.random() < 0.3 else rng.choice(HOSTILE_NAMES).encode()
    if not layers:
        return data + b"\n" + name + b": relu\n"
    m = rng.choice(layers)
    indent = len(m.group(0)) - len(m.group(0).lstrip())
    at = m.start() + indent
    return data[:at] + name + b": " + data[at:]


def mut_rename(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Rename the model or the input to a hostile name."""
    pattern = MODEL_RE if rng.random() < 0.5 else INPUT_RE
    return _replace_match(rng, data, pattern, rng.choice(HOSTILE_NAMES).encode())


def mut_string(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Replace a value after `=` by a string literal with quotes, escapes or templating."""
    return _replace_match(rng, data, VALUE_RE, rng.choice(HOSTILE_STRINGS))


def _nest(rng: random.Random, depth: int) -> bytes:
    kind = rng.choice(("list", "call", "open", "close", "mixed"))
    if kind == "list":
        return b"[" * depth + b"1" + b"]" * depth
    if kind == "call":
        return b"f(" * depth + b"1" + b")" * depth
    if kind == "open":
        return rng.choice((b"[", b"(", b"{", b"f(")) * depth
    if kind == "close":
        return rng.choice((b"]", b")", b"}")) * depth
    return b"[f(" * depth + b"1" + b")]" * depth


def mut_nesting(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Put a value nested 50 to 2000 deep (lists, calls, or unbalanced) where a value goes."""
    nested = _nest(rng, _log_int(rng, 50, 2000))
    if rng.random() < 0.7:
        return _replace_match(rng, data, NUMBER_RE, nested)
    at = _pos(rng, data)
    return data[:at] + nested + data[at:]


def mut_braces(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Unbalance the brackets: drop one, or add a run of one kind."""
    found = [m.start() for m in re.finditer(rb"[{}()\[\]]", data)]
    if found and rng.random() < 0.5:
        at = rng.choice(found)
        return data[:at] + data[at + 1 :]
    at = _pos(rng, data)
    return data[:at] + rng.choice(b"{}()[]").to_bytes(1, "big") * rng.randint(1, 40) + data[at:]


def mut_repeat_layer(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Repeat one layer line 1000 to 20000 times."""
    layers = [m for m in LAYER_RE.finditer(data) if not m.group(0).lstrip().startswith(b"input")]
    count = _log_int(rng, 1000, 20000)
    if not layers:
        return data + b"\n    relu\n" * count
    m = rng.choice(layers)
    end = data.find(b"\n", m.start())
    end = len(data) if end < 0 else end + 1
    line = data[m.start() : end]
    line = line if line.endswith(b"\n") else line + b"\n"
    return data[: m.start()] + line * count + data[end:]


def mut_huge_attribute(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Give an RNN a huge `layers=`, or a layer a huge size."""
    value = rng.choice((b"1000", b"100000", b"2147483648", b"9223372036854775808"))
    layers = re.search(rb"layers\s*=\s*\d+", data)
    if layers and rng.random() < 0.7:
        return data[: layers.start()] + b"layers=" + value + data[layers.end() :]
    call = rng.choice((b"gru(4, layers=", b"lstm(4, layers=", b"dense(", b"embedding(10, "))
    body = re.search(rb"\bmodel\b[^{]*\{", data)
    at = body.end() if body else len(data)
    return data[:at] + b"\n    " + call + value + b")\n" + data[at:]


MUTATORS: dict[str, Mutator] = {
    "delete": mut_delete,
    "insert": mut_insert,
    "duplicate": mut_duplicate,
    "swap": mut_swap,
    "splice": mut_splice,
    "hostile_char": mut_hostile_char,
    "comment": mut_comment,
    "line_breaks": mut_line_breaks,
    "number": mut_number,
    "name": mut_name,
    "label": mut_label,
    "rename": mut_rename,
    "string": mut_string,
    "nesting": mut_nesting,
    "braces": mut_braces,
    "repeat_layer": mut_repeat_layer,
    "huge_attribute": mut_huge_attribute,
}
WEIGHTS: dict[str, float] = {
    "delete": 6,
    "insert": 6,
    "duplicate": 4,
    "swap": 3,
    "splice": 4,
    "hostile_char": 10,
    "comment": 4,
    "line_breaks": 5,
    "number": 10,
    "name": 8,
    "label": 6,
    "rename": 4,
    "string": 4,
    "nesting": 4,
    "braces": 4,
    "repeat_layer": 1,
    "huge_attribute": 3,
}
