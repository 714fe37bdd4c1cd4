"""Attribute specs: how a stated value is read (the converters) and its default per profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Container, Mapping, Optional, Union

from dlspec.frontend import ast
from dlspec.frontend import values as V
from dlspec.ir.inits import init_spec
from dlspec.ir.model import InitSpec
from dlspec.limits import MAX_STACKED

PROFILES = ("dlspec", "pytorch", "keras")
# a per-profile default is an overlay: the root's value, then only where a profile differs from
# its parent's (a profile missing from the dict takes its parent's)
PROFILE_PARENT = {"pytorch": "dlspec", "keras": "dlspec"}
REQUIRED = object()

Default = Union[Any, dict, Callable[[dict], Any]]


@dataclass(frozen=True)
class AttrSpec:
    """One attribute: how to read it, its default per profile, and what it means."""

    convert: Callable[..., Any]
    default: Default = REQUIRED
    doc: str = ""

    def stated_for(self, profile: str) -> Any:
        """The default as `profile` states it, else as its nearest ancestor does: a value, or a
        function of the other attributes."""
        d = self.default
        if not isinstance(d, dict):
            return d
        while profile not in d:
            profile = PROFILE_PARENT[profile]
        return d[profile]

    def derived(self, profile: str) -> bool:
        """Whether the default under `profile` is computed from the other attributes."""
        d = self.stated_for(profile)
        return callable(d) and not isinstance(d, InitSpec)

    def default_for(self, profile: str, attrs: dict) -> Any:
        """The default under a profile, given the attributes resolved so far."""
        d = self.stated_for(profile)
        if callable(d) and not isinstance(d, InitSpec):
            return d(attrs)
        return d


# ---- converters ------------------------------------------------------------------------------


def pos_int(v: Any, what: str) -> int:
    return V.integer(v, what, 1)


def stack_count(v: Any, what: str) -> int:
    return V.integer(v, what, 1, MAX_STACKED)


def nonneg_int(v: Any, what: str) -> int:
    return V.integer(v, what, 0)


def pair(v: Any, what: str) -> tuple[int, int]:
    return V.int_pair(v, what, 1)


def rate(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, 1.0, high_open=True)


def unit_open(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, 1.0, high_open=True)


def pos_real(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, low_open=True)


def nonneg_real(v: Any, what: str) -> float:
    return V.real(v, what, 0.0)


def any_real(v: Any, what: str) -> float:
    return V.real(v, what)


def one_of(
    *options: str, elsewhere: Optional[Mapping[str, str]] = None
) -> Callable[[Any, str], str]:
    """One of `options` (`elsewhere`: other frameworks' names for them, for the message)."""

    def convert(v: Any, what: str) -> str:
        return V.choice(v, what, options, elsewhere)

    return convert


def explicit_padding(v: Any, what: str) -> V.Pads:
    """An integer, [ph, pw] or [[top, bottom], [left, right]]; `valid` and `same` are refused,
    since they describe the padding of a window and zeropad2d has none."""
    if isinstance(v, ast.Name):
        raise V.bad(
            f"{what} must be an integer, [ph, pw] or [[top, bottom], [left, right]], not "
            f"{V.show(v)} (valid and same describe a window's padding; there is no window here)",
            v.pos,
        )
    pads = V.padding(v, what)
    assert not isinstance(pads, str)
    return pads


def init_value(v: Any, what: str) -> InitSpec:
    return init_spec(v, what)


def fraction(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, 1.0)


def named_elsewhere(
    aliases: Mapping[str, tuple[str, ...]], known: Container[str]
) -> dict[str, str]:
    """For "unknown argument" messages: each name other frameworks use (`aliases`: its plain
    spelling -> the arguments it may mean) -> how dlspec writes those of them in `known`."""
    found = {}
    for name, meanings in aliases.items():
        ours = [arg for arg in meanings if arg in known]
        if ours:
            found[name] = ", ".join(f"{arg}=..." for arg in ours)
    return found
