"""Resumable builds: kill `mminstruct build` at random moments, resume it, and time resuming.

Three parts, each running the real command line (`python -m mminstruct build CONFIG
--set output.dir=... -q`) in subprocesses, with the rule-based generator on the synthetic
COCO set (images hard-linked as in bench_build.py):

1. Kill trials. A build is SIGKILLed at a random moment (seeded), the shards under their
   final names are checked to be complete tars, and the same command is rerun (and maybe
   killed again, up to --max-kills times) until it exits 0. The output must be
   byte-identical to an uninterrupted reference build: every `shard-*.tar`, `stats.json`,
   `rejects.jsonl`, `manifest.json` and `shards.wids.json`. SIGTERM trials also expect
   exit status 143, a hint to rerun on stderr, no shard left behind half-written, and the
   same output after resuming.
2. Resume overhead. After a complete build, a rerun with nothing left to do, next to a
   process that only reads the annotations (`read_sources`) and one that only imports the
   pipeline; then one unit's marker and shard are deleted and the rerun rebuilds it.
3. Scaling. The same build with one process, and with two launched together
   (`--rank 0/1 --world-size 2`); the two outputs must be byte-identical.

    python benchmarks/bench_resume.py [--scale 0.1] [--trials 12] [--term-trials 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from bench_build import image_entries, link_images
from common import DATA_DIR, coco_dir, coco_files, write_results

TIMEOUT = 600  # seconds any one build may take before the benchmark gives up on it
FINAL_FILES = ("stats.json", "rejects.jsonl", "manifest.json", "shards.wids.json")
RESUME_HINT = "rerun the same command"  # what stderr must say after SIGTERM
BLOCK = 512


@dataclass(frozen=True)
class Job:
    """One build command: the config file, the output folder and the work split."""

    config: Path
    out: Path
    limit: int  # images (`--limit`)
    shard_size: int  # `output.shard_max_samples`: images per unit of work

    @property
    def units(self) -> int:
        """How many units (shards) the build has."""
        return -(-self.limit // self.shard_size)

    def argv(self, rank: int | None = None, world_size: int = 1) -> list[str]:
        """The build command line, for one rank of `world_size` when rank is given."""
        argv = [sys.executable, "-m", "mminstruct", "build", str(self.config), "-q"]
        argv += ["--set", f"output.dir={self.out}", "--limit", str(self.limit)]
        argv += ["--set", f"output.shard_max_samples={self.shard_size}"]
        if rank is not None:
            argv += ["--rank", str(rank), "--world-size", str(world_size)]
        return argv

    def at(self, out: Path) -> Job:
        """The same build writing to another folder."""
        return Job(self.config, out, self.limit, self.shard_size)


@dataclass(frozen=True)
class Budget:
    """How the kill trials choose their moments."""

    reference_seconds: float  # wall time of an uninterrupted build
    max_kills: int  # SIGKILLs per trial at most


# --------------------------------------------------------------------------- running builds


def start(job: Job, rank: int | None = None, world_size: int = 1) -> subprocess.Popen:
    """Start a build process (stdout and stderr captured)."""
    return subprocess.Popen(
        job.argv(rank, world_size), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    """Wait for a process; its exit status and stderr."""
    _, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, err


def timed_run(argv: list[str]) -> float:
    """Wall time of a command that must succeed."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {tail}")
    return seconds


def fresh_build(job: Job) -> float:
    """Build into an emptied folder; wall seconds."""
    shutil.rmtree(job.out, ignore_errors=True)
    return timed_run(job.argv())


def interrupt(proc: subprocess.Popen, delay: float, sig: int) -> tuple[int, str, float]:
    """Send `sig` after `delay` s unless the process ended first: (status, stderr, when)."""
    started = time.perf_counter()
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    when = time.perf_counter() - started
    status, err = finish(proc)
    return status, err, when


