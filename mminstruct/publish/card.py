"""The dataset card (`README.md` in the output folder), from the resolved config and stats.

Built with `huggingface_hub`'s `DatasetCard`/`DatasetCardData` (offline: nothing here calls
the Hub). The YAML header is what the Hub and `datasets.load_dataset` read: where the data
files are (the shards only), every column, exact split counts, license and tags. The body
is plain Markdown from small pure functions over the config and `stats.json`; `write_card`
adds one example per task read from the shards and the plots of `mminstruct.publish.plots`.
The header is built in `card_header.py`, the body's sections in `card_sections.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mminstruct
from mminstruct.io import write_atomic
from mminstruct.output import iter_samples, read_bookkeeping, shard_paths
from mminstruct.publish.card_header import card_data
from mminstruct.publish.card_sections import (
    INTENDED_USE,
    LIMITATIONS,
    LOADING,
    PLOTS_DIR,
    TASK_NAMES,
    citation_section,
    counts_table,
    cut_names_note,
    examples_section,
    families_table,
    generation_section,
    grounding_section,
    plots_section,
    preference_section,
    rejects_table,
    sources_section,
    tasks_table,
)
from mminstruct.publish.markdown import code, link, text

CARD = "README.md"


# --------------------------------------------------------------------------- the card


def render_body(
    config: dict[str, Any],
    stats: dict[str, Any],
    examples: dict[str, dict[str, Any]] | None = None,
    plots: Sequence[tuple[str, str]] = (),
) -> str:
    """The Markdown body under the header."""
    output, generator = config["output"], config["generator"]
    names = ", ".join(code(s["name"]) for s in config["sources"])
    license_ = code(output["license"])
    if output["license"] == "other":
        license_ += f" ({link(output.get('license_name'), output.get('license_link'))})"
    sections = [
        f"# {text(output['pretty_name'])}",
        f"Multimodal instruction-tuning data in LLaVA's `conversations` format: "
        f"{stats['images_written']:,} images with {stats['instructions_total']:,} instructions, "
        f"written by the `{generator['backend']}` generator of "
        f"[mminstruct](https://pypi.org/project/mminstruct/) {mminstruct.__version__} from the "
        f"annotations of {names}. Each sample is one image (original bytes, never re-encoded) "
        "and a JSON record with its instructions.",
        "## Loading",
        LOADING,
        "## Sources and licenses",
        sources_section(config, stats),
        f"The generated text is released under {license_}; every image keeps the license of "
        "its source.",
        "## How it was made",
        generation_section(config, stats),
        "## Statistics",
        counts_table(stats),
        tasks_table(stats),
        families_table(config, stats),
        "Rejections by reason (each one is listed with its detail in `rejects.jsonl`; images in "
        "= images written + images rejected):",
        rejects_table(stats),
        plots_section(plots),
        cut_names_note(stats, examples or {}),
        grounding_section(config, stats),
        preference_section(stats),
        "## Examples",
        examples_section(examples or {}),
        "## Limitations and biases",
        LIMITATIONS,
        "## Intended use",
        INTENDED_USE,
        "## Citation",
        citation_section(config),
    ]
    return "\n\n".join(s.strip() for s in sections if s.strip()) + "\n"


def render_card(
    config: dict[str, Any],
    stats: dict[str, Any],
    examples: dict[str, dict[str, Any]] | None = None,
    plots: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole card, header and body, as `DatasetCard` writes it."""
    from huggingface_hub import DatasetCard

    header = card_data(config, stats).to_yaml()
    body = render_body(config, stats, examples, plots)
    return str(DatasetCard(f"---\n{header}\n---\n\n{body}"))


def first_examples(out_dir: Path, tasks: set[str]) -> dict[str, dict[str, Any]]:
    """The first instruction of each of `tasks` in the shards, read until all are found."""
    found: dict[str, dict[str, Any]] = {}
    for shard in shard_paths(out_dir):
        for sample in iter_samples(shard, images=False):
            for instruction in sample.record.get("instructions", []):
                example = {
                    "key": sample.key,
                    "image": sample.record.get("image"),
                    "conversations": instruction["conversations"],
                }
                found.setdefault(instruction["task"], example)
            if set(found) >= tasks:
                return dict(sorted(found.items(), key=lambda kv: _task_order(kv[0])))
    return dict(sorted(found.items(), key=lambda kv: _task_order(kv[0])))


def _task_order(task: str) -> tuple[int, str]:
    order = list(TASK_NAMES)
    return (order.index(task) if task in order else len(order), task)


def write_plots(out_dir: Path, stats: dict[str, Any]) -> list[tuple[str, str]]:
    """Draw the plots into `plots/`; returns (file name, alt text) of those drawn."""
    from mminstruct.publish.plots import PLOTS

    folder = Path(out_dir) / PLOTS_DIR
    drawn = []
    for name, (draw, alt) in PLOTS.items():
        png = draw(stats)
        if png is None:
            (folder / name).unlink(missing_ok=True)  # a plot of an earlier card, now empty
            continue
        folder.mkdir(exist_ok=True)
        write_atomic(folder / name, png)
        drawn.append((name, alt))
    return drawn


def write_card(out_dir: Path, config: dict[str, Any], stats: dict[str, Any]) -> Path:
    """Write `README.md` and its plots in `out_dir`; the examples come from the shards."""
    out_dir = Path(out_dir)
    tasks = {t for t, n in stats["instructions"].items() if n}
    examples = first_examples(out_dir, tasks) if stats.get("samples") else {}
    plots = write_plots(out_dir, stats)
    path = out_dir / CARD
    write_atomic(path, render_card(config, stats, examples, plots))
    return path


def regenerate_card(out_dir: Path) -> Path:
    """`mminstruct card OUT`: the card again from `config.yaml` and `stats.json`."""
    from mminstruct.config import config_to_dict, load_config
    from mminstruct.errors import MminstructError

    out_dir = Path(out_dir)
    stats_path = out_dir / "stats.json"
    if not stats_path.is_file():
        raise MminstructError(
            f"{stats_path} not found; finish the build first (`mminstruct finalize {out_dir}`)"
        )
    config_path = out_dir / "config.yaml"
    if not config_path.is_file():
        raise MminstructError(
            f"{config_path} not found: the card is written from the config the build ran "
            f"with; put that config there (with output.dir: {out_dir}) and run this again"
        )
    stats = read_bookkeeping(stats_path)
    config = config_to_dict(load_config(config_path))
    return write_card(out_dir, config, stats)
