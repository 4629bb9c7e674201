"""The dataset card's body sections: tables of the stats, sources and their licenses, how
the data was made, examples, plots and citations, and the fixed texts (loading, limitations,
intended use).
"""

from __future__ import annotations

import importlib.metadata
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mminstruct
from mminstruct.lexicon import FORMAT_PROMPTS
from mminstruct.publish.markdown import (
    ELLIPSIS,
    NAME_LIMIT,
    Md,
    code,
    fence,
    is_long,
    link,
    shorten,
    text,
)
from mminstruct.resources import PACKAGE_PREFIX

PLOTS_DIR = "plots"
TASK_NAMES = {
    "conversation": "multi-turn conversations",
    "detail": "detailed descriptions",
    "reasoning": "complex reasoning",
    "regions": "region grounding (phrase to box, box to phrase)",
    "short_vqa": "short-answer VQA",
    "choice": "multiple choice",
    "compositional": "compositional scene-graph questions",
}
# What each source kind's annotations and images are licensed under.
SOURCE_TERMS = {
    "coco": Md(
        "COCO format. COCO itself: annotations CC BY 4.0 (the COCO Consortium, "
        "<https://cocodataset.org/#termsofuse>), images are Flickr photos, each under the "
        "license named in its record (counted below). Other data in COCO format: its own terms"
    ),
    "visual_genome": Md("Visual Genome: CC BY 4.0 (<https://visualgenome.org/>)"),
    "psg": Md(
        "Panoptic Scene Graph: annotations under the terms of OpenPSG "
        "(<https://github.com/Jingkang50/OpenPSG>); images are COCO's Flickr photos, each under "
        "its own license"
    ),
}
# The bundled demo sample (`package:sample/...`): drawn, not photographed.
SAMPLE_TERMS = Md(
    "The demo sample that ships with mminstruct: scenes drawn by `mminstruct.sample` (not "
    "photographs), in COCO format; its `instances.json` names its own licenses, and each "
    "image's license is counted below"
)
CITATIONS = {
    "llava": """@inproceedings{liu2023llava,
  title     = {Visual Instruction Tuning},
  author    = {Liu, Haotian and Li, Chunyuan and Wu, Qingyang and Lee, Yong Jae},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2023}
}""",
    "coco": """@inproceedings{lin2014coco,
  title     = {Microsoft {COCO}: Common Objects in Context},
  author    = {Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and
               Perona, Pietro and Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2014}
}""",
    "visual_genome": """@article{krishna2017visualgenome,
  title   = {Visual Genome: Connecting Language and Vision Using Crowdsourced Dense Image Annotations},
  author  = {Krishna, Ranjay and Zhu, Yuke and Groth, Oliver and Johnson, Justin and Hata, Kenji
             and Kravitz, Joshua and Chen, Stephanie and Kalantidis, Yannis and Li, Li-Jia and
             Shamma, David A. and Bernstein, Michael S. and Fei-Fei, Li},
  journal = {International Journal of Computer Vision},
  year    = {2017}
}""",
    "psg": """@inproceedings{yang2022psg,
  title     = {Panoptic Scene Graph Generation},
  author    = {Yang, Jingkang and Ang, Yi Zhe and Guo, Zujin and Zhou, Kaiyang and
               Zhang, Wayne and Liu, Ziwei},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2022}
}""",
}
VERSIONED = ("mminstruct", "pillow", "pycocotools", "webdataset", "numpy", "msgspec")
MODEL_VERSIONED = ("torch", "transformers", "accelerate", "tokenizers")


# --------------------------------------------------------------------------- tables


