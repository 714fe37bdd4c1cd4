"""`dlspec completion SHELL`: the completion script shtab writes from the argument parser."""

from __future__ import annotations

import argparse

from dlspec.backends import TARGETS

SHELLS = ("bash", "zsh", "tcsh")
_NAMES = " ".join([*TARGETS, "all"])
# bash: a function given the word being completed, printing the candidates (shtab's convention)
_PREAMBLE = {
    "bash": f'_dlspec_targets() {{ compgen -W "{_NAMES}" -- "$1"; }}\n',
    "zsh": "",
    "tcsh": "",
}
_TARGET_NAMES = {"bash": "_dlspec_targets", "zsh": f"({_NAMES})", "tcsh": f"({_NAMES})"}
_SPEC_FILES = {"bash": "_shtab_compgen_files", "zsh": "_files -g '*.dl'", "tcsh": "f"}


def _mark(parser: argparse.ArgumentParser) -> None:
    """Tell shtab what each argument takes: spec files, target names (in every subcommand)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _mark(sub)
        elif action.dest in ("specs", "spec"):
            action.complete = _SPEC_FILES  # type: ignore[attr-defined]
        elif action.dest in ("target", "targets"):
            action.complete = _TARGET_NAMES  # type: ignore[attr-defined]


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell` (bash, zsh or tcsh)."""
    import shtab

    _mark(parser)
    text = shtab.complete(parser, shell=shell, preamble=_PREAMBLE[shell])
    return text if text.endswith("\n") else text + "\n"
