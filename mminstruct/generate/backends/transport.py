"""HTTP for the `openai` backend: one deadline for the whole exchange, and no redirects.

`fetch(request, timeout)` is `urllib`'s `urlopen(...).read()` with three differences:

- `timeout` bounds the whole request (connect, send, status line, headers, body), not each
  socket read: a server that drips one byte a second is cut off at the deadline;
- a redirect is refused (`Redirected`), never followed: urllib would send the request's
  headers, `Authorization` included, to whatever host the server names, and a redirected POST
  loses its body anyway (urllib turns it into a GET);
- an answer larger than `max_bytes` is refused (`TooLarge`) without being read whole.

Proxies from the environment (`https_proxy`, `no_proxy`) work as with `urlopen`.
"""

from __future__ import annotations

import http.client
import io
import time
import urllib.request
from typing import Any


class Redirected(Exception):
    """The server answered with a redirect; it was not followed."""

    def __init__(self, code: int, location: str):
        super().__init__(f"HTTP {code} redirect to {location}")
        self.code = code
        self.location = location


class TooLarge(Exception):
    """The answer is larger than the caller accepts."""


def fetch(request: urllib.request.Request, timeout: float, max_bytes: int) -> bytes:
    """The body of the answer to `request`, all of it within `timeout` seconds.

    Raises `urllib.error.HTTPError` for an HTTP error status (its body can be read, within
    the same deadline), `Redirected`, `TooLarge`, or an `OSError` (`TimeoutError` at the
    deadline) for network problems.
    """
    with _OPENER.open(request, timeout=timeout) as response:
        body = response.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise TooLarge(f"the answer is larger than {max_bytes} bytes")
    return body


# ---------------------------------------------------------------------- the deadline


def _time_left(deadline: float) -> float:
    """Seconds until `deadline`; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


class _DeadlineSocket:
    """A connected socket whose every read and write ends by `deadline`.

    Before each operation the socket's own timeout is set to the time left, so the sum of all
    waits cannot pass the deadline. Everything else is the wrapped socket's.
    """

    def __init__(self, sock: Any, deadline: float):
        self._sock = sock
        self._deadline = deadline
        self._readers = 0  # open files from `makefile`; the socket closes after the last
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._sock.settimeout(_time_left(self._deadline))
        self._sock.sendall(data, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._sock.settimeout(_time_left(self._deadline))
        return self._sock.recv_into(buffer, nbytes, flags)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        """A buffered binary reader (all that http.client asks for)."""
        if mode != "rb":
            raise ValueError(f"only 'rb' files of a deadline socket, not {mode!r}")
        self._readers += 1
        return io.BufferedReader(_Reader(self))

    def close(self) -> None:
        self._closed = True
        if self._readers <= 0:
            self._sock.close()

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closed and self._readers <= 0:
            self._sock.close()


class _Reader(io.RawIOBase):
    """The raw file under `_DeadlineSocket.makefile`."""

    def __init__(self, sock: _DeadlineSocket):
        super().__init__()
        self._owner = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._owner.recv_into(buffer)

    def fileno(self) -> int:
        return self._owner.fileno()

    def close(self) -> None:
        if not self.closed:
            self._owner.reader_closed()
        super().close()


class _DeadlineConnection:
    """Mixed into an http.client connection: its `timeout` is a deadline for the exchange."""

    timeout: float
    sock: Any

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.deadline = time.monotonic() + self.timeout

    def connect(self) -> None:
        self.timeout = _time_left(self.deadline)  # connecting takes its share too
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock, self.deadline)


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req)  # the default, verifying, TLS context


# ---------------------------------------------------------------------- redirects


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Raise `Redirected` instead of following a redirect anywhere."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        fp.close()
        raise Redirected(code, newurl)


_OPENER = urllib.request.build_opener(_HTTPHandler, _HTTPSHandler, _RefuseRedirects)
