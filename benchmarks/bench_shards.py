"""Tar shard writing speed: mminstruct's ShardWriter vs GNU tar, webdataset and tarfile.

A pool of COCO-like JPEGs (640x480, about 150 KB: smooth colour gradients plus noise,
quality 90) is made once under benchmarks/data/jpegs and read once to warm the page
cache. Then every contender writes all of them into one tar, in rounds (each contender
once per round, so background noise spreads evenly); the best of the rounds counts.
The Python writers read each file and build a ~1 KB JSON record per sample inside the
timed loop; GNU tar archives the files alone.

"mminstruct" is ShardWriter as a build uses it by default (no fsync, like GNU tar);
"mminstruct+fsync" is `output.fsync: true` (every shard flushed to disk before it is
renamed), to compare with "gnu-tar+fsync" (tar, then fsync of the archive). The output tar is deleted and the page cache flushed (`sync`)
between runs, outside the timings.

    python benchmarks/bench_shards.py [--files 1500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import webdataset
from common import DATA_DIR, ratio, write_results

from mminstruct.output.shards import ShardWriter

POOL_DIR = DATA_DIR / "jpegs"  # the 640x480 pool; other sizes go to jpegs-<w>x<h>
OUT_DIR = DATA_DIR / "shards-out"
REFERENCE = "gnu-tar"
GOAL_MBPS_RATIO = 0.5  # mminstruct MB/s vs GNU tar's, at least

Writer = Callable[[list[Path], Path], None]


# --------------------------------------------------------------------------- the JPEG pool


def synthetic_jpeg(rng: np.random.Generator, width: int = 640, height: int = 480) -> bytes:
    """A photo-like JPEG: a smooth random colour field plus noise, quality 90 (~150 KB)."""
    from PIL import Image

    corners = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    field = Image.fromarray(corners).resize((width, height), Image.Resampling.BICUBIC)
    sigma = rng.uniform(15, 25)
    noise = rng.normal(0, sigma, size=(height, width, 3)).astype(np.float32)
    pixels = np.clip(np.asarray(field, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def pool_dir(width: int = 640, height: int = 480) -> Path:
    """Folder of the JPEG pool of one image size."""
    return POOL_DIR if (width, height) == (640, 480) else DATA_DIR / f"jpegs-{width}x{height}"


def ensure_jpeg_pool(count: int, width: int = 640, height: int = 480, seed: int = 0) -> list[Path]:
    """The first `count` files of the pool of this size, making the missing ones."""
    folder = pool_dir(width, height)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        print(f"making {len(missing)} {width}x{height} JPEGs in {folder} ...", flush=True)
    for i, path in missing:
        rng = np.random.default_rng([seed, width, height, i])
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(synthetic_jpeg(rng, width, height))
        tmp.replace(path)
    return paths


def warm_cache(paths: list[Path]) -> int:
    """Read every file once so that all contenders find them in the page cache."""
    return sum(len(p.read_bytes()) for p in paths)


# --------------------------------------------------------------------------- contenders


def sample_json(key: str, path: Path, size: int) -> bytes:
    """A ~1 KB JSON record like the ones the pipeline writes beside each image."""
    record = {
        "key": key,
        "source": {"dataset": "bench", "image_id": key, "file_name": path.name, "bytes": size},
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is happening in this picture? " * 3},
            {"from": "gpt", "value": "A person is riding a bicycle down a quiet street. " * 12},
        ],
        "generator": {"backend": "template", "seed": 0},
    }
    return json.dumps(record).encode()


def write_gnu_tar(paths: list[Path], out: Path) -> None:
    """`tar -cf out.tar -C dir .`, or the file names when the folder holds more files."""
    folder = paths[0].parent
    exact = sum(1 for _ in folder.iterdir()) == len(paths)
    members = ["."] if exact else [p.name for p in paths]
    subprocess.run(["tar", "-cf", str(out), "-C", str(folder), *members], check=True)


def write_gnu_tar_fsync(paths: list[Path], out: Path) -> None:
    """GNU tar, then fsync of the archive: what a durable shard costs with tar."""
    write_gnu_tar(paths, out)
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_mminstruct(paths: list[Path], out: Path, fsync: bool = False) -> None:
    """mminstruct.output.shards.ShardWriter, one shard with no caps (default: no fsync)."""
    caps = {"max_samples": 10**9, "max_bytes": 1 << 40}
    with ShardWriter(out.parent, out.stem, **caps, fsync=fsync) as writer:
        for path in paths:
            data = path.read_bytes()
            key = path.stem
            writer.write(key, [("jpg", data), ("json", sample_json(key, path, len(data)))])


def write_mminstruct_fsync(paths: list[Path], out: Path) -> None:
    """ShardWriter with `output.fsync: true`: compare with "gnu-tar+fsync"."""
    write_mminstruct(paths, out, fsync=True)


def webdataset_writer(mtime: int | None) -> Writer:
    """webdataset.TarWriter with its defaults, optionally with a fixed integer mtime."""

    def write(paths: list[Path], out: Path) -> None:
        options = {} if mtime is None else {"mtime": mtime}
        with webdataset.TarWriter(str(out), **options) as writer:
            for path in paths:
                data = path.read_bytes()
                key = path.stem
                writer.write(
                    {"__key__": key, "jpg": data, "json": sample_json(key, path, len(data))}
                )

    return write


def write_tarfile(paths: list[Path], out: Path) -> None:
    """The standard library's tarfile, adding the same two members per sample."""
    with tarfile.open(out, "w") as tar:
        for path in paths:
            data = path.read_bytes()
            key = path.stem
            for name, payload in (("jpg", data), ("json", sample_json(key, path, len(data)))):
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


