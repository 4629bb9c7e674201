"""Corpus cases found by using the project on real files as a stranger would (backends)."""

from __future__ import annotations
