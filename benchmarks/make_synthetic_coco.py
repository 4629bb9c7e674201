"""Write a synthetic, well-formed COCO train2017-sized annotation set.

`instances_train2017.json` (about 450 MB at --scale 1) and `captions_train2017.json`
(about 90 MB) have the shape, field order and sizes of the real files: 118,287 images,
860,001 annotations over the 80 real categories (99% polygons, 1% crowd RLE) and 591,753
captions. Values are random but valid (boxes inside their image, RLE counts summing to
h*w), and the output is byte-identical for a given --seed and --scale.

    python benchmarks/make_synthetic_coco.py --out benchmarks/data/coco-1 [--scale 0.01]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FULL_IMAGES = 118_287
FULL_ANNOTATIONS = 860_001
FULL_CAPTIONS = 591_753
CROWD_FRACTION = 0.01
BATCH = 20_000  # annotations formatted per chunk (keeps memory flat)
MAX_SIDE = 640

# (width, height, weight): the common COCO image sizes, roughly in their proportions.
IMAGE_SIZES = (
    (640, 480, 30),
    (640, 427, 22),
    (480, 640, 9),
    (427, 640, 7),
    (640, 426, 6),
    (640, 428, 5),
    (640, 425, 4),
    (500, 375, 4),
    (640, 424, 3),
    (612, 612, 2),
    (640, 360, 2),
    (640, 512, 2),
    (375, 500, 2),
    (640, 640, 2),
)

# The 80 COCO categories: (id, name, supercategory).
CATEGORIES = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"), (5, "airplane", "vehicle"), (6, "bus", "vehicle"),
    (7, "train", "vehicle"), (8, "truck", "vehicle"), (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"),
    (19, "horse", "animal"), (20, "sheep", "animal"), (21, "cow", "animal"),
    (22, "elephant", "animal"), (23, "bear", "animal"), (24, "zebra", "animal"),
    (25, "giraffe", "animal"), (27, "backpack", "accessory"), (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"), (32, "tie", "accessory"), (33, "suitcase", "accessory"),
    (34, "frisbee", "sports"), (35, "skis", "sports"), (36, "snowboard", "sports"),
    (37, "sports ball", "sports"), (38, "kite", "sports"), (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"),
    (49, "knife", "kitchen"), (50, "spoon", "kitchen"), (51, "bowl", "kitchen"),
    (52, "banana", "food"), (53, "apple", "food"), (54, "sandwich", "food"),
    (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
    (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"),
    (61, "cake", "food"), (62, "chair", "furniture"), (63, "couch", "furniture"),
    (64, "potted plant", "furniture"), (65, "bed", "furniture"),
    (67, "dining table", "furniture"), (70, "toilet", "furniture"), (72, "tv", "electronic"),
    (73, "laptop", "electronic"), (74, "mouse", "electronic"), (75, "remote", "electronic"),
    (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
    (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"),
    (85, "clock", "indoor"), (86, "vase", "indoor"), (87, "scissors", "indoor"),
    (88, "teddy bear", "indoor"), (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
)  # fmt: skip

LICENSES = (
    (1, "Attribution-NonCommercial-ShareAlike License", "by-nc-sa/2.0/"),
    (2, "Attribution-NonCommercial License", "by-nc/2.0/"),
    (3, "Attribution-NonCommercial-NoDerivs License", "by-nc-nd/2.0/"),
    (4, "Attribution License", "by/2.0/"),
    (5, "Attribution-ShareAlike License", "by-sa/2.0/"),
    (6, "Attribution-NoDerivs License", "by-nd/2.0/"),
    (7, "No known copyright restrictions", None),
    (8, "United States Government Work", None),
)

CAPTION_WORDS = {
    "det": ["a", "the", "one", "two", "some"],
    "adj": ["small", "large", "red", "blue", "green", "white", "black", "young", "old", "wooden",
            "busy", "empty", "big", "yellow", "brown", "little", "tall"],
    "noun": [name for _, name, _ in CATEGORIES] + ["man", "woman", "child", "kitchen", "street"],
    "verb": ["sitting", "standing", "walking", "riding", "holding", "eating", "lying", "parked",
             "looking", "playing", "flying", "waiting"],
    "prep": ["on", "in", "near", "next to", "beside", "under", "behind", "with", "at"],
    "place": ["street", "field", "kitchen", "table", "road", "beach", "park", "room", "window",
              "counter", "grass", "water", "snow", "building", "city"],
}  # fmt: skip
# A caption is 10-12 words: "det adj noun verb prep det adj place" and a 2-4 word tail.
CAPTION_TAILS = ("at night", "in the sun", "by a big tree", "at home", "in the city")


def hundredths_table() -> list[str]:
    """`table[i]` is the JSON text of the float i/100 (`312.45`, `0.5`), for 0..640.00."""
    return [repr(i / 100) for i in range(MAX_SIDE * 100 + 1)]


def sample_images(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Ids (sparse, like COCO's), sizes, licenses and capture times of `count` images."""
    sizes = np.array([(w, h) for w, h, _ in IMAGE_SIZES])
    weights = np.array([wt for _, _, wt in IMAGE_SIZES], dtype=float)
    pick = rng.choice(len(sizes), size=count, p=weights / weights.sum())
    ids = rng.choice(max(581_929, 5 * count), size=count, replace=False) + 1
    return {
        "id": ids,
        "width": sizes[pick, 0],
        "height": sizes[pick, 1],
        "license": rng.integers(1, len(LICENSES) + 1, size=count),
        "captured": rng.integers(1_352_000_000, 1_385_000_000, size=count),
        "farm": rng.integers(1, 10, size=count),
        "server": rng.integers(1000, 9999, size=count),
        "photo": rng.integers(1_000_000_000, 9_999_999_999, size=count),
        "secret": rng.integers(0, 16**10, size=count),
    }


