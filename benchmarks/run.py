"""Run the mminstruct benchmarks in order and print a Markdown summary for BENCHMARKS.md.

Makes the synthetic COCO set first when it is missing, then runs `convert`
(bench_convert.py), `shards` (bench_shards.py), `build` (bench_build.py) and `resume`
(bench_resume.py: kill/resume trials at --resume-scale, default 0.1) one after the other,
never in parallel. Each writes its JSON under benchmarks/results/; the exit status is 1
when a resume trial failed.

    python benchmarks/run.py [--scale 1.0] [--only convert,shards,build,resume]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import bench_build
import bench_convert
import bench_resume
import bench_shards
import make_synthetic_coco
from common import coco_dir, coco_files, machine_info

BENCHMARKS = ("convert", "shards", "build", "resume")


def ensure_data(scale: float, seed: int) -> None:
    """Generate the synthetic COCO set of this scale unless it is already there."""
    if all(path.exists() for path in coco_files(scale)):
        return
    print(f"generating synthetic COCO at scale {scale:g} in {coco_dir(scale)} ...", flush=True)
    started = time.perf_counter()
    make_synthetic_coco.generate(coco_dir(scale), seed, scale)
    print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _goal(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**missed**")


def convert_markdown(summary: dict) -> list[str]:
    """Table lines for the annotation-loading benchmark."""
    files = " + ".join(f"{mb:g} MB" for mb in summary["files_mb"].values())
    goals = summary["goals"]
    met = summary["goals_met"]
    lines = [
        f"### Loading annotations (synthetic COCO train2017, scale {summary['scale']:g}: {files})",
        "",
        "| contender | time (s) | peak RSS (MB) | time vs pycocotools | RSS vs pycocotools |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in summary["results"].items():
        if "seconds" not in row:
            lines.append(f"| {name} | {row.get('skipped') or row.get('error')} | | | |")
            continue
        lines.append(
            f"| {name} | {row['seconds']:.1f} | {row['peak_rss_mb']:.0f} | "
            f"{_fmt(row['time_ratio'])}x | {_fmt(row['rss_ratio'])}x |"
        )
    lines += [
        "",
        f"Goal for mminstruct: time <= {goals['time_ratio']}x ({_goal(met['time_ratio'])}), "
        f"peak RSS <= {goals['rss_ratio']}x ({_goal(met['rss_ratio'])}). "
        f"mminstruct and plain-json contexts identical in count and length: "
        f"{summary.get('outputs_agree')}.",
    ]
    return lines


def shards_markdown(summary: dict) -> list[str]:
    """Table lines for the shard-writing benchmark."""
    lines = [
        f"### Writing tar shards ({summary['files']:,} JPEGs, {summary['payload_mb']:g} MB, "
        f"page cache warm, best of {summary['rounds']})",
        "",
        "| contender | best time (s) | MB/s | vs GNU tar | vs GNU tar + fsync |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in summary["results"].items():
        lines.append(
            f"| {name} | {row['seconds']:.2f} | {row['mb_per_s']:.0f} | "
            f"{_fmt(row['mbps_ratio'])}x | {_fmt(row['mbps_ratio_fsync'])}x |"
        )
    lines += ["", f"Goal for mminstruct: >= {summary['goal_mbps_ratio']}x GNU tar's MB/s "]
    lines[-1] += f"({_goal(summary['goal_met'])})."
    return lines


def build_markdown(summary: dict) -> list[str]:
    """Table lines for the end-to-end build benchmark."""
    lines = [
        f"### End-to-end build (rule-based, synthetic COCO scale {summary['scale']:g}, "
        f"fastest of {summary.get('repeat', 1)})",
        "",
        "| images | time (s) | peak RSS (MB) | images written | instructions |",
        "|---:|---:|---:|---:|---:|",
    ]
    for limit, row in summary["runs"].items():
        if "seconds" not in row:
            lines.append(f"| {limit} | {row.get('skipped') or row.get('error')} | | | |")
            continue
        lines.append(
            f"| {limit} | {row['seconds']:.1f} | {row['peak_rss_mb']:.0f} | "
            f"{row.get('images_written', 'n/a')} | {row.get('instructions_total', 'n/a')} |"
        )
    if "images_per_s" in summary:
        lines += [
            "",
            f"{summary['images_per_s']} images/s overall for {summary['limit']:,} images; "
            f"{summary['steady_images_per_s']} images/s once the annotations are read "
            f"(fixed cost about {summary['fixed_seconds_estimate']} s).",
        ]
    return lines


def machine_line() -> str:
    """One line describing the machine and the date."""
    m = machine_info()
    return (
        f"Measured {m['date'][:10]} on {m['cpu']}, {m['cpu_count']} CPUs, {m['memory_gib']} GiB "
        f"RAM, {m['platform']}, Python {m['python']}, {m['gnu_tar']}."
    )


RUNNERS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "convert": lambda a: bench_convert.run_benchmark(a.scale, a.repeat),
    "shards": lambda a: bench_shards.run_benchmark(a.files, a.rounds),
    "build": lambda a: bench_build.run_benchmark(a.scale, a.limit, a.small_limit, a.build_repeat),
    "resume": lambda a: bench_resume.run_benchmark(
        bench_resume.parse_args(["--scale", str(a.resume_scale), "--trials", str(a.trials)])
    ),
}
MARKDOWN: dict[str, Callable[[dict], list[str]]] = {
    "convert": convert_markdown,
    "shards": shards_markdown,
    "build": build_markdown,
    "resume": bench_resume.markdown,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: which benchmarks, at which scale, how many repeats."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/run.py --scale 0.01 --only convert,build",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic COCO size (default 1)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--repeat", type=int, default=1, help="convert: fresh runs per contender")
    parser.add_argument("--files", type=int, default=1500, help="shards: JPEGs to archive")
    parser.add_argument("--rounds", type=int, default=3, help="shards: runs per contender")
    parser.add_argument("--limit", type=int, default=3000, help="build: images to build")
    parser.add_argument("--small-limit", type=int, default=100, help="build: fixed-cost run")
    parser.add_argument("--build-repeat", type=int, default=2, help="build: runs per limit")
    parser.add_argument(
        "--resume-scale", type=float, default=0.1, help="resume: synthetic COCO size (default 0.1)"
    )
    parser.add_argument("--trials", type=int, default=12, help="resume: SIGKILL trials")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the chosen benchmarks, then print the Markdown summary."""
    args = parse_args(argv)
    if {"convert", "build"} & set(args.only):
        ensure_data(args.scale, args.seed)
    if "resume" in args.only:
        ensure_data(args.resume_scale, args.seed)
    summaries = {}
    for name in BENCHMARKS:
        if name in args.only:
            print(f"\n=== {name} ===", flush=True)
            summaries[name] = RUNNERS[name](args)
    lines = ["", "## Benchmarks", "", machine_line()]
    for name, summary in summaries.items():
        lines += ["", *MARKDOWN[name](summary)]
    print("\n".join(lines))
    if summaries.get("resume", {}).get("passed") is False:
        sys.exit("resume trials FAILED (see above and benchmarks/results/resume.json)")


if __name__ == "__main__":
    main()