# --------------------------------------------------------------------------- checking outputs


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def output_digests(out: Path) -> dict[str, str]:
    """sha256 of every final shard and merged file of an output folder, by name."""
    names = [p.name for p in sorted(out.glob("shard-*.tar"))]
    names += [name for name in FINAL_FILES if (out / name).is_file()]
    return {name: sha256(out / name) for name in names}


def differences(digests: dict[str, str], reference: dict[str, str]) -> list[str]:
    """What differs between two sets of digests, in words (empty when identical)."""
    missing = sorted(set(reference) - set(digests))
    extra = sorted(set(digests) - set(reference))
    changed = sorted(n for n in set(digests) & set(reference) if digests[n] != reference[n])
    found = [("missing", missing), ("unexpected", extra), ("different bytes", changed)]
    return [f"{label}: {', '.join(names[:8])}" for label, names in found if names]


def tar_problems(path: Path) -> list[str]:
    """Why a file under a final shard name is not a complete tar (empty when it is)."""
    size = path.stat().st_size
    problems = [] if size % BLOCK == 0 else [f"{path.name}: {size} bytes, not a multiple of 512"]
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 2 * BLOCK))
        if handle.read() != b"\0" * (2 * BLOCK):
            problems.append(f"{path.name}: does not end with two zero blocks")
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                archive.extractfile(member).read()
    except (tarfile.TarError, OSError, AttributeError) as exc:
        problems.append(f"{path.name}: unreadable tar ({exc})")
    return problems


def marker_problems(out: Path) -> list[str]:
    """Finished units whose shards are missing or do not match their marker."""
    problems = []
    for marker in sorted((out / "_parts").glob("shard-*.stats.json")):
        for shard in json.loads(marker.read_text())["shards"]:
            path = out / shard["name"]
            if not path.is_file():
                problems.append(f"{marker.name}: its shard {shard['name']} is missing")
            elif sha256(path) != shard["sha256"]:
                problems.append(f"{marker.name}: {shard['name']} differs from its sha256")
    return problems


def state_at_kill(out: Path) -> dict:
    """What a killed build left: units done, shard in progress, problems with final files."""
    problems = [p for tar in sorted(out.glob("shard-*.tar")) for p in tar_problems(tar)]
    return {
        "units_done": len(list(out.glob("_parts/shard-*.stats.json"))),
        "shard_in_progress": any(out.glob("shard-*.tar.tmp")),
        "stats_json": (out / "stats.json").is_file(),
        "problems": problems + marker_problems(out),
    }


def leftovers(out: Path) -> list[str]:
    """Temporary files still in a finished output folder (shards' and atomic writes')."""
    found = [*out.glob("*.tmp"), *out.glob("_parts/*.tmp")]
    return sorted(p.relative_to(out).as_posix() for p in found)


# --------------------------------------------------------------------------- kill trials


def kill_trial(job: Job, reference: dict[str, str], rng: random.Random, budget: Budget) -> dict:
    """Build with 1 to `max_kills` random SIGKILLs, then compare with the reference.

    The first run is always meant to be killed; if it finishes first (the reference was
    slower), the trial starts over with kill moments drawn from half the time.
    """
    shutil.rmtree(job.out, ignore_errors=True)
    kills, problems, runs = [], [], 0
    window = 0.9 * budget.reference_seconds
    while True:
        runs += 1
        proc = start(job)
        if len(kills) < budget.max_kills and (not kills or rng.random() < 0.5):
            status, err, when = interrupt(proc, rng.uniform(0.0, window), signal.SIGKILL)
        else:
            status, err = finish(proc)
        if status == 0 and not kills and runs < 4:
            shutil.rmtree(job.out)
            window /= 2
            continue
        if status == 0:
            break
        if status != -signal.SIGKILL:
            problems.append(f"run {runs} exited {status}: {err.strip()[-300:]}")
            break
        state = state_at_kill(job.out)
        problems += [f"kill {len(kills) + 1}: {p}" for p in state.pop("problems")]
        kills.append({"after_s": round(when, 2), **state})
    return trial_result("SIGKILL", job, reference, kills, runs, problems)