def image_entries(images: dict[str, np.ndarray]) -> Iterator[str]:
    """The JSON objects of the `images` list, in file order."""
    columns = [images[k].tolist() for k in ("id", "width", "height", "license", "captured")]
    extra = [images[k].tolist() for k in ("farm", "server", "photo", "secret")]
    rows = zip(zip(*columns, strict=True), zip(*extra, strict=True), strict=True)
    for (iid, w, h, lic, when), (farm, server, photo, secret) in rows:
        name = f"{iid:012d}.jpg"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))
        yield (
            f'{{"license": {lic},"file_name": "{name}", '
            f'"coco_url": "http://images.cocodataset.org/train2017/{name}", '
            f'"height": {h},"width": {w},"date_captured": "{stamp}", '
            f'"flickr_url": "http://farm{farm}.staticflickr.com/{server}/'
            f'{photo}_{secret:010x}_z.jpg","id": {iid}}}'
        )


def sample_annotations(
    rng: np.random.Generator, images: dict[str, np.ndarray], count: int
) -> dict[str, np.ndarray]:
    """Per-annotation scalars: image, category, box (in hundredths of a pixel), crowd flag."""
    n_images = len(images["id"])
    busy = rng.gamma(1.5, size=n_images)  # uneven objects per image, like COCO
    owner = rng.choice(n_images, size=count, p=busy / busy.sum())
    cat_weights = np.r_[30.0, rng.uniform(0.3, 3.0, size=len(CATEGORIES) - 1)]
    category = rng.choice(len(CATEGORIES), size=count, p=cat_weights / cat_weights.sum())
    width_h = images["width"][owner] * 100
    height_h = images["height"][owner] * 100
    x = rng.integers(0, width_h - 100)
    y = rng.integers(0, height_h - 100)
    w = 100 + ((width_h - x - 100) * rng.uniform(0, 1, size=count) ** 2).astype(np.int64)
    h = 100 + ((height_h - y - 100) * rng.uniform(0, 1, size=count) ** 2).astype(np.int64)
    return {
        "owner": owner,
        "category": category,
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "fill": rng.uniform(0.35, 0.85, size=count),
        "crowd": rng.uniform(size=count) < CROWD_FRACTION,
        "polygons": rng.choice([1, 2, 3], size=count, p=[0.8, 0.15, 0.05]),
    }


