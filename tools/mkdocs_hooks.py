"""mkdocs hooks for the docs site: write the Pygments style sheet the highlighted blocks use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pygments.formatters import HtmlFormatter


def on_post_build(config: Any, **_kwargs: Any) -> None:
    """Write site/pygments.css (codehilite's `.codehilite` classes, Pygments' default style)."""
    css = HtmlFormatter(style="default").get_style_defs(".codehilite")
    Path(config["site_dir"], "pygments.css").write_text(css + "\n", encoding="utf-8")
