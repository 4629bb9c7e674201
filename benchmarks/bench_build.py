"""End-to-end build rate: `mminstruct.pipeline.run` on the synthetic COCO set.

Every image of the set gets a real JPEG file of the size its annotations give: a hard
link, cycling over the JPEG pools of bench_shards (links are cheap, and this way the first
K images have files whatever order the reader yields them in). A YAML config with
`limit: K` and the rule-based generator is built in a fresh child process (clean peak
memory; time measured around `run(config)` only).

Reading the annotation files is a fixed cost paid before the first image, so the build
runs with a small limit k and with K (each --repeat times, interleaved; fastest counts):
(K - k) / (t_K - t_k) is the steady image rate once the annotations are in memory, and
K / t_K the overall rate of this job.

    python benchmarks/bench_build.py [--scale 1] [--limit 3000] [--small-limit 100] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec
import yaml
from common import (
    DATA_DIR,
    coco_dir,
    coco_files,
    peak_rss_mb,
    report_to_parent,
    run_child,
    write_results,
)

POOL_PER_SIZE = 64  # JPEGs per image size besides 640x480, which uses the 1,500-file pool
MAIN_POOL = 1500


class _Image(msgspec.Struct):
    id: int
    file_name: str
    width: int
    height: int


class _ImagesOnly(msgspec.Struct):
    images: list[_Image]


def image_entries(instances: Path) -> list[_Image]:
    """The image entries of an instances file (everything else is skipped unparsed)."""
    return msgspec.json.decode(instances.read_bytes(), type=_ImagesOnly).images


def link_images(images: list[_Image], folder: Path) -> Counter:
    """Hard-link a pool JPEG of the right size to each image's file name; counts per size."""
    from bench_shards import ensure_jpeg_pool  # not at the top: it imports webdataset (torch)

    folder.mkdir(parents=True, exist_ok=True)
    sizes = Counter((image.width, image.height) for image in images)
    pools = {
        size: ensure_jpeg_pool(MAIN_POOL if size == (640, 480) else POOL_PER_SIZE, *size)
        for size in sizes
    }
    used: Counter = Counter()
    for image in images:
        size = (image.width, image.height)
        target = folder / image.file_name
        if not target.exists():
            pool = pools[size]
            os.link(pool[used[size] % len(pool)], target)
        used[size] += 1
    return sizes


def write_config(path: Path, scale: float, images: Path, out: Path, limit: int) -> Path:
    """A build config for the synthetic set: rule-based generator, `limit` images."""
    instances, captions = coco_files(scale)
    config = {
        "sources": [
            {
                "kind": "coco",
                "name": "coco",
                "images": str(images),
                "instances": str(instances),
                "captions": str(captions),
            }
        ],
        "output": {"dir": str(out)},
        "limit": limit,
    }
    path.write_text(
        f"# python benchmarks/bench_build.py (limit {limit})\n" + yaml.safe_dump(config)
    )
    return path


# --------------------------------------------------------------------------- child


