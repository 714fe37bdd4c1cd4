"""The docs site: generated pages current, the tutorial's specs and commands real, `mkdocs build --strict`."""

from __future__ import annotations

import html.parser
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from dlspec import docpages
from dlspec.cli import main, make_parser
from dlspec.codegen.interface import FLAGS, TARGET_FLAGS

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
PAGES = (
    "index",
    "language",
    "reference",
    "tutorial",
    "support",
    "output",
    "semantics",
    "decisions",
)
# subcommands cheap enough to run here: no framework, no subprocess
RUNNABLE = {"summary", "compile", "fmt", "check", "targets"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks(lang: str, path: Path = TUTORIAL) -> list[str]:
    """The bodies of the page's fenced blocks of one language, in order."""
    text = path.read_text(encoding="utf-8")
    return [m.group(2) for m in FENCE.finditer(text) if m.group(1) == lang]


def named_blocks(lang: str) -> dict[str, str]:
    """Blocks whose first line is `# FILE`: the file name and the block."""
    out = {}
    for body in blocks(lang):
        first = body.splitlines()[0]
        assert first.startswith("# "), f"a ```{lang} block must start with '# FILE': {first!r}"
        out[first[2:].split(",")[0].split()[0]] = body
    return out


def shell_lines() -> list[str]:
    """Every command line of the ```sh blocks, without its trailing comment."""
    lines = []
    for body in blocks("sh"):
        for line in body.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                lines.append(command)
    return lines


def transcripts() -> list[tuple[str, str]]:
    """The ```text blocks that begin with `$ dlspec ...`: (command, the output shown)."""
    out = []
    for body in blocks("text"):
        first, _, rest = body.partition("\n")
        if first.startswith("$ dlspec "):
            out.append((first[2:], rest))
    return out


def run(command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run a `dlspec ...` line in-process; its exit code and what it printed (stdout, stderr)."""
    capsys.readouterr()
    code = main(shlex.split(command)[1:])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture()
def tutorial_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the tutorial's spec files, made the working folder."""
    for name, body in named_blocks("dl").items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generated_pages_are_current() -> None:
    assert docpages.stale(ROOT) == [], "docs pages are stale: run `make generate`"


def test_reference_covers_every_op() -> None:
    page = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    from dlspec.ir.ops import OPS
    from dlspec.ir.settings import OPTIMIZERS

    for name in [*OPS, *OPTIMIZERS]:
        assert re.search(rf"^#+ {name}$", page, re.M), name


def _tables(page: str) -> dict[str, str]:
    """Each op with a row in a markdown table of the page (its name in backquotes first in
    the row, arguments allowed): the table's text, its header included."""
    found: dict[str, str] = {}
    for table in re.findall(r"(?:^\|.*\n)+", page, re.M):
        for op in re.findall(r"^\| `(\w+)[`(]", table, re.M):
            found.setdefault(op, table)
    return found


def test_semantics_states_every_op_and_attribute() -> None:
    """docs/semantics.md (hand-written) gives every op a section of ## 3 or a table row, naming
    each of its attributes there and how PyTorch, MXNet and CNTK realise it."""
    page = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    from dlspec.ir.ops import OPS

    layers = page[page.index("## 3. Layers") : page.index("## 4. Initialisers")]
    sections = {part.split("\n", 1)[0]: part for part in re.split(r"^### ", layers, flags=re.M)[1:]}
    tables = _tables(page)
    for name, spec in OPS.items():
        text = sections.get(name) or tables.get(name, "")
        assert text, f"docs/semantics.md says nothing of {name}"
        for attr in spec.attrs:
            assert attr in text, f"docs/semantics.md: {name}'s {attr} is not stated"
        for target in ("PyTorch", "MXNet", "CNTK"):
            assert target in text, f"docs/semantics.md: {name} has no {target} realisation"


def test_tutorial_specs_compile_for_every_target(
    tutorial_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = named_blocks("dl")
    assert set(specs) == {"mnist_net.dl", "mnist_net_keras.dl"}
    for name in specs:
        out = tutorial_dir / name[:-3]
        code, printed = run(f"dlspec compile {name} --target all --out-dir {out}", capsys)
        assert code == 0, printed
        assert "warning" not in printed, printed
        assert len(list(out.glob("*/mnist_net_*.py"))) >= 5


def test_tutorial_transcripts_are_real_output(
    tutorial_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = transcripts()
    assert len(shown) >= 2
    for command, expected in shown:
        code, printed = run(command, capsys)
        assert code == 0, printed
        want = [line for line in expected.rstrip("\n").splitlines()]
        got = printed.rstrip("\n").splitlines()
        if "..." not in want:
            assert got == want, command
            continue
        rest = iter(got)  # abridged: the lines shown appear in this order
        for line in want:
            assert line == "..." or any(line == g for g in rest), (command, line)


def test_tutorial_commands_parse_and_cheap_ones_run(
    tutorial_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = shell_lines()
    dlspec_lines = [line for line in lines if line.startswith("dlspec ")]
    assert {shlex.split(line)[1] for line in dlspec_lines} >= {"compile", "verify", "weights"}
    parser = make_parser()
    for line in dlspec_lines:
        args = parser.parse_args(shlex.split(line)[1:])
        if args.command in RUNNABLE:
            code, printed = run(line, capsys)
            assert code == 0, (line, printed)
    scripts = [line for line in lines if not line.startswith("dlspec ")]
    assert scripts, "the tutorial runs a generated script"
    for line in scripts:
        check_script_line(tutorial_dir, line)


def check_script_line(folder: Path, line: str) -> None:
    """`python generated/T/NAME_T.py FLAGS`: a script the tutorial's compile wrote, real flags."""
    argv = shlex.split(line)
    assert argv[0] == "python", line
    script = folder / argv[1]
    assert script.is_file(), f"{argv[1]} is not written by the tutorial's compile"
    target = script.parent.name
    known = {f.name for f in FLAGS} | {f.name for f in TARGET_FLAGS.get(target, ())}
    for arg in argv[2:]:
        if arg.startswith("--"):
            assert arg in known, (line, arg)
            assert f'"{arg}"' in script.read_text(encoding="utf-8"), (line, arg)


class _Links(html.parser.HTMLParser):
    """Collects a page's ids and its href/src targets."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> None:  # noqa: ARG002
        for key, value in attrs:
            if key == "id" and value:
                self.ids.add(value)
            if key in ("href", "src") and value:
                self.links.append(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as `make docs` builds it (strict: any warning fails)."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        # not --quiet: it drops the warnings, and --strict then has none to fail on
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_site_has_every_page(site: Path) -> None:
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page
    assert "dlspec" in (site / "index.html").read_text(encoding="utf-8")
    # generated text with angle brackets stays text, not a stray HTML tag
    assert "x_train_&lt;input&gt;" in (site / "reference.html").read_text(encoding="utf-8")
    assert "result_&lt;target&gt;" in (site / "support.html").read_text(encoding="utf-8")


def test_site_internal_links_resolve(site: Path) -> None:
    # 404.html is served for any missing path, so its links are root-absolute by design
    parsed = {path: _parse(path) for path in site.rglob("*.html") if path.name != "404.html"}
    checked = 0
    for path, page in parsed.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("mailto:"):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            assert target.is_file(), f"{path.name}: broken link {link}"
            if parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                assert unquote(parts.fragment) in ids, f"{path.name}: no anchor {link}"
            checked += 1
    assert checked > 100


def test_spec_blocks_are_highlighted_by_the_dlspec_lexer(site: Path) -> None:
    tutorial = (site / "tutorial.html").read_text(encoding="utf-8")
    assert '<div class="codehilite">' in tutorial
    # Name.Builtin (nb): the op table's layer names; Keyword (k): model/train; Comment (c1)
    assert '<span class="nb">conv2d</span>' in tutorial
    assert '<span class="k">model</span>' in tutorial
    assert '<span class="c1"># mnist_net.dl</span>' in tutorial
    assert '<span class="nb">dense</span>' in (site / "language.html").read_text(encoding="utf-8")
    assert ".codehilite .nb" in (site / "pygments.css").read_text(encoding="utf-8")


def _python_block(name: str) -> str:
    return named_blocks("python")[name]


@pytest.mark.framework
def test_tutorial_pytorch_weights_import(
    tutorial_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _python_block("net_torch.py") + "\n" + _python_block("save_weights.py")
    (tutorial_dir / "train.py").write_text(script, encoding="utf-8")
    subprocess.run([sys.executable, "train.py"], cwd=tutorial_dir, check=True, timeout=300)
    line = next(c for c in shell_lines() if c.startswith("dlspec weights import mnist_net.dl "))
    code, printed = run(line, capsys)
    assert code == 0, printed
    import torch

    state = torch.load(tutorial_dir / "mnist_net.pt", weights_only=True)
    with np.load(tutorial_dir / "mnist_net.npz") as npz:
        assert len(npz.files) == 14
        for key in ("conv1.weight", "bn2.running_var", "fc1.weight", "fc2.bias"):
            np.testing.assert_array_equal(npz[key], state[key].numpy())


@pytest.mark.framework
def test_tutorial_keras_weights_import(
    tutorial_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save = (
        '\nmodel.save_weights("mnist_net.weights.h5")\n'
        "import numpy\n"
        'numpy.savez("raw.npz", *[v.numpy() for v in model.weights])\n'
    )
    (tutorial_dir / "train.py").write_text(_python_block("net_keras.py") + save, encoding="utf-8")
    subprocess.run([sys.executable, "train.py"], cwd=tutorial_dir, check=True, timeout=300)
    line = next(c for c in shell_lines() if c.startswith("dlspec weights import mnist_net_keras"))
    code, printed = run(line, capsys)
    assert code == 0, printed
    with np.load(tutorial_dir / "raw.npz") as raw, np.load(tutorial_dir / "mnist_net.npz") as npz:
        native = [raw[f"arr_{i}"] for i in range(len(raw.files))]
        by_shape = {v.shape: v for v in native}
        assert len(npz.files) == 14
        # canonical (out, in, kh, kw) from Keras's (kh, kw, in, out); (out, in) from (in, out)
        np.testing.assert_array_equal(
            npz["conv1.weight"], by_shape[(3, 3, 1, 32)].transpose(3, 2, 0, 1)
        )
        np.testing.assert_array_equal(npz["fc2.weight"], by_shape[(128, 10)].T)
        # the dense after the flatten: Keras's rows in (H, W, C) order, canonical (C, H, W)
        keras_fc1 = by_shape[(3136, 128)].reshape(7, 7, 64, 128)
        np.testing.assert_array_equal(
            npz["fc1.weight"], keras_fc1.transpose(3, 2, 0, 1).reshape(128, 3136)
        )


def test_index_example_is_the_example_file() -> None:
    (body,) = blocks("dl", ROOT / "docs" / "index.md")
    first, _, spec = body.partition("\n")
    assert first == "# examples/mnist_cnn.dl"
    assert (ROOT / "examples" / "mnist_cnn.dl").read_text(encoding="utf-8").endswith(spec)
