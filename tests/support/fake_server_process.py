"""The scripted OpenAI-compatible server of `fake_openai.py` as a real separate process, for
the managed-server tests (`generator.server.command`):

    python tests/support/fake_server_process.py --port {port} [options]

--load-s S: wait S seconds before listening (a model loading); --exit CODE: print a line and
exit with CODE at once (a server that cannot start); --die-after N --once FILE: on the N-th
POST, unless FILE exists, create it and SIGKILL itself (a server that dies mid-build, once);
--delay S: each answer waits S x (seed % 3) seconds; --child: start a `sleep` in the same
process group first (an engine's worker process, which must be stopped with it).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fake_openai import FakeServer, Handler


class ProcessServer(FakeServer):
    """The fake, listening on the port it was told (the manager chose it)."""

    port = 0

    def server_bind(self) -> None:
        self.server_address = ("127.0.0.1", self.port)
        super().server_bind()


def dying_handler(die_after: int, once: Path) -> type[Handler]:
    """A handler that SIGKILLs the whole server on the `die_after`-th POST, the first time."""
    posts = [0]
    lock = threading.Lock()

    class DyingHandler(Handler):
        def do_POST(self) -> None:
            with lock:
                posts[0] += 1
                due = posts[0] == die_after and not once.exists()
            if due:
                once.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            super().do_POST()

    return DyingHandler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--load-s", type=float, default=0.0)
    parser.add_argument("--exit", type=int, default=None)
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--once", type=Path, default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--child", action="store_true")
    options = parser.parse_args()
    print(f"fake server: pid {os.getpid()}, port {options.port}", flush=True)
    if options.exit is not None:
        print("fake server: cannot load the model (as told)", flush=True)
        sys.exit(options.exit)
    if options.child:
        subprocess.Popen(["sleep", "600"])
    time.sleep(options.load_s)
    ProcessServer.port = options.port
    handler = Handler
    if options.die_after:
        handler = dying_handler(options.die_after, options.once)
    server = ProcessServer()
    server.RequestHandlerClass = handler
    server.delay_s = options.delay
    print("fake server: ready", flush=True)
    server.serve_forever(0.05)


if __name__ == "__main__":
    main()
