"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI).

`complete_one` sends one request (the streaming scheduler calls it from `generator.concurrency`
worker threads, each keeping one HTTP/1.1 connection open); `complete` runs a list of them on
a thread pool and returns them in order. HTTP 429, 5xx, dropped connections and timeouts
are retried with jittered exponential backoff (a `Retry-After` header wins, capped); a
request that still fails, or that the server rejects (other 4xx), becomes an error
Completion, never an exception.
`generator.timeout_s` bounds each attempt as a whole, and redirects are refused, never
followed (`transport.py`). The API key is read from the environment and never logged, raised
or shown in `repr`; the key and every piece of it that a server echoes (in a completion, an
error body, a header) are redacted before anything else sees the text (`mminstruct.redact`),
counted in `backend.redacted`, with one warning per completion that held some.

With `generator.server`, the backend owns its server (`mminstruct/generate/servers/`): it is
started in the constructor and `base_url` is its address; a request whose connection drops
because the server died is sent again, not counted as a failed attempt, once the server is
restarted; `close()` stops it (and so does interpreter exit, whatever ends the build).
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import http.client
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mminstruct.config import GeneratorConfig
from mminstruct.errors import MminstructError
from mminstruct.generate.backends import transport
from mminstruct.generate.backends.base import Completion, Message, Request
from mminstruct.generate.servers import ManagedServer
from mminstruct.launch import detect_launch
from mminstruct.redact import redact, redact_text, register_secret

logger = logging.getLogger("mminstruct")

BASE_DELAY_S = 1.0  # the first retry waits 0.5-1x this, doubling with each attempt
MAX_DELAY_S = 30.0  # no single wait is longer, a server's Retry-After included
CHECK_TIMEOUT_S = 5.0  # the start-up GET /models (or timeout_s, when shorter)
MAX_ERROR_CHARS = 500  # a server's error message is cut here
MAX_RESENDS = 1  # a request the managed server died under is sent again once, then lost
MAX_ERROR_BYTES = 64 * 1024  # of an error body, no more is read
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a larger answer is refused (memory stays bounded)

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
_NETWORK_ERRORS = (OSError, http.client.HTTPException)  # URLError, timeouts, resets, short reads


