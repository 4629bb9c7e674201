"""Corpus cases found by using the project on real files as a stranger would (preview)."""

from __future__ import annotations