def run_as_child(config_path: Path) -> None:
    """Child-process entry: build once and report time, peak memory and the stats."""
    try:
        from mminstruct.config import load_config
        from mminstruct.pipeline import run
    except ImportError as exc:
        report_to_parent({"skipped": f"mminstruct pipeline not importable yet ({exc})"})
        return
    config = load_config(config_path)
    rss_after_imports = peak_rss_mb()
    started = time.perf_counter()
    stats = run(config)
    seconds = time.perf_counter() - started
    keep = ("images_in", "images_written", "images_rejected", "instructions_total", "rejects")
    report_to_parent(
        {
            "seconds": round(seconds, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_after_imports_mb": round(rss_after_imports, 1),
            **{k: stats[k] for k in keep if k in stats},
        }
    )


# --------------------------------------------------------------------------- parent


def build_once(scale: float, images: Path, limit: int) -> dict:
    """One fresh-process build of `limit` images; its output folder is removed afterwards."""
    work = DATA_DIR / f"build-{scale:g}"
    out = work / f"out-{limit}"
    shutil.rmtree(out, ignore_errors=True)
    config = write_config(work / f"config-{limit}.yaml", scale, images, out, limit)
    print(f"building {limit} images ...", flush=True)
    result = run_child([__file__, "--child", str(config)])
    if out.is_dir():
        result["shards_mb"] = round(sum(p.stat().st_size for p in out.glob("*.tar")) / 1e6, 1)
        shutil.rmtree(out)
    return result


def build_best(scale: float, images: Path, limits: tuple[int, ...], repeat: int) -> dict:
    """Each limit built `repeat` times, interleaved; the fastest run of each counts."""
    tries: dict[str, list[dict]] = {str(n): [] for n in limits}
    for _ in range(repeat):
        for n in limits:
            tries[str(n)].append(build_once(scale, images, n))
    best = {}
    for n, runs in tries.items():
        timed = [r for r in runs if "seconds" in r]
        if not timed:
            best[n] = runs[0]
            continue
        best[n] = min(timed, key=lambda r: r["seconds"])
        best[n]["all_seconds"] = [r["seconds"] for r in timed]
    return best


def rates(small: dict, large: dict, small_limit: int, limit: int) -> dict:
    """Overall and steady-state images per second from the two builds."""
    extra = large["seconds"] - small["seconds"]
    return {
        "images_per_s": round(limit / large["seconds"], 1),
        "steady_images_per_s": round((limit - small_limit) / extra, 1) if extra > 0 else None,
        "fixed_seconds_estimate": round(
            small["seconds"] - small_limit * extra / (limit - small_limit), 2
        )
        if extra > 0
        else None,
    }


def run_benchmark(
    scale: float = 1.0, limit: int = 3000, small_limit: int = 100, repeat: int = 2
) -> dict:
    """Prepare the images, build twice, print the rates, write results/build.json."""
    instances, _ = coco_files(scale)
    if not instances.exists():
        sys.exit(f"no synthetic data at {coco_dir(scale)}; run make_synthetic_coco.py first")
    images_dir = DATA_DIR / f"build-{scale:g}" / "images"
    started = time.perf_counter()
    sizes = link_images(image_entries(instances), images_dir)
    print(f"{sum(sizes.values())} image files linked in {time.perf_counter() - started:.1f} s")
    runs = build_best(scale, images_dir, (small_limit, limit), repeat)
    summary = {"benchmark": "build", "scale": scale, "limit": limit, "small_limit": small_limit}
    summary["repeat"] = repeat
    summary["image_sizes"] = {f"{w}x{h}": n for (w, h), n in sizes.most_common()}
    summary["runs"] = runs
    small, large = runs[str(small_limit)], runs[str(limit)]
    if "seconds" in small and "seconds" in large:
        summary.update(rates(small, large, small_limit, limit))
        print(
            f"{limit} images in {large['seconds']:.1f} s ({summary['images_per_s']} images/s "
            f"overall; {summary['steady_images_per_s']} images/s after the annotations are "
            f"read); peak RSS {large['peak_rss_mb']:.0f} MB"
        )
    else:
        print(f"build not measured: {large.get('skipped') or large.get('error')}")
    print(f"wrote {write_results('build', summary)}")
    return summary


def main(argv: list[str] | None = None) -> dict | None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/bench_build.py --scale 0.01 --limit 500",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic set to use (default 1)")
    parser.add_argument("--limit", type=int, default=3000, help="images to build (default 3000)")
    parser.add_argument(
        "--small-limit", type=int, default=100, help="images in the fixed-cost run (default 100)"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="builds per limit, interleaved; fastest counts"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_as_child(args.child)
        return None
    if not 0 < args.small_limit < args.limit:
        parser.error("--small-limit must be between 0 and --limit")
    return run_benchmark(args.scale, args.limit, args.small_limit, args.repeat)


if __name__ == "__main__":
    main()