class _Failure(Exception):
    """One failed attempt: what went wrong and whether trying again may help."""

    def __init__(
        self,
        message: str,
        retryable: bool,
        retry_after: float | None = None,
        dropped: bool = False,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did
        self.dropped = dropped  # no answer at all: refused, reset, cut off (a dead server?)


class OpenAIBackend:
    """Chat completions from the OpenAI-compatible server at `generator.base_url`."""

    name = "openai"

    def __init__(self, config: GeneratorConfig, server: ManagedServer | None = None):
        if not config.model:
            raise MminstructError(
                "generator.model: the 'openai' backend needs the served model name "
                "(the MODEL of `vllm serve MODEL`)"
            )
        self.model: str = config.model
        self.config = config
        self._base_url = config.base_url.rstrip("/")
        self.server = server or _default_server(config)
        if self.server is not None:
            self.server.start()  # or raises, with the end of the server's log
        # A server this build started itself needs no key, and the user's key (often a real
        # OpenAI key in OPENAI_API_KEY) must never go to whatever answers on a local port.
        user_key = os.environ.get(config.api_key_env) or None
        self._key = None if self.server is not None else user_key  # never logged or shown
        register_secret(user_key)
        self.redacted = 0  # pieces of the key redacted from what the server sent
        self._lock = threading.Lock()
        self.check_server()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        """Where requests go: the managed server's address (new at each restart), else
        `generator.base_url`."""
        return self.server.base_url.rstrip("/") if self.server else self._base_url

    def close(self) -> None:
        """Stop the managed server, if this backend started one."""
        if self.server is not None:
            self.server.stop()

    def check_server(self) -> None:
        """Fail early, saying what to do, when nothing answers at `base_url` or the key is refused.

        A server without `/models` (HTTP 404) is fine; other HTTP errors are only logged,
        since the requests themselves retry.
        """
        timeout = min(CHECK_TIMEOUT_S, self.config.timeout_s)
        try:
            self._send("GET", "/models", None, timeout)
        except urllib.error.HTTPError as exc:
            self._check_status(exc)
        except transport.Redirected as exc:
            raise MminstructError(self._scrub(_redirect_message(self.base_url, exc))) from None
        except (*_NETWORK_ERRORS, ValueError, transport.TooLarge) as exc:
            raise MminstructError(
                f"cannot reach the OpenAI-compatible server at {self.base_url}: {_reason(exc)}; "
                f"start it (e.g. vllm serve {self.model}) or set generator.base_url"
            ) from None

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        """One Completion per request, in order, with at most `concurrency` requests in flight."""
        if not requests:
            return []
        workers = min(self.config.concurrency, len(requests))
        with ThreadPoolExecutor(workers, thread_name_prefix="mminstruct-openai") as pool:
            return list(pool.map(self._complete_one, requests))

    def complete_one(self, request: Request) -> Completion:
        """One request's Completion, its retries included (the streaming scheduler calls this
        from its worker threads); a failure is an error Completion, never an exception."""
        return self._complete_one(request)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """An estimate, not the server's tokenizer: 4 characters a token, 4 tokens a message.

        The exact counts come back with each Completion (`prompt_tokens`).
        """
        chars = sum(len(str(message.get("content", ""))) for message in messages)
        return math.ceil(chars / 4) + 4 * len(messages)

    # ------------------------------------------------------------------ one request

    def _complete_one(self, request: Request) -> Completion:
        payload = self._payload(request)
        rng = random.Random(request.seed)  # jitter is reproducible per request
        attempt, resent = 1, 0
        while True:
            starts = self.server.starts if self.server else 0
            try:
                return self._cleaned(_to_completion(self._post(payload), attempt), request)
            except _Failure as failure:
                if failure.dropped and resent < MAX_RESENDS and self._server_restarted(starts):
                    resent += 1  # the server died and is back: sent again, not a failed attempt
                    continue
                if failure.dropped and resent >= MAX_RESENDS and self.server is not None:
                    # The server died under this prompt again: lose this prompt, not the build.
                    return self._cleaned(_failed(failure, attempt), request)
                if not failure.retryable or attempt > self.config.max_retries:
                    return self._cleaned(_failed(failure, attempt), request)
                _wait(failure, attempt, self.config.max_retries + 1, rng)
                attempt += 1

    def _server_restarted(self, starts: int) -> bool:
        """Whether the managed server died and runs again since `starts` (raises
        `ServerError` once `generator.server.restarts` are spent)."""
        return self.server is not None and self.server.recover(starts)

    def _cleaned(self, completion: Completion, request: Request) -> Completion:
        """The completion with the key and its pieces redacted from its text and error."""
        text, in_text = redact(completion.text)
        error, in_error = redact(completion.error) if completion.error else (None, 0)
        if not in_text + in_error:
            return completion
        self._count(in_text + in_error)
        logger.warning(
            "openai: the server's answer to the prompt with seed %d held the API key or pieces "
            "of it: %d piece(s) redacted",
            request.seed,
            in_text + in_error,
        )
        return dataclasses.replace(completion, text=text, error=error)

    def _scrub(self, text: str) -> str:
        """`text` redacted, the pieces counted (for what is raised, not returned)."""
        text, pieces = redact(text)
        self._count(pieces)
        return text

    def _count(self, pieces: int) -> None:
        with self._lock:
            self.redacted += pieces

    def _payload(self, request: Request) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [dict(message) for message in request.messages]
        if request.image is not None:
            _attach_image(messages, request.image)
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.config.max_new_tokens,
            "temperature": self.config.temperature,
            "top_p": self.config.top_p,
            "seed": request.seed,
        }

    def _post(self, payload: dict[str, Any]) -> bytes:
        """One attempt at POST /chat/completions; every failure becomes a `_Failure`."""
        try:
            return self._send("POST", "/chat/completions", payload, self.config.timeout_s)
        except urllib.error.HTTPError as exc:
            retryable = exc.code == 429 or exc.code >= 500
            message = f"HTTP {exc.code} from {self.base_url}: {self._server_message(exc)}"
            retry_after = _retry_after(exc.headers.get("Retry-After"))
            raise _Failure(message, retryable, retry_after) from None
        except transport.Redirected as exc:
            raise _Failure(_redirect_message(self.base_url, exc), False) from None
        except transport.TooLarge as exc:
            raise _Failure(f"refused the answer from {self.base_url}: {exc}", False) from None
        except _NETWORK_ERRORS as exc:
            reason = _reason(exc)  # a timeout is a slow server, the rest may be a dead one
            message = f"no answer from {self.base_url}: {reason}"
            raise _Failure(message, True, dropped=reason != "timed out") from None

    # ------------------------------------------------------------------ HTTP

    def _send(self, method: str, path: str, payload: Any, timeout: float) -> bytes:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=self._headers()
        )
        return transport.fetch(request, timeout, MAX_ANSWER_BYTES)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "mminstruct"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _check_status(self, exc: urllib.error.HTTPError) -> None:
        message = self._server_message(exc)
        if exc.code in (401, 403):
            raise MminstructError(
                f"the server at {self.base_url} refused the API key "
                f"(HTTP {exc.code}: {self._scrub(message)}); "
                f"put a valid key in the environment variable {self.config.api_key_env} "
                "or set generator.api_key_env"
            ) from None
        if exc.code != 404:
            logger.warning(
                "openai: GET %s/models: HTTP %d (%s)", self.base_url, exc.code, self._scrub(message)
            )

    def _server_message(self, exc: urllib.error.HTTPError) -> str:
        """The server's own explanation of an HTTP error, short. Not yet redacted: what
        carries it on (`_cleaned`, `_scrub`, the retry log) redacts it and counts the pieces
        (a piece this cut leaves under MIN_RUN characters is no longer one)."""
        try:
            body = exc.read(MAX_ERROR_BYTES).decode("utf-8", "replace")
        except _NETWORK_ERRORS:
            body = ""
        finally:
            exc.close()
        return (_message_in(body) or str(exc.reason))[:MAX_ERROR_CHARS]


