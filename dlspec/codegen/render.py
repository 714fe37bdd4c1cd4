"""Render a template with Jinja (StrictUndefined) and format the result with the pinned black."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import black
import jinja2

from dlspec.codegen.format_cache import format_cached
from dlspec.resources import templates_dir

# black's mode is pinned here and never read from the caller's configuration.
BLACK_MODE = black.Mode(line_length=100, string_normalization=True, magic_trailing_comma=True)
# Scripts that must also parse as Python 2.7 (the cntk target): black told the oldest target it
# knows, so it never writes what only Python 3.6+ parses (a trailing comma after *args or
# **kwargs, which it adds when it infers a py36+ file, is a Python 2 syntax error).
PY2_BLACK_MODE = black.Mode(
    target_versions={black.TargetVersion.PY33},
    line_length=100,
    string_normalization=True,
    magic_trailing_comma=True,
)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja environment: strict, trailing newline kept, block whitespace trimmed."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


# Where black's output is cached (dlspec.codegen.format_cache); None, the default, formats anew.
_format_cache: Optional[Path] = None


def use_format_cache(directory: Optional[Path]) -> Optional[Path]:
    """Cache black's output in directory from now on (None: stop caching); returns the folder
    used until now, for the caller to restore."""
    global _format_cache
    previous, _format_cache = _format_cache, directory
    return previous


def format_source(source: str, mode: black.Mode = BLACK_MODE) -> str:
    """black-format Python source with a pinned mode (default: the Python 3 targets')."""
    if _format_cache is not None:
        return format_cached(source, mode, _format_cache)
    return black.format_str(source, mode=mode)


def render(template: str, context: dict[str, Any], mode: black.Mode = BLACK_MODE) -> str:
    """Render and format; a template bug surfaces as black's InvalidInput with the raw text."""
    source = environment().get_template(template).render(**context)
    return format_source(source, mode)
