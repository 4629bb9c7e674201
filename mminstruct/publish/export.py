"""Export a built dataset for LLaVA's `train.py` or TRL's `DPOTrainer`, with the images.

`llava` writes `llava.json`, a list of `{"id", "image", "conversations"}` (LLaVA's own
format); `jsonl` writes the same records to `llava.jsonl`, one per line. `dpo` writes
`dpo.jsonl`, one preference pair per line in the layout TRL's `DPOTrainer` reads for
vision-language models: `images` (paths relative to the file), and `prompt`, `chosen`,
`rejected` as conversations of `{"role", "content": [{"type": "image" | "text", "text"}]}`
(an image item's `text` is null). Images are copied into `images/` as `<key>.<ext>` (their
original bytes), so two sources with the same file name never collide; train with
`--data_path DEST/llava.json --image_folder DEST/images`. Everything is read from the
shards themselves. The record file is written last and atomically: a killed export never
leaves a partial one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mminstruct.errors import MminstructError
from mminstruct.io import write_atomic
from mminstruct.output import iter_samples, shard_paths

FORMATS = {"llava": "llava.json", "jsonl": "llava.jsonl", "dpo": "dpo.jsonl"}  # -> record file
IMAGES = "images"
IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    records_path: Path
    images_dir: Path
    records: int
    images: int
    skipped: Counter  # shard members that were not a sample's file, by reason (never used)

    def usage(self) -> str:
        """How to use what was written, for this format."""
        if self.records_path.name == FORMATS["dpo"]:
            return (
                f"load with: datasets.load_dataset('json', data_files='{self.records_path}'), "
                "image paths relative to that file"
            )
        if self.records_path.name == FORMATS["jsonl"]:
            return (
                f"load with: datasets.load_dataset('json', data_files='{self.records_path}'); "
                "LLaVA's train.py reads a JSON list (json.load), which --format llava writes"
            )
        return f"train with: --data_path {self.records_path} --image_folder {self.images_dir}"


def export(out_dir: Path, dest: Path, fmt: str = "llava") -> Exported:
    """Export the shards of `out_dir` into `dest` in format `fmt` (`llava`, `jsonl` or `dpo`)."""
    if fmt not in FORMATS:
        raise MminstructError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    dest = _prepare_dest(Path(dest))
    images_dir = dest / IMAGES
    records, images, skipped = [], 0, Counter()
    for shard in shard_paths(out_dir):
        for sample in iter_samples(shard, skipped=skipped):
            if sample.image is None:
                raise MminstructError(f"{shard}: sample {sample.key} has no image; rebuild it")
            name = f"{sample.key}.{sample.extension}"
            made = (dpo_records if fmt == "dpo" else llava_records)(sample.key, sample.record, name)
            if made:
                _write_file(images_dir / name, sample.image)
                images += 1
            records += made
    if fmt == "dpo":
        problems, rules = check_dpo(records, dest), "TRL's preference format"
    else:
        problems, rules = check_llava(records, images_dir), "LLaVA's rules"
    if fmt == "dpo" and not records:
        problems = ["no preference pairs in this build; build with tasks.preference.enabled"]
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:10])
        raise MminstructError(f"the export breaks {rules}; nothing written:\n{shown}")
    path = dest / FORMATS[fmt]
    write_atomic(path, _dump(records, fmt))
    return Exported(path, images_dir, len(records), images, skipped)


def llava_records(key: str, sample: dict[str, Any], image: str) -> list[dict[str, Any]]:
    """One LLaVA record per instruction of a sample: `{"id", "image", "conversations"}`.

    Ids are `<key>-<task>-<n>`, n the instruction's place in the sample, so they are unique
    across the dataset.
    """
    return [
        {
            "id": f"{key}-{instruction['task']}-{n}",
            "image": image,
            "conversations": [
                {"from": t["from"], "value": t["value"]} for t in instruction["conversations"]
            ],
        }
        for n, instruction in enumerate(sample.get("instructions", []))
    ]


def dpo_records(key: str, sample: dict[str, Any], image: str) -> list[dict[str, Any]]:
    """One TRL preference record per pair of a sample's instructions (`tasks.preference`).

    Ids are `<key>-<task>-<n>-pair<m>`. The prompt is the conversation up to the question
    the pair answers; the image goes where LLaVA's `<image>` token was.
    """
    records = []
    for n, instruction in enumerate(sample.get("instructions", [])):
        for m, pair in enumerate(instruction.get("preference", [])):
            records.append(
                {
                    "id": f"{key}-{instruction['task']}-{n}-pair{m}",
                    "images": [f"{IMAGES}/{image}"],
                    "prompt": [_message(turn) for turn in pair["prompt"]],
                    "chosen": [_assistant(pair["chosen"])],
                    "rejected": [_assistant(pair["rejected"])],
                    "error": {"kind": pair["error"]["kind"], "detail": pair["error"]["detail"]},
                }
            )
    return records


def _message(turn: dict[str, str]) -> dict[str, Any]:
    """A LLaVA turn as a TRL message; `<image>` becomes an image item where it stood."""
    role = "user" if turn["from"] == "human" else "assistant"
    text = turn["value"]
    if IMAGE_TOKEN not in text:
        return {"role": role, "content": [{"type": "text", "text": text}]}
    before, _, after = text.partition(IMAGE_TOKEN)
    content = [{"type": "text", "text": t} for t in (before.strip(),) if t]
    content.append({"type": "image", "text": None})
    content += [{"type": "text", "text": t} for t in (after.strip(),) if t]
    return {"role": role, "content": content}


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def check_dpo(records: Iterable[dict[str, Any]], folder: Path | None = None) -> list[str]:
    """Problems a vision DPO trainer would hit, one line each: unique ids; `images` naming
    files under `folder`; a prompt alternating user/assistant from user and ending with the
    user's question; as many image items as images; `chosen` and `rejected` one assistant
    message each, with different non-empty text."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        where = f"record {i} (id {record.get('id')!r})"
        problems += [f"{where}: {p}" for p in _pair_problems(record, seen, folder)]
    return problems


