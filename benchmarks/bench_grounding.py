"""Grounding checks: precision and recall on the labelled sets, silence on true output, cost.

1. Precision and recall per check on `tests/checks/grounding_eval/cases.jsonl` (written before the
   checks), `heldout.jsonl` (written after them, not used to tune them) and `real_use.jsonl`
   (what issue 13 found on real use); and the findings on coco_mini's 395 human captions,
   each checked against the rest of its image's annotations (people describe what they see:
   every finding is a false positive unless judged true, see tests/checks/test_grounding.py).
2. The rule-based generator's output, true by construction, over the demo sample, the real
   COCO excerpts and real Visual Genome relationships (`../shared/realdata`): instructions,
   claims checked per kind, and findings (which should be none). Five seeds, with and
   without derived relations, conversations of up to 8 turns and 3 reasoning questions.
3. What the checks cost in a build: `pipeline.run` on the synthetic set of bench_build
   (`--scale`, `--limit` images) with `generator.grounding` off and `annotate`, each in a
   fresh process (cold caches), interleaved, fastest of `--repeat`.

    python benchmarks/bench_grounding.py [--scale 0.01] [--limit 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import DATA_DIR, report_to_parent, run_child, write_results

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
sys.path.insert(0, str(REPO / "tests" / "checks"))

from grounding_eval.evaluate import (  # noqa: E402
    HERE,
    caption_findings,
    evaluate,
    load_cases,
    load_scenes,
    rule_based_output,
)
from mminstruct.converters import READERS  # noqa: E402

from mminstruct.checks.grounding import KINDS  # noqa: E402
from mminstruct.config import config_from_dict, load_config  # noqa: E402
from mminstruct.records import ImageRecord  # noqa: E402

SEEDS = range(5)


def eval_sets() -> dict:
    """Per-kind precision and recall on both labelled sets."""
    scenes = load_scenes()
    names = ("cases.jsonl", "heldout.jsonl", "real_use.jsonl")
    return {name: evaluate(load_cases(HERE / name), scenes) for name in names}


def human_captions() -> dict:
    """Findings on coco_mini's human captions, each against the rest of its record."""
    with tempfile.TemporaryDirectory() as tmp:
        source = sources(Path(tmp))["coco_mini val2017"]
    if source is None:
        return {"skipped": f"not found under {REALDATA}"}
    checked, found = caption_findings(records_of(source))
    listed = [f"{image}: {f.kind} '{f.claim}' in {caption!r}" for image, f, caption in found]
    return {"captions": checked, "findings": listed}


def sources(tmp: Path) -> dict[str, dict | None]:
    """The true-by-construction inputs; None where the real data is absent."""
    coco = REALDATA / "coco"
    tiny, mini = coco / "tiny_coco", coco / "coco_mini"
    found = {"demo": None, "tiny_coco val2017": None, "tiny_coco train2017": None}
    found |= {"coco_mini val2017": None, "visual_genome relationships": None}
    if coco.is_dir():
        for split in ("val2017", "train2017"):
            instances = str(tiny / "annotations" / f"instances_{split}.json")
            found[f"tiny_coco {split}"] = {
                **{"kind": "coco", "images": str(tiny / "images" / split)},
                "instances": instances,
            }
        found["coco_mini val2017"] = {
            **{"kind": "coco", "images": str(mini / "val2017")},
            "instances": str(mini / "annotations" / "instances_val2017.json"),
            "captions": str(mini / "annotations" / "captions_val2017.json"),
        }
    found["visual_genome relationships"] = visual_genome_source(tmp)
    return found


def visual_genome_source(tmp: Path) -> dict | None:
    """Real VG relationships; image sizes (absent from the excerpt) from the box extents."""
    folder = REALDATA / "visual_genome" / "garima16_subset_data"
    if not folder.is_dir():
        return None
    sizes = []
    for entry in json.loads((folder / "relationships.json").read_text()):
        boxes = [b for r in entry["relationships"] for b in (r["subject"], r["object"])]
        if entry.get("image_id") is not None and boxes:
            width = max(b["x"] + b["w"] for b in boxes)
            height = max(b["y"] + b["h"] for b in boxes)
            sizes.append({"image_id": entry["image_id"], "width": width, "height": height})
    (tmp / "image_data.json").write_text(json.dumps(sizes))
    return {
        **{"kind": "visual_genome", "images": str(tmp)},
        "image_data": str(tmp / "image_data.json"),
        "relationships": str(folder / "relationships.json"),
        "objects": str(folder / "objects.json"),
    }


