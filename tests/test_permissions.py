"""Files a build, an export or a preview writes get the mode the umask says, like the shards.

Before the fix, the shards were 0644 but everything written through a temporary file
(README.md, stats.json, config.yaml, manifest.json, rejects.jsonl, plots, previews, exports
and every exported image) was 0600: nobody else on a shared cluster could read them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mminstruct.cli import main


@pytest.fixture(params=[0o022, 0o002])
def umask(request) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode)
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    }


def test_every_file_written_honours_the_umask(tmp_path, umask):
    out = tmp_path / "out"
    assert main(["build", "demo", "-q", "--set", f"output.dir={out}"]) == 0
    assert main(["export", str(out), "--format", "llava", "--dest", str(tmp_path / "x")]) == 0
    preview = ["preview", "demo", "--image-id", "1", "--out", str(tmp_path / "p")]
    assert main([*preview, "--set", f"output.dir={out}"]) == 0
    expected = 0o666 & ~umask
    written = {**modes(out), **modes(tmp_path / "x"), **modes(tmp_path / "p")}
    for name in ("README.md", "stats.json", "config.yaml", "manifest.json", "rejects.jsonl"):
        assert name in written
    assert any(name.startswith("plots/") for name in written)
    assert any(name.startswith("images/") for name in written)
    assert "preview.html" in written and "preview.png" in written
    assert {name: mode for name, mode in written.items() if mode != expected} == {}
