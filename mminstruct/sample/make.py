"""Draw the bundled demo sample: simple scenes with exact COCO boxes and true captions.

`make_sample(out_dir)` writes `images/`, `instances.json` and `captions.json`. Every scene
is drawn with Pillow (`scenes.py`, `drawing.py`) from a seeded `random.Random`, so one seed always gives the same
bytes. Each object is drawn on its own transparent layer; its box, area and outline come
from the pixels of that layer still visible in the final picture, so boxes are exact.
Captions are written from the same scene description, so they only say what was drawn.

Regenerate the shipped copy with `python -m mminstruct.sample mminstruct/sample`.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image

from mminstruct.sample.captions import captions
from mminstruct.sample.coco import annotation, image_entry, write_coco
from mminstruct.sample.scenes import KINDS, make_scene, render
from mminstruct.sample.things import Scene

PNG_COUNT = 2


# ---------------------------------------------------------------- writing the sample


def plan_sample(n_images: int, rng: random.Random) -> tuple[list[str], set[int], int]:
    """The setting of each image, the indices saved as PNG, and the image with the flock."""
    kinds = [KINDS[i % len(KINDS)] for i in range(n_images)]
    rng.shuffle(kinds)
    pngs = set(rng.sample(range(n_images), min(PNG_COUNT, n_images)))
    return kinds, pngs, kinds.index("park") if "park" in kinds else -1


def save_image(image: Image.Image, path: Path) -> None:
    """Save as PNG or JPEG (quality 85) by the file's extension."""
    if path.suffix == ".png":
        image.save(path, "PNG", optimize=True)
    else:
        image.save(path, "JPEG", quality=85)


def write_scene(out_dir: Path, scene: Scene, rng: random.Random, png: bool) -> dict:
    """Draw and save one scene; its COCO `images` entry."""
    file_name = f"{scene.image_id:012d}.{'png' if png else 'jpg'}"
    save_image(render(scene, rng), out_dir / "images" / file_name)
    return image_entry(scene, file_name)


def make_sample(out_dir: Path, n_images: int = 16, seed: int = 0) -> None:
    """Write `n_images` drawn scenes with COCO instances and captions under `out_dir`."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    kinds, pngs, flock_at = plan_sample(n_images, random.Random(seed))
    images: list[dict] = []
    instances: list[dict] = []
    texts: list[dict] = []
    for index, kind in enumerate(kinds):
        rng = random.Random(seed * 100_003 + index)  # one stream per image
        scene = make_scene(index + 1, kind, index == flock_at, rng)
        images.append(write_scene(out_dir, scene, rng, index in pngs))
        for t in scene.things:
            instances.append(annotation(t, len(instances) + 1, scene.image_id))
        for text in captions(scene, rng):
            texts.append({"id": len(texts) + 1, "image_id": scene.image_id, "caption": text})
    write_coco(out_dir, images, instances, texts)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m mminstruct.sample OUT_DIR [--images N] [--seed S]`."""
    parser = argparse.ArgumentParser(
        prog="python -m mminstruct.sample",
        description="Draw the demo sample: scenes with COCO instances and captions.",
        epilog="example: python -m mminstruct.sample mminstruct/sample",
    )
    parser.add_argument("out_dir", type=Path, help="folder for images/ and the two JSON files")
    parser.add_argument("--images", type=int, default=16, help="how many scenes (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    make_sample(args.out_dir, args.images, args.seed)
    print(f"wrote {args.images} scenes to {args.out_dir}")


if __name__ == "__main__":
    main()
