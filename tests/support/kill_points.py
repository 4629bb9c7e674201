"""Stop a build process at a chosen point, deterministically, from the tests alone.

A build started with `start(...)` runs `python -c WRAPPER build ...`: the wrapper imports this
module, which reads `MMINSTRUCT_TEST_PAUSE` ("<point>:<n>") and `MMINSTRUCT_TEST_PAUSE_DIR`,
wraps `os.replace` and `ShardWriter.write` in that process only, then runs `mminstruct` exactly
as `python -m mminstruct` does. Nothing in the package knows about it. (With
`MMINSTRUCT_TEST_SCRIPTED_DECODE` set, the wrapper also installs `scripted_decoding`.)

At the n-th occurrence of the point the process writes `reached` (JSON: the point, n and the
file concerned) into the folder and waits there until `go` appears. While it waits the test
looks at the disk (the process is alive, so the state is the one at that point) and then
kills it with SIGKILL, or sends SIGTERM and writes `go` once the signal was delivered.

Points (a unit's files are `shard-NNNNNN.tar` and its marker `_parts/shard-NNNNNN.stats.json`):

- `in_shard`: after the n-th sample was added to a shard; its `shard-*.tar.tmp` is open.
- `shard_renamed`: right after the n-th shard got its final name; its marker is not written.
- `marker_pending`: right before the n-th marker gets its final name (its temporary file is
  complete, the final name absent).
- `finalizing`: right after finalize wrote `manifest.json` for the n-th time: every marker
  is written, `stats.json` is not.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.scripted_decoding import SCRIPTED_ENV

POINT_ENV = "MMINSTRUCT_TEST_PAUSE"
FOLDER_ENV = "MMINSTRUCT_TEST_PAUSE_DIR"
POINTS = ("in_shard", "shard_renamed", "marker_pending", "finalizing")
TESTS = Path(__file__).resolve().parents[1]
# Runs mminstruct as `python -m mminstruct` does, with the hook installed first.
WRAPPER = (
    f"import sys; sys.path.append({str(TESTS)!r}); "
    "from support.kill_points import install; install(); "
    "import runpy; sys.argv[0] = 'mminstruct'; "
    "runpy.run_module('mminstruct', run_name='__main__', alter_sys=True)"
)
WAIT_LIMIT_S = 300  # a paused process nobody releases exits on its own
_SHARD = re.compile(r"^shard-\d{6}(?:_\d+)?\.tar$")
_MARKER = re.compile(r"^shard-\d{6}\.stats\.json$")
_MANIFEST = re.compile(r"^manifest\.json$")


# --------------------------------------------------------------------------- in the build


def install() -> None:
    """In the build process: the hooks its environment asks for, if any."""
    if os.environ.get(SCRIPTED_ENV):
        from support.scripted_decoding import install as script_decoding

        script_decoding()
    if os.environ.get(POINT_ENV):
        install_pause()


def install_pause() -> None:
    """Pause at the point that `MMINSTRUCT_TEST_PAUSE` names."""
    point, n = os.environ[POINT_ENV].split(":")
    if point not in POINTS:
        raise SystemExit(f"kill_points: unknown point {point!r}; one of {POINTS}")
    hook = _Hook(point, int(n), Path(os.environ[FOLDER_ENV]))
    replace = os.replace

    def paused_replace(src, dst, *args, **kwargs):
        if hook.counts("marker_pending", dst, _MARKER, "_parts"):
            hook.pause(dst)
        replace(src, dst, *args, **kwargs)
        if hook.counts("shard_renamed", dst, _SHARD) or hook.counts("finalizing", dst, _MANIFEST):
            hook.pause(dst)

    os.replace = paused_replace
    if point == "in_shard":
        from mminstruct.output.shards import ShardWriter

        write = ShardWriter.write

        def paused_write(self, key, members):
            write(self, key, members)
            if hook.counts("in_shard"):
                hook.pause(Path(self.out_dir))

        ShardWriter.write = paused_write


@dataclass
class _Hook:
    point: str
    n: int
    folder: Path
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(
        self, point: str, dst=None, name: re.Pattern | None = None, parent: str | None = None
    ) -> bool:
        """Whether this is the n-th occurrence of the point being watched (for a rename:
        one to a file called `name`, in a folder called `parent`)."""
        if point != self.point:
            return False
        if dst is not None:
            path = Path(os.fsdecode(dst))
            if not name.match(path.name) or parent not in (None, path.parent.name):
                return False
        with self.lock:
            self.seen += 1
            return self.seen == self.n

    def pause(self, path: Path) -> None:
        """Say where the build is, then wait for `go` (or for the test's SIGKILL)."""
        report = {"point": self.point, "n": self.n, "path": str(path), "pid": os.getpid()}
        temp = self.folder / "reached.tmp"
        temp.write_text(json.dumps(report))
        os.rename(temp, self.folder / "reached")
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not (self.folder / "go").exists():
            if time.monotonic() > deadline:
                os._exit(97)
            time.sleep(0.01)


# --------------------------------------------------------------------------- in the test


@dataclass(frozen=True)
class Stop:
    """Where to stop a build: the n-th occurrence (from 1) of a point."""

    point: str
    n: int = 1

    def __post_init__(self) -> None:
        if self.point not in POINTS or self.n < 1:
            raise ValueError(f"no such stop: {self}")


@dataclass
class Paused:
    """A build process waiting at its stop; `where` is what it reported."""

    process: subprocess.Popen
    folder: Path
    where: dict

    @property
    def path(self) -> Path:
        return Path(self.where["path"])

    def kill(self) -> int:
        """SIGKILL it where it waits; its exit status (-9 when the signal killed it)."""
        assert self.process.poll() is None, "the build was no longer running at its stop"
        self.process.send_signal(signal.SIGKILL)
        return self.process.wait(timeout=60)

    def terminate_and_release(self) -> None:
        """Send SIGTERM, wait until the process took it, then let the build go on."""
        assert self.process.poll() is None, "the build was no longer running at its stop"
        self.process.send_signal(signal.SIGTERM)
        _wait_delivered(self.process.pid, signal.SIGTERM)
        (self.folder / "go").write_text("")


def wrapped(args: list[str]) -> list[str]:
    """The command line of `mminstruct <args>` with the hooks its environment asks for
    (none: the same as `python -m mminstruct <args>`)."""
    return [sys.executable, "-c", WRAPPER, *args]


def start(
    args: list[str], stop: Stop, folder: Path, env: dict | None = None, **popen
) -> subprocess.Popen:
    """Start `mminstruct <args>` in a process that waits at `stop`; `folder` is for the
    handshake files (created here) and, unless `popen` says otherwise, its stderr."""
    folder.mkdir(parents=True)
    environment = {**(os.environ if env is None else env)}
    environment |= {POINT_ENV: f"{stop.point}:{stop.n}", FOLDER_ENV: str(folder)}
    if "stderr" not in popen:
        with open(folder / "stderr", "w") as stderr:
            return subprocess.Popen(wrapped(args), env=environment, stderr=stderr, **popen)
    return subprocess.Popen(wrapped(args), env=environment, **popen)


def wait_paused(process: subprocess.Popen, folder: Path, timeout: float = 120) -> Paused:
    """Until the process reports that it waits at its stop; fails if it ends first."""
    deadline = time.monotonic() + timeout
    while not (folder / "reached").exists():
        if process.poll() is not None:
            raise AssertionError(
                f"the build ended (exit {process.returncode}) before reaching its stop"
                + _stderr_tail(folder)
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the build did not reach its stop in {timeout} s")
        time.sleep(0.01)
    assert process.poll() is None, "the build exited at its stop instead of waiting there"
    return Paused(process, folder, json.loads((folder / "reached").read_text()))


def _stderr_tail(folder: Path) -> str:
    log = folder / "stderr"
    return f"; its stderr ends:\n{log.read_text()[-2000:]}" if log.is_file() else ""


def _wait_delivered(pid: int, signum: int, timeout: float = 10) -> None:
    """Until `signum` is no longer pending for any thread of `pid` (its handler has run or is
    running), as /proc shows it."""
    bit = 1 << (signum - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            statuses = [Path(f"/proc/{pid}/status").read_text()]
            statuses += [p.read_text() for p in Path(f"/proc/{pid}/task").glob("*/status")]
        except OSError:
            return  # the process is gone
        pending = 0
        for text in statuses:
            for line in text.splitlines():
                if line.startswith(("SigPnd:", "ShdPnd:")):
                    pending |= int(line.split()[1], 16)
        if not pending & bit:
            return
        time.sleep(0.005)
    raise AssertionError(f"signal {signum} stayed pending for {timeout} s")


# --------------------------------------------------------------------------- what the disk shows


def stem_of(path: Path) -> str:
    """`shard-NNNNNN` of a unit's tar, temporary tar or marker."""
    return re.match(r"^\.?(shard-\d{6})", path.name).group(1)


def temporary_tars(out: Path) -> list[Path]:
    return sorted(out.glob("shard-*.tar.tmp"))


def markers(out: Path) -> set[str]:
    return {stem_of(p) for p in (out / "_parts").glob("shard-*.stats.json")}


def assert_whole_tars(out: Path) -> None:
    """Every tar under a final name is whole: readable to the end, in whole tar records."""
    for path in out.glob("shard-*.tar"):
        assert path.stat().st_size % 10240 == 0, path
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                assert len(tar.extractfile(member).read()) == member.size, (path, member.name)


def assert_state_at(paused: Paused, out: Path, units: int) -> str:
    """The disk shows what the stop promises; returns the stem of the unit concerned."""
    point, path = paused.where["point"], paused.path
    if point == "in_shard":
        temps = temporary_tars(out)
        assert len(temps) == 1, temps  # one shard in progress
        stem = stem_of(temps[0])
        assert not (out / f"{stem}.tar").exists() and stem not in markers(out)
        return stem
    if point == "shard_renamed":
        stem = stem_of(path)
        assert path.is_file() and not temporary_tars(out)
        assert stem not in markers(out), f"{stem} was marked done already"
        return stem
    if point == "marker_pending":
        stem = stem_of(path)
        assert not path.exists() and (out / f"{stem}.tar").is_file()
        assert list((out / "_parts").glob(f".{stem}.stats.json.*.tmp")), "no temporary marker"
        return stem
    assert point == "finalizing"
    assert len(markers(out)) == units, "finalize started before every unit was done"
    assert (out / "manifest.json").is_file() and not (out / "stats.json").exists()
    return ""


def kill_at_each(
    args: list[str], stops: list[Stop], out: Path, units: int, handshakes: Path, env=None
) -> None:
    """Run `mminstruct <args>` once per stop and SIGKILL it there: each time the process
    is still running at its stop, the disk shows that moment, and the kill leaves it so."""
    for k, stop in enumerate(stops):
        folder = handshakes / f"stop-{k}"
        process = start(args, stop, folder, env)
        paused = wait_paused(process, folder)
        assert paused.where["point"] == stop.point
        stem = assert_state_at(paused, out, units)
        assert paused.kill() == -signal.SIGKILL
        assert assert_state_at(paused, out, units) == stem
        assert_whole_tars(out)
