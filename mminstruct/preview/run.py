"""`mminstruct preview`: one image through the build's own code path, shown in full.

The image comes from the configured sources (`--image-id`) or is a bare file with an
optional small annotations JSON (`--image`, see `read_annotations`). It goes through
`pipeline.generate_batch`, exactly as in `build`; for model backends the generator's trace
keeps every prompt: the exact messages with token counts, the raw completion and how it
parsed. The result is printed as text (`format_preview`) and written as `preview.png` (the
image with boxes, labels and relation arrows) and `preview.html` (self-contained).
"""

from __future__ import annotations

import difflib
import io
import json
import math
from pathlib import Path
from typing import Any

from mminstruct.config import Config
from mminstruct.context import render_context, visible_objects
from mminstruct.errors import ConfigError, MminstructError
from mminstruct.images import load_image
from mminstruct.io import write_atomic
from mminstruct.keys import sample_key
from mminstruct.preview.report import Call, Preview
from mminstruct.records import ImageRecord, ObjectBox, Rejection, Relation

BARE_DATASET = "image"  # dataset name of a bare `--image` (the prefix of its sample key)
ANNOTATION_KEYS = ("captions", "objects", "relations")
OBJECT_KEYS = ("category", "bbox")
RELATION_KEYS = ("subject", "predicate", "object")


# --------------------------------------------------------------------------- the record


def find_record(config: Config, image_id: str, source: str | None = None) -> ImageRecord:
    """The record of `image_id` in the configured sources (only `source` when named).

    Integer ids match their number (`397133` and `000000397133` are the same image).
    """
    from mminstruct.converters import READERS

    sources = [s for s in config.sources if source is None or s.name == source]
    if not sources:
        names = ", ".join(s.name for s in config.sources)
        raise MminstructError(f"--source {source!r} is not in the config; choose one of {names}")
    seen: list[str] = []
    for src in sources:
        for item in READERS[src.kind](src):
            if isinstance(item, Rejection):
                if item.scope == "image" and _matches(item.image_id, image_id):
                    raise MminstructError(
                        f"image {image_id} of source '{src.name}' is rejected before generation: "
                        f"{item.reason}: {item.detail}"
                    )
                continue
            if _matches(item.image_id, image_id):
                return item
            if len(seen) < 5:
                seen.append(str(item.image_id))
    where = ", ".join(f"'{s.name}'" for s in sources)
    hint = f"; ids there include {', '.join(seen)}" if seen else ""
    raise MminstructError(f"image id {image_id} is not in source(s) {where}{hint}")


def _matches(image_id: Any, text: str) -> bool:
    if isinstance(image_id, int) and not isinstance(image_id, bool):
        return text.strip().isdecimal() and int(text) == image_id
    return str(image_id) == text


