"""A managed inference server: started on a free port in its own process group, its log in
the output folder, ready when `/health` or `/v1/models` answers, restarted when it dies
mid-build (`generator.server.restarts`), stopped with the build.

The presets only write the command line (`vllm_server.py`, `sglang_server.py`,
`transformers_server.py`, `command_server.py`); everything else is here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from mminstruct.config import GeneratorConfig
from mminstruct.errors import MminstructError
from mminstruct.generate.servers import cleanup, placement
from mminstruct.generate.servers.command_server import command_line as command_from_config
from mminstruct.generate.servers.sglang_server import command_line as sglang_command
from mminstruct.generate.servers.spec import HOST, Spec
from mminstruct.generate.servers.transformers_server import command_line as transformers_command
from mminstruct.generate.servers.vllm_server import command_line as vllm_command
from mminstruct.redact import redact_text

log = logging.getLogger("mminstruct")

PRESETS: dict[str, Callable[[Spec], list[str]]] = {
    "vllm": vllm_command,
    "sglang": sglang_command,
    "transformers": transformers_command,
}
POLL_S = 0.25  # between two readiness checks
PROGRESS_S = 30.0  # a "still loading" line this often while the model loads
STOP_GRACE_S = 15.0  # after SIGTERM, the server has this long before SIGKILL
DEATH_GRACE_S = 3.0  # a dropped connection: wait this long to see whether the server exits
TAIL_LINES = 25  # of the server's log, quoted in an error
# Exit statuses of a server someone stopped (a clean exit after SIGTERM included): a crash
# (SIGKILL by the OOM killer, SIGSEGV, an error status) is restarted, these are not.
STOPPED_ON_PURPOSE = (0, -signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM)


class ServerError(MminstructError):
    """A managed server could not start, or died more often than `server.restarts` allows."""


class ManagedServer:
    """One inference server for this process: `start()`, `recover()`, `stop()`."""

    def __init__(
        self,
        config: GeneratorConfig,
        log_path: Path,
        local_rank: int = 0,
        env: Mapping[str, str] = os.environ,
    ):
        if config.server is None or not config.model:
            raise MminstructError("generator.server: a managed server needs generator.model")
        self.settings = config.server
        self.model = config.model
        self.log_path = log_path
        self.name = self.settings.preset or Path(self.settings.command[0]).name
        gpus = placement.node_gpus(env)
        self.tensor_parallel = placement.tensor_parallel(
            self.settings.placement, self.settings.tensor_parallel, gpus
        )
        self._env = placement.server_env(
            self.settings.placement, self.tensor_parallel, local_rank, gpus, env
        )
        self._process: subprocess.Popen | None = None  # the one started last
        self._live: subprocess.Popen | None = None  # the one `starts` and `base_url` are of
        self._lock = threading.Lock()
        self._stopped = False  # stop() was called: a dropped connection is no death
        # Servers that became ready (restarts = starts - 1) and the last one's address: both
        # change together, once it answers, so a request knows which server it went to.
        self.starts = 0
        self.base_url = ""  # http://127.0.0.1:PORT/v1

    def __repr__(self) -> str:
        return f"ManagedServer({self.name!r}, base_url={self.base_url!r})"

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group's id), while it runs."""
        return self._process.pid if self._process else None

    def start(self) -> str:
        """Start the server and wait until it answers; its base URL."""
        with self._lock:
            self._stopped = False
            self._start()
            return self.base_url

    def recover(self, starts_seen: int) -> bool:
        """After a dropped or refused connection: True when the request should be sent again
        as it is, not counted as a failed attempt (the server died and was restarted, by this
        call or another thread's); False when the server still runs (retry as usual).
        Raises `ServerError` once the restarts are spent."""
        if self._stopped or (self.starts == starts_seen and not self._exited(DEATH_GRACE_S)):
            return False  # alive (a reset, not a death), or stopped on purpose
        with self._lock:
            if self._stopped:
                return False  # stopped while this request waited: never start it again
            if self.starts != starts_seen:
                return True  # restarted since this request went out
            self._restart()
            return True

    def stop(self) -> None:
        """Stop the server's whole process group: SIGTERM, then SIGKILL after a grace."""
        self._stopped = True
        with self._lock:
            self._stop_group()
        cleanup.unregister(self)

    # ------------------------------------------------------------------ inside the lock

    def _start(self) -> None:
        number = self.starts + 1
        port = free_port()
        spec = Spec(
            self.model,
            port,
            self.tensor_parallel,
            self.settings.dtype,
            self.settings.max_model_len,
            self.settings.args,
        )
        self._spawn(self._command(spec), number)
        self._wait_ready(port)
        self.base_url, self._live = f"http://{HOST}:{port}/v1", self._process
        self.starts = number  # published last: requests now go to the new server
        log.info("the %s server answers at %s", self.name, self.base_url)

    def _command(self, spec: Spec) -> list[str]:
        if self.settings.preset:
            return PRESETS[self.settings.preset](spec)
        return command_from_config(spec, self.settings.command)

    def _spawn(self, argv: list[str], number: int) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            total = self.settings.restarts + 1
            _note(out, f"start {number} of at most {total}: {' '.join(argv)}")
            try:
                self._process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    start_new_session=True,  # its own process group: stopped as a whole
                )
            except OSError as exc:
                raise ServerError(
                    f"cannot start the {self.name} server ({argv[0]}: {exc.strerror}); "
                    f"{_install_hint(self.settings.preset)}"
                ) from None
            _note(out, f"pid {self._process.pid} (process group {self._process.pid})")
        cleanup.register(self)
        log.info(
            "started the %s server for %s (pid %d, log %s)",
            self.name,
            self.model,
            self._process.pid,
            self.log_path,
        )

    def _wait_ready(self, port: int) -> None:
        """Poll until the server answers; fail on an early exit or after ready_timeout_s."""
        began = time.monotonic()
        timeout = self.settings.ready_timeout_s
        note_at = began + PROGRESS_S
        with _SigtermWatch() as aborted:
            while not _answers(port):
                waited = time.monotonic() - began
                if self._process is None or self._process.poll() is not None:
                    code = self._process.returncode if self._process else None
                    self._fail(f"exited with status {code} before it was ready")
                if aborted.is_set():
                    self._fail("was stopped by SIGTERM while it loaded the model")
                if waited > timeout:
                    self._fail(f"did not answer within generator.server.ready_timeout_s={timeout}")
                if time.monotonic() >= note_at:
                    note_at += PROGRESS_S
                    log.info(
                        "the %s server is loading %s: %.0f s of at most %.0f s (log %s)",
                        self.name, self.model, waited, timeout, self.log_path,
                    )  # fmt: skip
                time.sleep(POLL_S)
        if self._process is None or self._process.poll() is not None:  # not ours that answered
            self._fail("exited before it was ready (something else answers on its port)")
        log.info("the %s server is ready (%.1f s)", self.name, time.monotonic() - began)

    def _restart(self) -> None:
        code = self._process.returncode if self._process else None
        if code in STOPPED_ON_PURPOSE:
            self._stop_group()
            raise ServerError(
                f"the {self.name} server was stopped from outside (exit status {code}: SIGTERM "
                "or SIGINT, e.g. Slurm's time limit or scancel), so it is not restarted; rerun "
                "the same command to resume (finished shards are kept)"
            )
        if self.starts > self.settings.restarts:
            self._stop_group()
            raise ServerError(
                f"the {self.name} server died (exit status {code}) and was already restarted "
                f"{self.starts - 1} time(s) (generator.server.restarts={self.settings.restarts})"
                f"; the end of its log {self.log_path}:\n{self._tail()}\nrerun the same command "
                "to resume (finished shards are kept)"
            )
        log.warning(
            "the %s server died (exit status %s); restarting it (restart %d of %d)",
            self.name, code, self.starts, self.settings.restarts,
        )  # fmt: skip
        self._stop_group()
        self._start()

    def _exited(self, grace: float) -> bool:
        """Whether the server process ends within `grace` seconds (safe outside the lock)."""
        process = self._live
        if process is None:
            return True
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _fail(self, what: str) -> None:
        self._stop_group()
        raise ServerError(
            f"the {self.name} server for {self.model} {what}; the end of its log "
            f"{self.log_path}:\n{self._tail()}"
        )

    def _stop_group(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("the %s server ignored SIGTERM; killing it", self.name)
        _signal_group(process.pid, signal.SIGKILL)  # whatever of the group is left
        process.wait()
        _wait_group_gone(process.pid, STOP_GRACE_S)

    def _tail(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as lines:
                tail = deque(lines, TAIL_LINES)
        except OSError as exc:
            return f"(cannot read it: {exc.strerror})"
        return redact_text("".join(tail).rstrip()) or "(empty)"


# ---------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _answers(port: int) -> bool:
    """Whether the server on `port` is ready: GET /health, else GET /v1/models, answers 200."""
    for path in ("/health", "/v1/models"):
        try:
            with _DIRECT.open(f"http://{HOST}:{port}{path}", timeout=2.0) as answer:
                if answer.status == 200:
                    return True
        except (OSError, urllib.error.HTTPError, ValueError):
            continue
    return False


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait until no process of the group is left: SIGKILL is delivered asynchronously, and a
    worker the server started (the engine's own children) dies a moment after the call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if _only_zombies(pgid):
            return  # dead, waiting for their new parent to reap them
        time.sleep(0.02)


def _only_zombies(pgid: int) -> bool:
    """Whether every process of the group has ended (Linux /proc; elsewhere: unknown, False)."""
    stats = []
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stats.append(path.read_text())
        except OSError:  # ended while we looked
            continue
    if not stats:
        return False  # no /proc: cannot tell
    for text in stats:
        fields = text.rpartition(")")[2].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return False
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, signum)


def _note(out: BinaryIO, text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    out.write(f"=== mminstruct {stamp}: {text}\n".encode())
    out.flush()


def _install_hint(preset: str | None) -> str:
    hints = {
        "vllm": "pip install vllm",
        "sglang": "pip install 'sglang[all]'",
        "transformers": "pip install 'mminstruct[serve]'",
    }
    if preset in hints:
        return f"install it ({hints[preset]}) in this environment"
    return "check generator.server.command"


class _SigtermWatch:
    """While inside (main thread only), a SIGTERM also sets an event, after the handler that
    was there runs (the build's own, which stops it between batches)."""

    def __enter__(self) -> threading.Event:
        self.event = threading.Event()
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._handle)
        return self.event

    def _handle(self, signum: int, frame: object) -> None:
        self.event.set()
        if callable(self.previous) and self.previous is not cleanup._raise_exit:
            self.previous(signum, frame)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
