"""Resuming and refusing: a folder belongs to one config, and a rerun notices changed images.

Each test failed before its fix: a refused rerun had already rewritten `config.yaml`, a second
config could start in a folder whose first build had no finished shard yet, `mminstruct stats`
said a hand-edited `config.yaml` agreed with the shards, and a replaced image kept its old
bytes in the dataset after a rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from mminstruct.cli import main
from mminstruct.config import load_config
from mminstruct.output import claim_output, fingerprint
from mminstruct.resources import shipped_dir


def build(out: Path, *sets: str) -> int:
    args = ["build", "demo", "-q", "--set", f"output.dir={out}"]
    for setting in sets:
        args += ["--set", setting]
    return main(args)


def folder_state(out: Path) -> dict[str, str]:
    """Every file under `out` by its relative path, with the sha256 of its bytes."""
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def built(tmp_path) -> Path:
    out = tmp_path / "out"
    assert build(out, "output.shard_max_samples=8") == 0
    return out


def test_a_refused_rerun_writes_nothing(built, capsys):
    before = folder_state(built)
    assert build(built, "output.shard_max_samples=8", "generator.seed=7") == 1
    assert "from a different config" in capsys.readouterr().err
    assert folder_state(built) == before  # config.yaml included


def test_a_second_config_is_refused_while_the_first_runs(tmp_path, capsys):
    """Build A holds the folder and has no finished shard yet: build B must not start, with
    or without --force; once A is gone (finished or killed), B may take the folder over."""
    out = tmp_path / "out"
    (out / "_parts").mkdir(parents=True)
    first = load_config("demo", [f"output.dir={out}", "generator.seed=1"])
    with claim_output(out, fingerprint(first), force=False):  # build A, running
        before = folder_state(out)
        assert build(out, "generator.seed=2") == 1
        assert "is being built right now" in capsys.readouterr().err
        args = ["build", "demo", "-q", "--force", "--set", f"output.dir={out}"]
        assert main([*args, "--set", "generator.seed=2"]) == 1
        assert folder_state(out) == before
    assert build(out, "generator.seed=2") == 0
    assert load_config(out / "config.yaml").generator.seed == 2


def test_a_build_that_failed_before_any_shard_does_not_block_a_corrected_one(tmp_path, capsys):
    out = tmp_path / "out"
    missing = tmp_path / "no-such-model"
    assert build(out, "generator.backend=hf", f"generator.model={missing}") == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (out / "config.yaml").exists()
    assert build(out) == 0


def test_force_takes_a_claimed_folder_over(built):
    assert build(built, "output.shard_max_samples=8", "generator.seed=7") == 1
    args = ["build", "demo", "-q", "--force", "--set", f"output.dir={built}"]
    assert main([*args, "--set", "output.shard_max_samples=8", "--set", "generator.seed=7"]) == 0
    assert load_config(built / "config.yaml").generator.seed == 7
    assert main(["stats", str(built)]) == 0


def test_stats_checks_config_yaml_against_the_shards(built, capsys):
    assert main(["stats", str(built)]) == 0
    assert "config.yaml agree with the shards" in capsys.readouterr().out
    path = built / "config.yaml"
    path.write_text(path.read_text().replace("seed: 0", "seed: 5"))
    assert main(["stats", str(built)]) == 1
    assert "config.yaml does not match the config the shards were built from" in (
        capsys.readouterr().out
    )


def test_a_replaced_image_is_built_again_on_rerun(tmp_path, capsys):
    """Same name, same size, other bytes: the unit holding it is rebuilt, the others kept."""
    images = tmp_path / "images"
    shutil.copytree(shipped_dir("sample") / "images", images)
    out = tmp_path / "out"
    sets = (f"sources.0.images={images}", "output.shard_max_samples=8")
    assert build(out, *sets) == 0
    first = json.loads((out / "stats.json").read_text())
    victim = sorted(images.glob("*.jpg"))[0]
    data = bytearray(victim.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF  # one byte of the entropy-coded data: same size, other picture
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    kept = {
        name: hashlib.sha256((out / name).read_bytes()).hexdigest()
        for name in ("shard-000000.tar", "shard-000001.tar")
    }
    capsys.readouterr()
    assert build(out, *sets) == 0
    stored = {}
    for shard in sorted(out.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            stored |= {m.name: tar.extractfile(m).read() for m in tar if m.name.endswith(".jpg")}
    assert bytes(data) in stored.values()
    changed = [
        name
        for name, digest in kept.items()
        if hashlib.sha256((out / name).read_bytes()).hexdigest() != digest
    ]
    assert len(changed) == 1  # only the unit holding the image was built again
    assert json.loads((out / "stats.json").read_text())["samples"] == first["samples"]


def test_a_damaged_shard_marker_is_named_not_a_traceback(built, capsys):
    marker = built / "_parts" / "shard-000000.stats.json"
    marker.write_text("{bad")
    assert build(built, "output.shard_max_samples=8") == 1
    err = capsys.readouterr().err
    assert f"{marker} is damaged" in err and "Traceback" not in err


def test_stats_of_shards_copied_without_their_config(built, capsys):
    (built / "config.yaml").unlink()
    assert main(["stats", str(built)]) == 0
    assert "agree with the shards" in capsys.readouterr().out
