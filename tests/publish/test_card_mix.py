"""The card of the LLaVA-1.5-style mix (configs/mix.yaml): every enabled family with its exact
format prompt, a deterministic plot of families and question types, and question-type counts
in stats.json that add up to the turns written."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from support.shards import shard_records

from mminstruct.cli import main
from mminstruct.config import config_to_dict, load_config
from mminstruct.lexicon import FORMAT_PROMPTS
from mminstruct.output.stats import merge_stats
from mminstruct.publish.card import write_plots
from mminstruct.publish.card_header import card_header
from mminstruct.publish.card_sections import TASK_NAMES, families_table
from mminstruct.publish.plots import family_mix

REPO = Path(__file__).resolve().parents[2]
FAMILIES = set(TASK_NAMES)  # mix.yaml enables all seven


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mix") / "out"
    config = str(REPO / "configs" / "mix.yaml")
    assert main(["build", config, "-q", "--set", f"output.dir={out}"]) == 0
    return out


def stats_of(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def family_rows(card: str) -> dict[str, str]:
    """`family` -> its row of the families table, read off the card text."""
    return {
        line.split("|")[1].strip().strip("`"): line
        for line in card.splitlines()
        if line.startswith("| `") and line.split("|")[1].strip().strip("`") in FAMILIES
    }


def test_card_lists_each_family_with_its_exact_format_prompt(mix):
    rows = family_rows((mix / "README.md").read_text(encoding="utf-8"))
    assert set(rows) == FAMILIES
    for family, row in rows.items():
        prompt = FORMAT_PROMPTS.get(family)
        if prompt:
            assert f"`{prompt}`" in row, family
        else:
            assert "none (free-form answers)" in row, family


def test_family_table_shows_the_counted_question_types(mix):
    stats = stats_of(mix)
    config = config_to_dict(load_config(mix / "config.yaml"))
    rows = family_rows(families_table(config, stats))
    kinds = stats["question_types"]["short_vqa"]
    top = max(kinds, key=lambda k: (kinds[k], k))
    assert f"{top} {kinds[top]:,}" in rows["short_vqa"]
    assert "phrase_to_box" in rows["regions"] and "box_to_phrase" in rows["regions"]
    off = {**config, "tasks": {**config["tasks"], "choice": {"enabled": False}}}
    assert "choice" not in family_rows(families_table(off, stats))


def test_question_types_add_up_to_the_turns(mix):
    stats = stats_of(mix)
    kinds = stats["question_types"]
    assert set(kinds) == FAMILIES
    assert sum(n for family in kinds.values() for n in family.values()) == stats["turns"]
    written: Counter = Counter()
    for record in shard_records(mix).values():
        for instruction in record["instructions"]:
            types = instruction["generator"]["question_types"]
            assert len(types) * 2 == len(instruction["conversations"])
            written.update((instruction["task"], t) for t in types)
    assert written == Counter({(f, k): n for f, c in kinds.items() for k, n in c.items()})
    assert not any(":" in k for c in kinds.values() for k in c)  # no "yes:" verdicts leak
    assert kinds["detail"] == {"detail": stats["instructions"]["detail"]}
    assert len(kinds["compositional"]) >= 3 and len(kinds["conversation"]) >= 3


def test_merge_sums_question_types_across_shards():
    parts = [
        {"question_types": {"choice": {"count": 2, "present": 1}}, "shards": []},
        {"question_types": {"choice": {"count": 3}, "detail": {"detail": 1}}, "shards": []},
    ]
    merged = merge_stats(parts)["question_types"]
    assert merged == {"choice": {"count": 5, "present": 1}, "detail": {"detail": 1}}


def test_family_plot_is_drawn_and_deterministic(mix, tmp_path):
    stats = stats_of(mix)
    png = (mix / "plots" / "families.png").read_bytes()
    assert png.startswith(b"\x89PNG") and family_mix(stats) == png
    assert "![Turns per task family and question type](plots/families.png)" in (
        mix / "README.md"
    ).read_text(encoding="utf-8")
    drawn = write_plots(tmp_path, stats)
    assert ("families.png", "Turns per task family and question type") in drawn
    assert (tmp_path / "plots" / "families.png").read_bytes() == png
    assert family_mix({"instructions": {"conversation": 3}, "question_types": {}}) is None


def test_family_plot_labels_are_plain_text():
    stats = {"instructions": {"$x$": 1}, "question_types": {"$x$": {"a$b": 1}}}
    assert family_mix(stats).startswith(b"\x89PNG")  # `$` never starts mathtext


def test_mix_card_parses_on_the_hub(mix):
    from huggingface_hub import DatasetCard

    path = mix / "README.md"
    card = DatasetCard.load(path)  # a local path: nothing is fetched
    config = config_to_dict(load_config(mix / "config.yaml"))
    assert card.data.to_dict() == card_header(config, stats_of(mix))
    assert str(card) == path.read_text(encoding="utf-8")
    features = {f["name"]: f for f in card.data.to_dict()["dataset_info"]["features"]}
    assert "question_types" in json.dumps(features["json"])