def _pair_problems(record: dict[str, Any], seen: set[str], folder: Path | None) -> list[str]:
    problems = []
    if record.get("id") in seen:
        problems.append("`id` is not unique")
    seen.add(str(record.get("id")))
    images = record.get("images") or []
    missing = [i for i in images if folder is not None and not (folder / i).is_file()]
    if not images or missing:
        problems.append(f"`images` must name files beside the record file; missing: {missing}")
    prompt = record.get("prompt") or []
    roles = [m.get("role") for m in prompt]
    if not prompt or roles != ["user", "assistant"] * (len(prompt) // 2) + ["user"]:
        problems.append(f"prompt roles must alternate user/assistant and end with user: {roles}")
    items = [c.get("type") for m in prompt for c in m.get("content", [])]
    if items.count("image") != len(images):
        problems.append(
            f"{items.count('image')} image items in the prompt for {len(images)} images"
        )
    answers = [record.get(k) or [] for k in ("chosen", "rejected")]
    texts = [a[0]["content"][0].get("text") if len(a) == 1 else None for a in answers]
    if not all(texts) or texts[0] == texts[1]:
        problems.append("`chosen` and `rejected` must be one assistant message each, and differ")
    return problems


def check_llava(records: Iterable[dict[str, Any]], image_folder: Path | None = None) -> list[str]:
    """Problems LLaVA's training code would hit, one line each (none: an empty list).

    Its rules: each record has a string `id` (unique here) and a string `image` (never
    null) naming a file in the image folder; `conversations` alternate `human`/`gpt`
    starting from `human`, with non-empty string values; `<image>` appears as many times as
    the record has images (one), in a human turn.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        where = f"record {i} (id {record.get('id')!r})"
        problems += [f"{where}: {p}" for p in _record_problems(record, seen, image_folder)]
    return problems


def _record_problems(record: dict[str, Any], seen: set[str], folder: Path | None) -> list[str]:
    problems = []
    ident, image = record.get("id"), record.get("image")
    if not isinstance(ident, str) or not ident:
        problems.append("`id` must be a non-empty string")
    elif ident in seen:
        problems.append("`id` is not unique")
    seen.add(str(ident))
    if not isinstance(image, str) or not image:
        problems.append('`image` must name the image file (never "image": null)')
    elif folder is not None and not (folder / image).is_file():
        problems.append(f"image file {image} is not in {folder}")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        return [*problems, "`conversations` must be a non-empty list"]
    roles = [t.get("from") if isinstance(t, dict) else None for t in turns]
    if roles != ["human", "gpt"] * (len(turns) // 2) or len(turns) % 2:
        problems.append(f"roles must alternate human/gpt from human, got {roles}")
    values = [t.get("value") if isinstance(t, dict) else None for t in turns]
    if not all(isinstance(v, str) and v.strip() for v in values):
        problems.append("every turn needs a non-empty string `value`")
    tokens = [str(v).count(IMAGE_TOKEN) for v in values]
    if sum(tokens) != 1 or tokens[0] != 1:
        problems.append(f"`{IMAGE_TOKEN}` must appear once, in the first human turn; got {tokens}")
    return problems


def _prepare_dest(dest: Path) -> Path:
    ours = {*FORMATS.values(), IMAGES}
    if dest.exists() and not dest.is_dir():
        raise MminstructError(f"--dest {dest} is a file; choose a folder")
    if dest.is_dir() and any(p.name not in ours for p in dest.iterdir()):
        raise MminstructError(
            f"--dest {dest} holds files that are not an mminstruct export; choose a new or "
            "empty folder"
        )
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _write_file(path: Path, data: bytes) -> None:
    """Write through a temporary name (no fsync: the record file, written last, is)."""
    path.parent.mkdir(exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _dump(records: list[dict[str, Any]], fmt: str) -> str:
    if fmt in ("jsonl", "dpo"):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return json.dumps(records, ensure_ascii=False, indent=1) + "\n"
