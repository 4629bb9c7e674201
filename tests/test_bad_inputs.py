"""Every case of the bad-input corpus (`tests/bad_inputs/`) has its one exact outcome.

Each case is built through `mminstruct build` (in this process, so that any exception
escaping the CLI fails the test; the failing ones again as a subprocess, to see exactly
what a user sees): a clear error naming the file, record and field, or a finished build
whose counts add up and whose `rejects.jsonl` says what was rejected and why. Never a
traceback, never a hang. Then the faults a disk can add: not writable, full.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bad_inputs import CASES, Built, Case, Fails
from bad_inputs.files import SIZE
from PIL import Image

from mminstruct import pipeline
from mminstruct.cli import main
from mminstruct.output import shards

HANG_S = 60  # no case may take longer than this


@pytest.fixture(autouse=True)
def never_hang() -> Iterator[None]:
    """Fail, instead of waiting forever, if a build hangs."""

    def hung(*_) -> None:
        raise TimeoutError(f"the build took over {HANG_S}s: it hangs")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def write_job(case: Case, folder: Path) -> tuple[Path, Path]:
    """Make the case's inputs under `folder`; the job file and the output folder."""
    (folder / "in").mkdir(parents=True)
    job = case.make(folder / "in")
    job.setdefault("output", {}).setdefault("dir", str(folder / "out"))
    path = folder / "in" / "job.yaml"
    path.write_text(json.dumps(job))
    return path, Path(job["output"]["dir"])


def words_of(case: Case, folder: Path) -> list[str]:
    return [w.replace("{dir}", str(folder / "in")) for w in case.expect.words]


@pytest.fixture
def no_plots(monkeypatch) -> None:
    """The card's plots cost ~0.5 s a build and say nothing about bad inputs; the one build
    of all cases through the real command below still draws them."""
    monkeypatch.setattr(
        "mminstruct.publish.card.write_plots", lambda out_dir, stats: [], raising=False
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_has_its_exact_outcome(case: Case, tmp_path: Path, capsys, no_plots) -> None:
    path, out = write_job(case, tmp_path)
    code = main(["build", str(path), "-q"])
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    if isinstance(case.expect, Fails):
        assert code == case.expect.code, stderr
        for words in words_of(case, tmp_path):
            assert words in stderr
        assert not any(secret in stderr for secret in case.expect.absent)
        assert not list(tmp_path.rglob("*.tar")), "a failed build writes no shard"
    else:
        assert code == 0, stderr
        check_built(case, case.expect, tmp_path, out)


def check_built(case: Case, expect: Built, folder: Path, out: Path) -> None:
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["images_written"], stats["images_rejected"]) == (expect.written, expect.rejected)
    assert stats["images_in"] == stats["images_written"] + stats["images_rejected"]
    rows = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    rows = [row for row in rows if row["scope"] != "task"]  # tasks the rule-based one skips
    assert {row["reason"] for row in rows} == {expect.reason, *expect.also} - {None}
    if expect.reason is not None:
        mine = [row for row in rows if row["reason"] == expect.reason]
        assert len(mine) == expect.count and stats["rejects"][expect.reason] == expect.count
        for row in mine:
            assert row["scope"] == expect.scope and row["dataset"] == "coco"
            for words in words_of(case, folder):
                assert words in row["detail"]
    assert_original_bytes(out, folder / "in" / "images")


def assert_original_bytes(out: Path, images: Path) -> None:
    """Every written sample holds its image file's bytes under a safe key: untouched, but for
    a turning EXIF orientation set to 1 (see mminstruct/exif.py)."""
    for shard in out.glob("shard-*.tar"):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in members.items():
            if name.endswith(".json"):
                key = name[: -len(".json")]
                record = json.loads(data)
                (image,) = [m for m in members if m.startswith(key + ".") and m != name]
                assert_same_image(members[image], (images / record["image"]).read_bytes())
                assert key.replace("-", "").replace("_", "").isalnum()


def assert_same_image(stored: bytes, original: bytes) -> None:
    """`stored` is `original`, or `original` with only its EXIF orientation value set to 1."""
    if stored == original:
        return
    changed = [i for i, (a, b) in enumerate(zip(stored, original, strict=True)) if a != b]
    assert 1 <= len(changed) <= 2 and changed[-1] - changed[0] <= 1, changed
    assert Image.open(io.BytesIO(original)).getexif().get(0x0112) not in (None, 1)
    assert Image.open(io.BytesIO(stored)).getexif().get(0x0112) == 1