def polygon_texts(
    rng: np.random.Generator, ann: dict[str, np.ndarray], table: list[str]
) -> list[str]:
    """`[[x,y,...],...]` for each annotation of a batch: star-shaped rings inside the box."""
    n_polys = ann["polygons"]
    poly_owner = np.repeat(np.arange(len(n_polys)), n_polys)
    points = rng.integers(10, 29, size=len(poly_owner))  # 20-56 floats per polygon
    point_poly = np.repeat(np.arange(len(points)), points)
    starts = np.cumsum(points) - points
    step = np.arange(len(point_poly)) - starts[point_poly]
    angle = 2 * np.pi * (step + rng.uniform(0, 0.8, size=len(step))) / points[point_poly]
    radius = rng.uniform(0.4, 1.0, size=len(step))
    a = poly_owner[point_poly]
    half_w, half_h = ann["w"][a] / 2, ann["h"][a] / 2
    coords = np.empty(2 * len(step), dtype=np.int64)
    coords[0::2] = ann["x"][a] + half_w + half_w * radius * np.cos(angle)
    coords[1::2] = ann["y"][a] + half_h + half_h * radius * np.sin(angle)
    tokens = list(map(table.__getitem__, coords.tolist()))
    bounds = (2 * np.r_[starts, len(step)]).tolist()
    rings = [",".join(tokens[bounds[i] : bounds[i + 1]]) for i in range(len(points))]
    ends = np.cumsum(n_polys).tolist()
    pairs = zip(ends, n_polys.tolist(), strict=True)
    return ["[[" + "],[".join(rings[e - n : e]) + "]]" for e, n in pairs]


def rle_text(rng: np.random.Generator, height: int, width: int) -> str:
    """An uncompressed RLE whose run lengths add up to height*width."""
    pixels = height * width
    cuts = np.unique(rng.integers(1, pixels, size=int(rng.integers(100, 600))))
    counts = np.diff(np.r_[0, cuts, pixels]).tolist()
    return f'{{"counts": [{",".join(map(str, counts))}],"size": [{height}, {width}]}}'


def annotation_entries(
    rng: np.random.Generator, images: dict[str, np.ndarray], count: int
) -> Iterator[str]:
    """The JSON objects of the `annotations` list, in batches of BATCH joined with commas."""
    table = hundredths_table()
    ann = sample_annotations(rng, images, count)
    cat_ids = [cid for cid, _, _ in CATEGORIES]
    for start in range(0, count, BATCH):
        part = {k: v[start : start + BATCH] for k, v in ann.items()}
        segs = polygon_texts(rng, part, table)
        owner = part["owner"]
        for i in np.flatnonzero(part["crowd"]).tolist():
            h, w = int(images["height"][owner[i]]), int(images["width"][owner[i]])
            segs[i] = rle_text(rng, h, w)
        area = (part["w"] * part["h"] * part["fill"] / 10_000).tolist()
        columns = zip(
            segs,
            area,
            part["crowd"].tolist(),
            images["id"][owner].tolist(),
            *(part[k].tolist() for k in ("x", "y", "w", "h", "category")),
            strict=True,
        )
        yield ",\n".join(
            f'{{"segmentation": {seg},"area": {a!r},"iscrowd": {int(crowd)}, '
            f'"image_id": {iid},"bbox": [{table[x]},{table[y]},{table[w]},{table[h]}], '
            f'"category_id": {cat_ids[c]},"id": {start + n + 1}}}'
            for n, (seg, a, crowd, iid, x, y, w, h, c) in enumerate(columns)
        )