CONTENDERS: dict[str, Writer] = {
    "gnu-tar": write_gnu_tar,
    "gnu-tar+fsync": write_gnu_tar_fsync,
    "mminstruct": write_mminstruct,
    "mminstruct+fsync": write_mminstruct_fsync,
    "webdataset": webdataset_writer(None),
    "webdataset-mtime0": webdataset_writer(0),
    "tarfile": write_tarfile,
}


# --------------------------------------------------------------------------- timing


def time_once(write: Writer, paths: list[Path], out: Path) -> tuple[float, int]:
    """Seconds one write takes and the tar's size; the tar is removed and caches synced."""
    out.unlink(missing_ok=True)
    os.sync()
    started = time.perf_counter()
    write(paths, out)
    seconds = time.perf_counter() - started
    size = out.stat().st_size
    out.unlink()
    os.sync()
    return seconds, size


def measure_all(names: list[str], paths: list[Path], rounds: int) -> dict[str, dict]:
    """Best-of-`rounds` time of every contender, interleaved round by round."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {name: [] for name in names}
    sizes: dict[str, int] = {}
    for n in range(rounds):
        for name in names:
            seconds, sizes[name] = time_once(CONTENDERS[name], paths, OUT_DIR / f"{name}.tar")
            times[name].append(seconds)
            print(f"round {n + 1}: {name:<20} {seconds:6.2f} s", flush=True)
    return {
        name: {
            "seconds": round(min(runs), 3),
            "all_seconds": [round(t, 3) for t in runs],
            "tar_mb": round(sizes[name] / 1e6, 1),
            "mb_per_s": round(sizes[name] / 1e6 / min(runs), 1),
        }
        for name, runs in times.items()
    }


def print_table(results: dict[str, dict]) -> None:
    """A plain-text table of the results."""
    print(
        f"{'contender':<20} {'best s':>7} {'tar MB':>7} {'MB/s':>7} {'vs tar':>7} {'vs tar+fsync':>13}"
    )
    for name, row in results.items():
        print(
            f"{name:<20} {row['seconds']:>7.2f} {row['tar_mb']:>7.1f} {row['mb_per_s']:>7.1f} "
            f"{row.get('mbps_ratio') or 0:>7.2f} {row.get('mbps_ratio_fsync') or 0:>13.2f}"
        )


def run_benchmark(files: int = 1500, rounds: int = 3, names: list[str] | None = None) -> dict:
    """Make the pool, warm the cache, time every contender, write results/shards.json."""
    names = names or list(CONTENDERS)
    paths = ensure_jpeg_pool(files)
    payload = warm_cache(paths)
    print(f"{files} JPEGs, {payload / 1e6:.1f} MB, page cache warm", flush=True)
    results = measure_all(names, paths, rounds)
    for row in results.values():
        row["mbps_ratio"] = ratio(row["mb_per_s"], results.get(REFERENCE, {}).get("mb_per_s"))
        row["mbps_ratio_fsync"] = ratio(
            row["mb_per_s"], results.get("gnu-tar+fsync", {}).get("mb_per_s")
        )
    print_table(results)
    ours = results.get("mminstruct", {}).get("mbps_ratio")
    summary = {
        "benchmark": "shards",
        "files": files,
        "payload_mb": round(payload / 1e6, 1),
        "mean_jpeg_kb": round(payload / files / 1e3, 1),
        "rounds": rounds,
        "reference": REFERENCE,
        "goal_mbps_ratio": GOAL_MBPS_RATIO,
        "goal_met": None if ours is None else ours >= GOAL_MBPS_RATIO,
        "results": results,
    }
    print(f"wrote {write_results('shards', summary)}")
    return summary


def main(argv: list[str] | None = None) -> dict:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/bench_shards.py --files 300 --rounds 2",
    )
    parser.add_argument("--files", type=int, default=1500, help="JPEGs to archive (default 1500)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per contender; best counts")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated subset to run"
    )
    args = parser.parse_args(argv)
    return run_benchmark(args.files, args.rounds, args.contenders.split(","))


if __name__ == "__main__":
    main()
