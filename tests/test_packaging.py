"""A real (non-editable) wheel carries configs, templates and the sample, and builds the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        str(REPO),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("mminstruct-*.whl")
    return path


def test_wheel_holds_the_shipped_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in (REPO / "configs").glob("*.yaml"):
        assert f"mminstruct/configs/{config.name}" in names
    for template in (REPO / "templates").rglob("*"):
        if template.is_file():
            assert f"mminstruct/templates/{template.relative_to(REPO / 'templates')}" in names
    assert "mminstruct/converters/coco.py" in names
    assert "mminstruct/sample/instances.json" in names
    assert sum(n.startswith("mminstruct/sample/images/") for n in names) >= 8
    assert not any(n.startswith(("converters/", "configs/", "templates/", "tests/")) for n in names)


def test_installed_wheel_builds_the_demo_outside_the_repo(wheel, tmp_path):
    target = tmp_path / "site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "-q",
        "--target",
        str(target),
        str(wheel),
    ]
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import mminstruct, sys; from mminstruct.resources import shipped_dir; "
        "print(mminstruct.__file__); print(shipped_dir('templates')); print(shipped_dir('configs')); "
        "from mminstruct.cli import main; sys.exit(main(['build', 'configs/demo.yaml', '-q', "
        "'--set', 'output.dir=built']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    module, templates, configs = result.stdout.splitlines()[:3]
    for line in (module, templates, configs):
        assert line.startswith(str(target)), line  # found inside the install, not the checkout
    assert list((tmp_path / "built").glob("shard-*.tar"))