def term_trial(job: Job, reference: dict[str, str], rng: random.Random, budget: Budget) -> dict:
    """SIGTERM once shards are being written: exit 143, a resume hint, then resume."""
    shutil.rmtree(job.out, ignore_errors=True)
    proc = start(job)
    deadline = time.perf_counter() + TIMEOUT
    while proc.poll() is None and not any(job.out.glob("shard-*.tar*")):
        if time.perf_counter() > deadline:
            proc.kill()
        time.sleep(0.01)
    status, err, when = interrupt(
        proc, rng.uniform(0.0, 0.4) * budget.reference_seconds, signal.SIGTERM
    )
    problems = [] if status == 143 else [f"SIGTERM gave exit status {status}, not 143"]
    if RESUME_HINT not in err:
        problems.append(f"stderr does not say how to resume: {err.strip()[-300:]!r}")
    state = state_at_kill(job.out)
    if state["shard_in_progress"]:
        problems.append("a shard-*.tar.tmp was left behind after SIGTERM")
    problems += state.pop("problems")
    status, err = finish(start(job))
    if status != 0:
        problems.append(f"resume exited {status}: {err.strip()[-300:]}")
    signalled = {"after_first_shard_s": round(when, 2), **state}
    return trial_result("SIGTERM", job, reference, [signalled], 2, problems)


def trial_result(
    kind: str, job: Job, reference: dict[str, str], kills: list[dict], runs: int, problems: list
) -> dict:
    """A trial's record, after comparing its output with the reference build."""
    problems = problems + differences(output_digests(job.out), reference)
    if any(job.out.glob("shard-*.tar.tmp")):
        problems.append("a shard-*.tar.tmp is left in the finished output")
    result = {"signal": kind, "runs": runs, "kills": kills, "passed": not problems}
    result.update(problems=problems, leftover_temp_files=leftovers(job.out))
    if problems:
        result["output_dir"] = str(job.out)  # kept for inspection
    else:
        shutil.rmtree(job.out)
    return result


def kill_trials(job: Job, trials: int, term_trials: int, seed: int, max_kills: int) -> dict:
    """The reference build, then every trial; a summary with one row per trial."""
    reference_job = job.at(job.out / "reference")
    reference_seconds = fresh_build(reference_job)
    reference = output_digests(reference_job.out)
    print(f"reference build: {job.units} units in {reference_seconds:.1f} s", flush=True)
    rng = random.Random(seed)
    budget = Budget(reference_seconds, max_kills)
    rows = []
    for n in range(trials + term_trials):
        trial = kill_trial if n < trials else term_trial
        row = trial(job.at(job.out / f"trial-{n:02d}"), reference, rng, budget)
        rows.append(row)
        verdict = "ok" if row["passed"] else "FAILED: " + "; ".join(row["problems"])
        print(f"trial {n} ({row['signal']}, {len(row['kills'])} signal(s)): {verdict}", flush=True)
    shutil.rmtree(reference_job.out)
    return {
        "limit": job.limit,
        "shard_size": job.shard_size,
        "units": job.units,
        "reference_seconds": round(reference_seconds, 2),
        "trials": len(rows),
        "kills": sum(len(r["kills"]) for r in rows if r["signal"] == "SIGKILL"),
        "sigterms": sum(len(r["kills"]) for r in rows if r["signal"] == "SIGTERM"),
        "failed": sum(not r["passed"] for r in rows),
        "rows": rows,
    }


# --------------------------------------------------------------------------- resume overhead


def python_argv(code: str) -> list[str]:
    """`python -c code` with this interpreter."""
    return [sys.executable, "-c", code]


def drop_unit(out: Path, unit: int) -> None:
    """Delete a finished unit's marker and its shard(s), as if it had never been built."""
    marker = out / "_parts" / f"shard-{unit:06d}.stats.json"
    for shard in json.loads(marker.read_text())["shards"]:
        (out / shard["name"]).unlink()
    marker.unlink()


