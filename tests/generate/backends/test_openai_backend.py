"""The openai backend against a scripted chat-completions server on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from support.fake_openai import ECHOES, FakeServer, key_pieces

from mminstruct.config import GeneratorConfig
from mminstruct.errors import MminstructError
from mminstruct.generate.backends import Request, make_backend
from mminstruct.generate.backends import openai as openai_backend
from mminstruct.generate.backends.openai import OpenAIBackend, backoff_delay, image_mime

KEY_ENV = "MMINSTRUCT_TEST_OPENAI_KEY"
SECRET = "sk-test-do-not-leak-1234567890"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(40))


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny backoff, no proxy for 127.0.0.1, no key unless a test sets one."""
    monkeypatch.setattr(openai_backend, "BASE_DELAY_S", 0.001)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    thread = threading.Thread(target=fake.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


def backend_for(server: FakeServer, **overrides) -> OpenAIBackend:
    settings = {"backend": "openai", "model": "fake-model", "api_key_env": KEY_ENV, **overrides}
    return make_backend(GeneratorConfig(base_url=server.url, **settings))


def requests(count: int, image: bytes | None = None) -> list[Request]:
    messages = ({"role": "system", "content": "Be brief."},)
    return [
        Request((*messages, {"role": "user", "content": f"what is {i}"}), seed=i, image=image)
        for i in range(count)
    ]


def test_payload_and_order_preserved_with_concurrency(server):
    server.delay_s = 0.02  # later seeds of each three answer sooner
    backend = backend_for(server, concurrency=4, temperature=0.2, top_p=0.9)
    completions = backend.complete(requests(9))
    assert [c.text for c in completions] == [
        f"Question: what is {i}?\nAnswer: seed {i}." for i in range(9)
    ]
    assert all(c.finish_reason == "stop" and c.error is None for c in completions)
    body = server.bodies[0]
    assert {k: body[k] for k in ("model", "max_tokens", "temperature", "top_p")} == {
        "model": "fake-model",
        "max_tokens": 512,
        "temperature": 0.2,
        "top_p": 0.9,
    }
    assert sorted(b["seed"] for b in server.bodies) == list(range(9))
    assert backend.complete([]) == []


def test_concurrency_bound_respected(server):
    server.delay_s = 0.03
    completions = backend_for(server, concurrency=3).complete(requests(12))
    assert len(completions) == 12
    assert 2 <= server.max_in_flight <= 3


def test_usage_and_length_mapped(server):
    completion = backend_for(server, max_new_tokens=5).complete(requests(1))[0]
    assert completion.finish_reason == "length"
    assert (completion.prompt_tokens, completion.completion_tokens) == (22, 7)
    assert server.bodies[0]["max_tokens"] == 5


@pytest.mark.parametrize("plan", [["429", "500", "503"], ["drop", "drop"], ["slow"]])
def test_retries_then_success(server, caplog, plan):
    server.plan = list(plan)
    server.slow_s = 0.5
    backend = backend_for(server, max_retries=4, timeout_s=0.2)
    with caplog.at_level(logging.WARNING, logger="mminstruct"):
        completion = backend.complete(requests(1))[0]
    assert completion.finish_reason == "stop" and completion.text.endswith("seed 0.")
    assert completion.details["attempts"] == len(plan) + 1
    assert len(server.bodies) == len(plan) + 1
    assert "(attempt 1 of 5)" in caplog.text


def test_retries_exhausted_become_an_error_completion(server, caplog):
    server.plan = ["500"] * 10
    with caplog.at_level(logging.WARNING, logger="mminstruct"):
        completion = backend_for(server, max_retries=2).complete(requests(1))[0]
    assert (completion.text, completion.finish_reason) == ("", "error")
    assert "HTTP 500" in completion.error and "bad None" in completion.error
    assert completion.details["attempts"] == 3 and len(server.bodies) == 3
    assert "HTTP 500" in caplog.text and "attempt 2 of 3" in caplog.text


def test_timeout_exhausted_says_timed_out(server):
    server.plan, server.slow_s = ["slow"], 0.5
    completion = backend_for(server, max_retries=0, timeout_s=0.1).complete(requests(1))[0]
    assert completion.finish_reason == "error" and "timed out" in completion.error


def test_client_error_is_not_retried(server):
    server.plan = ["400"]
    completion = backend_for(server, max_retries=4).complete(requests(1))[0]
    assert completion.finish_reason == "error"
    assert completion.error.startswith("HTTP 400") and "bad None" in completion.error
    assert len(server.bodies) == 1


def test_retry_after_is_honored_and_capped(server, monkeypatch):
    server.plan = ["429-retry-after=0.3"]
    start = time.monotonic()
    assert backend_for(server).complete(requests(1))[0].finish_reason == "stop"
    assert time.monotonic() - start >= 0.3
    monkeypatch.setattr(openai_backend, "MAX_DELAY_S", 0.01)
    server.plan = ["429-retry-after=3600", "429"]
    start = time.monotonic()
    assert backend_for(server).complete(requests(1))[0].finish_reason == "stop"
    assert time.monotonic() - start < 2


def test_backoff_doubles_with_seeded_jitter_and_is_capped(monkeypatch):
    for attempt in (1, 2, 3):
        full = 0.001 * 2 ** (attempt - 1)
        assert full / 2 <= backoff_delay(attempt, None, random.Random(attempt)) <= full
    assert backoff_delay(2, None, random.Random(7)) == backoff_delay(2, None, random.Random(7))
    assert backoff_delay(1, 0.25, random.Random(0)) == 0.25  # Retry-After wins
    monkeypatch.setattr(openai_backend, "MAX_DELAY_S", 0.002)
    assert backoff_delay(20, None, random.Random(0)) <= 0.002
    assert backoff_delay(1, 3600.0, random.Random(0)) == 0.002


def test_unreachable_server_says_what_to_do():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    config = GeneratorConfig(
        backend="openai", model="my-model", base_url=f"http://127.0.0.1:{port}/v1"
    )
    with pytest.raises(MminstructError) as info:
        OpenAIBackend(config)
    message = str(info.value)
    assert f"cannot reach the OpenAI-compatible server at http://127.0.0.1:{port}/v1" in message
    assert "connection refused" in message
    assert "vllm serve my-model" in message and "generator.base_url" in message


def test_models_404_is_fine(server):
    server.models_status = 404
    assert backend_for(server).complete(requests(1))[0].finish_reason == "stop"


def test_key_is_sent_but_never_shown(server, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.plan = ["500", "400"]  # the server echoes the Authorization header in its errors
    with caplog.at_level(logging.DEBUG, logger="mminstruct"):
        backend = backend_for(server)
        completion = backend.complete(requests(1))[0]
    assert server.auth == [f"Bearer {SECRET}"] * 2
    assert completion.finish_reason == "error" and "bad Bearer ***" in completion.error
    assert "HTTP 500" in caplog.text
    for text in (caplog.text, completion.error, repr(backend)):
        assert SECRET not in text
    server.models_status = 401
    with pytest.raises(MminstructError) as info:
        backend_for(server)
    assert KEY_ENV in str(info.value) and "HTTP 401" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_no_key_no_header(server):
    backend_for(server).complete(requests(1))
    assert server.auth == [None]


@pytest.mark.parametrize(("image", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg")])
def test_image_arrives_as_data_url_in_last_user_message(server, image, mime):
    assert image_mime(image) == mime
    few_shot = (
        {"role": "user", "content": "example question"},
        {"role": "assistant", "content": "example answer"},
        {"role": "user", "content": "describe it"},
    )
    completion = backend_for(server).complete([Request(few_shot, seed=3, image=image)])[0]
    assert completion.text.startswith("Question: describe it?")
    messages = server.bodies[0]["messages"]
    assert messages[0]["content"] == "example question"
    part, text = messages[-1]["content"]
    assert text == {"type": "text", "text": "describe it"}
    assert part["type"] == "image_url"
    header, _, data = part["image_url"]["url"].partition(",")
    assert header == f"data:{mime};base64" and base64.b64decode(data) == image


def test_count_tokens_is_an_estimate(server):
    backend = backend_for(server)
    assert backend.count_tokens([{"role": "user", "content": "x" * 40}]) == 14


# --------------------------------------------------------------------------- hardening (issue 13)


def runs_of(secret: str, text: str) -> list[str]:
    """Every run of 8 characters of `secret` that `text` still holds."""
    return sorted({secret[i : i + 8] for i in range(len(secret) - 7)} & _grams(text))


def _grams(text: str) -> set[str]:
    return {text[i : i + 8] for i in range(len(text) - 7)}


@pytest.mark.parametrize("action", ECHOES)
def test_an_echoed_key_is_redacted_whole_and_in_pieces_and_counted(
    server, monkeypatch, caplog, action
):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.plan = [action]
    backend = backend_for(server, max_retries=0)
    with caplog.at_level(logging.WARNING, logger="mminstruct"):
        completion = backend.complete(requests(1))[0]
    assert server.auth == [f"Bearer {SECRET}"]
    texts = (completion.text, completion.error or "", caplog.text)
    assert [runs_of(SECRET, text) for text in texts] == [[], [], []]
    assert "***" in completion.text + (completion.error or "")
    copies = 2 if action == "echo-garbage" else 1
    assert backend.redacted == copies * len(key_pieces(SECRET))
    assert f"{backend.redacted} piece(s) redacted" in caplog.text
    if action == "echo":
        assert completion.finish_reason == "stop"
        assert (
            completion.text
            == "Question: What do the signs say?\nAnswer: They say "
            + " and ".join(["***"] * 5)
            + "."
        )


def test_a_redirect_on_the_server_check_is_refused_and_the_key_stays(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with started() as other:
        server.models_redirect = f"{other.url}/models"
        with pytest.raises(MminstructError) as info:
            backend_for(server)
    message = str(info.value)
    assert (
        f"the server at {server.url} answered with a redirect (HTTP 302 to {other.url}/models)"
        in message
    )
    assert "set generator.base_url" in message
    assert other.gets == [] and other.auth == []  # nothing reached the other origin


def test_a_redirect_of_a_request_is_an_error_not_retried_and_the_key_stays(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with started() as other:
        server.plan = [f"redirect={other.url}/chat/completions"]
        completion = backend_for(server, max_retries=3).complete(requests(1))[0]
    assert (
        completion.finish_reason == "error"
        and "answered with a redirect (HTTP 302" in completion.error
    )
    assert len(server.bodies) == 1  # not retried: it would be redirected again
    assert other.gets == [] and other.auth == []


@pytest.mark.parametrize("action", ["drip", "drip-headers"])
def test_timeout_bounds_the_whole_request_not_each_read(server, action):
    """A server that answers one byte every 50 ms never leaves a socket read waiting for
    long; `timeout_s` must still end the request (the fake gives up after 4 s)."""
    server.plan = [action]
    started_at = time.monotonic()
    completion = backend_for(server, max_retries=0, timeout_s=0.5).complete(requests(1))[0]
    took = time.monotonic() - started_at
    assert completion.finish_reason == "error"
    assert completion.error == f"no answer from {server.url}: timed out"
    assert took < 0.5 + 1.0


def test_a_dripping_answer_that_ends_in_time_is_read_whole(server):
    server.plan, server.drip_s = ["drip"], 0.001
    completion = backend_for(server, timeout_s=5).complete(requests(1))[0]
    assert completion.finish_reason == "stop" and completion.text.endswith("seed 0.")


def test_an_answer_over_the_size_cap_is_refused(server, monkeypatch):
    monkeypatch.setattr(openai_backend, "MAX_ANSWER_BYTES", 100)
    completion = backend_for(server, max_retries=3).complete(requests(1))[0]
    assert completion.finish_reason == "error"
    assert (
        completion.error
        == f"refused the answer from {server.url}: the answer is larger than 100 bytes"
    )
    assert len(server.bodies) == 1


@contextlib.contextmanager
def started() -> Iterator[FakeServer]:
    """Another fake server (another origin: another port), stopped afterwards."""
    fake = FakeServer()
    threading.Thread(target=fake.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield fake
    finally:
        fake.shutdown()
        fake.server_close()


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[FakeServer]:
    """The fake server behind TLS, with a self-signed certificate that this test trusts."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*make, "-keyout", str(key), "-out", str(cert), *subject],
        check=True,
        capture_output=True,
        timeout=60,
    )
    fake = FakeServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake.socket = context.wrap_socket(fake.socket, server_side=True)
    threading.Thread(target=fake.serve_forever, args=(0.01,), daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    yield fake
    fake.shutdown()
    fake.server_close()


def test_https_gets_the_same_deadline_and_still_checks_the_certificate(tls_server, monkeypatch):
    url = tls_server.url.replace("http://", "https://")
    backend = make_backend(
        GeneratorConfig(backend="openai", model="m", base_url=url, max_retries=0, timeout_s=0.5)
    )
    assert backend.complete(requests(1))[0].text.endswith("seed 0.")
    tls_server.plan = ["drip"]
    started_at = time.monotonic()
    completion = backend.complete(requests(1))[0]
    assert completion.error == f"no answer from {url}: timed out"
    assert time.monotonic() - started_at < 1.5
    monkeypatch.delenv("SSL_CERT_FILE")  # an unknown certificate: refused, not ignored
    with pytest.raises(MminstructError, match="cannot reach the OpenAI-compatible server"):
        make_backend(GeneratorConfig(backend="openai", model="m", base_url=url))