def records_of(source: dict | None) -> list[ImageRecord]:
    config = load_config("demo") if source is None else config_from_dict({"sources": [source]})
    reader = READERS[config.sources[0].kind]
    return [r for r in reader(config.sources[0]) if isinstance(r, ImageRecord)]


def rule_based_run(records: list[ImageRecord]) -> dict:
    """Instructions, claims per kind and findings per kind over seeds and relation modes."""
    output = rule_based_output(records, SEEDS)
    findings = Counter(f.kind for f in output.findings)
    return {
        "images": len(records),
        "instructions": output.instructions,
        "claims": {kind: output.claims[kind] for kind in KINDS},
        "findings": {kind: findings[kind] for kind in KINDS},
    }


def true_output() -> dict:
    """`rule_based_run` over every available source."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in sources(Path(tmp)).items():
            if name != "demo" and source is None:
                results[name] = {"skipped": f"not found under {REALDATA}"}
                continue
            results[name] = rule_based_run(records_of(source))
            print(f"  {name}: {results[name]}", flush=True)
    return results


# --------------------------------------------------------------------------- build cost


def build_child(mode: str, images: str, instances: str, captions: str, limit: int) -> None:
    """Run one build in this (fresh) process and report its time."""
    from mminstruct.pipeline import run

    out = DATA_DIR / f"grounding-out-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    raw = {
        "sources": [{"kind": "coco", "images": images, "instances": instances}],
        "generator": {"grounding": mode},
        "output": {"dir": str(out), "shard_max_samples": 1000},
        "limit": limit,
    }
    raw["sources"][0]["captions"] = captions
    config = config_from_dict(raw)
    start = time.perf_counter()
    stats = run(config)
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    report_to_parent({"seconds": seconds, "grounding": stats.get("grounding"),
                      "instructions": stats["instructions_total"]})  # fmt: skip


def build_cost(scale: float, limit: int, repeat: int) -> dict:
    """Build time with grounding off and annotate, interleaved rounds, fastest counts."""
    folder = DATA_DIR / f"coco-{scale:g}"
    images = DATA_DIR / f"build-{scale:g}" / "images"
    if not images.is_dir():
        return {"skipped": f"run `python benchmarks/bench_build.py --scale {scale:g}` first"}
    files = [str(images), str(folder / "instances_train2017.json")]
    files.append(str(folder / "captions_train2017.json"))
    rounds: dict[str, list] = {"off": [], "annotate": []}
    for _ in range(repeat):
        for mode in rounds:
            argv = [__file__, "--child", mode, *files, str(limit)]
            rounds[mode].append(run_child(argv, timeout=1800))
    best = {mode: min(r["seconds"] for r in runs) for mode, runs in rounds.items()}
    return {
        "images": limit,
        "rounds": rounds,
        "best_seconds": best,
        "slowdown": round(best["annotate"] / best["off"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=5, metavar=("MODE", "IMAGES", "INST", "CAPS", "N"))
    args = parser.parse_args()
    if args.child:
        mode, images, instances, captions, limit = args.child
        build_child(mode, images, instances, captions, int(limit))
        return
    print("labelled sets:", flush=True)
    labelled = eval_sets()
    for name, result in labelled.items():
        print(f"  {name} ({result['cases']} cases): {json.dumps(result['per_kind'])}")
    captions = human_captions()
    print(f"  human captions (coco_mini): {json.dumps(captions)}", flush=True)
    print("rule-based output (true by construction):", flush=True)
    true = true_output()
    print(f"build cost ({args.limit} images, scale {args.scale:g}):", flush=True)
    cost = build_cost(args.scale, args.limit, args.repeat)
    print(f"  {json.dumps({k: v for k, v in cost.items() if k != 'rounds'})}")
    results = {"labelled": labelled, "human_captions": captions, "rule_based": true, "build": cost}
    print(f"wrote {write_results('grounding', results)}")


if __name__ == "__main__":
    main()
