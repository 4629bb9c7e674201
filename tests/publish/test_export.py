"""Exports and loaders: LLaVA JSON/JSONL that LLaVA's rules accept, the wids shard index,
`mminstruct stats` recounting from the shards, and webdataset reading every sample."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import webdataset as wds

from mminstruct.cli import main
from mminstruct.publish.export import check_llava

IMAGE_KEYS = ("jpg", "png")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "out"
    args = ["build", "demo", "-q", "--set", f"output.dir={out}"]
    assert main([*args, "--set", "output.shard_max_samples=6"]) == 0  # three shards
    return out


def shard_samples(out: Path) -> dict[str, dict]:
    """key -> {"json": record, "ext": image extension, "image": bytes}, read with tarfile."""
    samples: dict[str, dict] = {}
    for shard in sorted(out.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                key, ext = member.name.split(".", 1)
                data = tar.extractfile(member).read()
                entry = samples.setdefault(key, {})
                if ext == "json":
                    entry["json"] = json.loads(data)
                else:
                    entry["ext"], entry["image"] = ext, data
    return samples


def test_llava_export_is_what_llava_trains_on(demo, tmp_path, capsys):
    dest = tmp_path / "llava"
    assert main(["export", str(demo), "--format", "llava", "--dest", str(dest)]) == 0
    assert "--image_folder" in capsys.readouterr().out
    records = json.loads((dest / "llava.json").read_text())
    samples = shard_samples(demo)
    stats = json.loads((demo / "stats.json").read_text())
    assert isinstance(records, list) and len(records) == stats["instructions_total"]
    assert len({r["id"] for r in records}) == len(records)
    assert check_llava(records, dest / "images") == []
    assert all(set(r) == {"id", "image", "conversations"} for r in records)
    for record in records:
        key = record["image"].rsplit(".", 1)[0]
        sample = samples[key]
        assert record["image"] == f"{key}.{sample['ext']}"
        assert (dest / "images" / record["image"]).read_bytes() == sample["image"]
        assert record["conversations"] in [
            i["conversations"] for i in sample["json"]["instructions"]
        ]
    assert len(list((dest / "images").iterdir())) == len(samples)


def test_jsonl_export_holds_the_same_records_one_per_line(demo, tmp_path):
    assert main(["export", str(demo), "--format", "llava", "--dest", str(tmp_path / "a")]) == 0
    assert main(["export", str(demo), "--format", "jsonl", "--dest", str(tmp_path / "b")]) == 0
    lines = (tmp_path / "b" / "llava.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == json.loads(
        (tmp_path / "a" / "llava.json").read_text()
    )
    # Exporting again into the same folder replaces the export; a foreign folder is refused.
    assert main(["export", str(demo), "--format", "jsonl", "--dest", str(tmp_path / "b")]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["export", str(demo), "--dest", str(tmp_path / "mine")]) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_checker_applies_llava_rules(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    good = {
        "id": "a-0",
        "image": "a.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat?"},
            {"from": "gpt", "value": "A."},
        ],
    }
    assert check_llava([good], tmp_path) == []
    gpt_first = {**good, "id": "b", "conversations": good["conversations"][::-1]}
    no_image = {**good, "id": "c", "image": None}
    two_tokens = {
        **good,
        "id": "d",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat?"},
            {"from": "gpt", "value": "A."},
            {"from": "human", "value": "<image> and?"},
            {"from": "gpt", "value": "B."},
        ],
    }
    missing = {**good, "id": "e", "image": "gone.jpg"}
    problems = check_llava([good, good, gpt_first, no_image, two_tokens, missing], tmp_path)
    text = "\n".join(problems)
    assert "record 1 (id 'a-0'): `id` is not unique" in text
    assert "record 2 (id 'b'): roles must alternate human/gpt from human" in text
    assert "record 3 (id 'c'): `image` must name the image file" in text
    assert "record 4 (id 'd'): `<image>` must appear once, in the first human turn" in text
    assert "record 5 (id 'e'): image file gone.jpg is not in" in text


def test_wids_index_is_exact(demo):
    index = json.loads((demo / "shards.wids.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1" and index["wids_version"] == 1
    shards = sorted(demo.glob("shard-*.tar"))
    assert [e["url"] for e in index["shardlist"]] == [p.name for p in shards] and len(shards) == 3
    for entry, path in zip(index["shardlist"], shards, strict=True):
        with tarfile.open(path) as tar:
            keys = {m.name.split(".", 1)[0] for m in tar}
        assert entry["nsamples"] == len(keys)
        assert entry["filesize"] == path.stat().st_size
        assert entry["md5sum"] == hashlib.md5(path.read_bytes()).hexdigest()


def test_webdataset_reads_every_sample(demo):
    samples = shard_samples(demo)
    dataset = wds.WebDataset(
        sorted(str(p) for p in demo.glob("shard-*.tar")), shardshuffle=False
    ).decode("pil")
    seen = {}
    for sample in dataset:
        image = next(sample[k] for k in IMAGE_KEYS if k in sample)
        seen[sample["__key__"]] = sample["json"]
        assert image.size == (sample["json"]["width"], sample["json"]["height"])
    assert seen == {key: s["json"] for key, s in samples.items()}


def test_stats_recounts_from_the_shards_and_names_disagreements(demo, tmp_path, capsys):
    assert main(["stats", str(demo)]) == 0
    out = capsys.readouterr().out
    assert "16 samples in 3 shard(s)" in out and "agree with the shards" in out
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in demo.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    stats = json.loads((copy / "stats.json").read_text())
    stats["instructions"]["detail"] += 1
    stats["lengths"]["reasoning"]["words"]["999"] = 1
    (copy / "stats.json").write_text(json.dumps(stats))
    index = json.loads((copy / "shards.wids.json").read_text())
    index["shardlist"][1]["nsamples"] += 1
    (copy / "shards.wids.json").write_text(json.dumps(index))
    assert main(["stats", str(copy)]) == 1
    out = capsys.readouterr().out
    detail = stats["instructions"]["detail"]
    assert f"instructions.detail: recorded {detail}, the shards hold {detail - 1}" in out
    assert "lengths.reasoning.words.999: recorded 1, the shards hold nothing" in out
    assert "shards.wids.json.shard-000001.tar.nsamples" in out
    assert "3 disagreement(s)" in out


def test_stats_and_export_without_shards_are_clean(tmp_path, capsys):
    assert main(["stats", str(tmp_path)]) == 1
    assert main(["export", str(tmp_path), "--dest", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.count("holds no shard-*.tar; run `mminstruct build` first") == 2


def test_damaged_stats_or_index_is_named_not_a_traceback(demo, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in demo.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    (copy / "shards.wids.json").write_text("{cut")
    assert main(["stats", str(copy)]) == 1
    err = capsys.readouterr().err
    assert f"{copy / 'shards.wids.json'} is not valid JSON" in err
    assert f"`mminstruct finalize {copy}`" in err
    (copy / "stats.json").write_text("")
    for command in ("stats", "card"):
        assert main([command, str(copy)]) == 1
        err = capsys.readouterr().err
        assert f"error: {copy / 'stats.json'} is not valid JSON" in err, command


# --------------------------------------------------------------------------- shards from strangers


def add_members(shard: Path, members: list[tarfile.TarInfo], data: bytes = b"attacker") -> None:
    """Append crafted members to a copy of a real shard (what a stranger's shard could hold)."""
    with tarfile.open(shard, "a") as tar:
        for member in members:
            member.size = len(data) if member.isreg() else 0
            tar.addfile(member, io.BytesIO(data) if member.isreg() else None)


def crafted(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0
) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname, member.size = kind, link, size
    return member


def test_a_strangers_member_names_are_never_used_as_paths(demo, tmp_path, capsys):
    """An absolute name, `..`, a slash or a link in a shard is skipped and counted: the export
    writes nothing outside --dest (before the fix, `/abs/x.jpg` was written where it said)."""
    out = tmp_path / "out"
    out.mkdir()
    for shard in demo.glob("shard-*.tar"):
        (out / shard.name).write_bytes(shard.read_bytes())
    victim = tmp_path / "victim"
    members = [
        crafted(f"{victim}/abs.jpg"),
        crafted(f"{victim}/abs.json"),
        crafted("../escape.jpg"),
        crafted("sub/dir.jpg"),
        crafted("linked.jpg", tarfile.SYMTYPE, "/etc/passwd"),
        crafted("dev.jpg", tarfile.CHRTYPE),
    ]
    add_members(out / "shard-000000.tar", members)
    dest = tmp_path / "dest" / "llava"
    assert main(["export", str(out), "--format", "llava", "--dest", str(dest)]) == 0
    captured = capsys.readouterr()
    assert not victim.exists() and not (dest.parent / "escape.jpg").exists()
    assert "4 invalid_member_name" in captured.err and "2 not_a_regular_file" in captured.err
    written = {p.name for p in (dest / "images").iterdir()}
    assert written == {f"{key}.{s['ext']}" for key, s in shard_samples(demo).items()}


def test_stats_and_card_skip_the_same_members(demo, tmp_path, capsys):
    from mminstruct.output import iter_samples

    shard = tmp_path / "shard-000000.tar"
    shard.write_bytes((demo / "shard-000000.tar").read_bytes())
    add_members(shard, [crafted("/x/evil.json"), crafted("a..b.json")])
    skipped: Counter = Counter()
    keys = [s.key for s in iter_samples(shard, images=False, skipped=skipped)]
    assert skipped == {"invalid_member_name": 2}
    assert keys == [s.key for s in iter_samples(demo / "shard-000000.tar", images=False)]


def test_the_writer_refuses_a_key_its_readers_would_skip(tmp_path):
    from mminstruct.output import ShardWriter

    writer = ShardWriter(tmp_path, "shard-000000", 10, 1 << 20)
    with pytest.raises(ValueError, match="not a valid sample member name"), writer:
        writer.write("../up", [("json", b"{}")])
    assert list(tmp_path.iterdir()) == []


def test_dpo_export_without_pairs_leaves_no_empty_images_folder(demo, tmp_path, capsys):
    dest = tmp_path / "dpo"
    assert main(["export", str(demo), "--format", "dpo", "--dest", str(dest)]) == 1
    assert "no preference pairs" in capsys.readouterr().err
    assert not (dest / "images").exists()


def test_each_format_prints_how_to_use_it(demo, tmp_path, capsys):
    assert main(["export", str(demo), "--format", "jsonl", "--dest", str(tmp_path / "j")]) == 0
    out = capsys.readouterr().out
    assert "--data_path" not in out and "load_dataset('json'" in out
    assert main(["export", str(demo), "--format", "llava", "--dest", str(tmp_path / "l")]) == 0
    assert "--data_path" in capsys.readouterr().out


def test_wids_reads_every_sample_by_its_number(demo, tmp_path):
    """The `wids` package (not webdataset 1.x, which has no `wids` module any more) reads
    `shards.wids.json`: sample i is the i-th sample of the shards, in order."""
    wids = pytest.importorskip("wids", reason="the wids index is read by `pip install wids`")
    samples = shard_samples(demo)
    dataset = wids.ShardListDataset(str(demo / "shards.wids.json"), cache_dir=str(tmp_path))
    assert len(dataset) == len(samples) == 16
    for i, key in enumerate(samples):  # shard order, then member order
        sample = dataset[i]
        assert sample["__key__"] == key and sample[".json"] == samples[key]["json"]
        image = sample[f".{samples[key]['ext']}"]
        assert image.size == (samples[key]["json"]["width"], samples[key]["json"]["height"])


def dpo_record(ident: str = "k-detail-0-pair0", **changes) -> dict:
    record = {
        "id": ident,
        "images": ["images/k.jpg"],
        "prompt": [{"role": "user", "content": [{"type": "image", "text": None}, text("How?")]}],
        "chosen": [{"role": "assistant", "content": [text("Two dogs.")]}],
        "rejected": [{"role": "assistant", "content": [text("Three dogs.")]}],
    }
    return {**record, **changes}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def test_dpo_checker_names_each_problem(tmp_path):
    """Each broken pair is named with its record and problem; malformed shapes are problems
    too, never an exception (before: `IndexError` on an empty answer)."""
    from mminstruct.publish.export import check_dpo

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "k.jpg").write_bytes(b"x")
    good = dpo_record()
    assert check_dpo([good], tmp_path) == []
    assistant = {"role": "assistant", "content": [text("Sure.")]}
    bad = [
        good,
        dpo_record(),  # 1: the same id again
        dpo_record("b", images=["images/gone.jpg"]),
        dpo_record("c", prompt=[*good["prompt"], assistant]),  # ends with the assistant
        dpo_record("d", prompt=[{"role": "user", "content": [text("How?")]}]),  # no image item
        dpo_record("e", rejected=good["chosen"]),
        dpo_record("f", chosen=[{"role": "assistant", "content": [text("  ")]}]),
        dpo_record("g", rejected=[{"role": "assistant", "content": []}]),
        dpo_record("h", chosen="Two dogs."),
        dpo_record("i", images=["/etc/passwd"]),
        dpo_record("j", prompt=[{"role": "user", "content": "<image> How?"}]),
        "not a record",
    ]
    problems = check_dpo(bad, tmp_path)
    expected = [
        "record 1 (id 'k-detail-0-pair0'): `id` is not unique",
        "record 2 (id 'b'): `images` names files that are not beside the record file: "
        "['images/gone.jpg']",
        "record 3 (id 'c'): prompt roles must alternate user/assistant and end with user: "
        "['user', 'assistant']",
        "record 4 (id 'd'): 0 image items in the prompt for 1 images",
        "record 5 (id 'e'): `chosen` and `rejected` are the same text; a pair must differ",
        "record 6 (id 'f'): `chosen` has no text: it needs one non-empty text item",
        "record 7 (id 'g'): `rejected` has no text: it needs one non-empty text item",
        "record 8 (id 'h'): `chosen` must be one assistant message",
        "record 9 (id 'i'): `images` must be file names relative to the record file, "
        "got ['/etc/passwd']",
        "record 10 (id 'j'): 0 image items in the prompt for 1 images",
        "record 11 (id None): must be a JSON object, got str",
    ]
    assert problems == expected


def test_stats_reads_the_shards_as_webdataset_does(demo, tmp_path, capsys):
    """`stats` also reads every shard with webdataset itself: a sample a training job would see
    differently (here one with two images) is named."""
    from mminstruct.publish import consumer_disagreements

    assert consumer_disagreements(demo) == []
    out = tmp_path / "out"
    shutil.copytree(demo, out)
    shard = out / "shard-000000.tar"
    with tarfile.open(demo / "shard-000000.tar") as source, tarfile.open(shard, "w") as tar:
        members = source.getmembers()
        first = members[0].name.partition(".")[0]
        for member in members:
            tar.addfile(member, source.extractfile(member))
            if member is members[1]:  # a second image beside the first sample's own
                tar.addfile(crafted(f"{first}.webp", size=3), io.BytesIO(b"abc"))
    problems = consumer_disagreements(out)
    assert problems and f"sample {first} with" in problems[0]
    assert main(["stats", str(out)]) == 1
    assert "not json + one image" in capsys.readouterr().out
