"""Helpers shared by the benchmark scripts: paths, machine description, results files."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"  # git-ignored: synthetic annotations, JPEGs, outputs
RESULTS_DIR = BENCH_DIR / "results"  # small JSON files, meant to be committed
PACKAGES = ("mminstruct", "pycocotools", "webdataset", "msgspec", "numpy", "pillow", "pyyaml")
RESULT_MARKER = "BENCH-RESULT "  # a child process prints its result after this prefix


def coco_dir(scale: float) -> Path:
    """Where the synthetic COCO set of this scale lives."""
    return DATA_DIR / f"coco-{scale:g}"


def coco_files(scale: float) -> tuple[Path, Path]:
    """(instances, captions) files of the synthetic set of this scale."""
    folder = coco_dir(scale)
    return folder / "instances_train2017.json", folder / "captions_train2017.json"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    On Linux this is `VmHWM` from /proc/self/status: `ru_maxrss` also counts the RSS of
    the parent at fork time (the kernel carries it across exec), which would charge the
    benchmark driver's own memory to every child. Elsewhere, `ru_maxrss` (KiB on Linux,
    bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages the benchmarks touch (None when missing)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    """Total RAM in GiB, where the OS says."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        return None


def gnu_tar_version() -> str | None:
    """First line of `tar --version`, or None without tar."""
    try:
        out = subprocess.run(["tar", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.splitlines()[0]


def machine_info() -> dict:
    """Where and when the numbers were measured."""
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "gnu_tar": gnu_tar_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(name: str, results: dict) -> Path:
    """Write `results/<name>.json` (via a temp file), with the machine description added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**results, "machine": machine_info()}, indent=2) + "\n")
    tmp.replace(path)
    return path


def run_child(argv: list[str], timeout: float | None = None) -> dict:
    """Run a benchmark child process; returns the JSON it printed after RESULT_MARKER.

    A child that fails, or prints no result, gives {"error": ...} with its stderr tail.
    """
    proc = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exit status {proc.returncode}: " + " | ".join(tail)}


def report_to_parent(result: dict) -> None:
    """Print a child's result on the line the parent looks for."""
    print(RESULT_MARKER + json.dumps(result), flush=True)


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, rounded; None when either is missing."""
    if value is None or not reference:
        return None
    return round(value / reference, 3)
