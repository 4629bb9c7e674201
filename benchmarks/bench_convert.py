"""Annotation loading: pycocotools vs mminstruct's converter vs a plain-json baseline.

Each contender runs in its own fresh Python process, one after the other (with --repeat,
in rounds: each contender once per round), so its peak memory (the child's own high-water
mark, VmHWM) is clean; the time is measured inside the child around the work only (no
interpreter start-up, no imports). The best time of the rounds counts.

  pycocotools  `COCO(instances)`: load the instances file and build its indexes
  mminstruct   `read_coco` over instances + captions, `render_context` for every record
  plain-json   `json.load` both files, group by image id, render the same contexts

    python benchmarks/bench_convert.py [--scale 1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from common import (
    coco_dir,
    coco_files,
    peak_rss_mb,
    ratio,
    report_to_parent,
    run_child,
    write_results,
)

CONTENDERS = ("pycocotools", "mminstruct", "plain-json")
REFERENCE = "pycocotools"
GOALS = {"time_ratio": 0.3, "rss_ratio": 0.5}  # mminstruct vs pycocotools, at most


# --------------------------------------------------------------------------- children


Work = Callable[[Path, Path, Path], dict]


def load_pycocotools() -> Work:
    """Reference: just load the instances file the way most COCO code does."""
    from pycocotools.coco import COCO

    def work(instances: Path, captions: Path, images: Path) -> dict:
        started = time.perf_counter()
        coco = COCO(str(instances))
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "images": len(coco.imgs), "annotations": len(coco.anns)}

    return work


def load_mminstruct() -> Work | str:
    """Ours: every record of both files rendered to its text context (or why it can't run)."""
    try:
        from mminstruct.converters import read_coco

        from mminstruct.config import CocoSourceConfig, ContextConfig
        from mminstruct.context.render import render_context
        from mminstruct.records import ImageRecord
    except ImportError as exc:
        return f"mminstruct converter not importable yet ({exc})"

    def work(instances: Path, captions: Path, images: Path) -> dict:
        source = CocoSourceConfig(
            images=str(images), instances=(str(instances),), captions=(str(captions),)
        )
        options = ContextConfig()
        started = time.perf_counter()
        contexts = chars = 0
        rejections: dict[str, int] = defaultdict(int)
        for item in read_coco(source):
            if isinstance(item, ImageRecord):
                chars += len(render_context(item, options))
                contexts += 1
            else:
                rejections[item.reason] += 1
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "contexts": contexts, "chars": chars, "rejections": rejections}

    return work


def load_plain_json() -> Work:
    """Baseline: the straightforward json.load + dicts version of the same output."""
    import json

    def work(instances: Path, captions: Path, images: Path) -> dict:
        started = time.perf_counter()
        with open(instances, encoding="utf-8") as f:
            inst = json.load(f)
        with open(captions, encoding="utf-8") as f:
            caps = json.load(f)
        contexts = [plain_context(*item) for item in group_by_image(inst, caps)]
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "contexts": len(contexts), "chars": sum(map(len, contexts))}

    return work


def group_by_image(inst: dict, caps: dict) -> list[tuple[dict, list[str], list[tuple]]]:
    """(image entry, captions, boxes) per image; boxes are (name, x, y, w, h)."""
    names = {c["id"]: c["name"] for c in inst["categories"]}
    images = {img["id"]: img for img in inst["images"]}
    for img in caps["images"]:
        images.setdefault(img["id"], img)
    texts: dict[int, list[str]] = defaultdict(list)
    for ann in caps["annotations"]:
        texts[ann["image_id"]].append(" ".join(ann["caption"].split()))
    boxes: dict[int, list[tuple]] = defaultdict(list)
    for ann in inst["annotations"]:
        boxes[ann["image_id"]].append((names[ann["category_id"]], *ann["bbox"]))
    return [(img, texts[i], boxes[i]) for i, img in sorted(images.items())]


def plain_context(image: dict, captions: list[str], boxes: list[tuple]) -> str:
    """The same text as `render_context` with default options, written plainly.

    Boxes are clipped to the image, then each corner is rounded half up to 1/1000 of the
    image size, as mminstruct does.
    """
    width, height = image["width"], image["height"]
    sx, sy = 1000 / width, 1000 / height
    lines = list(dict.fromkeys(captions))
    box_lines = []
    for name, x, y, w, h in boxes:
        x1, y1 = max(0.0, x), max(0.0, y)
        w, h = min(float(width), x + w) - x1, min(float(height), y + h) - y1
        corners = (x1 * sx, y1 * sy, (x1 + w) * sx, (y1 + h) * sy)
        a, b, c, d = (min(1000, max(0, int(v + 0.5))) / 1000 for v in corners)
        box_lines.append(f"{name}: [{a!r}, {b!r}, {c!r}, {d!r}]")
    if box_lines:
        lines += ["", *box_lines] if lines else box_lines
    return "\n".join(lines)