def bare_record(path: Path, annotations: Path | None = None) -> ImageRecord:
    """A record for a bare image file, with the captions, boxes and relations of
    `annotations` (see `read_annotations`) or none at all."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise MminstructError(f"--image {path}: no such file")
    try:
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
    except OSError as exc:
        raise MminstructError(f"--image {path}: not an image Pillow can read ({exc})") from None
    captions, objects, relations = read_annotations(annotations, width, height)
    stem = path.stem
    return ImageRecord(
        dataset=BARE_DATASET,
        image_id=int(stem) if stem.isdecimal() else stem,
        file_name=path.name,
        images_dir=path.parent,
        width=width,
        height=height,
        captions=captions,
        objects=objects,
        relations=relations,
    )


def read_annotations(
    path: Path | None, width: int, height: int
) -> tuple[tuple[str, ...], tuple[ObjectBox, ...], tuple[Relation, ...]]:
    """Captions, objects and relations of a bare image, from a small JSON file:

        {"captions": ["A dog on a sofa."],
         "objects": [{"category": "dog", "bbox": [x, y, width, height]}, ...],
         "relations": [{"subject": 0, "predicate": "on", "object": 1}, ...]}

    Every key is optional. Boxes are in pixels, COCO order, inside the image; relations
    index `objects`. All problems are reported at once, each naming its field.
    """
    if path is None:
        return (), (), ()
    path = Path(path).expanduser()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MminstructError(f"--annotations {path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise MminstructError(f"--annotations {path}: not valid JSON ({exc})") from None
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"expected an object with keys {', '.join(ANNOTATION_KEYS)}"], str(path))
    _unknown(raw, ANNOTATION_KEYS, "", problems)
    captions = _captions(raw.get("captions", []), problems)
    objects = _objects(raw.get("objects", []), width, height, problems)
    listed = raw.get("objects") if isinstance(raw.get("objects"), list) else []
    relations = _relations(raw.get("relations", []), len(listed), problems)
    if problems:
        raise ConfigError(problems, str(path))
    return captions, objects, relations


def _unknown(raw: dict, known: tuple[str, ...], where: str, problems: list[str]) -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{where}{key}: unknown key{hint}; valid keys: {', '.join(known)}")


def _list(value: Any, where: str, problems: list[str]) -> list:
    if isinstance(value, list):
        return value
    problems.append(f"{where}: must be a list")
    return []


def _captions(value: Any, problems: list[str]) -> tuple[str, ...]:
    captions = []
    for i, caption in enumerate(_list(value, "captions", problems)):
        if isinstance(caption, str) and caption.strip():
            captions.append(caption.strip())
        else:
            problems.append(f"captions.{i}: must be a non-empty string")
    return tuple(captions)


def _objects(value: Any, width: int, height: int, problems: list[str]) -> tuple[ObjectBox, ...]:
    objects = []
    for i, item in enumerate(_list(value, "objects", problems)):
        where = f"objects.{i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with keys category, bbox")
            continue
        _unknown(item, OBJECT_KEYS, f"{where}.", problems)
        category, bbox = item.get("category"), item.get("bbox")
        ok = isinstance(category, str) and bool(category.strip())
        if not ok:
            problems.append(f"{where}.category: must be a non-empty string")
        box_problem = _box_problem(bbox, width, height)
        if box_problem:
            problems.append(f"{where}.bbox: {box_problem}")
        elif ok:
            objects.append(ObjectBox(category.strip(), *map(float, bbox)))
    return tuple(objects)


def _box_problem(bbox: Any, width: int, height: int) -> str | None:
    numbers = isinstance(bbox, list) and len(bbox) == 4
    if not numbers or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        return f"must be [x, y, width, height] in pixels, got {bbox!r}"
    if not all(math.isfinite(v) for v in bbox):
        return f"must hold 4 finite numbers, got {bbox!r}"
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return f"width and height must be positive, got {bbox}"
    if x < 0 or y < 0 or x + w > width + 1e-6 or y + h > height + 1e-6:
        return f"{bbox} reaches outside the {width}x{height} image; give [x, y, width, height] in pixels"
    return None


def _relations(value: Any, count: int, problems: list[str]) -> tuple[Relation, ...]:
    relations = []
    for i, item in enumerate(_list(value, "relations", problems)):
        where = f"relations.{i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with keys subject, predicate, object")
            continue
        _unknown(item, RELATION_KEYS, f"{where}.", problems)
        found = len(problems)
        for end in ("subject", "object"):
            index = item.get(end)
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
                valid = f"0 to {count - 1}" if count else "there are none"
                problems.append(f"{where}.{end}: must index objects ({valid}), got {index!r}")
        predicate = item.get("predicate")
        if not isinstance(predicate, str) or not predicate.strip():
            problems.append(f"{where}.predicate: must be a non-empty string")
        if len(problems) == found:
            relations.append(Relation(item["subject"], predicate.strip(), item["object"]))
    return tuple(relations)


# --------------------------------------------------------------------------- the run


def preview(config: Config, record: ImageRecord) -> Preview:
    """Run `record` through the generator exactly as `build` does, keeping the trace."""
    from mminstruct.generate import make_generator
    from mminstruct.output import sample_record
    from mminstruct.pipeline import generate_batch

    image = load_image(record, config.output.image_check)
    if isinstance(image, Rejection):
        raise MminstructError(f"cannot preview this image: {image.reason}: {image.detail}")
    generator = make_generator(config)
    trace: list = []
    if hasattr(generator, "trace"):  # model backends keep every prompt's outcome
        generator.trace = trace
    generator.start_unit()
    generated = generate_batch(generator, config, [record], [image.data])[0]
    key = sample_key(record.dataset, record.image_id)
    rejections = list(generated.rejections)
    instructions = []
    if generated.instructions:
        sample = sample_record(record, key, generated.instructions, config.generator.seed)
        instructions = sample["instructions"]
    else:  # as build: the image itself is rejected
        detail = "no task produced an instruction (see this image's task rejections)"
        rejections.append(Rejection("no_instructions", detail, record.dataset, record.image_id))
    visible = {id(o) for o in visible_objects(record, config.context)}
    shown = tuple(i for i, o in enumerate(record.objects) if id(o) in visible)
    return Preview(
        record=record,
        key=key,
        image=image,
        context=render_context(record, config.context),
        shown=shown,
        backend=config.generator.backend,
        model=config.generator.model,
        calls=tuple(_call(outcome, generator) for outcome in trace),
        instructions=instructions,
        rejections=rejections,
    )


def _call(outcome: Any, generator: Any) -> Call:
    job, completion, parsed = outcome.job, outcome.completion, outcome.parsed
    messages = tuple(job.request.messages)
    counts = tuple(generator.backend.count_tokens([m]) for m in messages)
    if parsed.reason:
        verdict = f"rejected: {parsed.reason}: {parsed.detail or completion.error or ''}"
    else:
        verdict = f"parsed: {len(parsed.turns)} turn(s)"
    return Call(
        task=job.task,
        sample=job.sample,
        attempt=job.attempt,
        seed=job.request.seed,
        messages=messages,
        message_tokens=counts,
        with_image=job.request.image is not None,
        prompt_tokens=completion.prompt_tokens,
        completion=completion.text,
        finish_reason=completion.finish_reason,
        completion_tokens=completion.completion_tokens,
        verdict=verdict,
    )


def write_preview(p: Preview, out_dir: Path) -> tuple[Path, Path]:
    """Write `preview.png` and `preview.html` into `out_dir`; returns their paths."""
    from mminstruct.preview.draw import draw_annotations
    from mminstruct.preview.html import render_html

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MminstructError(
            f"--out {out_dir}: cannot make this folder ({exc.strerror}); choose another with --out"
        ) from None
    buffer = io.BytesIO()
    draw_annotations(p.image.data, p.record, p.shown).save(buffer, format="PNG")
    png, html = out_dir / "preview.png", out_dir / "preview.html"
    write_atomic(png, buffer.getvalue())
    write_atomic(html, render_html(p, buffer.getvalue()))
    return png, html