def overhead(job: Job, repeat: int, rng: random.Random) -> dict:
    """No-op rerun vs reading annotations vs imports; rebuilding one dropped unit."""
    full = fresh_build(job)
    built = output_digests(job.out)
    read = python_argv(
        "from mminstruct.config import load_config; from mminstruct.pipeline import read_sources; "
        f"read_sources(load_config({str(job.config)!r}, ['limit={job.limit}']))"
    )
    times: dict[str, list[float]] = {"imports": [], "read": [], "noop": [], "one_unit": []}
    problems = []
    for unit in rng.sample(range(job.units), repeat):
        times["imports"].append(timed_run(python_argv("import mminstruct.pipeline")))
        times["read"].append(timed_run(read))
        times["noop"].append(timed_run(job.argv()))
        drop_unit(job.out, unit)
        times["one_unit"].append(timed_run(job.argv()))
        problems += [
            f"after rebuilding unit {unit}: {d}"
            for d in differences(output_digests(job.out), built)
        ]
    shutil.rmtree(job.out)
    best = {name: round(min(values), 3) for name, values in times.items()}
    print(f"resume overhead (best of {repeat}): {best}", flush=True)
    return {
        "limit": job.limit,
        "units": job.units,
        "full_build_seconds": round(full, 2),
        "best_seconds": best,
        "all_seconds": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "problems": problems,
    }


# --------------------------------------------------------------------------- scaling


def parallel_build(job: Job, world_size: int) -> float:
    """Build with `world_size` processes started together; wall seconds until all end."""
    shutil.rmtree(job.out, ignore_errors=True)
    started = time.perf_counter()
    procs = [start(job, rank, world_size) for rank in range(world_size)]
    results = [finish(proc) for proc in procs]
    seconds = time.perf_counter() - started
    for rank, (status, err) in enumerate(results):
        if status != 0:
            raise RuntimeError(f"rank {rank} exited {status}: {err.strip()[-300:]}")
    return seconds


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall_and_cpu(build: Callable[[], float]) -> tuple[float, float]:
    """(wall seconds `build` returns, CPU seconds its child processes used)."""
    cpu = children_cpu()
    wall = build()
    return wall, children_cpu() - cpu


def scaling(job: Job, repeat: int) -> dict:
    """One process vs two, interleaved `repeat` times; the outputs must be identical.

    Each run also records its processes' CPU seconds: CPU / wall near the process count
    means the cores were free; well below it, something else on the machine competed.
    """
    one, two = job.at(job.out / "one"), job.at(job.out / "two")
    builds = {"1": lambda: fresh_build(one), "2": lambda: parallel_build(two, 2)}
    runs: dict[str, list[tuple[float, float]]] = {procs: [] for procs in builds}
    problems = []
    for _ in range(repeat):
        for procs, build in builds.items():
            runs[procs].append(wall_and_cpu(build))
        problems += differences(output_digests(two.out), output_digests(one.out))
    shutil.rmtree(job.out)
    rows = {procs: scaling_row(values, job.limit) for procs, values in runs.items()}
    speedup = round(rows["1"]["best_seconds"] / rows["2"]["best_seconds"], 2)
    print(f"scaling: {rows}; speedup {speedup}x", flush=True)
    return {
        "limit": job.limit,
        "shard_size": job.shard_size,
        "processes": rows,
        "speedup": speedup,
        "identical": not problems,
        "problems": problems,
    }


