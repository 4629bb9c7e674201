"""No server outlives the build: every started server is stopped at exit, on an error, on
SIGTERM and on SIGINT (Ctrl-C).

A server runs in its own process group (its own session), so a signal to the build does not
reach it by itself: the build stops it. `stop_all` runs at interpreter exit (`atexit`), which
an error, Ctrl-C (KeyboardInterrupt) and `sys.exit` all reach; a SIGTERM whose handler is the
default one (which would end the process without `atexit`) is turned into `SystemExit` while
a server runs. `stopping_servers()` stops them at the end of a block, for in-process callers.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Protocol

SIGTERM_EXIT = 128 + signal.SIGTERM  # the exit status of a process ended by SIGTERM


class Stoppable(Protocol):
    def stop(self) -> None:
        """Stop the server's whole process group; a no-op when it is not running."""
        ...


_running: list[Stoppable] = []
_lock = threading.Lock()


def register(server: Stoppable) -> None:
    """Stop `server` at exit; make sure SIGTERM leads there."""
    with _lock:
        if server not in _running:
            _running.append(server)
    _exit_on_sigterm()


def unregister(server: Stoppable) -> None:
    with _lock:
        if server in _running:
            _running.remove(server)


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet."""
    with _lock:
        servers = list(_running)
    for server in servers:
        server.stop()


@contextlib.contextmanager
def stopping_servers() -> Iterator[None]:
    """Every server started inside the block is stopped when it ends, however it ends."""
    try:
        yield
    finally:
        stop_all()


def _exit_on_sigterm() -> None:
    """Where SIGTERM would end the process at once (its default), make it `SystemExit`, so
    that `atexit` stops the servers. A handler someone installed (the build's) is kept."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(SIGTERM_EXIT)


atexit.register(stop_all)
