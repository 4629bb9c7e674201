"""Corpus cases found by using the project on real files as a stranger would (converters)."""

from __future__ import annotations
