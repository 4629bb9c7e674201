"""End to end through the real CLI: demo and real COCO excerpts in, readable shards out."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
import yaml
from pycocotools.coco import COCO
from support.shards import without_nulls

from mminstruct.cli import main

KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def build(tmp_path: Path, config: str | Path, *args: str) -> dict:
    out = tmp_path / "out"
    assert main(["build", str(config), "--set", f"output.dir={out}", *args]) == 0
    return json.loads((out / "stats.json").read_text())


def source_config(tmp_path: Path, source: dict, **output) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps({"sources": [source], "output": output}))
    return path


def read_samples(out: Path) -> list[dict]:
    shards = sorted(str(p) for p in out.glob("shard-*.tar"))
    return list(wds.WebDataset(shards, shardshuffle=False))


def check_sample(sample: dict) -> dict:
    """Assert the record contract of one sample; return its parsed JSON."""
    record = json.loads(sample["json"])
    key = sample["__key__"]
    assert record["id"] == key and set(key) <= KEY_CHARS
    image_ext = [k for k in sample if k in ("jpg", "png", "webp", "gif", "bmp")]
    assert len(image_ext) == 1
    assert {"image", "width", "height", "source", "instructions"} <= set(record)
    assert record["instructions"], "a written sample has instructions"
    for instruction in record["instructions"]:
        assert instruction["task"] in ("conversation", "detail", "reasoning")
        turns = instruction["conversations"]
        assert len(turns) >= 2 and len(turns) % 2 == 0
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        first = turns[0]["value"]
        assert first.count("<image>") == 1
        assert first.startswith("<image>\n") or first.endswith("\n<image>")
        assert all("<image>" not in t["value"] for t in turns[1:])
        assert all(t["value"].strip() for t in turns)
        assert instruction["generator"]["backend"] == "template"
    return record


def test_demo_build_is_complete_and_readable(tmp_path):
    stats = build(tmp_path, "configs/demo.yaml")
    out = tmp_path / "out"
    samples = read_samples(out)
    assert stats["images_in"] == stats["images_written"] + stats["images_rejected"]
    assert stats["images_written"] == len(samples) == stats["samples"] > 0
    records = [check_sample(s) for s in samples]
    tasks = {i["task"] for r in records for i in r["instructions"]}
    assert tasks == {"conversation", "detail", "reasoning"}
    assert sum(stats["instructions"].values()) == sum(len(r["instructions"]) for r in records)
    assert {"png", "jpg"} <= {k for s in samples for k in s if k in ("png", "jpg")}
    assert (out / "config.yaml").is_file() and (out / "rejects.jsonl").is_file()
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "task_categories:" in card and "size_categories:" in card
    assert f"| images written | {stats['images_written']:,} |" in card


def test_original_image_bytes_are_kept(tmp_path):
    build(tmp_path, "configs/demo.yaml")
    images = Path(__file__).resolve().parents[1] / "mminstruct" / "sample" / "images"
    for sample in read_samples(tmp_path / "out"):
        record = json.loads(sample["json"])
        ext = "png" if "png" in sample else "jpg"
        assert sample[ext] == (images / record["image"]).read_bytes()


def test_rebuild_is_byte_identical(tmp_path):
    build(tmp_path / "a", "configs/demo.yaml")
    build(tmp_path / "b", "configs/demo.yaml")
    first = sorted((tmp_path / "a/out").glob("shard-*.tar"))
    second = sorted((tmp_path / "b/out").glob("shard-*.tar"))
    assert [p.name for p in first] == [p.name for p in second] and first
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=False))
    assert (tmp_path / "a/out/stats.json").read_bytes() == (
        tmp_path / "b/out/stats.json"
    ).read_bytes()


def test_changed_config_refuses_to_mix_unless_forced(tmp_path):
    build(tmp_path, "configs/demo.yaml", "--set", "output.shard_max_samples=2")
    many = len(list((tmp_path / "out").glob("shard-*.tar")))
    code = main(["build", "demo", "--set", f"output.dir={tmp_path / 'out'}", "--limit", "3"])
    assert code == 1  # a different config: refused, nothing touched
    assert len(list((tmp_path / "out").glob("shard-*.tar"))) == many
    stats = build(tmp_path, "configs/demo.yaml", "--limit", "3", "--force")
    assert stats["images_in"] == 3
    assert len(read_samples(tmp_path / "out")) == stats["images_written"] <= 3 < many
    assert len(list((tmp_path / "out").glob("shard-*.tar"))) < many  # stale shards removed


def test_seed_changes_phrasing_not_truth(tmp_path):
    build(tmp_path / "a", "configs/demo.yaml")
    build(tmp_path / "b", "configs/demo.yaml", "--set", "generator.seed=1")
    a = [json.loads(s["json"]) for s in read_samples(tmp_path / "a/out")]
    b = [json.loads(s["json"]) for s in read_samples(tmp_path / "b/out")]
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert a != b


def test_tiny_coco_every_image_written(tmp_path, tiny_coco):
    coco = COCO(tiny_coco["instances"])
    stats = build(tmp_path, source_config(tmp_path, tiny_coco, shard_max_samples=4))
    assert stats["images_in"] == len(coco.imgs) == 6
    assert stats["images_written"] == 6 and stats["images_rejected"] == 0
    samples = read_samples(tmp_path / "out")
    assert {json.loads(s["json"])["source"]["image_id"] for s in samples} == set(coco.imgs)
    for sample in samples:
        record = check_sample(sample)
        info = coco.imgs[record["source"]["image_id"]]
        assert (record["width"], record["height"], record["image"]) == (
            info["width"],
            info["height"],
            info["file_name"],
        )


def test_coco_mini_accounts_for_missing_images(tmp_path, coco_mini):
    stats = build(tmp_path, source_config(tmp_path, coco_mini, shard_max_samples=10))
    present = {p.name for p in Path(coco_mini["images"]).glob("*.jpg")}
    assert stats["images_in"] == 79
    assert stats["images_written"] == len(present) == 13
    assert stats["images_rejected"] == 66 and stats["rejects"]["missing_image"] == 66
    rows = [json.loads(line) for line in (tmp_path / "out/rejects.jsonl").read_text().splitlines()]
    missing = [r for r in rows if r["reason"] == "missing_image"]
    assert len(missing) == 66 and all(r["task"] is None and r["image_id"] for r in missing)
    assert all("no such file under" in r["detail"] for r in missing)
    written = {json.loads(s["json"])["image"] for s in read_samples(tmp_path / "out")}
    assert written == present
    assert not list((tmp_path / "out").glob("*.tmp")) and not list(
        (tmp_path / "out").glob("shard-*.tar.tmp")
    )


def test_limit_takes_first_images(tmp_path, coco_mini):
    stats = build(tmp_path, source_config(tmp_path, coco_mini), "--limit", "5")
    assert stats["images_in"] == 5


def test_loads_with_hf_datasets_from_the_card(tmp_path):
    datasets = pytest.importorskip("datasets")
    stats = build(tmp_path, "configs/demo.yaml")
    out = tmp_path / "out"
    cache = str(tmp_path / "hf-cache")  # reproducible shards would otherwise hit a stale cache
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=cache)  # card: where, what
    assert len(loaded) == stats["images_written"]
    assert set(loaded.column_names) == {"jpg", "png", "json", "__key__", "__url__"}
    pngs = [row for row in loaded if row["png"] is not None]
    assert len(pngs) == stats["image_formats"]["png"] == 2  # mixed formats all load
    by_key = {s["__key__"]: json.loads(s["json"]) for s in read_samples(out)}
    for row in loaded:  # every field survives; fields other backends record load as null
        assert without_nulls(row["json"]) == without_nulls(by_key[row["__key__"]])
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    features = datasets.Features._from_yaml_list(header["dataset_info"]["features"])
    files = sorted(str(p) for p in out.glob("shard-*.tar"))
    plain = datasets.load_dataset(
        "webdataset", data_files={"train": files}, features=features, split="train"
    )
    assert len(plain) == stats["images_written"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mminstruct", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_help_shows_examples():
    top = run_cli("--help")
    assert (
        top.returncode == 0
        and "examples:" in top.stdout
        and "mminstruct build configs/demo.yaml" in top.stdout
    )
    sub = run_cli("build", "--help")
    assert sub.returncode == 0 and "--set KEY=VALUE" in sub.stdout and "--limit N" in sub.stdout


def test_config_errors_are_clean(tmp_path):
    result = run_cli(
        "build", "configs/demo.yaml", "--set", "generator.sed=1", "--set", "context.decimals=x"
    )
    assert result.returncode == 2
    assert "unknown key 'generator.sed' (did you mean 'seed'?)" in result.stderr
    assert "context.decimals: expected an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_output_dir_and_bad_annotations_are_clean(tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_cli("build", "demo", "--set", f"output.dir={tmp_path / 'file'}")
    assert result.returncode == 1 and "is a file; choose a folder" in result.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    result = run_cli("build", "demo", "--set", f"output.dir={tmp_path / 'other'}")
    assert result.returncode == 1 and "not written by mminstruct" in result.stderr
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    job = source_config(
        tmp_path, {"kind": "coco", "images": str(tmp_path), "instances": str(broken)}
    )
    result = run_cli("build", str(job), "--set", f"output.dir={tmp_path / 'o'}")
    assert result.returncode == 1 and f"{broken}: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_rule_based_build_never_imports_torch(tmp_path):
    code = (
        "import sys; from mminstruct.cli import main; "
        f"main(['build', 'demo', '-q', '--set', 'output.dir={tmp_path / 'o'}']); "
        "heavy = [m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules]; "
        "print('heavy:', heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "heavy: []" in result.stdout, result.stderr


def test_shards_hold_only_safe_member_names(tmp_path):
    build(tmp_path, "configs/demo.yaml")
    for shard in (tmp_path / "out").glob("shard-*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                assert member.isfile() and len(member.name.encode()) < 100 and member.name.isascii()
                assert member.name.count(".") == 1


def test_a_build_that_writes_nothing_fails_with_its_commonest_reasons(tmp_path, capsys):
    """An images folder that exists but holds none of the images: before, exit 0 and a card
    for an empty dataset."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    args = ["build", "demo", "-q", "--set", f"sources.0.images={empty}"]
    assert main([*args, "--set", f"output.dir={out}"]) == 1
    err = capsys.readouterr().err
    assert "error: no sample was written; the commonest reasons: missing_image (16)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["finalize", "card", "export"])
def test_a_folder_that_cannot_be_written_is_a_message(tmp_path, capsys, monkeypatch, command):
    """finalize, card and export on a read-only folder ended in an OSError traceback."""
    import errno

    import mminstruct.io

    out = tmp_path / "out"
    assert main(["build", "demo", "-q", "--set", f"output.dir={out}"]) == 0

    def read_only(*_args, dir=None, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(dir))

    monkeypatch.setattr(mminstruct.io.tempfile, "mkstemp", read_only)
    monkeypatch.setattr("tempfile.mkstemp", read_only)
    args = {"export": ["--dest", str(tmp_path / "x")]}.get(command, [])
    assert main([command, str(out), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write or read") and "Read-only file system" in err
