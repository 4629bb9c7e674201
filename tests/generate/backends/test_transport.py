"""transport.fetch on kept (HTTP/1.1 keep-alive) connections: reused per thread, replaced
when the server closed them, never reused after an unfinished answer; the deadline, the
redirect refusal and the answer cap hold on a reused connection too."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mminstruct.generate.backends import transport


class KeepAlive(BaseHTTPRequestHandler):
    """Answers by path; HTTP/1.1, so the connection stays open between requests."""

    protocol_version = "HTTP/1.1"
    server: KeptServer

    def log_message(self, format, *args) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.connections.append(self.client_address)
        path = self.path
        if path == "/error":
            return self.reply(503, b'{"error": {"message": "busy"}}')
        if path == "/redirect":
            return self.reply(302, b"", {"Location": "/elsewhere"})
        if path == "/big":
            return self.reply(200, b"x" * 5000)
        if path == "/drip":
            return self.drip(b'{"answer": "slowly"}')
        self.reply(200, b'{"answer": "ok"}')
        if path == "/close-after":  # as a server's idle timeout would, without saying so
            self.close_connection = True

    def reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.1)


class KeptServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), KeepAlive)
        self.connections: list[tuple[str, int]] = []  # the client address of each request
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request, client_address) -> None:
        """A client that gave up on a dripped answer is expected here."""


@pytest.fixture
def server(monkeypatch) -> Iterator[KeptServer]:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    kept = KeptServer()
    threading.Thread(target=kept.serve_forever, args=(0.01,), daemon=True).start()
    yield kept
    kept.shutdown()
    kept.server_close()


def post(server: KeptServer, path: str, timeout: float = 5.0, cap: int = 1000) -> bytes:
    request = urllib.request.Request(server.url(path), data=b"{}", method="POST")
    return transport.fetch(request, timeout, cap)


def in_thread(work) -> None:
    """Run `work` in a thread of its own (which has its own connections), and wait."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if failed:
        raise failed[0]


def test_one_connection_per_thread_is_reused(server):
    for _ in range(5):
        assert post(server, "/ok") == b'{"answer": "ok"}'
    in_thread(lambda: [post(server, "/ok") for _ in range(3)])
    first, other = set(server.connections[:5]), set(server.connections[5:])
    assert len(first) == 1 and len(other) == 1 and first != other


def test_a_connection_the_server_closed_is_replaced_at_once(server):
    def work() -> None:
        post(server, "/close-after")
        time.sleep(0.05)  # the close has arrived
        started = time.monotonic()
        assert post(server, "/ok") == b'{"answer": "ok"}'
        assert time.monotonic() - started < 1

    in_thread(work)
    assert len(set(server.connections)) == 2


def test_an_error_answer_is_readable_and_its_connection_not_reused(server):
    def work() -> None:
        post(server, "/ok")
        with pytest.raises(urllib.error.HTTPError) as raised:
            post(server, "/error")
        assert raised.value.code == 503 and b"busy" in raised.value.read()
        raised.value.close()
        post(server, "/ok")

    in_thread(work)
    first, _, third = server.connections
    assert first != third


def test_redirects_and_large_answers_are_refused_on_a_kept_connection(server):
    def work() -> None:
        post(server, "/ok")
        with pytest.raises(transport.Redirected) as redirected:
            post(server, "/redirect")
        assert redirected.value.location == server.url("/elsewhere")
        post(server, "/ok")
        with pytest.raises(transport.TooLarge):
            post(server, "/big", cap=1000)
        assert post(server, "/ok") == b'{"answer": "ok"}'

    in_thread(work)


def test_the_deadline_bounds_the_whole_exchange_on_a_reused_connection(server):
    def work() -> None:
        post(server, "/ok")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            post(server, "/drip", timeout=0.5)  # 20 bytes, one every 0.1 s
        assert time.monotonic() - started < 1.0
        assert post(server, "/ok") == b'{"answer": "ok"}'

    in_thread(work)
    assert server.connections[0] == server.connections[1] != server.connections[2]


def test_an_answer_cut_before_its_content_length_is_a_dropped_connection():
    """A server that dies after its headers: the short body is a dropped connection (the
    managed server is then restarted and the request re-sent), never a 'malformed' answer."""
    import http.client
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        client, _ = listener.accept()
        client.recv(65536)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        client.sendall(head + b'{"a"')
        client.close()

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/x", data=b"{}", method="POST")
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):  # both: dropped
        transport.fetch(request, 5.0, 1000)
    listener.close()
