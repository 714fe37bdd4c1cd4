"""The pre-commit hooks (.pre-commit-hooks.yaml), run by pre-commit itself on a scratch repository.

pre-commit would build each hook a virtualenv from this repository (pip installs black, numpy,
lark from PyPI: 19-70 s, and PyPI must be reachable); the tests keep each hook's id, files, args
and pass_filenames as .pre-commit-hooks.yaml declares them and run them as `language: system`
hooks with this checkout's dlspec instead (DLSPEC_PRECOMMIT_REAL=1 also runs the real hook)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
pytestmark = [
    pytest.mark.precommit,
    pytest.mark.skipif(not Path(PRE_COMMIT).exists(), reason="pre-commit is not installed"),
]

GOOD = "model m {\n    input x: float32[4]\n    dense(2)\n}\n"
MESSY = "model m { input x: float32[4]\n dense(2) }\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _scratch(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    return repo


def _run(repo: Path, *args: str, checkout: bool = True) -> subprocess.CompletedProcess[str]:
    """pre-commit in repo; checkout: this checkout's dlspec first on the path (system hooks)."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(repo.parent / "cache")}
    env.pop("PYTHONPATH", None)
    if checkout:
        env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [PRE_COMMIT, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )


def _system_config(repo: Path) -> None:
    """A local config with the declared hooks, each run by this interpreter's dlspec."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    local = []
    for hook in hooks:
        entry = hook["entry"].replace("dlspec", f"{sys.executable} -m dlspec.cli", 1)
        local.append({**hook, "entry": entry, "language": "system"})
    config = {"repos": [{"repo": "local", "hooks": local}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def test_hooks_declared() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"dlspec-fmt", "dlspec-check"}
    assert hooks["dlspec-fmt"]["entry"] == "dlspec fmt --check"
    assert hooks["dlspec-fmt"]["files"] == r"\.dl$"
    assert hooks["dlspec-check"]["pass_filenames"] is False


def test_fmt_hook_passes_formatted_and_fails_messy_specs(tmp_path: Path) -> None:
    repo = _scratch(tmp_path)
    _system_config(repo)
    (repo / "a.dl").write_text(GOOD, encoding="utf-8")
    _git(repo, "add", ".")
    done = _run(repo, "run", "dlspec-fmt", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    (repo / "b.dl").write_text(MESSY, encoding="utf-8")
    _git(repo, "add", ".")
    done = _run(repo, "run", "dlspec-fmt", "--all-files")
    assert done.returncode == 1
    assert "would reformat b.dl" in done.stdout
    assert (repo / "b.dl").read_text(encoding="utf-8") == MESSY  # --check writes nothing


def test_check_hook_finds_a_hand_edited_script(tmp_path: Path) -> None:
    repo = _scratch(tmp_path)
    _system_config(repo)
    shutil.copy(ROOT / "examples" / "mnist_mlp.dl", repo / "mnist_mlp.dl")
    compile_args = [sys.executable, "-m", "dlspec.cli", "compile", "mnist_mlp.dl", "--target"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([*compile_args, "all", "--out-dir", "generated"], cwd=repo, env=env, check=True)
    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    for hook in config["repos"][0]["hooks"]:
        if hook["id"] == "dlspec-check":
            hook["args"] = ["mnist_mlp.dl", *hook["args"]]
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    _git(repo, "add", ".")
    done = _run(repo, "run", "dlspec-check", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    script = next((repo / "generated" / "pytorch").glob("*.py"))
    script.write_text(script.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    _git(repo, "add", ".")
    done = _run(repo, "run", "dlspec-check", "--all-files")
    assert done.returncode == 1
    assert "stale or were edited by hand" in done.stdout


@pytest.mark.skipif(not os.environ.get("DLSPEC_PRECOMMIT_REAL"), reason="DLSPEC_PRECOMMIT_REAL")
def test_real_hook_from_this_repository(tmp_path: Path) -> None:
    """pre-commit try-repo: the hook's own virtualenv, built from this checkout's HEAD."""
    repo = _scratch(tmp_path)
    (repo / "b.dl").write_text(MESSY, encoding="utf-8")
    _git(repo, "add", ".")
    done = _run(repo, "try-repo", str(ROOT), "dlspec-fmt", "--all-files", checkout=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "would reformat b.dl" in done.stdout
