"""The CLI's output: summary/doctor JSON and Markdown, colour rules, --quiet, shell completion."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from example_specs import EXAMPLES

from dlspec import runtimes
from dlspec.cli import main
from dlspec.runtimes import Runtime
from dlspec.verify.run import Check

ROOT = Path(__file__).resolve().parent.parent
MLP = "examples/mnist_mlp.dl"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TYPO = "model m {\n    input x: float32[4]\n    conv2(50, kernel=3)\n}\n"


class Terminal(io.StringIO):
    """A stream that says it is a terminal (what colour_enabled asks)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def _fake_probe(missing: set[str]) -> Any:
    def probe(rt: Runtime) -> tuple[bool, str]:
        return (False, f"No module named {rt.target!r}") if rt.name in missing else (True, "9.9")

    return probe


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str], tty: bool) -> tuple[int, str, str]:
    """main(argv) with stdout and stderr captured, both terminals or both not."""
    out, err = (Terminal(), Terminal()) if tty else (io.StringIO(), io.StringIO())
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _int(text: str) -> int:
    return int(text.replace(",", ""))


# --- summary --format json | markdown -------------------------------------------------------------


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_summary_json_shape_and_numbers_agree_with_the_table(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = str(spec.relative_to(ROOT))
    code, out, _ = _run(monkeypatch, ["summary", name, "--format", "json"], tty=False)
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "dlspec.summary/1" and len(data["models"]) == 1
    model = data["models"][0]
    assert set(model) == {
        "spec", "model", "profile", "parameters", "non_trainable", "inputs", "layers"
    }  # fmt: skip
    assert model["spec"] == name and isinstance(model["model"], str)
    for entry in model["inputs"]:
        assert set(entry) == {"name", "dtype", "shape"}
        assert all(isinstance(d, int) for d in entry["shape"])
    for layer in model["layers"]:
        assert set(layer) == {"name", "op", "shape", "parameters", "non_trainable"}
        assert isinstance(layer["parameters"], int) and isinstance(layer["non_trainable"], int)
        assert all(isinstance(d, int) for d in layer["shape"])
    assert model["parameters"] == sum(layer["parameters"] for layer in model["layers"])
    assert model["non_trainable"] == sum(layer["non_trainable"] for layer in model["layers"])

    code, table, _ = _run(monkeypatch, ["summary", name], tty=False)
    lines = table.splitlines()
    rows = lines[2 : 2 + len(model["inputs"]) + len(model["layers"])]
    by_name = {row.split()[0]: row for row in rows}
    for layer in model["layers"]:
        row = by_name[layer["name"]]
        assert _int(row.split()[-1]) == layer["parameters"]
        assert f"(N, {', '.join(map(str, layer['shape']))})" in row or layer["shape"] == []
    total = re.search(r"layers, ([0-9,]+) parameters", lines[-1])
    assert total and _int(total.group(1)) == model["parameters"]
    assert f"model {model['model']}: {len(model['layers'])} layers" in lines[-1]


def test_summary_json_holds_every_spec_given(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = [MLP, "examples/mnist_cnn.dl"]
    code, out, _ = _run(monkeypatch, ["summary", *specs, "--format", "json"], tty=True)
    assert code == 0 and not ANSI.search(out)  # JSON is never coloured
    assert [m["spec"] for m in json.loads(out)["models"]] == specs


def test_summary_markdown_is_a_github_table(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _run(monkeypatch, ["summary", MLP, "--format", "markdown"], tty=True)
    assert code == 0 and not ANSI.search(out)
    lines = out.splitlines()
    assert lines[0] == "| layer | op | output shape | parameters |"
    assert lines[1] == "| --- | --- | --- | ---: |"
    assert "| dense_1 | dense | (N, 512) | 401,920 |" in lines
    body = [line for line in lines[2:] if line.startswith("|")]
    assert len(body) == 8 and all(line.count(" | ") == 3 for line in body)
    assert lines[-1] == "model mnist_mlp: 7 layers, 669,706 parameters (defaults profile: keras)"


def test_summary_format_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, ["summary", MLP, "--format", "yaml"], tty=False)[0] == 2


# --- doctor --json --------------------------------------------------------------------------------


def test_doctor_json_shape_agrees_with_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtimes, "probe", _fake_probe({"keras[jax]"}))
    code, out, _ = _run(monkeypatch, ["doctor", "--json"], tty=True)
    assert code == 0 and not ANSI.search(out)
    data = json.loads(out)
    assert data["schema"] == "dlspec.doctor/1"
    assert data["config"] is None or isinstance(data["config"], str)
    assert [r["runtime"] for r in data["runtimes"]] == list(runtimes.ALL_RUNTIMES)
    assert isinstance(data["graphviz"]["runnable"], bool) and data["graphviz"]["status"]
    keys = {"target", "runtime", "interpreter", "source", "runnable", "version", "error", "fix"}
    for entry in data["runtimes"]:
        assert set(entry) == keys | {"emitter"}
        assert isinstance(entry["interpreter"], list) and isinstance(entry["runnable"], bool)
        if entry["runnable"]:
            assert entry["version"] == "9.9" and entry["error"] is None and entry["fix"] is None
        else:
            assert entry["version"] is None and "keras" in entry["error"] and entry["fix"]
    _, table, _ = _run(monkeypatch, ["doctor"], tty=False)
    rows = {line.split()[1]: line.split() for line in table.splitlines()[2:9]}
    for entry in data["runtimes"]:
        assert rows[entry["runtime"]][-2] == ("yes" if entry["runnable"] else "no")


# --- colour: only on a terminal, never with NO_COLOR ----------------------------------------------


def _checks() -> list[Check]:
    return [
        Check("mlp.dl", "pytorch", "forward", 1e-7, 2e-7, 1e-5, True),
        Check("mlp.dl", "keras[jax]", "step 1 loss", 3e-3, 4e-3, 1e-5, False, "dense_1.w"),
    ]


def _verify_with(monkeypatch: pytest.MonkeyPatch, checks: list[Check]) -> None:
    """`dlspec verify` with its runs replaced by `checks`: these tests are about the printing."""
    import dlspec.cli as cli
    from dlspec.verify import run as verify

    monkeypatch.setattr(cli, "_verify_runtimes", lambda *a: (["pytorch"], ["cntk: skipped"]))
    monkeypatch.setattr(verify, "verify_model", lambda *a, **k: list(checks))


COMMANDS = {
    "summary": ["summary", MLP],
    "doctor": ["doctor"],
    "verify": ["verify", MLP],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_colour_only_on_a_terminal_and_never_with_no_color(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtimes, "probe", _fake_probe({"mxnet"}))
    _verify_with(monkeypatch, _checks())
    plain = _run(monkeypatch, COMMANDS[command], tty=False)
    assert not ANSI.search(plain[1] + plain[2])
    coloured = _run(monkeypatch, COMMANDS[command], tty=True)
    assert ANSI.search(coloured[1]) and coloured[0] == plain[0]
    monkeypatch.setenv("NO_COLOR", "1")
    assert _run(monkeypatch, COMMANDS[command], tty=True) == plain
    monkeypatch.setenv("NO_COLOR", "")  # empty: not set
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ANSI.search(_run(monkeypatch, COMMANDS[command], tty=False)[1])


def test_coloured_tables_keep_the_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a terminal this wide: rich folds to fit a narrower one
    _verify_with(monkeypatch, _checks())
    code, out, _ = _run(monkeypatch, ["verify", MLP], tty=True)
    assert code == 1
    text = ANSI.sub("", out)
    assert re.search(r"pytorch +forward +1\.00e-07 +2\.00e-07 +1e-05 +ok", text)
    assert "FAIL (worst: dense_1.w)" in text and "1 passed, 1 failed" in text
    assert "\x1b[31m" in out or "\x1b[1;31m" in out  # FAIL in red
    _, out, _ = _run(monkeypatch, ["summary", MLP], tty=True)
    text = ANSI.sub("", out)
    assert re.search(r"dense_1 +dense +\(N, 512\) +401,920", text)
    assert "model mnist_mlp: 7 layers, 669,706 parameters" in text


def test_a_diagnostic_keeps_a_plain_first_line_and_highlights_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "typo.dl"
    spec.write_text(TYPO, encoding="utf-8")
    code, _, plain = _run(monkeypatch, ["compile", str(spec)], tty=False)
    assert code == 1 and not ANSI.search(plain)
    code, _, coloured = _run(monkeypatch, ["compile", str(spec)], tty=True)
    assert code == 1
    first, source, caret = coloured.splitlines()
    assert first == plain.splitlines()[0]
    assert first.startswith(f"{spec}:3:5: error: unknown layer 'conv2'")
    assert ANSI.search(source) and ANSI.sub("", source) == plain.splitlines()[1]
    assert ANSI.sub("", caret) == plain.splitlines()[2] == "        ^~~~~"
    monkeypatch.setenv("NO_COLOR", "yes")
    assert _run(monkeypatch, ["compile", str(spec)], tty=True)[2] == plain


def test_fmt_diff_is_coloured_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "loose.dl"
    spec.write_text((ROOT / MLP).read_text(encoding="utf-8").replace("    ", "  "))
    code, plain, _ = _run(monkeypatch, ["fmt", "--diff", str(spec)], tty=False)
    assert code == 0 and plain.startswith("--- ") and not ANSI.search(plain)
    code, coloured, _ = _run(monkeypatch, ["fmt", "--diff", str(spec)], tty=True)
    assert code == 0 and ANSI.search(coloured) and ANSI.sub("", coloured) == plain


# --- --quiet --------------------------------------------------------------------------------------


def test_quiet_drops_the_verify_matrix_on_success_only(monkeypatch: pytest.MonkeyPatch) -> None:
    ok = _checks()[:1]
    _verify_with(monkeypatch, ok)
    code, out, err = _run(monkeypatch, ["verify", MLP], tty=False)
    assert code == 0 and "1 passed, 0 failed" in out and err == "cntk: skipped\n"
    assert _run(monkeypatch, ["--quiet", "verify", MLP], tty=False) == (0, "", "")
    assert _run(monkeypatch, ["verify", MLP, "-q"], tty=False) == (0, "", "")
    _verify_with(monkeypatch, _checks())
    code, out, _ = _run(monkeypatch, ["-q", "verify", MLP], tty=False)
    assert code == 1 and "FAIL" in out and "1 passed, 1 failed" in out


def test_quiet_keeps_errors_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "typo.dl"
    spec.write_text(TYPO, encoding="utf-8")
    loud = _run(monkeypatch, ["compile", str(spec)], tty=False)
    assert _run(monkeypatch, ["-q", "compile", str(spec)], tty=False) == loud
    assert _run(monkeypatch, ["compile", str(spec), "--quiet"], tty=False) == loud
    code, _, err = _run(monkeypatch, ["-q", "compile", MLP, "--target", "nope"], tty=False)
    assert code == 2 and "unknown target 'nope'" in err


def test_quiet_check_fmt_and_doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "gen"
    shutil.copytree(ROOT / "generated", out)
    argv = ["check", MLP, "--out-dir", str(out)]
    assert "up to date" in _run(monkeypatch, argv, tty=False)[2]
    assert _run(monkeypatch, ["-q", *argv], tty=False) == (0, "", "")
    spec = tmp_path / "loose.dl"
    spec.write_text((ROOT / MLP).read_text(encoding="utf-8").replace("    ", "  "))
    assert _run(monkeypatch, ["fmt", "-q", str(spec)], tty=False) == (0, "", "")
    assert _run(monkeypatch, ["fmt", "--check", str(spec)], tty=False)[0] == 0  # it was rewritten
    monkeypatch.setattr(runtimes, "probe", _fake_probe(set()))
    assert _run(monkeypatch, ["doctor", "-q"], tty=True) == (0, "", "")
    monkeypatch.setattr(runtimes, "probe", _fake_probe({"mxnet"}))
    code, text, _ = _run(monkeypatch, ["-q", "doctor"], tty=False)
    assert code == 0 and text.splitlines()[0].startswith("mxnet: not runnable")
    assert "target" not in text  # no table


def test_quiet_bench_progress_shows_nothing() -> None:
    from dlspec.bench import progress

    stream = Terminal()
    shown = progress.display(3, stream, quiet=True)
    assert isinstance(shown, progress.Silent)
    assert stream.getvalue() == ""


# --- shell completion -----------------------------------------------------------------------------


def _bash_complete(script: str, words: list[str], cwd: Path = ROOT) -> list[str]:
    """COMPREPLY after bash sourced `script` and completed the last of `words`."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"source /dev/stdin <<'EOF'\n{script}EOF\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}\n'
        '_shtab_dlspec; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_offers_commands_targets_and_specs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, script, _ = _run(monkeypatch, ["completion", "bash"], tty=False)
    assert code == 0 and "complete " in script and script.endswith("\n")
    assert _bash_complete(script, ["dlspec", "com"]) == ["compile", "completion"]
    targets = _bash_complete(script, ["dlspec", "compile", MLP, "--target", ""])
    assert targets == ["pytorch", "keras", "tensorflow", "mxnet", "cntk", "all"]
    assert _bash_complete(script, ["dlspec", "verify", MLP, "--targets", "t"]) == ["tensorflow"]
    formats = _bash_complete(script, ["dlspec", "summary", MLP, "--format", ""])
    assert formats == ["table", "json", "markdown"]
    specs = _bash_complete(script, ["dlspec", "summary", "mnist_m"], cwd=ROOT / "examples")
    assert specs == ["mnist_mlp.dl"]
    assert "--json" in _bash_complete(script, ["dlspec", "doctor", "--"])


def test_zsh_and_tcsh_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    code, zsh, _ = _run(monkeypatch, ["completion", "zsh"], tty=True)
    assert code == 0 and zsh.startswith("#compdef dlspec") and not ANSI.search(zsh)
    assert "pytorch keras tensorflow mxnet cntk all" in zsh and "_files -g '*.dl'" in zsh
    code, tcsh, _ = _run(monkeypatch, ["completion", "tcsh"], tty=False)
    assert code == 0 and "complete dlspec" in tcsh
    assert _run(monkeypatch, ["completion", "fish"], tty=False)[0] == 2


# --- the documented shapes ------------------------------------------------------------------------


def _documented(schema: str) -> dict[str, Any]:
    """The JSON example in docs/output.md whose schema is `schema`."""
    text = (ROOT / "docs" / "output.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    found = [json.loads(b) for b in blocks if f'"schema": "{schema}"' in b]
    assert len(found) == 1, schema
    return found[0]


def test_the_documented_json_has_the_keys_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _documented("dlspec.summary/1")
    _, out, _ = _run(monkeypatch, ["summary", "examples/mnist_cnn.dl", "--format", "json"], False)
    real = json.loads(out)
    assert set(doc) == set(real) and set(doc["models"][0]) == set(real["models"][0])
    for part in ("inputs", "layers"):
        assert set(doc["models"][0][part][0]) == set(real["models"][0][part][0])
    assert doc["models"][0]["layers"][0] == real["models"][0]["layers"][0]
    monkeypatch.setattr(runtimes, "probe", _fake_probe({"keras[jax]"}))
    doc = _documented("dlspec.doctor/1")
    real = json.loads(_run(monkeypatch, ["doctor", "--json"], tty=False)[1])
    assert set(doc) == set(real) and set(doc["runtimes"][0]) == set(real["runtimes"][0])
    assert {k: type(v) for k, v in doc["graphviz"].items()} == {
        k: type(v) for k, v in real["graphviz"].items()
    }
    documented = {k: type(v) for k, v in doc["runtimes"][0].items()}
    missing = next(r for r in real["runtimes"] if r["runtime"] == "keras[jax]")
    assert {k: type(v) for k, v in missing.items()} == documented


def _through_a_pty(argv: list[str], env: dict[str, str]) -> str:
    """What `dlspec ARGV` writes to stdout when stdout is a real pseudo-terminal."""
    import os
    import pty

    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environment.update({"COLUMNS": "200", **env})
    with subprocess.Popen(
        [sys.executable, "-m", "dlspec.cli", *argv],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=environment,
    ) as child:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.wait(timeout=60) == 0
    os.close(leader)
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_real_terminal_gets_colour_unless_no_color() -> None:
    coloured = _through_a_pty(["summary", MLP], {})
    assert ANSI.search(coloured)
    assert re.search(r"dense_1 +dense +\(N, 512\) +401,920", ANSI.sub("", coloured))
    plain = _through_a_pty(["summary", MLP], {"NO_COLOR": "1"})
    assert not ANSI.search(plain) and "dense_1    dense          (N, 512)         401,920" in plain
