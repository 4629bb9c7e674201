"""HTTP for the `openai` backend: one deadline for the whole exchange, no redirects, and
keep-alive connections.

`fetch(request, timeout)` is `urllib`'s `urlopen(...).read()` with four differences:

- `timeout` bounds the whole request (connect, send, status line, headers, body), not each
  socket read: a server that drips one byte a second is cut off at the deadline;
- a redirect is refused (`Redirected`), never followed: urllib would send the request's
  headers, `Authorization` included, to whatever host the server names, and a redirected POST
  loses its body anyway (urllib turns it into a GET);
- an answer larger than `max_bytes` is refused (`TooLarge`) without being read whole;
- the connection is kept open for the thread's next request to the same host (one per
  thread and host, as the scheduler has one thread per request in flight); a kept connection
  the server has closed meanwhile is replaced once, at once. A connection whose answer was not
  read to its end (an HTTP error, a refused answer, a timeout) is never reused.

Proxies from the environment (`https_proxy`, `no_proxy`) work as with `urlopen` (a request
that goes through a proxy takes urllib's own path, a new connection each time).
"""

from __future__ import annotations

import http.client
import io
import threading
import time
import urllib.error
import urllib.parse
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
    if _proxied(request):
        with _OPENER.open(request, timeout=timeout) as response:
            return _capped(response.read(max_bytes + 1), max_bytes)
    deadline = time.monotonic() + timeout
    connection, reused = _connection(request, deadline)
    try:
        response = _send(connection, request)
    except _STALE:
        _forget(request, connection)
        if not reused:
            raise
        connection, _ = _connection(request, deadline)  # the server closed the kept one
        response = _send(connection, request)
    return _body(request, connection, response, max_bytes)


def _capped(body: bytes, max_bytes: int) -> bytes:
    if len(body) > max_bytes:
        raise TooLarge(f"the answer is larger than {max_bytes} bytes")
    return body


def _proxied(request: urllib.request.Request) -> bool:
    """Whether a proxy from the environment applies to `request` (as urllib decides)."""
    proxies = urllib.request.getproxies()
    return request.type in proxies and not urllib.request.proxy_bypass(request.host)


# ---------------------------------------------------------------------- kept connections

_KEPT = threading.local()  # .connections: this thread's open connections, by (scheme, host)
# What a kept connection that the server has closed meanwhile raises on its next request.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _connection(request: urllib.request.Request, deadline: float) -> tuple[Any, bool]:
    """This thread's connection to the request's host, its deadline set; whether it was
    used before."""
    kept = getattr(_KEPT, "connections", None)
    if kept is None:
        kept = _KEPT.connections = {}
    key = (request.type, request.host)
    connection = kept.get(key)
    reused = connection is not None
    if connection is None:
        kind = _HTTPSConnection if request.type == "https" else _HTTPConnection
        connection = kept[key] = kind(request.host, timeout=_time_left(deadline))
    connection.set_deadline(deadline)
    return connection, reused


def _forget(request: urllib.request.Request, connection: Any) -> None:
    """Never reuse `connection`; its socket closes once its answer (if any) is closed."""
    kept = getattr(_KEPT, "connections", {})
    if kept.get((request.type, request.host)) is connection:
        del kept[(request.type, request.host)]
    if connection.sock is not None:
        connection.sock.close()
        connection.sock = None


def _send(connection: Any, request: urllib.request.Request) -> http.client.HTTPResponse:
    """Send `request` on `connection` and read the status line and headers."""
    headers = {name.title(): value for name, value in request.header_items()}
    try:
        try:
            connection.request(request.get_method(), request.selector, request.data, headers)
        except _STALE:
            raise
        except OSError as exc:  # as urllib does: a failure to connect or send is a URLError
            raise urllib.error.URLError(exc) from None
        return connection.getresponse()
    except BaseException:
        _forget(request, connection)
        raise


def _body(
    request: urllib.request.Request, connection: Any, response: http.client.HTTPResponse, cap: int
) -> bytes:
    """The body of a 2xx answer; else `Redirected` or `HTTPError` (its body still readable)."""
    if not 200 <= response.status < 300:
        _forget(request, connection)
        location = response.headers.get("Location") or response.headers.get("URI")
        if response.status in _REDIRECTS and location:
            response.close()
            raise Redirected(response.status, urllib.parse.urljoin(request.full_url, location))
        raise urllib.error.HTTPError(
            request.full_url, response.status, response.reason, response.headers, response
        )
    try:
        body = response.read(cap + 1)
    except BaseException:
        _forget(request, connection)
        raise
    if len(body) <= cap and response.length:  # closed before its promised Content-Length
        _forget(request, connection)
        raise http.client.IncompleteRead(body, response.length)
    if len(body) > cap or not response.isclosed() or response.will_close:
        _forget(request, connection)  # not read to its end, or the server will close it
    return _capped(body, cap)


_REDIRECTS = (301, 302, 303, 307, 308)


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
        self.deadline = deadline  # moved on for each request on a kept connection
        self._readers = 0  # open files from `makefile`; the socket closes after the last
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._sock.settimeout(_time_left(self.deadline))
        self._sock.sendall(data, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._sock.settimeout(_time_left(self.deadline))
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

    def set_deadline(self, deadline: float) -> None:
        """The deadline of the next exchange on this (maybe kept) connection."""
        self.deadline = deadline
        if isinstance(self.sock, _DeadlineSocket):
            self.sock.deadline = deadline

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
