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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mminstruct.errors import MminstructError
from mminstruct.io import write_atomic
from mminstruct.lexicon import FORMAT_PROMPTS
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
    across the dataset. The academic families of LLaVA-1.5's mix (`FORMAT_PROMPTS`: short
    VQA, multiple choice, region grounding, compositional) are laid out as that mix does.
    """
    return [
        {
            "id": f"{key}-{instruction['task']}-{n}",
            "image": image,
            "conversations": _mix_layout(
                instruction["task"],
                [{"from": t["from"], "value": t["value"]} for t in instruction["conversations"]],
            ),
        }
        for n, instruction in enumerate(sample.get("instructions", []))
    ]


def _mix_layout(task: str, turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """LLaVA-1.5's mix puts `<image>` first in the first question of its academic families
    ("<image>\nWhat color is the car?\nAnswer the question using a single word or phrase.");
    the format prompt already ends each question (or, for regions, starts it)."""
    if task not in FORMAT_PROMPTS or not turns:
        return turns
    first = turns[0]["value"].replace(IMAGE_TOKEN, "").strip()
    return [{"from": turns[0]["from"], "value": f"{IMAGE_TOKEN}\n{first}"}, *turns[1:]]


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
        ident = record.get("id") if isinstance(record, dict) else None
        problems += [
            f"record {i} (id {ident!r}): {p}" for p in _pair_problems(record, seen, folder)
        ]
    return problems


def _pair_problems(record: dict[str, Any], seen: set[str], folder: Path | None) -> list[str]:
    if not isinstance(record, dict):
        return [f"must be a JSON object, got {type(record).__name__}"]
    problems = _id_problems(record.get("id"), seen)
    images = record.get("images")
    images = images if isinstance(images, list) else []
    prompt = record.get("prompt")
    prompt = prompt if isinstance(prompt, list) else []
    problems += _images_problems(images, folder)
    problems += _prompt_problems(prompt, len(images))
    for side in ("chosen", "rejected"):
        problems += _answer_problems(side, record.get(side))
    chosen, rejected = (_answer_text(record.get(side)) for side in ("chosen", "rejected"))
    if chosen and chosen == rejected:
        problems.append("`chosen` and `rejected` are the same text; a pair must differ")
    return problems


def _id_problems(ident: Any, seen: set[str]) -> list[str]:
    if not isinstance(ident, str) or not ident:
        return ["`id` must be a non-empty string"]
    if ident in seen:
        return ["`id` is not unique"]
    seen.add(ident)
    return []


def _images_problems(images: list[Any], folder: Path | None) -> list[str]:
    if not images:
        return ["`images` must list the image files (relative to the record file)"]
    if not all(isinstance(i, str) and _is_relative(i) for i in images):
        return [f"`images` must be file names relative to the record file, got {images}"]
    missing = [i for i in images if folder is not None and not (folder / i).is_file()]
    if missing:
        return [f"`images` names files that are not beside the record file: {missing}"]
    return []


def _is_relative(name: str) -> bool:
    path = Path(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def _prompt_problems(prompt: list[Any], images: int) -> list[str]:
    messages = [m if isinstance(m, dict) else {} for m in prompt]
    roles = [m.get("role") for m in messages]
    problems = []
    if not prompt or roles != ["user", "assistant"] * (len(prompt) // 2) + ["user"]:
        problems.append(f"prompt roles must alternate user/assistant and end with user: {roles}")
    items = [item for m in messages for item in _content(m)]
    kinds = [item.get("type") for item in items]
    if kinds.count("image") != images:
        problems.append(f"{kinds.count('image')} image items in the prompt for {images} images")
    if any(item.get("type") == "text" and not _is_text(item.get("text")) for item in items):
        problems.append("every text item of the prompt needs a non-empty string `text`")
    return problems


def _answer_problems(side: str, answer: Any) -> list[str]:
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], dict):
        return [f"`{side}` must be one assistant message"]
    if answer[0].get("role") != "assistant":
        return [f"`{side}` must be an assistant message, got role {answer[0].get('role')!r}"]
    if not _answer_text(answer):
        return [f"`{side}` has no text: it needs one non-empty text item"]
    return []


def _answer_text(answer: Any) -> str | None:
    """The text of a one-message answer whose content is one text item, else None."""
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], dict):
        return None
    items = _content(answer[0])
    if len(items) != 1 or items[0].get("type") != "text" or not _is_text(items[0].get("text")):
        return None
    return items[0]["text"]


def _content(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [c if isinstance(c, dict) else {} for c in content] if isinstance(content, list) else []


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


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
    write_atomic(path, data, fsync=False)


def _dump(records: list[dict[str, Any]], fmt: str) -> str:
    if fmt in ("jsonl", "dpo"):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return json.dumps(records, ensure_ascii=False, indent=1) + "\n"
