"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

Start one with `threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)`;
stop it with `shutdown()` and `server_close()`.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer(ThreadingHTTPServer):
    """Answers chat completions from the seed and last user message; fails as told.

    `plan` holds one action per coming POST: an HTTP status ("429", "500", "400", ...),
    "429-retry-after=S", "drop" (close without answering), "slow" (answer after `slow_s`),
    "redirect=URL" (HTTP 302 to URL), "drip" (the headers, then the body one byte every
    `drip_s`, for at most `drip_for_s`), "drip-headers" (the same from the status line on), or
    one of ECHOES (the API key it was sent, whole and in pieces, in an answer); once it is
    empty, requests get `default` ("ok": a valid answer).

    Every GET is recorded in `gets` (path, Authorization header); `models_redirect` makes
    GET /models answer with a 302 to that URL.
    """

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.plan: list[str] = []
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.models_status = 200
        self.models_redirect: str | None = None
        self.gets: list[tuple[str, str | None]] = []
        self.default = "ok"
        self.drip_s = 0.05  # between two bytes of a dripped answer
        self.drip_for_s = 4.0  # a dripped answer stops (unfinished) after this long
        self.delay_s = 0.0  # each successful answer waits this long (times seed % 3)
        self.slow_s = 1.0  # how long a "slow" answer takes
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address) -> None:
        """A client that gave up on a slow answer is expected here; stay quiet."""


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, format, *args) -> None:
        """No access log on stderr."""

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.gets.append((self.path, self.headers.get("Authorization")))
        if self.path == "/v1/models" and server.models_redirect:
            return self.reply(302, {}, {"Location": server.models_redirect})
        if self.path != "/v1/models" or server.models_status != 200:
            status = 404 if self.path != "/v1/models" else server.models_status
            auth = self.headers.get("Authorization")
            return self.reply(status, {"error": {"message": f"no (you sent {auth})"}})
        self.reply(200, {"object": "list", "data": [{"id": "fake-model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            server.bodies.append(body)
            server.auth.append(self.headers.get("Authorization"))
            action = server.plan.pop(0) if server.plan else server.default
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        self.counted = True
        try:
            self.act(action, body)
        finally:
            self.done_in_flight()

    def send_response(self, *args, **kwargs) -> None:
        # A request stops counting as in flight once its answer starts: the client may send
        # its next request as soon as it has read this one, before this thread moves on.
        self.done_in_flight()
        super().send_response(*args, **kwargs)

    def done_in_flight(self) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            with self.server.lock:
                self.server.in_flight -= 1

    def act(self, action: str, body: dict) -> None:
        if action == "drop":
            return  # close the connection without an answer
        if action.startswith("redirect="):
            return self.reply(302, {}, {"Location": action.partition("=")[2]})
        if action.startswith("drip"):
            return self.drip(answer(body), headers_too=action == "drip-headers")
        if action in ECHOES:
            key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            status, payload = echo(action, key, body)
            return self.reply(status, payload)
        if action == "slow":
            time.sleep(self.server.slow_s)
        if action.startswith("429"):
            retry_after = action.partition("=")[2]
            headers = {"Retry-After": retry_after} if retry_after else {}
            return self.reply(429, {"error": {"message": "slow down"}}, headers)
        if action.isdigit():
            auth = self.headers.get("Authorization")
            return self.reply(int(action), {"object": "error", "message": f"bad {auth}"})
        time.sleep(self.server.delay_s * (body["seed"] % 3))
        self.reply(200, answer(body))

    def drip(self, payload: dict, headers_too: bool) -> None:
        """Answer slowly: each byte a while after the one before, until `drip_for_s` is up."""
        data = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        self.done_in_flight()
        if not headers_too:
            self.wfile.write(head)
            head = b""
        stop = time.monotonic() + self.server.drip_for_s
        for byte in head + data:
            if time.monotonic() > stop:
                return
            self.wfile.write(bytes([byte]))
            time.sleep(self.server.drip_s)

    def reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def answer(body: dict) -> dict:
    """A valid Question/Answer block echoing the seed and the last user message."""
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    text = user if isinstance(user, str) else user[-1]["text"]
    cut = body["max_tokens"] < 10
    return {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": f"Question: {text}?\nAnswer: seed {body['seed']}.",
                },
                "finish_reason": "length" if cut else "stop",
            }
        ],
        "usage": {"prompt_tokens": 11 * len(body["messages"]), "completion_tokens": 7},
    }


# Answers that echo the API key the server was sent, whole and in pieces of 8 to 10 characters,
# where a client might carry it on: a kept completion, an unparseable one, an error body, the
# finish reason, the token counts.
ECHOES = ("echo", "echo-garbage", "echo-error", "echo-reason", "echo-usage")


def key_pieces(key: str) -> list[str]:
    """The key and runs of it as a careless server might echo them (`sk-SECRET1`, `SECRET123`)."""
    return [key, key[:10], key[3:12], key[-9:], key[len(key) // 2 : len(key) // 2 + 8]]


def echo(action: str, key: str, body: dict) -> tuple[int, dict]:
    """The status and JSON of an answer that leaks `key`."""
    pieces = " and ".join(key_pieces(key))
    if action == "echo-error":
        return 400, {"error": {"message": f"you sent {pieces}, which is not allowed"}}
    payload = answer(body)
    choice = payload["choices"][0]
    if action == "echo":
        choice["message"]["content"] = (
            f"Question: What do the signs say?\nAnswer: They say {pieces}."
        )
    elif action == "echo-garbage":
        choice["message"]["content"] = f"{pieces} {pieces}"
    elif action == "echo-reason":
        choice["finish_reason"] = pieces
    else:
        payload["usage"]["prompt_tokens"] = pieces
    return 200, payload
