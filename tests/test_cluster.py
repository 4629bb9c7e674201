"""Cluster runs: the split across processes, resume after kills, SIGTERM, finalize."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from PIL import Image

from mminstruct.cli import main
from mminstruct.io import file_digests

RESULT_FILES = ("stats.json", "rejects.jsonl", "manifest.json", "shards.wids.json")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A COCO dataset of 120 small images with boxes and captions, and a config over it."""
    root = tmp_path_factory.mktemp("cluster-data")
    (root / "images").mkdir()
    rng = random.Random(0)
    images, boxes, captions = [], [], []
    for i in range(1, 121):
        name = f"{i:012d}.jpg"
        Image.new("RGB", (64, 48), (rng.randrange(256), 90, 160)).save(root / "images" / name)
        images.append({"id": i, "file_name": name, "width": 64, "height": 48})
        for k in range(rng.randrange(1, 4)):
            box = [rng.uniform(0, 30), rng.uniform(0, 20), rng.uniform(4, 30), rng.uniform(4, 25)]
            boxes.append(
                {"id": len(boxes) + 1, "image_id": i, "category_id": 1 + k % 2, "bbox": box}
            )
        captions.append({"id": i, "image_id": i, "caption": "Some animals in a field."})
    categories = [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    (root / "instances.json").write_text(
        json.dumps({"images": images, "annotations": boxes, "categories": categories})
    )
    (root / "captions.json").write_text(json.dumps({"images": images, "annotations": captions}))
    source = {
        "kind": "coco",
        "images": str(root / "images"),
        "instances": str(root / "instances.json"),
    }
    source["captions"] = str(root / "captions.json")
    job = {"sources": [source], "output": {"shard_max_samples": 4}, "generator": {"batch_size": 2}}
    (root / "job.yaml").write_text(json.dumps(job))
    return root


def command(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mminstruct",
        "build",
        str(dataset / "job.yaml"),
        "--set",
        f"output.dir={out}",
        *extra,
    ]


def build_once(
    dataset: Path, out: Path, *extra: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(dataset, out, *extra), capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:
    """An uninterrupted one-process build to compare against."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert build_once(dataset, out, "-q").returncode == 0
    return out


def snapshot(out: Path) -> dict[str, bytes]:
    """Everything that defines the dataset: shards and the merged files."""
    files = {p.name: p.read_bytes() for p in out.glob("shard-*.tar")}
    files.update({name: (out / name).read_bytes() for name in RESULT_FILES})
    return files


def test_reference_build_is_complete(reference):
    stats = json.loads((reference / "stats.json").read_text())
    assert stats["images_in"] == 120 == stats["images_written"] + stats["images_rejected"]
    assert len(list(reference.glob("shard-*.tar"))) == 30
    assert not list(reference.rglob("*.tmp"))


def test_manifest_and_wids_index_describe_the_shards(reference):
    manifest = json.loads((reference / "manifest.json").read_text())
    index = json.loads((reference / "shards.wids.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1" and index["wids_version"] == 1
    assert [s["url"] for s in index["shardlist"]] == [s["name"] for s in manifest["shards"]]
    for entry, shard in zip(index["shardlist"], manifest["shards"], strict=True):
        path = reference / entry["url"]
        with tarfile.open(path) as tar:
            keys = {m.name.split(".")[0] for m in tar.getmembers()}
        assert entry["nsamples"] == shard["samples"] == len(keys)
        assert entry["filesize"] == shard["bytes"] == path.stat().st_size
        assert (shard["sha256"], entry["md5sum"]) == file_digests(path)
    assert manifest["samples"] == sum(s["nsamples"] for s in index["shardlist"])


def test_two_processes_make_the_same_dataset(dataset, reference, tmp_path):
    out = tmp_path / "out"
    rank0 = subprocess.Popen(command(dataset, out, "-q", "--rank", "0", "--world-size", "2"))
    env = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}  # as torchrun sets
    rank1 = subprocess.Popen(command(dataset, out, "-q"), env=env)
    assert rank0.wait(timeout=300) == 0 and rank1.wait(timeout=300) == 0
    assert snapshot(out) == snapshot(reference)  # byte-identical, merged by the last to finish


def test_finalize_refuses_until_every_rank_is_done(dataset, reference, tmp_path):
    out = tmp_path / "out"
    assert build_once(dataset, out, "-q", "--rank", "1", "--world-size", "3").returncode == 0
    assert not (out / "stats.json").exists()
    assert main(["finalize", str(out)]) == 1
    result = subprocess.run(
        [sys.executable, "-m", "mminstruct", "finalize", str(out)], capture_output=True, text=True
    )
    assert "20 of 30 shards are not done (shard-000000, shard-000002, shard-000003" in result.stderr
    for rank in (0, 2):
        assert (
            build_once(dataset, out, "-q", "--rank", str(rank), "--world-size", "3").returncode == 0
        )
    assert snapshot(out) == snapshot(reference)


def test_resume_rebuilds_only_what_is_missing(dataset, reference, tmp_path):
    out = tmp_path / "out"
    assert build_once(dataset, out, "-q").returncode == 0
    (out / "shard-000007.tar").unlink()
    (out / "_parts" / "shard-000007.stats.json").unlink()
    (out / "shard-000009.tar.tmp").write_bytes(b"half a shard")  # left by a killed run
    (out / "_parts" / ".shard-000009.stats.json.x1y2.tmp").write_text("{")  # a half write_atomic
    (out / ".stats.json.a1b2.tmp").write_text("{")
    kept = out / "shard-000003.tar"
    before = kept.stat().st_mtime_ns
    result = build_once(dataset, out)
    assert result.returncode == 0
    assert "1 of 30 shards to build here" in result.stderr
    assert kept.stat().st_mtime_ns == before  # finished shards are not rewritten
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))
    assert snapshot(out) == snapshot(reference)


def complete_tars_only(out: Path) -> None:
    """Every tar under a final name is whole: readable to the end, in whole tar records."""
    for path in out.glob("shard-*.tar"):
        assert path.stat().st_size % 10240 == 0, path
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                assert len(tar.extractfile(member).read()) == member.size


@pytest.mark.parametrize("trial", range(8))
def test_sigkill_at_random_moments_then_resume(dataset, reference, tmp_path, trial):
    rng = random.Random(trial)
    out = tmp_path / "out"
    for _ in range(rng.randrange(1, 3)):
        process = subprocess.Popen(command(dataset, out, "-q"), stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if out.exists():
            complete_tars_only(out)
    assert build_once(dataset, out, "-q").returncode == 0
    assert snapshot(out) == snapshot(reference)


def test_sigterm_abandons_the_shard_and_says_how_to_resume(dataset, reference, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(command(dataset, out), stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "shards to build here" in line:
            break
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the build finished before SIGTERM arrived")
    assert process.returncode == 143
    assert "stopped by SIGTERM" in rest and "rerun the same command to resume" in rest
    assert not list(out.glob("*.tmp"))
    complete_tars_only(out)
    assert build_once(dataset, out, "-q").returncode == 0
    assert snapshot(out) == snapshot(reference)