def scaling_row(runs: list[tuple[float, float]], images: int) -> dict:
    """Best wall time, its rate and CPU use, from (wall, cpu) seconds of each run."""
    wall, cpu = min(runs)
    return {
        "best_seconds": round(wall, 2),
        "all_seconds": [round(w, 2) for w, _ in runs],
        "images_per_s": round(images / wall, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_per_wall": round(cpu / wall, 2),
    }


# --------------------------------------------------------------------------- report


def kills_markdown(part: dict) -> list[str]:
    """Lines for the kill trials."""
    moments = [k for row in part["rows"] for k in row["kills"]]
    mid_shard = sum(k["shard_in_progress"] for k in moments)
    finalized = sum(k["stats_json"] for k in moments)
    leftover = [name for row in part["rows"] for name in row["leftover_temp_files"]]
    examples = f" ({', '.join(f'`{name}`' for name in leftover[:3])})" if leftover else ""
    verdict = "all passed" if not part["failed"] else f"**{part['failed']} failed**"
    return [
        f"Kill trials ({part['limit']:,} images, {part['units']} units of {part['shard_size']}; "
        f"an uninterrupted build takes {part['reference_seconds']} s): {part['trials']} trials, "
        f"{part['kills']} SIGKILLs and {part['sigterms']} SIGTERMs ({mid_shard} while a shard "
        f"was being written, {finalized} after stats.json existed), {verdict}. Output "
        "byte-identical to an uninterrupted build is required (every shard, stats.json, "
        f"rejects.jsonl, manifest.json, shards.wids.json). Temporary files of killed writes "
        f"still in the finished outputs: {len(leftover)}{examples}.",
    ]


def overhead_markdown(part: dict) -> list[str]:
    """Table lines for the resume overhead."""
    best = part["best_seconds"]
    rows = [
        ("Python start + `import mminstruct.pipeline`", best["imports"]),
        ("read annotations (`read_sources`, in a fresh process)", best["read"]),
        (f"no-op resume (all {part['units']} units done)", best["noop"]),
        ("resume that rebuilds 1 unit", best["one_unit"]),
        (f"full build ({part['limit']:,} images, once)", part["full_build_seconds"]),
    ]
    lines = ["", "| command | wall time (s) |", "|---|---:|"]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in rows]
    skipping = best["noop"] - best["read"]
    rest = (
        f"checking and skipping the finished units and finalizing again adds {skipping:.2f} s"
        if skipping >= 0.05
        else f"the rest ({skipping:+.2f} s) is within the noise of these timings"
    )
    lines += [
        "",
        f"A no-op resume costs {best['noop']:.2f} s, of which reading the annotations in a fresh "
        f"process is {best['read']:.2f} s; {rest}.",
    ]
    return lines


def scaling_markdown(part: dict) -> list[str]:
    """Table lines for one process vs two."""
    lines = [
        "",
        "| processes | best wall time (s) | images/s | CPU s | CPU / wall |",
        "|---:|---:|---:|---:|---:|",
    ]
    for procs, row in part["processes"].items():
        lines.append(
            f"| {procs} | {row['best_seconds']:.1f} | {row['images_per_s']:.0f} | "
            f"{row['cpu_seconds']:.1f} | {row['cpu_per_wall']:.2f} |"
        )
    same = "byte-identical" if part["identical"] else "**different**"
    lines += [
        "",
        f"{part['limit']:,} images in units of {part['shard_size']}: speedup "
        f"{part['speedup']}x with 2 processes; output {same} to the one-process build.",
    ]
    return lines


def markdown(summary: dict) -> list[str]:
    """The Markdown section for BENCHMARKS.md."""
    lines = [
        f"### Resuming and splitting a build (rule-based, synthetic COCO scale "
        f"{summary['scale']:g})",
        "",
        *kills_markdown(summary["kill_trials"]),
        "",
        f"Resume overhead (best of {summary['repeat']}):",
        *overhead_markdown(summary["overhead"]),
        "",
        f"One process vs two (`--rank R --world-size 2`, best of {summary['scaling_repeat']}):",
        *scaling_markdown(summary["scaling"]),
        "",
        f"1-minute load average before each part (kill trials, overhead, scaling): "
        f"{', '.join(map(str, summary['load_average_before'].values()))}, on "
        f"{os.cpu_count()} CPUs; timings are only comparable on an otherwise idle machine.",
    ]
    return lines


# --------------------------------------------------------------------------- main


