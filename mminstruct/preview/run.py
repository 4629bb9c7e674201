"""`mminstruct preview`: one image through the build's own code path, shown in full.

The image comes from the configured sources (`--image-id`) or is a bare file with an
optional small annotations JSON (`--image`, see `annotations.py`). It goes through
`pipeline.generate_batch`, exactly as in `build`; for model backends the generator's trace
keeps every prompt: the exact messages with token counts, the raw completion and how it
parsed. The result is printed as text (`format_preview`) and written as `preview.png` (the
image with boxes, labels and relation arrows) and `preview.html` (self-contained).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from PIL import Image

from mminstruct.config import Config, ContextConfig
from mminstruct.context import context_relations, object_labels, render_context, visible_indices
from mminstruct.errors import MminstructError
from mminstruct.images import load_image
from mminstruct.io import write_atomic
from mminstruct.keys import sample_key
from mminstruct.preview.annotations import read_annotations
from mminstruct.preview.report import Call, Preview
from mminstruct.records import ImageRecord, Rejection, Relation

BARE_DATASET = "image"  # dataset name of a bare `--image` (the prefix of its sample key)


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
    """A record for a bare image file, with what `annotations` says (see
    `annotations.read_annotations`; its boxes exhaustive for their categories, as a COCO
    file's) or nothing at all."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise MminstructError(f"--image {path}: no such file")
    width, height = _image_size(path)
    found = read_annotations(annotations, width, height)
    stem = path.stem
    return ImageRecord(
        dataset=BARE_DATASET,
        image_id=int(stem) if stem.isdecimal() else stem,
        file_name=path.name,
        images_dir=path.parent,
        width=width,
        height=height,
        captions=found.captions,
        objects=found.objects,
        relations=found.relations,
        vocabulary=found.vocabulary,
    )


def _image_size(path: Path) -> tuple[int, int]:
    """The pixel size in the file's header; a header claiming more pixels than Pillow's limit
    is refused as a build refuses it (`image_too_large`), before a pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MminstructError(
            f"cannot preview this image: image_too_large: {path}: its header claims more than "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels, refused as a possible decompression bomb (a "
            "build rejects it too); if it is a real photo, scale it down first"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MminstructError(f"--image {path}: not an image Pillow can read ({exc})") from None


# --------------------------------------------------------------------------- the run


def preview(config: Config, record: ImageRecord) -> Preview:
    """Run `record` through the generator exactly as `build` does, keeping the trace."""
    from mminstruct.generate import make_generator
    from mminstruct.output import sample_record
    from mminstruct.pipeline import generate_batch

    image = load_image(record, config.output.image_check, max_bytes=config.output.max_image_bytes)
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
    shown, labels, relations = context_names(record, config.context)
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
        labels=labels,
        relations=tuple(relations),
    )


def context_names(
    record: ImageRecord, options: ContextConfig
) -> tuple[tuple[int, ...], dict[int, str], list[Relation]]:
    """What the context shows, for the picture: the indices of the objects, their names
    (`person 2`, as the box lines say them) and the relations, derived ones included."""
    shown = visible_indices(record, options)
    relations = (
        context_relations(record, options, shown) if options.relations and options.boxes else []
    )
    return tuple(shown), object_labels(record, shown, options, bool(relations)), relations


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
    picture = draw_annotations(p.image.data, p.record, p.shown, p.labels, p.relations)
    picture.save(buffer, format="PNG")
    png, html = out_dir / "preview.png", out_dir / "preview.html"
    write_atomic(png, buffer.getvalue())
    write_atomic(html, render_html(p, buffer.getvalue()))
    return png, html
