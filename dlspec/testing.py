"""Helpers for users' own test suites: assert that dlspec's targets compute the same model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from dlspec.frontend.load import build, build_file
from dlspec.runtimes import expand
from dlspec.verify.run import Check, matrix, verify_model


def assert_equivalent(
    spec: Union[str, Path],
    targets: Sequence[str] = ("pytorch",),
    steps: int = 5,
    text: Optional[str] = None,
) -> list[Check]:
    """Verify `spec` (a path, or `text` with `spec` as its name) on `targets`; raise
    AssertionError with the whole matrix if any check fails. Returns the checks."""
    model = build(text, str(spec)).model if text is not None else build_file(str(spec)).model
    checks = verify_model(model, expand(list(targets)), steps)
    failed = [c for c in checks if not c.passed]
    if failed:
        raise AssertionError("dlspec verify failed:\n" + matrix(checks))
    return checks