# ---------------------------------------------------------------------- pure helpers


def _default_server(config: GeneratorConfig) -> ManagedServer | None:
    """A server for `generator.server` when the caller gave none: its log in the current
    folder's `_logs/` (a build gives the output folder's, see `generate/factory.py`)."""
    if config.server is None:
        return None
    launch = detect_launch()
    log_path = Path("_logs") / f"server-{launch.rank}.log"
    return ManagedServer(config, log_path.resolve(), launch.local_rank)


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait after failed attempt `attempt` (1, 2, ...), never more than MAX_DELAY_S.

    The server's Retry-After when given; else BASE_DELAY_S * 2**(attempt-1), scaled by a
    random 0.5-1 factor so that many clients do not retry in lockstep.
    """
    if retry_after is not None:
        return min(retry_after, MAX_DELAY_S)
    delay = min(BASE_DELAY_S * 2 ** (attempt - 1), MAX_DELAY_S)
    return delay * (0.5 + rng.random() / 2)


def image_mime(data: bytes) -> str:
    """The MIME type of image bytes, from their magic number."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    return "application/octet-stream"


def _attach_image(messages: list[dict[str, Any]], image: bytes) -> None:
    """Put the image, as a data URL content part, before the text of the last user message."""
    url = f"data:{image_mime(image)};base64,{base64.b64encode(image).decode('ascii')}"
    part = {"type": "image_url", "image_url": {"url": url}}
    users = [i for i, message in enumerate(messages) if message.get("role") == "user"]
    if not users:
        messages.append({"role": "user", "content": [part]})
        return
    last = messages[users[-1]]
    last["content"] = [part, {"type": "text", "text": last.get("content", "")}]


def _to_completion(body: bytes, attempts: int) -> Completion:
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        if not isinstance(text, str):
            raise TypeError(f"the message content is {type(text).__name__}, not text")
        reason = choice.get("finish_reason") or "stop"
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _Failure(f"malformed response ({type(exc).__name__}: {exc})", False) from None
    if reason not in ("stop", "length"):
        raise _Failure(f"the server ended the completion with finish_reason {reason!r}", False)
    return Completion(
        text=text,
        finish_reason=reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        details={"attempts": attempts},
    )


def _redirect_message(base_url: str, exc: transport.Redirected) -> str:
    location = exc.location[:MAX_ERROR_CHARS]
    return (
        f"the server at {base_url} answered with a redirect (HTTP {exc.code} to {location}); "
        "redirects are not followed (they would carry the API key to another address): "
        "set generator.base_url to the address that answers"
    )


def _failed(failure: _Failure, attempts: int) -> Completion:
    logger.warning(
        "openai: request failed after %d attempt(s): %s", attempts, redact_text(str(failure))
    )
    return Completion(
        text="", finish_reason="error", error=str(failure), details={"attempts": attempts}
    )


def _wait(failure: _Failure, attempt: int, attempts: int, rng: random.Random) -> None:
    delay = backoff_delay(attempt, failure.retry_after, rng)
    logger.warning(
        "openai: %s (attempt %d of %d); retrying in %.2fs",
        redact_text(str(failure)),
        attempt,
        attempts,
        delay,
    )
    time.sleep(delay)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date); None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _message_in(body: str) -> str:
    """The message of a JSON error body (OpenAI, vLLM, TGI shapes), else the body itself."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()
    if not isinstance(data, dict):
        return body.strip()
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(error or data.get("message") or data.get("detail") or body.strip())


def _reason(exc: BaseException) -> str:
    """A short reason for a network error: 'connection refused', 'timed out', ..."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__