def test_failing_cases_through_the_real_command(tmp_path: Path) -> None:
    """What a user sees: one clear message, the right exit status, no traceback. Each
    failing case in its own process, two at a time."""
    failing = [c for c in CASES if isinstance(c.expect, Fails)]

    def wrong(case: Case) -> str | None:
        path, _ = write_job(case, tmp_path / case.name)
        command = [sys.executable, "-m", "mminstruct", "build", str(path), "-q"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=HANG_S)
        stderr = result.stderr
        words = words_of(case, tmp_path / case.name)
        if (
            result.returncode == case.expect.code
            and stderr.startswith("error: ")
            and "Traceback" not in stderr
            and all(w in stderr for w in words)
            and not any(secret in stderr for secret in case.expect.absent)
        ):
            return None
        return f"{case.name}: exit {result.returncode}: {stderr}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for p in pool.map(wrong, failing) if p]
    assert len(failing) >= 15 and problems == []


def test_corpus_record_cases_together_through_the_real_command(tmp_path: Path) -> None:
    """All the broken images and records of the corpus in one build, as a subprocess."""
    # One build of every case's source: cases whose outcome needs their own config are out.
    built = [c for c in CASES if isinstance(c.expect, Built) and c.kind not in ("paths", "config")]
    sources, expected = [], {"in": 0, "written": 0}
    for i, case in enumerate(built):
        path, _ = write_job(case, tmp_path / case.name)
        source = json.loads(path.read_text())["sources"][0]
        sources.append({**source, "name": f"case{i}"})
        expected["written"] += case.expect.written
        expected["in"] += case.expect.written + case.expect.rejected
    job = tmp_path / "all.yaml"
    job.write_text(json.dumps({"sources": sources, "output": {"dir": str(tmp_path / "out")}}))
    result = subprocess.run(
        [sys.executable, "-m", "mminstruct", "build", str(job), "-q"],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert (
        stats["images_in"] == expected["in"] == stats["images_written"] + stats["images_rejected"]
    )
    assert stats["images_written"] == expected["written"]


def test_visual_genome_file_with_bytes_that_are_not_utf8(tmp_path: Path, capsys) -> None:
    """A VG object name in Latin-1: the object is skipped and counted, or the file is
    refused by name; never a traceback."""
    (tmp_path / "images").mkdir()
    Image.new("RGB", SIZE).save(tmp_path / "images" / "1.jpg")
    info = {"image_id": 1, "width": SIZE[0], "height": SIZE[1], "url": "x/VG_100K/1.jpg"}
    (tmp_path / "image_data.json").write_text(json.dumps([info]))
    obj = b'{"object_id": 1, "x": 1, "y": 1, "w": 9, "h": 9, "names": ["d\xe9g"]}'
    (tmp_path / "objects.json").write_bytes(b'[{"image_id": 1, "objects": [' + obj + b"]}]")
    source = {"kind": "visual_genome", "images": str(tmp_path / "images")}
    source |= {"image_data": str(tmp_path / "image_data.json")}
    source |= {"objects": str(tmp_path / "objects.json")}
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({"sources": [source], "output": {"dir": str(tmp_path / "out")}}))
    code = main(["build", str(job), "-q"])
    stderr = capsys.readouterr().err
    assert code == 1 and "Traceback" not in stderr
    assert f"{tmp_path / 'objects.json'}: element 0 is not valid JSON" in stderr


def test_16bit_png_reaches_a_vision_model_as_grey_not_white() -> None:
    """Kept byte for byte in the dataset (case `image_16bit_png`); an `hf-vlm` model sees
    its grey (40000 of 65535), not the white that Pillow's plain conversion clips it to."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from bad_inputs.files import png

    from mminstruct.generate.backends.hf_vlm import decode_image

    assert decode_image(png(mode="I;16")).getpixel((0, 0)) == (156, 156, 156)


def test_reliability_report_lists_every_case_with_its_outcome() -> None:
    """RELIABILITY.md's table is the corpus: a case added, renamed or changed shows there."""
    lines = (Path(__file__).resolve().parents[1] / "RELIABILITY.md").read_text().splitlines()
    for case in CASES:
        row = next((line for line in lines if f"| `{case.name}`" in line), "")
        if isinstance(case.expect, Fails):
            assert f"| stops, exit {case.expect.code} |" in row, case.name
        else:
            counts = f"built {case.expect.written}+{case.expect.rejected}"
            reason = f"`{case.expect.reason}` ({case.expect.scope}" if case.expect.reason else ""
            assert counts in row and reason in row, case.name


