"""Convert syntax-tree values into checked Python values; each failure names its position."""

from __future__ import annotations

import keyword
import math
from typing import Any, Callable, Mapping, Optional, Union

from dlspec.errors import BadValue, DuplicateName, Pos, Problem, UnknownName
from dlspec.frontend import ast
from dlspec.limits import FLOAT32_MAX, FLOAT32_TINY, MAX_INT, MAX_NAME_LENGTH


class ValueProblem(Exception):
    """Raised by a converter; carries the Problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def plain(word: str) -> str:
    """A name as spellings are compared: lower case, without underscores."""
    return word.lower().replace("_", "")


def suggest(word: str, known: list[str], elsewhere: Optional[Mapping[str, str]] = None) -> str:
    """`; did you mean X?` for a known name spelled alike (case and underscores aside) or close
    to `word`; first, a name other frameworks use (`elsewhere`, keyed by its plain spelling)
    gets dlspec's way of writing it."""
    import difflib  # only on this path: not imported to compile

    if elsewhere and plain(word) in elsewhere:
        return f"; dlspec writes {elsewhere[plain(word)]}"
    alike = [name for name in known if plain(name) == plain(word) and name != word]
    close = alike or difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def bad(message: str, pos: Pos) -> ValueProblem:
    """A BadValue problem ready to raise."""
    return ValueProblem(BadValue(message, pos))


def show(value: ast.Value) -> str:
    """How a value was spelled, for messages (a long spelling cut short)."""
    text = _spelling(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _spelling(value: ast.Value) -> str:
    if isinstance(value, ast.Num):
        return value.text
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.Str):
        return repr(value.value)
    if isinstance(value, ast.ListVal):
        return "[" + ", ".join(_spelling(v) for v in value.items) + "]"
    return value.name + "(...)"


def number(value: ast.Value, what: str) -> Union[int, float]:
    """Any finite number."""
    if not isinstance(value, ast.Num) or not math.isfinite(value.value):
        raise bad(f"{what} must be a number, not {show(value)}", value.pos)
    return value.value