LOADERS: dict[str, Callable[[], Work | str]] = {
    "pycocotools": load_pycocotools,
    "mminstruct": load_mminstruct,
    "plain-json": load_plain_json,
}


def run_as_child(name: str, instances: Path, captions: Path, images: Path) -> None:
    """Child-process entry: run one contender and report time and peak memory."""
    work = LOADERS[name]()
    if isinstance(work, str):
        report_to_parent({"skipped": work})
        return
    before = peak_rss_mb()
    result = work(instances, captions, images)
    result.update(rss_after_imports_mb=round(before, 1), peak_rss_mb=round(peak_rss_mb(), 1))
    report_to_parent(result)


# --------------------------------------------------------------------------- parent


def child_argv(name: str, scale: float) -> list[str]:
    """The command line of one contender's child process."""
    return [__file__, "--child", name, "--scale", str(scale)]


def best_of(runs: list[dict]) -> dict:
    """Best time and largest peak memory of one contender's runs (or its first failure)."""
    failed = [r for r in runs if "seconds" not in r]
    if failed:
        return failed[0]
    best = min(runs, key=lambda r: r["seconds"])
    return {
        **best,
        "seconds": round(best["seconds"], 3),
        "all_seconds": [round(r["seconds"], 3) for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def measure_all(names: tuple[str, ...], scale: float, repeat: int) -> dict[str, dict]:
    """Every contender `repeat` times, in rounds, one process at a time."""
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for n in range(repeat):
        for name in names:
            print(f"round {n + 1}: {name} ...", flush=True)
            runs[name].append(run_child(child_argv(name, scale)))
    return {name: best_of(tries) for name, tries in runs.items()}


def add_ratios(results: dict[str, dict]) -> None:
    """Time and memory of every contender relative to the reference."""
    ref = results.get(REFERENCE, {})
    for row in results.values():
        row["time_ratio"] = ratio(row.get("seconds"), ref.get("seconds"))
        row["rss_ratio"] = ratio(row.get("peak_rss_mb"), ref.get("peak_rss_mb"))


def goals_met(row: dict) -> dict[str, bool | None]:
    """Whether mminstruct's ratios are within the goals (None when not measured)."""
    return {
        key: None if row.get(key) is None else row[key] <= limit for key, limit in GOALS.items()
    }


def outputs_agree(results: dict[str, dict]) -> bool | None:
    """Whether mminstruct and the plain baseline rendered the same number of contexts/chars."""
    ours, plain = results.get("mminstruct", {}), results.get("plain-json", {})
    if "chars" not in ours or "chars" not in plain:
        return None
    return (ours["contexts"], ours["chars"]) == (plain["contexts"], plain["chars"])


def print_table(results: dict[str, dict]) -> None:
    """A plain-text table of the results."""
    print(f"{'contender':<12} {'time s':>8} {'peak RSS MB':>12} {'time x':>7} {'RSS x':>7}")
    for name, row in results.items():
        if "seconds" not in row:
            print(f"{name:<12} {row.get('skipped') or row.get('error')}")
            continue
        print(
            f"{name:<12} {row['seconds']:>8.2f} {row['peak_rss_mb']:>12.0f} "
            f"{row['time_ratio'] or 0:>7.2f} {row['rss_ratio'] or 0:>7.2f}"
        )


def run_benchmark(scale: float, repeat: int = 1, contenders: tuple[str, ...] = CONTENDERS) -> dict:
    """Run every contender (one at a time), print a table, write results/convert.json."""
    instances, captions = coco_files(scale)
    if not instances.exists():
        sys.exit(f"no synthetic data at {coco_dir(scale)}; run make_synthetic_coco.py first")
    results = measure_all(contenders, scale, repeat)
    add_ratios(results)
    print_table(results)
    if outputs_agree(results) is False:
        print("warning: mminstruct and plain-json rendered different contexts (count or chars)")
    summary = {
        "benchmark": "convert",
        "scale": scale,
        "repeat": repeat,
        "files_mb": {p.name: round(p.stat().st_size / 1e6, 1) for p in (instances, captions)},
        "reference": REFERENCE,
        "goals": GOALS,
        "goals_met": goals_met(results.get("mminstruct", {})),
        "outputs_agree": outputs_agree(results),
        "results": results,
    }
    print(f"wrote {write_results('convert', summary)}")
    return summary


def main(argv: list[str] | None = None) -> dict | None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/bench_convert.py --scale 0.01",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic set to use (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh runs per contender; best time")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated subset to run"
    )
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        instances, captions = coco_files(args.scale)
        run_as_child(args.child, instances, captions, coco_dir(args.scale) / "images")
        return None
    return run_benchmark(args.scale, args.repeat, tuple(args.contenders.split(",")))


if __name__ == "__main__":
    main()
