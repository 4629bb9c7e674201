"""Shared fixtures: the real COCO excerpts in ../shared/realdata, and small config helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the network: the Hugging Face libraries must not try the Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture
def realdata() -> Path:
    """The real COCO / Visual Genome excerpts; tests that need them skip when absent."""
    if not (REALDATA / "coco").is_dir():
        pytest.skip(
            f"real data not found at {REALDATA} (the tests read it from ../shared/realdata beside the repository)"
        )
    return REALDATA


@pytest.fixture
def tiny_coco(realdata: Path) -> dict:
    """A COCO source over tiny_coco val2017: 6 images, all files present, instances only."""
    root = realdata / "coco" / "tiny_coco"
    return {
        "kind": "coco",
        "name": "tinycoco",
        "images": str(root / "images" / "val2017"),
        "instances": str(root / "annotations" / "instances_val2017.json"),
    }


@pytest.fixture
def coco_mini(realdata: Path) -> dict:
    """A COCO source over coco_mini val2017: 79 images, only 13 files present, with captions."""
    root = realdata / "coco" / "coco_mini"
    return {
        "kind": "coco",
        "name": "cocomini",
        "images": str(root / "val2017"),
        "instances": str(root / "annotations" / "instances_val2017.json"),
        "captions": str(root / "annotations" / "captions_val2017.json"),
    }


@pytest.fixture(scope="session")
def vg_subset() -> Path:
    """Real Visual Genome JSON (objects.json and region_graphs.json: images 1-15;
    relationships.json: 50 entries). There are no images: tests draw placeholders."""
    root = REALDATA / "visual_genome" / "garima16_subset_data"
    if not (root / "relationships.json").is_file():
        pytest.skip(
            f"Visual Genome subset not found at {root} (objects.json, relationships.json, region_graphs.json)"
        )
    return root


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Llama with its tokenizer, saved once per test session (tests that
    change a model folder copy it first)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def vlm_dir(tmp_path_factory) -> Path:
    """A tiny random-weight LLaVA with its processor, saved once per test session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import make_tiny_vlm

    return make_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))