# --------------------------------------------------------------------------- the disk


def scene_job(tmp_path: Path, **output) -> Path:
    """A valid corpus scene (the control case): its job file, with these output settings."""
    case = next(c for c in CASES if c.name == "image_exif_rotated")
    path, out = write_job(case, tmp_path)
    job = json.loads(path.read_text())
    job["output"] = {**job["output"], "dir": str(out), "shard_max_samples": 1, **output}
    path.write_text(json.dumps(job))
    return path


def test_output_dir_not_writable(tmp_path: Path, capsys, monkeypatch) -> None:
    job = scene_job(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root ignores permissions: refuse the write ourselves
        real_mkdir = Path.mkdir

        def refused(self: Path, *args, **kwargs) -> None:
            if self.is_relative_to(locked):
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", refused)
    code = main(["build", str(job), "-q", "--set", f"output.dir={locked / 'out'}"])
    stderr = capsys.readouterr().err
    assert code == 1
    assert f"cannot write to output.dir {locked / 'out'} (Permission denied)" in stderr
    assert "choose a writable folder" in stderr


class FullDisk:
    """`open` for the shard writer, on a disk with room for `room` more bytes: then every
    write fails, and so does the flush when the file is closed (it still closes)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.full = False

    def __call__(self, path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115 - the writer closes it
        disk = self

        class Limited:
            def write(self, data: bytes) -> int:
                if len(data) > disk.room:
                    disk.full = True
                    raise OSError(errno.ENOSPC, "No space left on device")
                disk.room -= len(data)
                return handle.write(data)

            def close(self) -> None:
                handle.close()
                if disk.full:
                    raise OSError(errno.ENOSPC, "No space left on device")

            def __getattr__(self, name: str):
                return getattr(handle, name)

        return Limited()


def shard_bytes(out: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in out.glob("shard-*.tar")}
    return files | {"stats.json": (out / "stats.json").read_bytes()}


def test_full_disk_stops_cleanly_and_resumes(tmp_path: Path, capsys, monkeypatch) -> None:
    job = scene_job(tmp_path)
    reference = tmp_path / "reference"
    assert main(["build", str(job), "-q", "--set", f"output.dir={reference}"]) == 0
    out = tmp_path / "out"
    room = (reference / "shard-000000.tar").stat().st_size  # the first shard fits, no more
    monkeypatch.setattr(shards, "open", FullDisk(room), raising=False)
    code = main(["build", str(job), "-q", "--set", f"output.dir={out}"])
    stderr = capsys.readouterr().err
    assert code == 1 and "Traceback" not in stderr
    assert f"cannot write to output.dir {out}: No space left on device" in stderr
    assert "rerun the same command to resume" in stderr
    assert len(list(out.glob("shard-*.tar"))) == 1  # the first shard fitted...
    assert not list(out.glob("*.tmp"))  # ...the second was dropped, not left half-written
    monkeypatch.undo()
    assert main(["build", str(job), "-q", "--set", f"output.dir={out}"]) == 0
    assert shard_bytes(out) == shard_bytes(reference)


def test_full_disk_while_marking_a_shard_done(tmp_path: Path, capsys, monkeypatch) -> None:
    """The shard is complete, its stats file is not: the rerun rebuilds that shard."""
    job = scene_job(tmp_path)
    reference = tmp_path / "reference"
    assert main(["build", str(job), "-q", "--set", f"output.dir={reference}"]) == 0

    def full(path: Path, value: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pipeline, "write_json", full)
    out = tmp_path / "out"
    assert main(["build", str(job), "-q", "--set", f"output.dir={out}"]) == 1
    stderr = capsys.readouterr().err
    assert "No space left on device (" in stderr and "shard-000000.stats.json)" in stderr
    monkeypatch.undo()
    assert main(["build", str(job), "-q", "--set", f"output.dir={out}"]) == 0
    assert shard_bytes(out) == shard_bytes(reference)