def write_config(path: Path, scale: float, images: Path) -> Path:
    """A build config for the synthetic set; output.dir, limit and shard size come per run."""
    instances, captions = coco_files(scale)
    source = {"kind": "coco", "name": "coco", "images": str(images)}
    source.update(instances=str(instances), captions=str(captions))
    command = "python -m mminstruct build {path} --set output.dir=OUT --limit N"
    header = f"# {command.format(path=path)} (see benchmarks/bench_resume.py)\n"
    path.write_text(header + yaml.safe_dump({"sources": [source]}))
    return path


def prepare(scale: float) -> Path:
    """Link the images of the synthetic set and write a config for it."""
    instances, _ = coco_files(scale)
    if not instances.exists():
        sys.exit(f"no synthetic data at {coco_dir(scale)}; run make_synthetic_coco.py first")
    images = DATA_DIR / f"build-{scale:g}" / "images"  # shared with bench_build
    link_images(image_entries(instances), images)
    work = DATA_DIR / f"resume-{scale:g}"
    work.mkdir(parents=True, exist_ok=True)
    return write_config(work / "config.yaml", scale, images)


def passed(summary: dict) -> bool:
    """Every trial passed and every output compared equal."""
    return (
        summary["kill_trials"]["failed"] == 0
        and not summary["overhead"]["problems"]
        and summary["scaling"]["identical"]
    )


def run_benchmark(args: argparse.Namespace) -> dict:
    """All three parts; writes results/resume.json and returns the summary."""
    config = prepare(args.scale)
    work = config.parent
    summary = {"benchmark": "resume", "scale": args.scale, "seed": args.seed}
    summary.update(repeat=args.repeat, scaling_repeat=args.scaling_repeat)
    loads = summary["load_average_before"] = {}  # 1-minute load: is the machine shared?
    trials_job = Job(config, work / "kills", args.kill_limit, args.kill_shard)
    loads["kill_trials"] = round(os.getloadavg()[0], 2)
    summary["kill_trials"] = kill_trials(
        trials_job, args.trials, args.term_trials, args.seed, args.max_kills
    )
    overhead_job = Job(config, work / "overhead", args.units * 100, 100)
    loads["overhead"] = round(os.getloadavg()[0], 2)
    summary["overhead"] = overhead(overhead_job, args.repeat, random.Random(args.seed))
    scaling_job = Job(config, work / "scaling", args.scaling_limit, 100)
    loads["scaling"] = round(os.getloadavg()[0], 2)
    summary["scaling"] = scaling(scaling_job, args.scaling_repeat)
    summary["passed"] = passed(summary)
    print(f"wrote {write_results('resume', summary)}")
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/bench_resume.py --trials 4 --term-trials 1",
    )
    add = parser.add_argument
    add("--scale", type=float, default=0.1, help="synthetic COCO set to use (default 0.1)")
    add("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    add("--trials", type=int, default=12, help="SIGKILL trials (default 12)")
    add("--term-trials", type=int, default=2, help="SIGTERM trials (default 2)")
    add("--max-kills", type=int, default=3, help="SIGKILLs per trial at most (default 3)")
    add("--kill-limit", type=int, default=1500, help="images per trial build (default 1500)")
    add("--kill-shard", type=int, default=50, help="images per unit in the trials (default 50)")
    add("--units", type=int, default=30, help="overhead: units of 100 images built (default 30)")
    add("--repeat", type=int, default=5, help="overhead: runs per command; fastest counts")
    add("--scaling-limit", type=int, default=6000, help="scaling: images (default 6000)")
    add("--scaling-repeat", type=int, default=2, help="scaling: runs each; fastest counts")
    args = parser.parse_args(argv)
    if not 0 < args.repeat <= args.units:
        parser.error("--repeat must be between 1 and --units (each repeat drops another unit)")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Command line entry point; exits 1 when any trial or comparison failed."""
    summary = run_benchmark(parse_args(argv))
    print("\n".join(["", *markdown(summary)]))
    if not summary["passed"]:
        sys.exit("resume benchmark: some trials FAILED (see above and results/resume.json)")
    return summary


if __name__ == "__main__":
    main()
