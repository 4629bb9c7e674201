"""Secrets (API keys) never written or logged: the key, and any piece of it, becomes a marker.

A backend registers its key with `register_secret`; `redact(text)` then replaces the key and
every run of MIN_RUN or more consecutive characters of it (a server that echoes `sk-SECRET1`
or `SECRET123` leaks as much as one that echoes the whole key) with MARKER, and says how many
pieces it replaced. `install_log_redaction()` puts a filter on the log handlers, so that a log
line cannot carry a piece of a key either.
"""

from __future__ import annotations

import logging
import threading

MARKER = "***"  # what a piece of a secret becomes
MIN_RUN = 8  # a run of this many consecutive characters of a secret is a piece of it
MIN_SECRET = MIN_RUN  # shorter "secrets" ("none", "EMPTY", "dummy": placeholder keys for
# local servers) are words too: replacing them would garble the text, so they are not secret

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_grams: frozenset[str] = frozenset()  # every MIN_RUN-character run of every secret


def register_secret(secret: str | None) -> None:
    """Redact `secret` (and its pieces) from now on. Keys under MIN_SECRET characters are
    placeholders, not secrets: registering them would rewrite ordinary words."""
    global _secrets, _grams
    if not secret or len(secret) < MIN_SECRET:
        return
    with _lock:
        _secrets = _secrets | {secret}
        runs = {secret[i : i + MIN_RUN] for i in range(len(secret) - MIN_RUN + 1)}
        _grams = _grams | runs


def forget_secrets() -> None:
    """Register nothing any more (for tests)."""
    global _secrets, _grams
    with _lock:
        _secrets, _grams = frozenset(), frozenset()


def redact(text: str) -> tuple[str, int]:
    """`text` with every registered secret and every piece of one replaced by MARKER, and
    how many replacements were made."""
    secrets, grams = _secrets, _grams
    if not secrets or not text:
        return text, 0
    count = 0
    for secret in secrets:  # whole keys first (the only rule for keys under MIN_RUN)
        count += text.count(secret)
        text = text.replace(secret, MARKER)
    if not grams:
        return text, count
    pieces, count_pieces = _redact_runs(text, secrets, grams)
    return pieces, count + count_pieces


def _redact_runs(text: str, secrets: frozenset[str], grams: frozenset[str]) -> tuple[str, int]:
    """Replace each longest run (from the left) that is a piece of a secret."""
    out: list[str] = []
    count = start = position = 0
    while position <= len(text) - MIN_RUN:
        if text[position : position + MIN_RUN] not in grams:
            position += 1
            continue
        end = position + MIN_RUN
        while end < len(text) and any(text[position : end + 1] in s for s in secrets):
            end += 1
        out += [text[start:position], MARKER]
        count += 1
        start = position = end
    out.append(text[start:])
    return "".join(out), count


def redact_text(text: str) -> str:
    """`text` with secrets and their pieces replaced (the count dropped)."""
    return redact(text)[0]


class RedactingFilter(logging.Filter):
    """Rewrites a log record whose message (or exception text) holds a piece of a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return self._redact(record)
        except Exception:  # a bad format string: logging reports it, the caller goes on
            return True

    def _redact(self, record: logging.LogRecord) -> bool:
        message, count = redact(record.getMessage())
        if count:
            record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Redact what every handler of `logger` (default: the root logger) writes. Call it once
    the handlers are set up (after `logging.basicConfig`); calling it again is harmless."""
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
