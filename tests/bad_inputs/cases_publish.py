"""Corpus cases found by using the project on real files as a stranger would (publish)."""

from __future__ import annotations
