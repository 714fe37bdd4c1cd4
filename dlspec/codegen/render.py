"""Render a template with Jinja (StrictUndefined) and format the result as the pinned black does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from dlspec.codegen.pyformat import Unsupported, format_python
from dlspec.codegen.templating import environment, json_text, to_json

__all__ = ["environment", "json_text", "to_json"]  # the Jinja side lives in templating

if TYPE_CHECKING:
    import black


@dataclass(frozen=True)
class FormatMode:
    """How a script is formatted: black 26.10.1's stable style, 100 columns, magic trailing
    commas; `py2` for scripts that must also parse as Python 2.7 (the cntk target): black is
    told the oldest target version it knows, so it never writes what only Python 3.6+ parses
    (a trailing comma after *args or **kwargs, which it adds when it infers a py36+ file)."""

    py2: bool = False

    def black_mode(self) -> black.Mode:
        """The same mode as black's own object (importing black)."""
        import black

        versions = {black.TargetVersion.PY33} if self.py2 else set()
        return black.Mode(
            target_versions=versions,
            line_length=100,
            string_normalization=True,
            magic_trailing_comma=True,
        )


PY3_FORMAT = FormatMode()
PY2_FORMAT = FormatMode(py2=True)


def __getattr__(name: str) -> Any:
    """BLACK_MODE and PY2_BLACK_MODE: black's Mode objects for the two formats (black is
    imported only when one is asked for)."""
    if name == "BLACK_MODE":
        return PY3_FORMAT.black_mode()
    if name == "PY2_BLACK_MODE":
        return PY2_FORMAT.black_mode()
    raise AttributeError(name)


# Where black's output is cached (dlspec.codegen.format_cache); None, the default, formats anew.
_format_cache: Optional[Path] = None


def use_format_cache(directory: Optional[Path]) -> Optional[Path]:
    """Cache formatted scripts in directory from now on (None: stop caching): the fast
    formatter's output, and black's for what it leaves to black; returns the folder used until
    now, for the caller to restore."""
    global _format_cache
    previous, _format_cache = _format_cache, directory
    if previous is not None and previous != directory:
        from dlspec.codegen.item_cache import close

        close(previous)
    return previous


def _as_format(mode: Union[FormatMode, black.Mode]) -> FormatMode:
    """A FormatMode for either kind of mode (black's own: py2 when it names target versions)."""
    if isinstance(mode, FormatMode):
        return mode
    return PY2_FORMAT if mode.target_versions else PY3_FORMAT


def format_with_black(source: str, mode: Union[FormatMode, black.Mode] = PY3_FORMAT) -> str:
    """black.format_str with the pinned mode (through the output cache when one is in use)."""
    import black

    black_mode = _as_format(mode).black_mode()
    if _format_cache is not None:
        from dlspec.codegen.format_cache import format_cached

        return format_cached(source, black_mode, _format_cache)
    return black.format_str(source, mode=black_mode)


def format_source(source: str, mode: Union[FormatMode, black.Mode] = PY3_FORMAT) -> str:
    """black-format Python source with a pinned mode (default: the Python 3 targets').

    dlspec.codegen.pyformat writes black's bytes for the code the templates emit, without
    black; whatever it does not reproduce goes to black itself (imported then). With the output
    cache in use, a source formatted before is read back instead (format_cache.output_cached),
    and of one that was not, the statements formatted before (item_cache)."""
    fmt = _as_format(mode)
    try:
        if _format_cache is None:
            return format_python(source, fmt.py2)
        from dlspec.codegen.format_cache import output_cached
        from dlspec.codegen.item_cache import memo_for

        directory = _format_cache
        return output_cached(
            source, fmt.py2, directory, lambda: format_python(source, fmt.py2, memo_for(directory))
        )
    except Unsupported:
        return format_with_black(source, mode)


def render_unformatted(template: str, context: dict[str, Any]) -> str:
    """The template rendered with the context, before formatting."""
    return environment().get_template(template).render(**context)


def render(template: str, context: dict[str, Any], mode: FormatMode = PY3_FORMAT) -> str:
    """Render and format; a template bug surfaces as black's InvalidInput with the raw text."""
    return format_source(render_unformatted(template, context), mode)
