"""Corpus cases found by using the project on real files as a stranger would (config).

A config nested far too deep, integers no setting can use, an images folder that is a file,
and `output.max_image_bytes`, which rejects an image file too large before it is read. The
configs the corpus cannot write as JSON (not UTF-8, 50,000 levels deep, YAML aliases) are
tested beside it, in tests/test_config.py.
"""

from __future__ import annotations

from pathlib import Path

from bad_inputs.cases import CASES, Built, Case, Fails
from bad_inputs.files import Scene, jpeg

DEPTH = 500  # lists inside lists: past Python's recursion limit for a recursive YAML reader


def _config_case(name: str, extra: dict, expect: Fails | Built) -> None:
    """Register a case: the default scene with `extra` merged over its job config."""

    def make(folder: Path) -> dict:
        return Scene(config=extra).write(folder)

    CASES.append(Case(name, "config", make, expect))


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


_config_case(
    "config_nested_too_deep",
    {"generator": {"model": _nested(DEPTH)}},
    Fails(2, ("job.yaml", "sections and lists nest over 32 levels deep")),
)
_config_case(
    "config_integer_too_large",
    {"generator": {"seed": 10**400}},
    Fails(2, ("generator.seed: an integer of 1,329 bits (int) is out of range", "64-bit")),
)
_config_case(
    "config_max_image_bytes_zero",
    {"output": {"max_image_bytes": 0}},
    Fails(2, ("output.max_image_bytes: must be at least 1, got 0",)),
)
_config_case(
    "image_over_max_image_bytes",
    {"output": {"max_image_bytes": 1000}},
    Built(
        1,
        1,
        "image_too_large",
        "image",
        (f"{{dir}}/images/a.jpg: {len(jpeg()):,} bytes, over output.max_image_bytes (1,000)",),
    ),
)  # kind "config": its outcome needs its config, so the all-in-one build leaves it out


def images_folder_is_a_file(folder: Path) -> dict:
    job = Scene().write(folder)
    job["sources"][0]["images"] = str(folder / "instances.json")
    return job


CASES.append(
    Case(
        "images_folder_is_a_file",
        "paths",
        images_folder_is_a_file,
        Fails(2, ("sources.0.images: images folder {dir}/instances.json is not a folder",)),
    )
)