def real(
    value: ast.Value,
    what: str,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A float within [low, high] (ends optionally open), representable in float32."""
    x = float(number(value, what))
    if abs(x) > FLOAT32_MAX or 0 < abs(x) < FLOAT32_TINY:
        raise bad(f"{what}: {show(value)} is not representable in float32", value.pos)
    too_low = x <= low if low_open else x < low
    too_high = x >= high if high_open else x > high
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise bad(f"{what} must be in {lo}{low:g}, {high:g}{hi}, not {show(value)}", value.pos)
    return x


def integer(value: ast.Value, what: str, low: int = 0, high: int = MAX_INT) -> int:
    """An integer in [low, high]; no integer in a spec exceeds MAX_INT (int32)."""
    if not isinstance(value, ast.Num) or not isinstance(value.value, int):
        raise bad(f"{what} must be an integer, not {show(value)}", value.pos)
    if value.value < low:
        raise bad(f"{what} must be >= {low}, not {show(value)}", value.pos)
    if value.value > high:
        raise bad(f"{what} must be <= {high}, not {show(value)}", value.pos)
    return value.value


def int_pair(value: ast.Value, what: str, low: int = 1) -> tuple[int, int]:
    """An integer or a two-element list of integers."""
    if isinstance(value, ast.ListVal):
        if len(value.items) != 2:
            raise bad(f"{what} must be an integer or [height, width]", value.pos)
        return integer(value.items[0], what, low), integer(value.items[1], what, low)
    n = integer(value, what, low)
    return n, n


def name_problem(name: str, pos: Pos, what: str) -> Optional[Problem]:
    """Why `name` cannot name a model, input or layer (it becomes a file name, a Python
    attribute, an npz key and a framework layer name), or None."""
    if keyword.iskeyword(name) or name.startswith("_"):
        return BadValue(f"{what} {name!r} is a Python keyword or starts with '_'", pos)
    if len(name) > MAX_NAME_LENGTH:
        return BadValue(f"{what} has {len(name)} characters; the limit is {MAX_NAME_LENGTH}", pos)
    return None


def boolean(value: ast.Value, what: str) -> bool:
    """`true` or `false`."""
    if isinstance(value, ast.Name) and value.id in ("true", "false"):
        return value.id == "true"
    raise bad(f"{what} must be true or false, not {show(value)}", value.pos)


def choice(
    value: ast.Value,
    what: str,
    options: tuple[str, ...],
    elsewhere: Optional[Mapping[str, str]] = None,
) -> str:
    """One name out of a fixed set (`elsewhere`: other frameworks' names, as for suggest)."""
    if isinstance(value, ast.Name) and value.id in options:
        return value.id
    hint = ""
    if elsewhere is not None and isinstance(value, ast.Name):
        hint = suggest(value.id, list(options), elsewhere)
    if isinstance(value, ast.Str) and value.value in options:
        hint = f": write {value.value} without quotes"
    message = f"{what} must be one of {', '.join(options)}; got {show(value)}{hint}"
    raise ValueProblem(UnknownName(message, value.pos))


def keyed_args(
    args: tuple[ast.Arg, ...],
    order: tuple[str, ...],
    known: tuple[str, ...],
    what: str,
    noun: str,
    hint: str = "",
    elsewhere: Optional[Mapping[str, str]] = None,
) -> tuple[dict[str, ast.Value], list[Problem]]:
    """Name each argument (positional ones by `order`); report misplaced, unknown and repeated
    ones. `hint` follows the message for a positional argument beyond `order`; `elsewhere`:
    other frameworks' names for the arguments, as for suggest."""
    got: dict[str, ast.Value] = {}
    problems: list[Problem] = []
    after_keyword = False
    for i, arg in enumerate(args):
        if arg.key is not None:
            after_keyword = True
            key = arg.key
        elif after_keyword:
            problems.append(BadValue(f"{what}: positional argument after a keyword", arg.pos))
            continue
        elif i >= len(order):
            problems.append(BadValue(positional_limit(what, order) + hint, arg.pos))
            continue
        else:
            key = order[i]
        if key not in known:
            close = suggest(key, list(known), elsewhere)
            problems.append(UnknownName(f"{what} has no {noun} {key!r}{close}", arg.pos))
        elif key in got:
            problems.append(DuplicateName(f"{what}: {noun} {key!r} given twice", arg.pos))
        else:
            got[key] = arg.value
    return got, problems


def positional_limit(what: str, order: tuple[str, ...]) -> str:
    """How many positional arguments `what` takes, and which."""
    if not order:
        return f"{what} takes no positional arguments"
    plural = "s" if len(order) > 1 else ""
    return f"{what} takes at most {len(order)} positional argument{plural} ({', '.join(order)})"


Pads = tuple[tuple[int, int], tuple[int, int]]


def padding(value: ast.Value, what: str) -> Union[str, Pads]:
    """`valid`, `same`, an int, [ph, pw] or [[top, bottom], [left, right]]."""
    if isinstance(value, ast.Name):
        return choice(value, what, ("valid", "same"))
    if isinstance(value, ast.Num):
        p = integer(value, what, 0)
        return ((p, p), (p, p))
    if isinstance(value, ast.ListVal) and len(value.items) == 2:
        axes = []
        for item in value.items:
            if isinstance(item, ast.ListVal):
                if len(item.items) != 2:
                    raise bad(f"{what}: each axis takes [before, after]", item.pos)
                axes.append((integer(item.items[0], what), integer(item.items[1], what)))
            else:
                p = integer(item, what)
                axes.append((p, p))
        return (axes[0], axes[1])
    raise bad(
        f"{what} must be valid, same, an integer, [ph, pw] or [[top, bottom], [left, right]]",
        value.pos,
    )


Converter = Callable[[ast.Value, str], Any]
