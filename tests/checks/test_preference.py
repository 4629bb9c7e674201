"""Preference pairs: the rejected answer contradicts the annotations, the chosen does not.

Every pair is checked against the annotations it was made from, on the bundled demo, on
real COCO excerpts and on real Visual Genome excerpts, for every error kind, by
`support/planted_truth.py`: its own reading of boxes and relations, never the grounding
checks that chose the pair.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from mminstruct.converters import READERS
from PIL import Image
from support.planted_truth import truth

from mminstruct.checks import preference
from mminstruct.checks.grounding import check_text, facts
from mminstruct.checks.preference import (
    ERROR_KINDS,
    SUPERCATEGORY,
    Planted,
    add_preference_pairs,
    plant_count,
    plant_object,
    plant_position,
    plant_relation,
    preference_pairs,
)
from mminstruct.config import PreferenceTask, config_from_dict, load_config
from mminstruct.errors import ConfigError
from mminstruct.generate import make_generator
from mminstruct.pipeline import generate_batch, run
from mminstruct.records import Generated, ImageRecord, Instruction, ObjectBox, Relation

PAIRS = ["tasks.preference.enabled=true", "tasks.preference.pairs=4"]


def records_of(config) -> list[ImageRecord]:
    return [r for s in config.sources for r in READERS[s.kind](s) if isinstance(r, ImageRecord)]


def pairs_of(config) -> list[tuple[ImageRecord, Instruction, dict]]:
    """Every pair the configured generator makes, with its record and instruction."""
    records = records_of(config)
    results = generate_batch(make_generator(config), config, records, [b""] * len(records))
    return [
        (record, instruction, pair)
        for record, result in zip(records, results, strict=True)
        for instruction in result.instructions
        for pair in instruction.preference
    ]


def undone(pair: dict) -> dict:
    """The pair with its change undone: the rejected answer offered as the chosen one."""
    error = pair["error"]
    start = error["span"][0]
    span = [start, start + len(error["replacement"])]
    flipped = {**error, "original": error["replacement"], "replacement": error["original"]}
    return {
        **pair,
        "chosen": pair["rejected"],
        "rejected": pair["chosen"],
        "error": {**flipped, "span": span},
    }


def assert_pair_is_sound(record: ImageRecord, instruction: Instruction, pair: dict) -> None:
    """The chosen answer is the instruction's own; the rejected one is it with exactly the
    recorded change, and the annotations show that change to be an error of the planted kind.
    `truth` reads boxes and relations by its own rules, never the package's grounding checks
    (which chose the pair); the same change undone must not pass it, so it can tell."""
    assert pair["chosen"] == instruction.turns[pair["turn"]][1]
    assert truth(record, pair) == [], pair
    assert truth(record, undone(pair)) != [], pair


# --------------------------------------------------------------------------- real data


def test_demo_pairs_are_sound_for_every_kind_they_make():
    config = load_config("demo", PAIRS)
    found = pairs_of(config)
    kinds = Counter(pair["error"]["kind"] for _, _, pair in found)
    assert {"object", "count", "position"} <= set(kinds), kinds
    for record, instruction, pair in found:
        assert_pair_is_sound(record, instruction, pair)


def test_real_coco_pairs_are_sound(tiny_coco, coco_mini):
    config = config_from_dict({"sources": [tiny_coco, coco_mini]}, PAIRS)
    found = pairs_of(config)
    kinds = Counter(pair["error"]["kind"] for _, _, pair in found)
    assert {"object", "count", "position"} <= set(kinds), kinds
    for record, instruction, pair in found:
        assert_pair_is_sound(record, instruction, pair)


@pytest.fixture
def vg_source(vg_subset: Path, tmp_path: Path) -> dict:
    """The real Visual Genome subset, with placeholder images that hold every box."""
    sizes: dict[int, tuple[int, int]] = {}
    for name, key in (("objects.json", "objects"), ("relationships.json", "relationships")):
        for entry in json.loads((vg_subset / name).read_text()):
            if "image_id" not in entry:
                continue
            boxes = entry[key] if key == "objects" else [
                side for rel in entry[key] for side in (rel["subject"], rel["object"])
            ]  # fmt: skip
            for box in boxes:
                w, h = sizes.get(entry["image_id"], (1, 1))
                sizes[entry["image_id"]] = (
                    max(w, box["x"] + box["w"]),
                    max(h, box["y"] + box["h"]),
                )
    (tmp_path / "VG_100K").mkdir()
    for image_id, size in sizes.items():
        Image.new("RGB", size).save(tmp_path / "VG_100K" / f"{image_id}.jpg")
    return {
        "kind": "visual_genome",
        "images": str(tmp_path),
        "objects": str(vg_subset / "objects.json"),
        "relationships": str(vg_subset / "relationships.json"),
    }


def test_real_visual_genome_pairs_are_sound(vg_source):
    found = []
    for seed in range(3):  # both ways of planting a relation error need a few answers
        config = config_from_dict({"sources": [vg_source]}, [*PAIRS, f"generator.seed={seed}"])
        found += pairs_of(config)
    kinds = Counter(pair["error"]["kind"] for _, _, pair in found)
    assert {"relation", "position"} <= set(kinds), kinds
    details = [p["error"]["detail"] for _, _, p in found if p["error"]["kind"] == "relation"]
    assert any(d.startswith("subject and object swapped") for d in details), details
    for record, instruction, pair in found:
        assert_pair_is_sound(record, instruction, pair)


# --------------------------------------------------------------------------- each kind


def kitchen() -> ImageRecord:
    """A 600x400 kitchen: two cups on the left, a spoon, a bowl on a dining table."""
    return ImageRecord(
        dataset="t",
        image_id=1,
        file_name="1.jpg",
        images_dir=None,
        width=600,
        height=400,
        objects=(
            ObjectBox("cup", 20, 150, 40, 50),
            ObjectBox("cup", 80, 150, 40, 50),
            ObjectBox("spoon", 300, 180, 20, 60),
            ObjectBox("bowl", 420, 100, 120, 80),
            ObjectBox("dining table", 0, 200, 600, 200),
        ),
        relations=(Relation(3, "on", 4),),
        vocabulary=("bowl", "cup", "dining table", "dog", "fork", "knife", "spoon", "car"),
    )


def planted(planter, text: str, seed: int = 0):
    record = kitchen()
    return planter(text, record, facts(record), random.Random(seed))


def test_object_swap_prefers_an_absent_category_of_the_same_kind():
    results = [planted(plant_object, "There is a spoon next to the bowl.", s) for s in range(20)]
    swaps = {r.replacement for r in results if r.original == "a spoon"}
    assert swaps == {"a fork", "a knife"}  # kitchenware; never the absent dog or car
    result = planted(plant_object, "A spoon lies there.", 3)
    assert result.kind == "object" and result.text.startswith(("A fork", "A knife", "An "))
    assert {f.kind for f in check_text(kitchen(), result.text)} == {"object"}


def test_count_moves_by_one_and_is_caught():
    result = planted(plant_count, "There are two cups in the image.")
    assert result.text == "There are three cups in the image."
    assert "count" in {f.kind for f in check_text(kitchen(), result.text)}


def test_position_flip_is_caught():
    result = planted(plant_position, "The cups are on the left side of the image.")
    assert result.text == "The cups are on the right side of the image."
    assert "position" in {f.kind for f in check_text(kitchen(), result.text)}


def relation_plants(text: str) -> dict[str, str]:
    """Rejected text -> detail, of plant_relation over 20 seeds."""
    return {r.text: r.detail for r in (planted(plant_relation, text, s) for s in range(20)) if r}


def test_relation_opposite_or_swapped_and_both_are_caught():
    made = relation_plants("The bowl is on the dining table.")
    assert set(made) == {"The bowl is under the dining table.", "The dining table is on the bowl."}
    assert made["The dining table is on the bowl."].startswith("subject and object swapped")
    for text in made:  # the annotation says "bowl on dining table": both contradict it
        assert "relation" in {f.kind for f in check_text(kitchen(), text)}


def test_relation_swap_moves_articles_and_keeps_the_capital():
    made = relation_plants("A bowl sits on a dining table.")
    assert "A dining table sits on a bowl." in made
    assert "A bowl sits under a dining table." in made


def test_relation_plants_never_break_a_longer_preposition():
    # "on" inside "on top of" or "on the left" used to become "under top of", "under the left"
    made = relation_plants("The bowl is on top of the dining table.")
    assert set(made) == {
        "The bowl is under the dining table.",
        "The dining table is on top of the bowl.",
    }
    assert relation_plants("The cups are on the left, next to the spoon.") == {}


def test_symmetric_or_mismatched_relations_are_not_swapped():
    assert relation_plants("The spoon is next to the bowl.") == {}  # "next to" is symmetric
    made = relation_plants("The cups are on the dining table.")  # "the dining table are on"
    assert set(made) == {"The cups are under the dining table."}


def test_position_flip_leaves_adverbs_and_prepositions_alone():
    result = planted(
        plant_position, "The cups are on the left side of the image, right next to it."
    )
    assert result.text == "The cups are on the right side of the image, right next to it."
    assert planted(plant_position, "The bowl is on top of the dining table.") is None


def test_nothing_to_plant_gives_nothing():
    assert planted(plant_count, "The kitchen looks clean.") is None
    assert planted(plant_position, "There is a bowl.") is None
    assert planted(plant_relation, "A spoon and a bowl.") is None


def same_number_in_digits(text: str, record, known, rng) -> Planted:
    """A planter whose change is no error: "two" becomes "2"."""
    start = text.index("two")
    return Planted(
        text.replace("two", "2", 1), "count", "not an error", start, start + 3, "two", "2"
    )


def test_an_unconfirmed_error_is_dropped_and_counted(monkeypatch):
    instruction = Instruction("conversation", (("How many cups?", "There are two cups."),))
    options = PreferenceTask(enabled=True, errors=("count",))
    pairs, dropped = preference_pairs(kitchen(), instruction, options, random.Random(0))
    assert [p["rejected"] for p in pairs] == ["There are three cups."] and not dropped
    assert_pair_is_sound(kitchen(), instruction, pairs[0])
    # The same answer with a change that says the same thing: the checks cannot confirm it.
    monkeypatch.setitem(preference.PLANTERS, "count", same_number_in_digits)
    pairs, dropped = preference_pairs(kitchen(), instruction, options, random.Random(0))
    assert pairs == [] and dropped == {"unconfirmed_count": 1}


def test_an_ungrounded_answer_is_never_chosen():
    instruction = Instruction("conversation", (("How many cups?", "There are five cups."),))
    options = PreferenceTask(enabled=True)
    pairs, dropped = preference_pairs(kitchen(), instruction, options, random.Random(0))
    assert pairs == [] and dropped == {"chosen_ungrounded": 1}


def test_pairs_are_deterministic_under_a_seed():
    config = load_config("demo", PAIRS)
    first = [pair for _, _, pair in pairs_of(config)]
    assert first == [pair for _, _, pair in pairs_of(config)]
    reseeded = load_config("demo", [*PAIRS, "generator.seed=7"])
    assert first != [pair for _, _, pair in pairs_of(reseeded)]


# --------------------------------------------------------------------------- config and build


def test_config_rejects_unknown_errors_and_pairs_without_grounding():
    with pytest.raises(ConfigError) as caught:
        load_config("demo", [*PAIRS, "tasks.preference.errors=[count, colour]"])
    assert "tasks.preference.errors: 'colour' is not an error kind" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config("demo", [*PAIRS, "generator.grounding=off"])
    assert "set generator.grounding to 'annotate' or 'filter'" in str(caught.value)


def test_build_writes_pairs_with_their_prompt_and_counts_them(tmp_path):
    config = load_config("demo", [*PAIRS, f"output.dir={tmp_path / 'out'}"])
    run(config)
    out = tmp_path / "out"
    stats = json.loads((out / "stats.json").read_text())
    import webdataset as wds

    written = Counter()
    for sample in wds.WebDataset(
        [str(p) for p in sorted(out.glob("shard-*.tar"))], shardshuffle=False
    ):
        record = json.loads(sample["json"])
        for instruction in record["instructions"]:
            for pair in instruction.get("preference", []):
                prompt = pair["prompt"]
                assert prompt[-1]["from"] == "human" and len(prompt) % 2 == 1
                assert prompt == instruction["conversations"][: len(prompt)]
                assert instruction["conversations"][len(prompt)]["value"] == pair["chosen"]
                assert pair["error"]["kind"] in ERROR_KINDS
                written[pair["error"]["kind"]] += 1
    assert sum(written.values()) > 0
    assert stats["preference"]["pairs"] == sum(written.values())
    assert stats["preference"]["by_kind"] == dict(written)


def test_generated_counts_drops(monkeypatch):
    monkeypatch.setitem(preference.PLANTERS, "count", same_number_in_digits)
    turns = (("How many cups?", "There are two cups."), ("And forks?", "There are five forks."))
    generated = Generated([Instruction("conversation", turns)])
    options = PreferenceTask(enabled=True, errors=("count",), pairs=2)
    result = add_preference_pairs(kitchen(), generated, options, seed=0)
    assert result.preference_dropped == {"unconfirmed_count": 1, "chosen_ungrounded": 1}
    assert result.instructions[0].preference == ()


def test_demo_drops_are_counted_by_reason():
    config = load_config("demo", PAIRS)
    records = records_of(config)
    results = generate_batch(make_generator(config), config, records, [b""] * len(records))
    dropped = Counter()
    for result in results:
        dropped.update(result.preference_dropped)
    assert sum(dropped.values()) > 0, "the demo drops some planted errors"
    reasons = {f"unconfirmed_{kind}" for kind in ERROR_KINDS} | {"chosen_ungrounded"}
    reasons |= {f"incoherent_{kind}" for kind in ERROR_KINDS}
    assert set(dropped) <= reasons, dropped
    assert dropped["incoherent_count"] > 0, "comparisons reasoned from a changed count"


# --------------------------------------------------------------------------- model rewrite


class RewritingBackend:
    """A stand-in model: makes the asked change for even requests, returns the answer
    unchanged for odd ones (a rewrite that lost the error)."""

    name, model = "fake", "fake"

    def __init__(self):
        self.requests = []

    def complete(self, requests):
        from mminstruct.generate.backends import Completion

        self.requests += requests
        out = []
        for n, request in enumerate(requests):
            query = request.messages[-1]["content"]
            answer = query.split("Answer: ", 1)[1].split("\nChange: ", 1)[0]
            old, new = query.split("\nChange: ", 1)[1].split('" becomes "')
            rewritten = answer.replace(old.strip('"'), new.strip('"'), 1) if n % 2 == 0 else answer
            out.append(Completion(rewritten, "stop"))
        return out

    def count_tokens(self, messages):
        return 0


def test_model_rewrites_are_kept_when_confirmed_and_counted_when_not():
    from mminstruct.checks.preference import add_preference_pairs, rewrite_rejected
    from mminstruct.generate.prompts import load_template

    config = load_config("demo", PAIRS)
    records = records_of(config)
    results = make_generator(config).generate(records)
    results = [
        add_preference_pairs(r, g, config.tasks.preference, 0)
        for r, g in zip(records, results, strict=True)
    ]
    made = sum(len(i.preference) for g in results for i in g.instructions)
    backend = RewritingBackend()
    rewrite_rejected(backend, load_template("preference"), records, results)
    assert len(backend.requests) == made > 1
    system = backend.requests[0].messages[0]
    assert system["role"] == "system" and "exactly that change" in system["content"]
    rewritten = dropped = 0
    for record, result in zip(records, results, strict=True):
        dropped += sum(v for k, v in result.preference_dropped.items() if k.startswith("rewrite_"))
        for instruction in result.instructions:
            for pair in instruction.preference:
                if pair["error"].get("rewritten"):
                    rewritten += 1
                    # The stand-in made the asked change where it first found the original.
                    at = pair["chosen"].index(pair["error"]["original"])
                    span = [at, at + len(pair["error"]["original"])]
                    assert truth(record, {**pair, "error": {**pair["error"], "span": span}}) == []
    assert rewritten == (made + 1) // 2 and dropped == made // 2


def test_rewrite_seeds_follow_the_image_and_generator_seed_not_the_batch():
    from mminstruct.checks.preference import add_preference_pairs, rewrite_rejected
    from mminstruct.generate.prompts import load_template

    config = load_config("demo", PAIRS)
    records = records_of(config)

    def seeds(order: list[int], seed: int) -> list[tuple[str, int]]:
        """(query text, seed) of each request, sorted, with the records in `order`."""
        batch = [records[n] for n in order]
        results = [
            add_preference_pairs(r, g, config.tasks.preference, 0)
            for r, g in zip(batch, make_generator(config).generate(batch), strict=True)
        ]
        backend = RewritingBackend()
        rewrite_rejected(backend, load_template("preference"), batch, results, seed)
        return sorted((r.messages[-1]["content"], r.seed) for r in backend.requests)

    forward = seeds(list(range(len(records))), 0)
    assert len(forward) > 1
    assert forward == seeds(list(reversed(range(len(records)))), 0)
    reseeded = seeds(list(range(len(records))), 7)
    assert {s for _, s in forward}.isdisjoint(s for _, s in reseeded)


def test_rewrite_needs_a_model_backend():
    with pytest.raises(ConfigError) as caught:
        load_config("demo", [*PAIRS, "tasks.preference.rewrite=true"])
    assert "tasks.preference.rewrite: needs a model backend" in str(caught.value)


def test_shipped_preference_template_builds_messages():
    from mminstruct.generate.prompts import build_messages, load_template

    template = load_template("preference")
    messages = build_messages(template, 'Answer: A dog.\nChange: "dog" becomes "cat"')
    assert [m["role"] for m in messages] == ["system", *["user", "assistant"] * 3, "user"]
    for context, answer in template.examples:  # each example makes exactly its change
        original = context.split("Answer: ", 1)[1].split("\nChange: ")[0]
        assert answer != original and "Change" not in answer


# --------------------------------------------------------------------------- loaders


@pytest.fixture(scope="module")
def preference_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "out"
    run(load_config("demo", [*PAIRS, f"output.dir={out}"]))
    return out


def test_build_with_pairs_loads_with_datasets_from_the_card(preference_build, tmp_path):
    import datasets

    # A private cache: the shared one keys a local folder by its name and file names, so an
    # earlier build in another ".../out" would be read back instead of this one.
    loaded = datasets.load_dataset(str(preference_build), split="train", cache_dir=tmp_path)
    pairs = [
        pair
        for row in loaded
        for instruction in row["json"]["instructions"]
        for pair in instruction["preference"] or []
    ]
    stats = json.loads((preference_build / "stats.json").read_text())
    assert len(pairs) == stats["preference"]["pairs"] > 0
    assert all(
        p["error"]["kind"] in ERROR_KINDS and p["prompt"][-1]["from"] == "human" for p in pairs
    )
    card = (preference_build / "README.md").read_text()
    assert "Preference" in card and str(stats["preference"]["pairs"]) in card


def test_dpo_export_has_the_columns_trl_reads(preference_build, tmp_path):
    import datasets

    from mminstruct.publish.export import check_dpo, export

    dest = tmp_path / "dpo"
    done = export(preference_build, dest, "dpo")
    stats = json.loads((preference_build / "stats.json").read_text())
    rows = [json.loads(line) for line in done.records_path.read_text().splitlines()]
    assert len(rows) == stats["preference"]["pairs"] and check_dpo(rows, dest) == []
    loaded = datasets.load_dataset(
        "json", data_files=str(done.records_path), split="train", cache_dir=tmp_path / "cache"
    )
    assert {"images", "prompt", "chosen", "rejected"} <= set(loaded.column_names)
    loaded = loaded.map(lambda row: {"images": [str(dest / p) for p in row["images"]]})
    loaded = loaded.cast_column("images", datasets.Sequence(datasets.Image()))
    first = loaded[0]
    assert first["images"][0].size[0] > 0  # a real, decodable image
    prompt = first["prompt"]
    assert prompt[0]["role"] == "user" and prompt[-1]["role"] == "user"
    assert [c["type"] for m in prompt for c in m["content"]].count("image") == 1
    assert first["chosen"][0]["role"] == first["rejected"][0]["role"] == "assistant"
    assert first["chosen"][0]["content"][0]["text"] != first["rejected"][0]["content"][0]["text"]


def test_dpo_export_of_a_build_without_pairs_says_what_to_do(tmp_path):
    from mminstruct.errors import MminstructError
    from mminstruct.publish.export import export

    out = tmp_path / "plain"
    run(load_config("demo", [f"output.dir={out}"]))
    with pytest.raises(MminstructError, match=r"build with tasks\.preference\.enabled"):
        export(out, tmp_path / "dpo", "dpo")


# --------------------------------------------------------------------------- same question, same form


def test_a_count_question_gets_a_wrong_count_never_a_swapped_object():
    """ "How many spoons?" -> "one spoon": only a count error answers the same question
    ("two spoons"), with the verb agreeing; an object swap would answer another question."""
    instruction = Instruction(
        "conversation", (("How many spoons can you see?", "There is one spoon in the image."),)
    )
    options = PreferenceTask(enabled=True)  # every kind allowed
    for seed in range(10):
        pairs, _ = preference_pairs(kitchen(), instruction, options, random.Random(seed))
        assert [p["rejected"] for p in pairs] == ["There are two spoons in the image."]
        assert pairs[0]["error"]["kind"] == "count"
        assert_pair_is_sound(kitchen(), instruction, pairs[0])


def test_object_swaps_stay_within_the_coco_supercategory():
    """A spoon becomes a fork or a knife (kitchen), never the absent dog or car; a bowl's
    own kind has nothing absent left but those, so the dining table is never swapped."""
    options = PreferenceTask(enabled=True, errors=("object",))
    text = "A spoon lies beside the dining table."
    instruction = Instruction("conversation", (("What is there?", text),))
    swapped = set()
    for seed in range(20):
        pairs, _ = preference_pairs(kitchen(), instruction, options, random.Random(seed))
        for pair in pairs:
            swapped.add(pair["error"]["replacement"].lower())
            assert_pair_is_sound(kitchen(), instruction, pair)
    assert swapped and swapped <= {"a fork", "a knife"}, swapped
    assert SUPERCATEGORY["fork"] == SUPERCATEGORY["spoon"] == "kitchen" and len(SUPERCATEGORY) == 80


def test_a_swap_never_replaces_what_the_question_asks_about():
    options = PreferenceTask(enabled=True, errors=("object",))
    instruction = Instruction(
        "conversation", (("Where is the spoon?", "The spoon is near the middle."),)
    )
    for seed in range(10):
        pairs, _ = preference_pairs(kitchen(), instruction, options, random.Random(seed))
        assert pairs == []


def test_incoherent_plants_are_dropped_and_counted():
    """A count changed in an answer that then compares the counts, and a swapped category
    that the answer names again, would contradict themselves: dropped, counted."""
    compare = "Yes. I can count two cups but only one bowl, so the cups outnumber the bowls."
    instruction = Instruction("reasoning", (("Are there more cups than bowls?", compare),))
    options = PreferenceTask(enabled=True, errors=("count",))
    pairs, dropped = preference_pairs(kitchen(), instruction, options, random.Random(0))
    assert pairs == [] and dropped == {"incoherent_count": 1}
    again = Instruction("conversation", (("What is there?", "A spoon, and the spoon is metal."),))
    options = PreferenceTask(enabled=True, errors=("object",))
    pairs, dropped = preference_pairs(kitchen(), again, options, random.Random(0))
    assert pairs == [] and dropped == {"incoherent_object": 1}
