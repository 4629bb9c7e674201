"""Cluster runs: the split across processes, resume after kills, SIGTERM, finalize.

Kills and SIGTERMs land at chosen points (support/kill_points.py), never after a random sleep.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from PIL import Image
from support import kill_points
from support.kill_points import (
    Stop,
    assert_state_at,
    assert_whole_tars,
    kill_at_each,
    markers,
    wait_paused,
)

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


def build_args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["build", str(dataset / "job.yaml"), "--set", f"output.dir={out}", *extra]


def command(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mminstruct", *build_args(dataset, out, *extra)]


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


# Where each killed run stops (the n-th occurrence of a point, counted in that run); one more
# run then finishes the build. See support/kill_points.py for the points.
KILL_TRIALS = [
    pytest.param([Stop("in_shard", 10)], id="inside-a-shard"),
    pytest.param([Stop("shard_renamed", 5)], id="shard-renamed-marker-not-written"),
    pytest.param([Stop("marker_pending", 12)], id="marker-half-written"),
    pytest.param([Stop("finalizing")], id="during-finalize"),
    *(
        pytest.param(stops, id=name, marks=pytest.mark.slow)
        for name, stops in {
            "first-sample-then-last-shard": [Stop("in_shard", 1), Stop("in_shard", 118)],
            "first-shard-renamed-then-its-marker": [
                Stop("shard_renamed", 1),
                Stop("marker_pending", 1),
            ],
            "last-marker-then-finalize": [Stop("marker_pending", 30), Stop("finalizing")],
            "finalize-twice": [Stop("finalizing"), Stop("finalizing")],
            "every-point-in-turn": [
                Stop("in_shard", 50),
                Stop("shard_renamed", 3),
                Stop("marker_pending", 7),
                Stop("finalizing"),
            ],
        }.items()
    ),
]


@pytest.mark.parametrize("stops", KILL_TRIALS)
def test_sigkill_at_chosen_points_then_resume(dataset, reference, tmp_path, stops):
    """Each kill lands where it was aimed: the process is still running there, the disk
    shows that moment, and SIGKILL ends it; the rerun gives the uninterrupted bytes."""
    out = tmp_path / "out"
    kill_at_each(build_args(dataset, out, "-q"), stops, out, units=30, handshakes=tmp_path)
    assert build_once(dataset, out, "-q").returncode == 0
    assert not list(out.rglob("*.tmp"))
    assert snapshot(out) == snapshot(reference)


def test_a_stop_the_build_never_reaches_fails_the_trial(dataset, tmp_path):
    """A kill that cannot land where it is aimed is not counted as a trial: it fails."""
    out, handshake = tmp_path / "out", tmp_path / "stop"
    process = kill_points.start(build_args(dataset, out, "-q"), Stop("in_shard", 121), handshake)
    with pytest.raises(
        AssertionError, match=r"the build ended \(exit 0\) before reaching its stop"
    ):
        wait_paused(process, handshake)


def test_sigterm_abandons_the_shard_and_says_how_to_resume(dataset, reference, tmp_path):
    """SIGTERM while the 9th sample (the first of shard 2) was just added: the build
    finishes the batch, drops the shard in progress and exits 143."""
    out, handshake = tmp_path / "out", tmp_path / "stop"
    with open(tmp_path / "stderr", "w") as stderr:
        process = kill_points.start(
            build_args(dataset, out), Stop("in_shard", 9), handshake, stderr=stderr
        )
        paused = wait_paused(process, handshake)
        stem = assert_state_at(paused, out, units=30)
        done = markers(out)
        paused.terminate_and_release()
        assert process.wait(timeout=60) == 143
    message = (tmp_path / "stderr").read_text()
    assert f"stopped by SIGTERM; {stem} was abandoned" in message
    assert "rerun the same command to resume" in message and "Traceback" not in message
    assert stem == "shard-000002" and done == {"shard-000000", "shard-000001"}
    assert not list(out.rglob("*.tmp")) and not (out / f"{stem}.tar").exists()
    assert markers(out) == done
    assert_whole_tars(out)
    assert build_once(dataset, out, "-q").returncode == 0
    assert snapshot(out) == snapshot(reference)
