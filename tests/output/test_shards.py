"""Tar shards: readable by tarfile and webdataset, byte-identical on rerun, atomic, capped."""

from __future__ import annotations

import tarfile

import pytest
import webdataset as wds

from mminstruct.output.shards import ShardWriter, tar_header


def write_samples(out, count=5, max_samples=2, max_bytes=1 << 30, stem="shard-000000"):
    with ShardWriter(out, stem, max_samples, max_bytes) as writer:
        for i in range(count):
            writer.write(
                f"k-{i:03d}", [("jpg", bytes([i]) * (700 + i)), ("json", b'{"i": %d}' % i)]
            )
    return writer.done


def test_header_matches_tarfile_ustar():
    info = tarfile.TarInfo("coco-000000397133.jpg")
    info.size, info.mtime, info.mode = 123456, 0, 0o644
    assert tar_header("coco-000000397133.jpg", 123456) == info.tobuf(tarfile.USTAR_FORMAT)


def test_samples_round_trip_through_tarfile_and_webdataset(tmp_path):
    shards = write_samples(tmp_path, count=5, max_samples=2)
    assert [s.path.name for s in shards] == [
        "shard-000000.tar",
        "shard-000000_1.tar",
        "shard-000000_2.tar",
    ]
    assert [s.samples for s in shards] == [2, 2, 1]
    with tarfile.open(shards[0].path) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["k-000.jpg", "k-000.json", "k-001.jpg", "k-001.json"]
        assert all(m.mtime == 0 and m.uid == 0 and m.mode == 0o644 for m in members)
        assert tar.extractfile("k-001.jpg").read() == bytes([1]) * 701
    got = list(wds.WebDataset([str(s.path) for s in shards], shardshuffle=False))
    assert [s["__key__"] for s in got] == [f"k-{i:03d}" for i in range(5)]
    assert got[4]["json"] == b'{"i": 4}'
    assert all(s.path.stat().st_size % 10240 == 0 for s in shards)


def test_byte_identical_on_rerun(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_samples(tmp_path / "a")[0].path
    second = write_samples(tmp_path / "b")[0].path
    assert first.read_bytes() == second.read_bytes()


def test_byte_cap_rolls_over(tmp_path):
    shards = write_samples(tmp_path, count=4, max_samples=100, max_bytes=4000)
    assert len(shards) == 4  # each sample is 2,560 bytes of tar blocks
    assert all(s.samples == 1 for s in shards)


def test_failure_leaves_no_partial_shard(tmp_path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, "shard-000001", 10, 1 << 30) as writer:
        writer.write("a", [("json", b"{}")])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_no_empty_shard(tmp_path):
    with ShardWriter(tmp_path, "shard-000002", 10, 1 << 30) as writer:
        pass
    assert writer.done == [] and list(tmp_path.iterdir()) == []


def test_long_member_name_refused():
    with pytest.raises(ValueError, match="too long"):
        tar_header("x" * 100, 1)


def test_fsync_option_writes_the_same_bytes(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr("mminstruct.output.shards.os.fsync", lambda fd: synced.append(fd))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with ShardWriter(tmp_path / "a", "s", 10, 1 << 30, fsync=True) as writer:
        writer.write("k", [("json", b"{}")])
    assert len(synced) == 1
    with ShardWriter(tmp_path / "b", "s", 10, 1 << 30) as writer:
        writer.write("k", [("json", b"{}")])
    assert len(synced) == 1  # off by default
    assert (tmp_path / "a/s.tar").read_bytes() == (tmp_path / "b/s.tar").read_bytes()
