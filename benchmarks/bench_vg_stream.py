"""Visual Genome's relationships.json: the streaming reader's peak memory next to `json.load`.

A synthetic relationships.json of the official file's shape and size (scale 1: 108,077
images, 2.3 million relations, each with its full subject and object dicts, as in
v1.4) plus a matching image_data.json are written once under benchmarks/data/. Each
contender then runs in its own fresh process, so its peak memory (VmHWM) is its own:

  json.load            `json.load` of relationships.json, as most VG scripts do
  mminstruct-stream    `read_visual_genome` over image_data + relationships: every image
                       record (objects, relations) built and dropped, as the reader streams
  mminstruct-records   the same, keeping every record in a list, as `build` does to plan
                       its shards (the records are the compact result, not the JSON)

    python benchmarks/bench_vg_stream.py [--scale 1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from common import DATA_DIR, peak_rss_mb, ratio, report_to_parent, run_child, write_results

IMAGES_AT_SCALE_1 = 108_077
RELATIONS_PER_IMAGE = 21.4  # 2.32M relations over 108,077 images in v1.4
NAMES = ("man", "shirt", "table", "window", "tree", "building", "car", "sign", "hand", "wall")
NAMES += ("plate", "horse", "street", "woman", "hat", "grass", "sky", "pole", "dog", "chair")
PREDICATES = ("ON", "has", "wearing", "of", "in", "near", "behind", "holding", "with", "riding")
CONTENDERS = ("json.load", "mminstruct-stream", "mminstruct-records")


def data_paths(scale: float) -> tuple[Path, Path]:
    folder = DATA_DIR / f"vg-{scale:g}"
    return folder / "image_data.json", folder / "relationships.json"


def generate(scale: float, seed: int = 0) -> None:
    """Write the synthetic files, one image entry at a time (never the whole list)."""
    image_data, relationships = data_paths(scale)
    image_data.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    count = max(1, round(IMAGES_AT_SCALE_1 * scale))
    infos = []
    with open(relationships.with_suffix(".tmp"), "w") as out:
        out.write("[")
        for image_id in range(1, count + 1):
            width, height = rng.choice(((800, 600), (500, 333), (1024, 768), (640, 480)))
            infos.append({"width": width, "height": height, "image_id": image_id,
                          "url": f"https://cs.stanford.edu/people/rak248/VG_100K/{image_id}.jpg",
                          "coco_id": None, "flickr_id": rng.randrange(10**9)})  # fmt: skip
            entry = {
                "relationships": _relations(rng, image_id, width, height),
                "image_id": image_id,
            }
            out.write(("" if image_id == 1 else ", ") + json.dumps(entry))
        out.write("]")
    relationships.with_suffix(".tmp").replace(relationships)
    image_data.write_text(json.dumps(infos))


def _relations(rng: random.Random, image_id: int, width: int, height: int) -> list[dict]:
    objects = [_object(rng, image_id * 100 + k, width, height) for k in range(12)]
    count = max(0, round(rng.gauss(RELATIONS_PER_IMAGE, 8)))
    relations = []
    for k in range(count):
        subject, obj = rng.sample(objects, 2)
        relations.append({
            "predicate": rng.choice(PREDICATES), "object": obj,
            "relationship_id": image_id * 1000 + k, "synsets": ["along.r.01"], "subject": subject,
        })  # fmt: skip
    return relations


def _object(rng: random.Random, object_id: int, width: int, height: int) -> dict:
    x, y = rng.randrange(width - 20), rng.randrange(height - 20)
    name = rng.choice(NAMES)
    key = "name" if rng.random() < 0.9 else "names"  # the real file mixes both
    return {
        "h": rng.randrange(10, height - y), "object_id": object_id, "merged_object_ids": [],
        "synsets": [f"{name}.n.01"], "w": rng.randrange(10, width - x), "y": y, "x": x,
        key: name if key == "name" else [name],
    }  # fmt: skip


# --------------------------------------------------------------------------- children


def child(contender: str, scale: float) -> dict:
    image_data, relationships = data_paths(scale)
    started = time.perf_counter()
    if contender == "json.load":
        with open(relationships) as handle:
            data = json.load(handle)
        result = {"images": len(data), "relations": sum(len(e["relationships"]) for e in data)}
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from mminstruct.converters import read_visual_genome

        from mminstruct.config import VisualGenomeSourceConfig
        from mminstruct.records import ImageRecord

        source = VisualGenomeSourceConfig(
            images=str(image_data.parent), image_data=str(image_data),
            relationships=str(relationships),
        )  # fmt: skip
        kept, images, relations = [], 0, 0
        for item in read_visual_genome(source):
            if isinstance(item, ImageRecord):
                images += 1
                relations += len(item.relations)
                if contender == "mminstruct-records":
                    kept.append(item)
        result = {"images": images, "relations": relations}
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        report_to_parent(child(args.child, args.scale))
        return
    if not all(p.exists() for p in data_paths(args.scale)):
        print(f"generating synthetic Visual Genome at scale {args.scale:g} ...", flush=True)
        generate(args.scale)
    size_mb = data_paths(args.scale)[1].stat().st_size / 1e6
    rounds = []
    for _ in range(args.repeat):
        rounds.append(
            {c: run_child([__file__, "--child", c, "--scale", str(args.scale)]) for c in CONTENDERS}
        )
    best = {
        c: min((r[c] for r in rounds), key=lambda x: x.get("peak_rss_mb", 1e18)) for c in CONTENDERS
    }
    summary = {
        "scale": args.scale,
        "relationships_mb": round(size_mb, 1),
        "contenders": best,
        "rss_ratio_stream_vs_json_load": ratio(
            best["mminstruct-stream"].get("peak_rss_mb"), best["json.load"].get("peak_rss_mb")
        ),
        "rss_ratio_records_vs_json_load": ratio(
            best["mminstruct-records"].get("peak_rss_mb"), best["json.load"].get("peak_rss_mb")
        ),
        "rounds": rounds,
    }
    path = write_results("vg_stream", summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
