"""The tests' temporary folder: pytest's own, in the test process and in the processes it starts."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def test_temporary_files_go_under_pytest_basetemp(temporary_files_in_basetemp: Path) -> None:
    """tempfile here and in a child process points at the session's folder, not /tmp."""
    assert temporary_files_in_basetemp.is_dir()
    assert Path(tempfile.gettempdir()) == temporary_files_in_basetemp
    child = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(child.stdout.strip()) == temporary_files_in_basetemp
    with tempfile.NamedTemporaryFile() as handle:
        assert Path(handle.name).parent == temporary_files_in_basetemp


def test_a_passing_tests_folder_is_removed_when_it_ends(pytestconfig: pytest.Config) -> None:
    """Only a failure's folder outlives its test: a whole run's came to gigabytes."""
    assert pytestconfig.getini("tmp_path_retention_policy") == "failed"
