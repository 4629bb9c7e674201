"""The dataset card: a real build's README.md parses as a Hub card, its header round-trips and
makes `datasets.load_dataset` read every sample; its statistics and plots are the build's."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from support.shards import shard_records, without_nulls

from mminstruct.cli import main
from mminstruct.config import config_to_dict, load_config
from mminstruct.errors import ConfigError
from mminstruct.publish.card import render_body, write_plots
from mminstruct.publish.card_header import card_header
from mminstruct.publish.plots import length_histograms

REPO = Path(__file__).resolve().parents[2]


def build(out: Path, config: str | Path = "demo", *extra: str) -> dict:
    assert main(["build", str(config), "-q", "--set", f"output.dir={out}", *extra]) == 0
    return json.loads((out / "stats.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("card") / "out"
    build(out)
    return out


def test_card_parses_on_the_hub_and_its_header_round_trips(demo):
    from huggingface_hub import DatasetCard

    path = demo / "README.md"
    card = DatasetCard.load(path)  # a local path: nothing is fetched
    stats = json.loads((demo / "stats.json").read_text())
    config = config_to_dict(load_config(demo / "config.yaml"))
    header = card.data.to_dict()
    assert header == card_header(config, stats)
    assert str(card) == path.read_text(encoding="utf-8")  # load -> save gives the same bytes
    assert header["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "shard-*.tar"}]}
    ]
    assert header["dataset_info"]["splits"] == [
        {"name": "train", "num_bytes": stats["bytes"], "num_examples": 16}
    ]
    assert header["license"] == "cc-by-4.0" and header["size_categories"] == ["n<1K"]
    assert header["task_categories"] == ["visual-question-answering", "image-to-text"]
    assert header["annotations_creators"] == header["language_creators"] == ["machine-generated"]
    assert header["source_datasets"] == ["extended|coco"] and header["pretty_name"]
    features = {f["name"]: f for f in header["dataset_info"]["features"]}
    assert features["jpg"]["dtype"] == features["png"]["dtype"] == "image"  # mixed formats
    fields = {f["name"] for f in features["json"]["struct"]}
    assert fields == {"id", "image", "width", "height", "source", "instructions"}


def test_datasets_loads_every_sample_with_every_field(demo, tmp_path):
    datasets = pytest.importorskip("datasets")
    expected = shard_records(demo)
    cache = str(tmp_path / "hf-cache")
    loaded = datasets.load_dataset(str(demo), split="train", cache_dir=cache)
    assert len(loaded) == len(expected) == 16
    for row in loaded:
        assert without_nulls(row["json"]) == expected[row["__key__"]]
        assert (row["jpg"] is None) != (row["png"] is None)
    streamed = datasets.load_dataset(str(demo), split="train", streaming=True)
    keys = []
    for row in streamed:
        assert without_nulls(row["json"]) == expected[row["__key__"]]
        keys.append(row["__key__"])
    assert sorted(keys) == sorted(expected)  # stats.json, rejects, plots never got in


def test_card_body_tells_how_the_data_was_made(demo):
    text = (demo / "README.md").read_text()
    stats = json.loads((demo / "stats.json").read_text())
    for heading in (
        "## Loading",
        "## Sources and licenses",
        "## How it was made",
        "## Statistics",
        "## Examples",
        "## Limitations and biases",
        "## Intended use",
        "## Citation",
    ):
        assert heading in text
    assert f"| images written | {stats['images_written']:,} |" in text
    assert "mminstruct export" in text and "load_dataset" in text and "WebDataset" in text
    assert "`rule_based.yaml` `" + stats["templates"]["rule_based.yaml"] + "`" in text
    assert "[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) | 8 |" in text  # counted
    assert "@inproceedings{liu2023llava" in text and "@inproceedings{lin2014coco" in text
    records = shard_records(demo)
    first = next(iter(records.values()))
    example = first["instructions"][0]["conversations"][1]["value"]
    assert example in text  # one real example per task, from the shards
    grounding = stats["grounding"]  # on by default: every instruction is checked
    assert (
        "## Grounding" in text and f"{grounding['flagged']:,} of {grounding['checked']:,}" in text
    )
    assert "## Preference pairs" not in text  # none asked for
    assert stats["preference"] == {"pairs": 0, "by_kind": {}, "dropped": {}}


def test_plots_are_real_images_of_the_real_stats(demo):
    stats = json.loads((demo / "stats.json").read_text())
    text = (demo / "README.md").read_text()
    for name in ("lengths.png", "categories.png", "rejects.png"):
        assert f"](plots/{name})" in text
        with Image.open(demo / "plots" / name) as image:
            assert image.format == "PNG" and image.width >= 500 and image.height >= 100
            assert len(image.getcolors(1 << 16) or range(300)) > 10  # drawn, not blank
    # The histograms are of the stats: one length per instruction of each task.
    for task, count in stats["instructions"].items():
        assert sum(stats["lengths"][task]["words"].values()) == count
    lengths = Image.open(io.BytesIO(length_histograms(stats)))
    fewer = {**stats, "lengths": {"detail": stats["lengths"]["detail"]}}
    assert Image.open(io.BytesIO(length_histograms(fewer))).height < lengths.height
    assert (demo / "plots" / "lengths.png").read_bytes() == length_histograms(stats)


def test_card_command_rewrites_the_same_card(demo, capsys):
    before = {p.name: p.read_bytes() for p in [demo / "README.md", *(demo / "plots").iterdir()]}
    (demo / "README.md").unlink()
    for plot in (demo / "plots").iterdir():
        plot.unlink()
    assert main(["card", str(demo)]) == 0
    assert "README.md" in capsys.readouterr().out
    after = {p.name: p.read_bytes() for p in [demo / "README.md", *(demo / "plots").iterdir()]}
    assert after == before  # deterministic: plots carry no date or software metadata


def test_card_command_on_a_folder_without_a_build_is_clean(tmp_path, capsys):
    assert main(["card", str(tmp_path)]) == 1
    assert "stats.json not found" in capsys.readouterr().err
    (tmp_path / "stats.json").write_text("{}")
    assert main(["card", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'config.yaml'} not found: the card is written from the config" in err


def test_stats_count_lengths_categories_and_licenses_of_written_images(demo):
    stats = json.loads((demo / "stats.json").read_text())
    instances = json.loads((REPO / "mminstruct/sample/instances.json").read_text())
    names = {c["id"]: c["name"] for c in instances["categories"]}
    boxes = Counter(names[a["category_id"]] for a in instances["annotations"])
    assert stats["categories"] == dict(sorted(boxes.items(), key=lambda kv: (-kv[1], kv[0])))
    licenses = {lic["id"]: lic for lic in instances["licenses"]}
    per_license = Counter(
        f"{licenses[i['license']]['name']} <{licenses[i['license']]['url']}>"
        for i in instances["images"]
    )
    assert stats["image_licenses"] == {"demo": dict(per_license)}
    records = shard_records(demo).values()
    words = Counter(
        (i["task"], sum(len(t["value"].split()) for t in i["conversations"][1::2]))
        for r in records
        for i in r["instructions"]
    )
    counted = {
        (task, int(n)): c for task, k in stats["lengths"].items() for n, c in k["words"].items()
    }
    assert counted == dict(words)
    assert stats["rejects_by_task"] == {"reasoning": {"insufficient_annotations": 1}}


def test_real_coco_card_counts_each_flickr_license(tmp_path, tiny_coco):
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({"sources": [tiny_coco]}))
    out = tmp_path / "out"
    stats = build(out, job)
    coco = json.loads(Path(tiny_coco["instances"]).read_text())
    licenses = {lic["id"]: lic for lic in coco["licenses"]}
    used = Counter(i["license"] for i in coco["images"])
    expected = {f"{licenses[i]['name']} <{licenses[i]['url']}>": count for i, count in used.items()}
    assert stats["image_licenses"] == {"tinycoco": expected}
    text = (out / "README.md").read_text()
    for i, count in used.items():
        link = f"[{licenses[i]['name']}]({licenses[i]['url']})"
        assert f"| `tinycoco` | {link} | {count} |" in text
    assert "COCO Consortium" in text


def demo_inputs() -> tuple[dict, dict]:
    config = config_to_dict(load_config("demo"))
    stats = {
        "images_in": 3,
        "images_written": 2,
        "images_rejected": 1,
        "instructions": {"detail": 2},
        "instructions_total": 2,
        "turns": 2,
        "rejects": {"missing_image": 1},
        "shards": [{"name": "shard-000000.tar", "samples": 2, "bytes": 10240}],
        "samples": 2,
        "bytes": 10240,
    }
    return config, stats


def test_license_other_names_the_license_in_the_header():
    config, stats = demo_inputs()
    output = {"license": "other", "license_name": "llama3", "license_link": "LICENSE.md"}
    config["output"].update(output)
    header = card_header(config, stats)
    assert header["license"] == "other"
    assert (header["license_name"], header["license_link"]) == ("llama3", "LICENSE.md")
    with pytest.raises(ConfigError, match=r"output\.license_name and output\.license_link"):
        load_config("demo", ["output.license=other"])


def test_grounding_and_preference_sections_show_their_counts():
    config, stats = demo_inputs()
    stats["grounding"] = {"checked": 10, "flagged": 2, "by_kind": {"count": 2, "object": 1}}
    stats["preference"] = {
        "pairs": 7,
        "by_kind": {"count": 2, "object": 5},
        "dropped": {"unconfirmed_relation": 3},
    }
    body = render_body(config, stats)
    assert "## Grounding" in body and "**2 of 10 (20.0%) contradict them**" in body
    assert "| count | 2 |" in body and "| object | 1 |" in body
    assert "## Preference pairs" in body and "**7 pairs**" in body
    assert "| object | 5 |" in body and "| unconfirmed_relation | 3 |" in body
    assert "Nothing was rejected" not in body and "| `missing_image` | 1 |" in body
    stats["grounding"], stats["preference"] = {"checked": 0}, {"pairs": 0}
    body = render_body(config, stats)
    assert "## Grounding" not in body and "## Preference pairs" not in body


def test_write_plots_skips_what_has_no_data(tmp_path):
    _, stats = demo_inputs()
    stats["rejects"] = {}
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "rejects.png").write_bytes(b"stale")
    drawn = write_plots(tmp_path, stats)
    assert drawn == []  # no lengths, categories or rejects recorded: nothing to draw
    assert not (tmp_path / "plots" / "rejects.png").exists()


def test_header_declares_every_field_a_sample_can_hold():
    """Fields other stages write into a sample's JSON are declared, or `datasets` fails."""
    import dataclasses

    from mminstruct.checks.grounding import Finding
    from mminstruct.output import SAMPLE_FIELDS
    from mminstruct.publish.card_header import dataset_features

    features = {f["name"]: f for f in dataset_features({"image_formats": {"jpg": 1}})}
    record = {f["name"]: f for f in features["json"]["struct"]}
    instruction = {f["name"]: f for f in record["instructions"]["list"]}
    assert set(instruction) == {"task", "conversations", "generator", "grounding", "preference"}
    pair = {f["name"]: f for f in instruction["preference"]["list"]}
    assert set(pair) == {"prompt", "chosen", "rejected", "error"}
    error = {f["name"] for f in pair["error"]["struct"]}
    assert error == {"kind", "detail", "span", "original", "replacement", "rewritten"}
    grounding = {f["name"]: f for f in instruction["grounding"]["struct"]}
    finding = {f["name"] for f in grounding["findings"]["list"]}
    assert finding == {f.name for f in dataclasses.fields(Finding)}
    generator = SAMPLE_FIELDS["instructions"][0]["generator"]
    assert {f["name"] for f in instruction["generator"]["struct"]} == set(generator)
    assert {"attempts", "batch_size", "batch_seed"} <= set(generator)  # openai, hf