def _cell(value: Any) -> str:
    """A Markdown table cell: numbers with thousands separators; `Md` as it is; any other
    value escaped as text (pipes included)."""
    if isinstance(value, Md):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return text(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A Markdown table; columns of numbers (and percentages) are right-aligned."""
    align = [
        "---:" if rows and all(_is_number(row[i]) for row in rows) else "---"
        for i in range(len(head))
    ]
    lines = [f"| {' | '.join(head)} |", f"| {' | '.join(align)} |"]
    lines += [f"| {' | '.join(_cell(v) for v in row)} |" for row in rows]
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        return bool(re.fullmatch(r"[\d.,/ ]+%?|n/a", value))
    return isinstance(value, int | float) and not isinstance(value, bool)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def counts_table(stats: dict[str, Any]) -> str:
    """Markdown table of images and instructions."""
    rows: list[tuple[Any, ...]] = [
        ("images in", stats["images_in"]),
        ("images written", stats["images_written"]),
        ("images rejected", stats["images_rejected"]),
        ("images written, of images in", _percent(stats["images_written"], stats["images_in"])),
    ]
    rows += [(TASK_NAMES.get(t, t), n) for t, n in stats["instructions"].items()]
    rows += [("question/answer turns", stats["turns"]), ("shards", len(stats["shards"]))]
    if stats.get("tokens"):
        rows.append(("completion tokens generated", stats["tokens"]))
    return _table(("what", "count"), rows)


def _summary(histogram: dict[str, int]) -> tuple[float, float, int] | None:
    """(mean, median, max) of a `{length: count}` histogram."""
    if not histogram:
        return None
    counts = {int(k): n for k, n in histogram.items()}
    values = [length for length, n in sorted(counts.items()) for _ in range(n)]
    return statistics.fmean(values), statistics.median(values), max(values)


def tasks_table(stats: dict[str, Any]) -> str:
    """Per task: instructions, answer lengths, completion tokens, rejections and kept share.

    Kept share = instructions / (instructions + this task's rejections other than
    `duplicate`, which drops single questions rather than whole instructions).
    """
    rows = []
    for task, count in stats["instructions"].items():
        lengths = stats.get("lengths", {}).get(task, {})
        words, tokens = _summary(lengths.get("words", {})), _summary(lengths.get("tokens", {}))
        rejected = stats.get("rejects_by_task", {}).get(task, {})
        failed = sum(n for reason, n in rejected.items() if reason != "duplicate")
        rows.append(
            (
                task,
                count,
                f"{words[0]:.1f} / {words[1]:g} / {words[2]}" if words else "n/a",
                f"{tokens[0]:.1f} / {tokens[2]}" if tokens else "n/a",
                sum(rejected.values()),
                _percent(count, count + failed),
            )
        )
    head = ("task", "instructions", "answer words (mean / median / max)", "tokens (mean / max)")
    return _table((*head, "rejections", "kept"), rows)


FAMILIES_LEAD = (
    "Task families, each with the format prompt its questions end with (or, for region "
    "grounding, start with) as in LLaVA-1.5's mix, and its question/answer turns per question "
    "type (types are stamped by the rule-based generator; a model's turns show n/a):"
)


def families_table(config: dict[str, Any], stats: dict[str, Any]) -> str:
    """Each enabled task family: its instructions, the format prompt its questions carry
    (LLaVA-1.5's, word for word) and its turns per question type, most frequent first."""
    tasks = config["tasks"]
    rows = []
    for family in (t for t in TASK_NAMES if tasks.get(t, {}).get("enabled")):
        prompt = FORMAT_PROMPTS.get(family)
        kinds = stats.get("question_types", {}).get(family, {})
        ordered = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append(
            (
                code(family),
                stats["instructions"].get(family, 0),
                code(prompt) if prompt else Md("none (free-form answers)"),
                ", ".join(f"{shorten(kind)} {n:,}" for kind, n in ordered) or "n/a",
            )
        )
    if not rows:
        return ""
    head = ("family", "instructions", "format prompt", "turns per question type")
    return FAMILIES_LEAD + "\n\n" + _table(head, rows)


def rejects_table(stats: dict[str, Any]) -> str:
    """Markdown table of rejections by reason, or a sentence when there were none."""
    if not stats["rejects"]:
        return "Nothing was rejected."
    return _table(("reason", "count"), [(code(r), n) for r, n in stats["rejects"].items()])


def grounding_section(config: dict[str, Any], stats: dict[str, Any]) -> str:
    """How many instructions the grounding checks flagged, and their findings by kind;
    empty when the checks were off."""
    counts = stats.get("grounding")
    if not isinstance(counts, dict) or not counts.get("checked"):
        return ""
    checked, flagged = counts["checked"], counts.get("flagged", 0)
    lines = [
        "## Grounding",
        f"Every instruction was checked against its image's annotations (counts, objects, "
        f"absence claims, positions and relations): **{flagged:,} of {checked:,} "
        f"({_percent(flagged, checked)}) contradict them**. Mode: `generator.grounding: "
        f"{config['generator'].get('grounding', 'annotate')}`; each instruction's JSON holds its "
        "`grounding` score and findings.",
    ]
    by_kind = counts.get("by_kind") or {}
    if by_kind:
        lines.append(_table(("finding", "count"), sorted(by_kind.items())))
    return "\n\n".join(lines)


def preference_section(stats: dict[str, Any]) -> str:
    """Preference pairs made, by the kind of error planted, and attempts dropped by reason;
    empty when none were asked for."""
    counts = stats.get("preference")
    if not isinstance(counts, dict) or not (counts.get("pairs") or counts.get("dropped")):
        return ""
    lines = [
        "## Preference pairs",
        f"**{counts.get('pairs', 0):,} pairs** (chosen, rejected) for preference tuning: the "
        "rejected answer is the chosen one with one planted error that the grounding checks "
        "confirm. `mminstruct export OUT --format dpo` writes them for TRL's `DPOTrainer`.",
        _table(("planted error", "pairs"), sorted((counts.get("by_kind") or {}).items())),
    ]
    dropped = counts.get("dropped") or {}
    if dropped:
        lines.append(
            "Attempts dropped (the error could not be confirmed, or the answer was not "
            "grounded to begin with):"
        )
        lines.append(_table(("reason", "count"), sorted(dropped.items())))
    return "\n\n".join(lines)


# --------------------------------------------------------------------------- sections


def sources_section(config: dict[str, Any], stats: dict[str, Any]) -> str:
    """Each source with its terms, and the images written under each image license."""
    rows = [(code(s["name"]), s["kind"], source_terms(s)) for s in config["sources"]]
    section = _table(("source", "kind", "licenses"), rows)
    licenses = stats.get("image_licenses", {})
    if licenses:
        counted = [
            (code(d), license_cell(label), n) for d, c in licenses.items() for label, n in c.items()
        ]
        section += "\n\nImages written, by the license each image carries in `source.license`:"
        section += "\n\n" + _table(("source", "image license", "images"), counted)
    return section


def source_terms(source: dict[str, Any]) -> Md:
    """The terms of a source: the bundled demo sample's, or those of its kind."""
    paths = [source.get("images"), *(source.get("instances") or ())]
    if any(str(p).startswith(f"{PACKAGE_PREFIX}sample/") for p in paths if p):
        return SAMPLE_TERMS
    return SOURCE_TERMS.get(source["kind"], Md("see the source's own terms"))


def license_cell(label: str) -> Md:
    """An image license as counted in the stats: its name, linked to its URL when that is
    http(s)."""
    name, url = license_parts(label)
    return link(name, url) if url else text(shorten(name))


def license_parts(label: str) -> tuple[str, str | None]:
    """(name, URL) of a license label as the stats count it: `name <url>`, or a name."""
    match = re.fullmatch(r"(.*) <([^<>]*)>", label, re.DOTALL)
    return (match[1], match[2]) if match else (label, None)


def cut_names_note(stats: dict[str, Any], examples: dict[str, dict[str, Any]]) -> str:
    """A sentence saying that long names are shown cut, when the card or a plot shows one."""
    licenses = stats.get("image_licenses") or {}
    names = [
        *(stats.get("categories") or {}),
        *(license_parts(label)[0] for counts in licenses.values() for label in counts),
        *(str(example.get("image")) for example in examples.values()),
    ]
    if not any(is_long(name) for name in names):
        return ""
    return (
        f"Names longer than {NAME_LIMIT} characters (object categories, image licenses, "
        f"file names) are shown cut to {NAME_LIMIT}, ending in `{ELLIPSIS}`, in this card and "
        "its plots; the samples hold them as the source wrote them."
    )


def _model_line(generator: dict[str, Any]) -> str:
    model = generator.get("model")
    if generator["backend"] == "template" or not model:
        return "- Model: none. The rule-based generator writes from the annotations alone."
    hub = re.fullmatch(r"[\w.-]+/[\w.-]+", model) and not Path(model).exists()
    name = f"[`{model}`](https://huggingface.co/{model})" if hub else code(model)
    return (
        f"- Model: {name}. Its license and terms of use (on its model card, or from its "
        "provider) also govern the text it wrote; check them before you publish or train on it."
    )


def _versions(backend: str) -> str:
    names = VERSIONED + (MODEL_VERSIONED if backend != "template" else ())
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def generation_section(config: dict[str, Any], stats: dict[str, Any]) -> str:
    """Backend, model and its terms, sampling, templates with hashes, versions, the command."""
    generator = config["generator"]
    lines = [f"- Backend: `{generator['backend']}`", _model_line(generator)]
    if generator["backend"] == "template":
        lines.append(f"- Seed: {generator['seed']} (each image derives its own from it)")
    else:
        keys = ("temperature", "top_p", "max_new_tokens", "samples_per_task", "retry", "seed")
        lines.append("- Sampling: " + ", ".join(f"`{k}` {generator[k]}" for k in keys))
    templates = stats.get("templates", {})
    if templates:
        lines.append(
            "- Templates (sha256, first 16 hex digits): "
            + ", ".join(f"{code(shorten(name))} {code(sha)}" for name, sha in templates.items())
        )
    tasks = config["tasks"]
    on = [t for t in TASK_NAMES if tasks.get(t, {}).get("enabled")]
    lines.append(f"- Tasks: {', '.join(on) or 'none'}")
    lines.append(
        f"- Package versions where this card was written: {_versions(generator['backend'])}"
    )
    return "\n".join(lines) + (
        "\n\n`config.yaml` beside this card is the resolved config of the build (every `--set` "
        "applied). The exact command that rebuilds these shards, byte for byte:\n\n"
        "```bash\nmminstruct build path/to/this/folder/config.yaml --set output.dir=rebuilt\n```"
        "\n\n(Run it where the build ran: relative paths in `config.yaml` start there, and the "
        "source files must be unchanged.)"
    )


def examples_section(examples: dict[str, dict[str, Any]]) -> str:
    """One example per task: the sample it comes from and its conversation."""
    if not examples:
        return "No examples: the dataset is empty."
    parts = []
    for task, example in examples.items():
        turns = "\n".join(f"{t['from']}: {t['value']}" for t in example["conversations"])
        where = f"sample {code(example['key'])}, image {code(shorten(example['image']))}"
        title = text(TASK_NAMES.get(task, task))
        parts.append(f"**{title}** ({where})\n\n{fence(turns)}")
    return "\n\n".join(parts)


def plots_section(plots: Sequence[tuple[str, str]]) -> str:
    """The plots written beside the card, as relative Markdown images."""
    if not plots:
        return ""
    return "\n\n".join(f"![{alt}]({PLOTS_DIR}/{name})" for name, alt in plots)


def citation_section(config: dict[str, Any]) -> str:
    """BibTeX for this dataset, the method it follows and its sources."""
    name = " ".join(config["output"]["pretty_name"].split())
    name = re.sub(r"[{}\\%]", "", name)  # BibTeX: no unbalanced braces, commands or comments
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"
    own = (
        f"@misc{{{key},\n  title        = {{{name}}},\n"
        f"  note         = {{Built with mminstruct {mminstruct.__version__}}}\n}}"
    )
    kinds = [
        k for k in ("coco", "visual_genome", "psg") if k in {s["kind"] for s in config["sources"]}
    ]
    entries = [own, CITATIONS["llava"], *(CITATIONS[k] for k in kinds)]
    return fence("\n\n".join(entries), "bibtex")


LOADING = """With [webdataset](https://github.com/webdataset/webdataset):

```python
import glob, json, webdataset as wds
dataset = wds.WebDataset(sorted(glob.glob("shard-*.tar")), shardshuffle=False).decode("pil")
for sample in dataset:
    image = sample.get("jpg") or sample.get("png")
    record = sample["json"]  # {"id", "image", "width", "height", "source", "instructions"}
```

With 🤗 `datasets` (this card's header says where the shards are and declares every column,
so mixed JPEG/PNG images and every JSON field load):

```python
import datasets
dataset = datasets.load_dataset("path/to/this/folder", split="train")  # or streaming=True
```

(`datasets` caches a local folder by this card: after rebuilding into the same folder, add
`download_mode="force_redownload"`.)

`shards.wids.json` is a shard index for [wids](https://pypi.org/project/wids/) (random
access by sample number). webdataset 1.x no longer holds a `wids` module; install the `wids`
package (`pip install wids`), then
`wids.ShardListDataset("path/to/this/folder/shards.wids.json")[i]` is sample `i`.
`manifest.json` lists every shard with its sha256. For LLaVA's `train.py`, export one JSON
record per instruction plus the image files:

```bash
mminstruct export path/to/this/folder --format llava --dest llava/
# then: --data_path llava/llava.json --image_folder llava/images
```

In each record, `instructions` is a list of `{"task", "conversations", "generator"}`, with
`grounding` and `preference` where those ran; `conversations` alternate `human`/`gpt` from
`human`, and the first human turn holds `<image>` once; `generator` records backend, model,
template and its hash, seed and token counts."""

LIMITATIONS = """- The instructions are generated, not written by people: answers can be wrong, vague or
  about things the image does not show. They were checked for format, source leaks,
  refusals and repetition (see the rejections above) and, unless `generator.grounding` was
  off, for a few kinds of claims that contradict the annotations (counts, objects, absence,
  positions, relations); they were not checked for truth in general.
- The text is written from annotations (captions, boxes, relations) or, for `hf-vlm`,
  from the pixels: it inherits the gaps, errors and biases of the source annotations (who
  and what was photographed and labelled, in which words) and of the model (its training
  data, its language and cultural defaults).
- English only. Object categories follow the source vocabulary.
- Images keep their original licenses; some (Flickr non-commercial, no-derivatives)
  restrict use. Check `source.license` per image."""

INTENDED_USE = """Research on visual instruction tuning: fine-tuning and evaluating vision-language models
on conversations, detailed descriptions and reasoning about images. Not for decisions about
people, not as ground truth about the images, and not for uses the image licenses or the
model's terms forbid."""