def caption_entries(rng: np.random.Generator, image_ids: np.ndarray, count: int) -> Iterator[str]:
    """`count` captions: five per image, extra ones on random images, in shuffled order."""
    extra = max(0, count - 5 * len(image_ids))
    owners = np.r_[np.repeat(image_ids, 5), rng.choice(image_ids, size=extra)][:count]
    owners = rng.permutation(owners).tolist()
    parts = {k: rng.integers(0, len(v), size=(count, 2)).tolist() for k, v in CAPTION_WORDS.items()}
    tails = rng.integers(0, len(CAPTION_TAILS), size=count).tolist()
    ids = (rng.choice(10 * count + 1, size=count, replace=False) + 1).tolist()
    w = CAPTION_WORDS
    for n in range(count):
        det, adj, noun = parts["det"][n], parts["adj"][n], parts["noun"][n]
        text = (
            f"{w['det'][det[0]].capitalize()} {w['adj'][adj[0]]} {w['noun'][noun[0]]} "
            f"{w['verb'][parts['verb'][n][0]]} {w['prep'][parts['prep'][n][0]]} "
            f"{w['det'][det[1]]} {w['adj'][adj[1]]} {w['place'][parts['place'][n][0]]} "
            f"{CAPTION_TAILS[tails[n]]}"
        )
        yield f'{{"image_id": {owners[n]},"id": {ids[n]},"caption": "{text}."}}'


def header_json(seed: int, scale: float) -> tuple[str, str, str]:
    """The `info`, `licenses` and `categories` values as JSON text."""
    info = {
        "description": f"Synthetic COCO 2017-shaped data (mminstruct benchmarks, seed {seed}, "
        f"scale {scale})",
        "url": "http://cocodataset.org",
        "version": "1.0",
        "year": 2017,
        "contributor": "mminstruct benchmarks",
        "date_created": "2017/09/01",
    }
    licenses = [
        {"url": f"http://creativecommons.org/licenses/{path}" if path else "", "id": i, "name": n}
        for i, n, path in LICENSES
    ]
    categories = [{"supercategory": s, "id": i, "name": n} for i, n, s in CATEGORIES]
    return json.dumps(info), json.dumps(licenses), json.dumps(categories)


def write_json_file(path: Path, parts: list[tuple[str, str | Iterator[str]]]) -> int:
    """Stream `{"key": value, ...}` to `path`; list values come as iterators of chunks."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", buffering=1 << 22) as f:
        f.write("{")
        for n, (key, value) in enumerate(parts):
            f.write(f'{", " if n else ""}"{key}": ')
            if isinstance(value, str):
                f.write(value)
                continue
            f.write("[")
            for m, chunk in enumerate(value):
                f.write(",\n" + chunk if m else chunk)
            f.write("]")
        f.write("}\n")
    tmp.replace(path)
    return path.stat().st_size


def scaled(count: int, scale: float) -> int:
    """`count * scale`, at least 1."""
    return max(1, round(count * scale))


def generate(out: Path, seed: int = 0, scale: float = 1.0) -> dict[str, int]:
    """Write both files under `out`; returns their sizes in bytes."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = sample_images(rng, scaled(FULL_IMAGES, scale))
    info, licenses, categories = header_json(seed, scale)
    instances = out / "instances_train2017.json"
    captions = out / "captions_train2017.json"
    ann_rng, cap_rng = rng.spawn(2)
    objects = annotation_entries(ann_rng, images, scaled(FULL_ANNOTATIONS, scale))
    texts = caption_entries(cap_rng, images["id"], scaled(FULL_CAPTIONS, scale))
    head = [("info", info), ("licenses", licenses)]
    return {
        instances.name: write_json_file(
            instances,
            [
                *head,
                ("images", image_entries(images)),
                ("annotations", objects),
                ("categories", categories),
            ],
        ),
        captions.name: write_json_file(
            captions, [*head, ("images", image_entries(images)), ("annotations", texts)]
        ),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python benchmarks/make_synthetic_coco.py --out benchmarks/data/coco-0.01 "
        "--scale 0.01",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the two JSON files")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of COCO train2017's size (default 1)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sizes = generate(args.out, args.seed, args.scale)
    for name, size in sizes.items():
        print(f"{args.out / name}: {size / 1e6:.1f} MB")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
