"""Corpus cases found by using the project on real files as a stranger would (publish)."""

from __future__ import annotations

from pathlib import Path

from bad_inputs.cases import Built, case
from bad_inputs.files import Scene


@case("records", Built(2, 0))
def category_name_with_dollar_signs(folder: Path) -> dict:
    """`$...$` in a name once made matplotlib parse it as math and raise while drawing the
    card's category plot, after every shard was written (a traceback at the end of a build;
    the corpus run of all cases together draws the plots)."""
    scene = Scene()
    scene.categories[0]["name"] = "dog $\\frac{$"
    return scene.write(folder)
