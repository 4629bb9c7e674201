"""Fixes from the final review: the user's key never goes to a managed server, placeholder
keys never rewrite text, and a log call with a bad format string never raises."""

from __future__ import annotations

import logging
import threading

from support.fake_openai import FakeServer

from mminstruct.config import GeneratorConfig
from mminstruct.generate.backends import Request
from mminstruct.generate.backends.openai import OpenAIBackend
from mminstruct.redact import RedactingFilter, forget_secrets, redact, register_secret


class StartedServer:
    """Stands in for a `ManagedServer` that is up at `base_url` (the fake on 127.0.0.1)."""

    starts = 1

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def start(self) -> str:
        return self.base_url

    def recover(self, starts_seen: int) -> bool:
        return False

    def stop(self) -> None:
        """Nothing to stop."""


def test_the_users_key_never_goes_to_a_managed_server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-real-openai-key-0123456789")
    server = FakeServer()
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        config = GeneratorConfig(backend="openai", model="served")
        backend = OpenAIBackend(config, server=StartedServer(server.url))
        completion = backend.complete([Request(({"role": "user", "content": "hi"},), 1)])[0]
        plain = OpenAIBackend(GeneratorConfig(backend="openai", model="m", base_url=server.url))
        plain.complete([Request(({"role": "user", "content": "hi"},), 2)])
    finally:
        server.shutdown()
        server.server_close()
        forget_secrets()
    assert completion.finish_reason == "stop"
    assert server.auth[0] is None  # the managed server got no key
    assert server.auth[-1] == "Bearer sk-users-real-openai-key-0123456789"  # a user's server does


def test_a_placeholder_key_never_rewrites_text():
    """`none`, `EMPTY`, `dummy`: what local-server users set; the text keeps its words."""
    try:
        for placeholder in ("none", "EMPTY", "dummy", "test"):
            register_secret(placeholder)
        assert redact("There are none of the dogs in this test image.") == (
            "There are none of the dogs in this test image.",
            0,
        )
    finally:
        forget_secrets()


def test_a_log_call_with_a_bad_format_string_never_raises_into_the_caller():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "a %s %s", (1,), None)
    assert RedactingFilter().filter(record) is True
