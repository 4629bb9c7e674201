"""The corpus: every bad input a long build may meet, each with its one exact outcome.

A case is a function that writes its inputs into a folder and returns the job config. Its
outcome is one of two things:

- `Fails`: the build stops before writing a shard, with exit status `code` and a message
  holding every one of `words` (they name the file, record and field and say what to do);
- `Built`: the build finishes; images written and rejected are exactly `written` and
  `rejected`, and `rejects.jsonl` holds `count` rows with `reason` and `scope` whose detail
  holds `words`. No other image or record row appears unless its reason is in `also`.

`{dir}` in `words` stands for the case's folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bad_inputs.files import (
    SIZE,
    Scene,
    bomb_png,
    exif_rotated_jpeg,
    image_entries,
    jpeg,
    png,
    tiff,
)


@dataclass(frozen=True)
class Fails:
    """The build stops with this exit status and a message holding `words`."""

    code: int
    words: tuple[str, ...]
    absent: tuple[str, ...] = ()  # text that must not appear in the message (a secret)


@dataclass(frozen=True)
class Built:
    """The build finishes with these counts and this rejection row."""

    written: int
    rejected: int
    reason: str | None = None  # None: no image or record is rejected at all
    scope: str = "image"  # "image" (the image is out) or "record" (one record skipped)
    words: tuple[str, ...] = ()
    count: int = 1  # rows with `reason`
    also: tuple[str, ...] = ()  # other image/record reasons that must appear too


Outcome = Fails | Built


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "annotations", "records", "images", "paths", "config"
    make: Callable[[Path], dict]  # writes the inputs into a folder, returns the job config
    expect: Outcome


CASES: list[Case] = []


def case(kind: str, expect: Outcome) -> Callable:
    """Register the decorated function as a case of the corpus."""

    def register(make: Callable[[Path], dict]) -> Callable[[Path], dict]:
        CASES.append(Case(make.__name__, kind, make, expect))
        return make

    return register


def _instances_json(scene: Scene) -> dict:
    return {"images": scene.images, "annotations": scene.boxes, "categories": scene.categories}


# --------------------------------------------------------------------------- annotation files

NOT_JSON = ("{dir}/instances.json: not valid JSON", "may be truncated or not a COCO file")


@case("annotations", Fails(1, NOT_JSON))
def not_json(folder: Path) -> dict:
    return Scene(instances_text="images: [this is YAML, not JSON]").write(folder)


@case("annotations", Fails(1, NOT_JSON))
def truncated_json(folder: Path) -> dict:
    text = json.dumps(_instances_json(Scene()))
    return Scene(instances_text=text[: len(text) // 2]).write(folder)


@case("annotations", Fails(1, ("{dir}/instances.json: file is empty",)))
def empty_file(folder: Path) -> dict:
    return Scene(instances_text="").write(folder)


@case(
    "annotations",
    Fails(
        1,
        (
            "{dir}/instances.json: not a COCO annotation file: the top level is a JSON list",
            "looks like a results file",
        ),
    ),
)
def top_level_is_a_list(folder: Path) -> dict:
    return Scene(instances_text=json.dumps([_instances_json(Scene())])).write(folder)


def _without(key: str) -> Callable[[Path], dict]:
    def make(folder: Path) -> dict:
        data = _instances_json(Scene())
        del data[key]
        return Scene(instances_text=json.dumps(data)).write(folder)

    return make


for _key in ("images", "annotations", "categories"):
    words = (
        f"{{dir}}/instances.json: not a COCO annotation file: no '{_key}' list at the top level",
    )
    CASES.append(Case(f"missing_{_key}", "annotations", _without(_key), Fails(1, words)))


@case("annotations", Fails(1, ("{dir}/instances.json", "got `object` - at `$.images`")))
def images_not_a_list(folder: Path) -> dict:
    data = _instances_json(Scene()) | {"images": {"1": image_entries()[0]}}
    return Scene(instances_text=json.dumps(data)).write(folder)


@case("annotations", Fails(1, ("{dir}/instances.json", "got `int` - at `$.annotations[1]`")))
def record_not_an_object(folder: Path) -> dict:
    scene = Scene()
    scene.boxes.insert(1, 7)
    return scene.write(folder)


@case("annotations", Fails(1, ("{dir}/instances.json: categories[1]", "non-empty 'name'")))
def category_without_name(folder: Path) -> dict:
    scene = Scene()
    scene.categories[1] = {"id": 2}
    return scene.write(folder)


@case("annotations", Fails(1, ("{dir}/nope.json: file not found; check the path in your config",)))
def annotation_file_missing(folder: Path) -> dict:
    job = Scene().write(folder)
    job["sources"][0]["instances"] = str(folder / "nope.json")
    return job


@case("annotations", Fails(1, ("{dir}/images: is a folder; give the path of a JSON file",)))
def annotation_file_is_a_folder(folder: Path) -> dict:
    job = Scene().write(folder)
    job["sources"][0]["captions"] = str(folder / "images")
    return job


# --------------------------------------------------------------------------- records


@case(
    "records",
    Built(2, 0, "duplicate_image_entry", "record", ("instances.json: images[2] (id 1)",)),
)
def duplicate_image_entry(folder: Path) -> dict:
    scene = Scene(caption_images=image_entries())
    scene.images.append(dict(scene.images[0]))
    return scene.write(folder)


@case(
    "records",
    Built(
        1,
        1,
        "conflicting_image_entries",
        "image",
        ("instances.json: images[2] (id 1): file_name/width/height b.png/64/48 disagree",),
    ),
)
def duplicate_image_id_for_another_file(folder: Path) -> dict:
    scene = Scene(caption_images=image_entries())
    scene.images.append({**scene.images[0], "file_name": "b.png"})
    return scene.write(folder)


@case(
    "records",
    Built(2, 0, "duplicate_annotation_id", "record", ("instances.json: annotations[1] (id 10)",)),
)
def duplicate_annotation_id(folder: Path) -> dict:
    scene = Scene()
    scene.boxes[1]["id"] = 10
    return scene.write(folder)


@case(
    "records",
    Built(
        1,
        1,
        "unknown_category",
        "image",
        ("instances.json: annotations[0] (id 10): category_id 99 is not in 'categories'",),
    ),
)
def undefined_category(folder: Path) -> dict:
    scene = Scene()
    scene.boxes[0]["category_id"] = 99
    return scene.write(folder)


def _bad_box(name: str, bbox: list, words: str, text: str | None = None) -> None:
    """Register a case whose first box (of image 1) is `bbox` (`text`: as written in JSON)."""

    def make(folder: Path) -> dict:
        scene = Scene()
        scene.boxes[0]["bbox"] = bbox
        if text is not None:  # a value strict JSON cannot hold: written by hand
            scene.instances_text = json.dumps(_instances_json(scene)).replace(
                json.dumps(bbox), text
            )
        return scene.write(folder)

    detail = f"instances.json: annotations[0] (id 10): bbox {words}"
    CASES.append(Case(name, "records", make, Built(1, 1, "bad_box", "image", (detail,))))


_bad_box("bbox_nan", [0, 4, 20, 16], "[nan, 4, 20, 16] is not finite", text="[NaN, 4, 20, 16]")
_bad_box("bbox_negative_width", [4, 4, -20, 16], "[4, 4, -20, 16] has non-positive width or height")
_bad_box("bbox_zero_height", [4, 4, 20, 0], "[4, 4, 20, 0] has non-positive width or height")
_bad_box(
    "bbox_outside_the_image", [100, 4, 20, 16], "[100, 4, 20, 16] lies outside the 64x48 image"
)
_bad_box("bbox_wrong_length", [4, 4, 20], "[4, 4, 20] must be a list [x, y, width, height]")
_bad_box("bbox_strings", [4, "4", 20, 16], "[4, '4', 20, 16] must hold 4 numbers")


@case(
    "records",
    Built(
        1,
        1,
        "bad_image_entry",
        "image",
        ("instances.json: images[0]: 'width' must be a positive integer, got None",),
    ),
)
def width_missing(folder: Path) -> dict:
    scene = Scene(caption_images=image_entries())
    del scene.images[0]["width"]
    return scene.write(folder)


@case(
    "records",
    Built(
        1,
        1,
        "bad_image_entry",
        "image",
        ("instances.json: images[0]: 'height' must be a positive integer, got 0",),
    ),
)
def height_zero(folder: Path) -> dict:
    scene = Scene(caption_images=image_entries())
    scene.images[0]["height"] = 0
    return scene.write(folder)


def _caption_case(name: str, value: object, words: str, text: bytes | None = None) -> None:
    def make(folder: Path) -> dict:
        scene = Scene()
        scene.captions[0]["caption"] = value
        if text is not None:
            data = {"images": scene.images, "annotations": scene.captions}
            scene.captions_text = json.dumps(data).encode().replace(b"@@", text)
        return scene.write(folder)

    where = "captions.json: annotations[0] (id 100): caption "
    expect = Built(2, 0, "bad_caption", "record", (where + words,))
    CASES.append(Case(name, "records", make, expect))


_caption_case("caption_empty", "", "'' is empty or not text; skipped")
_caption_case(
    "caption_huge",
    "a dog " * 200_000,
    "'a dog a dog a dog a dog a dog a dog ... is over 2000 characters; skipped",
)
_caption_case(
    "caption_not_utf8", "@@", "'caf\ufffd au lait' is not valid UTF-8 text", text=b"caf\xe9 au lait"
)
_caption_case(
    "caption_control_characters_only",
    "\x00\x07\x1b\x7f\u200b",
    "'\\x00\\x07\\x1b\\x7f\\u200b' is empty or not text; skipped",
)
_caption_case("caption_not_a_string", 42, "42 is empty or not text")


@case("records", Built(2, 0))
def image_ids_are_strings(folder: Path) -> dict:
    scene = Scene()
    for entry in scene.images:
        entry["id"] = str(entry["id"])
    for record in (*scene.boxes, *scene.captions):
        record["image_id"] = str(record["image_id"])
    return scene.write(folder)


@case(
    "records",
    Built(
        2,
        0,
        "annotation_without_image",
        "record",
        ("instances.json: annotations[0] (id 10): image_id '1' has no entry in 'images'",),
    ),
)
def annotation_image_id_of_the_wrong_type(folder: Path) -> dict:
    scene = Scene()
    scene.boxes[0]["image_id"] = "1"
    return scene.write(folder)


@case(
    "records",
    Built(
        2,
        0,
        "caption_without_image",
        "record",
        ("captions.json: annotations[1] (id 200): image_id 404 has no entry",),
    ),
)
def caption_of_no_image(folder: Path) -> dict:
    scene = Scene()
    scene.captions[1]["image_id"] = 404
    scene.captions.append({"id": 201, "image_id": 2, "caption": "A dog in the grass."})
    return scene.write(folder)


@case(
    "records",
    Built(
        2, 0, "relation_missing_object", "record", ("relations.json: relations[1]", "object_id 999")
    ),
)
def relation_to_a_missing_object(folder: Path) -> dict:
    relations = [
        {"image_id": 1, "subject_id": 10, "object_id": 11, "predicate": "next to"},
        {"image_id": 1, "subject_id": 10, "object_id": 999, "predicate": "chasing"},
    ]
    (folder / "relations.json").write_text(json.dumps({"relations": relations}))
    job = Scene().write(folder)
    job["sources"][0]["relations"] = str(folder / "relations.json")
    return job


@case(
    "annotations",
    Fails(
        1, ("{dir}/relations.json: not a relations file", "not UTF-8 text: byte 0xe9 at offset 81")
    ),
)
def relations_file_not_utf8(folder: Path) -> dict:
    relation = b'{"image_id": 1, "subject_id": 10, "object_id": 11, "predicate": "n\xe9ar"}'
    (folder / "relations.json").write_bytes(b'{"relations": [' + relation + b"]}")
    job = Scene().write(folder)
    job["sources"][0]["relations"] = str(folder / "relations.json")
    return job


# --------------------------------------------------------------------------- image files


def _image_case(
    name: str, data: bytes | None, expect: Outcome, entry: dict | None = None, boxes=None
) -> None:
    def make(folder: Path) -> dict:
        scene = Scene()
        scene.files["a.jpg"] = data
        scene.images[0].update(entry or {})
        for box, bbox in zip(scene.boxes, boxes or (), strict=False):
            box["bbox"] = bbox
        return scene.write(folder)

    CASES.append(Case(name, "images", make, expect))


def _rejects(reason: str, words: str) -> Built:
    return Built(1, 1, reason, "image", (words,))


_JPEG = jpeg()
_image_case(
    "image_missing", None, _rejects("missing_image", "a.jpg: no such file under {dir}/images")
)
_image_case(
    "image_zero_bytes",
    b"",
    _rejects("unreadable_image", "{dir}/images/a.jpg: file is empty (0 bytes)"),
)
_image_case(
    "image_truncated_jpeg",
    _JPEG[: len(_JPEG) // 2],
    _rejects("unreadable_image", "{dir}/images/a.jpg: truncated JPEG file (no end marker)"),
)
_image_case(
    "image_not_an_image",
    b"<html><body>404 Not Found</body></html>",
    _rejects("not_an_image", "{dir}/images/a.jpg: not an image file Pillow can read"),
)
_image_case(
    "image_size_differs",
    jpeg((32, 24)),
    _rejects("size_mismatch", "{dir}/images/a.jpg: annotations say 64x48, the file is 32x24"),
)
_image_case(
    "image_decompression_bomb",
    bomb_png(),
    _rejects("image_too_large", "{dir}/images/a.jpg: refused as a possible decompression bomb"),
)
_image_case(
    "image_tiff",
    tiff(),
    _rejects(
        "unsupported_image_format",
        "{dir}/images/a.jpg: TIFF images are not supported; convert to JPEG or PNG",
    ),
)
_image_case("image_cmyk_jpeg", jpeg(mode="CMYK"), Built(2, 0))
_image_case("image_16bit_png", png(mode="I;16"), Built(2, 0))
_image_case("image_exif_rotated", exif_rotated_jpeg(), Built(2, 0))
_image_case(
    "image_exif_rotated_annotated_as_shown",
    exif_rotated_jpeg(),
    _rejects("size_mismatch", "annotations say 48x64, the file is 64x48 (EXIF orientation 6"),
    entry={"width": SIZE[1], "height": SIZE[0]},
    boxes=([4, 4, 20, 16], [20, 10, 20, 30]),
)


# --------------------------------------------------------------------------- paths


def _secret(folder: Path) -> Path:
    """An image outside the images folder, that no file_name may reach."""
    (folder / "outside").mkdir(exist_ok=True)
    path = folder / "outside" / "a.jpg"
    path.write_bytes(jpeg())
    return path


def _path_case(
    name: str, file_name: Callable[[Path], str], words: str, reason="unsafe_path"
) -> None:
    def make(folder: Path) -> dict:
        scene = Scene()
        scene.files["a.jpg"] = None
        job = scene.write(folder)
        name = file_name(folder)
        for source in ("instances.json", "captions.json"):
            data = json.loads((folder / source).read_text())
            data["images"][0]["file_name"] = name
            (folder / source).write_text(json.dumps(data))
        return job

    CASES.append(Case(name, "paths", make, _rejects(reason, words)))


def _symlink(folder: Path) -> str:
    (folder / "images").mkdir(exist_ok=True)
    os.symlink(_secret(folder), folder / "images" / "link.jpg")
    return "link.jpg"


def _symlinked_folder(folder: Path) -> str:
    _secret(folder)
    (folder / "images").mkdir(exist_ok=True)
    os.symlink(folder / "outside", folder / "images" / "more")
    return "more/a.jpg"


INSIDE = "must be a relative path inside the images folder"
_path_case(
    "path_with_dot_dot",
    lambda d: (_secret(d), "../outside/a.jpg")[1],
    f"file_name '../outside/a.jpg' {INSIDE}",
)
_path_case(
    "path_absolute", lambda d: str(_secret(d)), f"file_name '{{dir}}/outside/a.jpg' {INSIDE}"
)
_path_case(
    "path_symlink_out",
    _symlink,
    "{dir}/images/link.jpg links outside the images folder {dir}/images",
)
_path_case(
    "path_symlinked_folder_out",
    _symlinked_folder,
    "{dir}/images/more/a.jpg links outside the images folder",
)
_path_case(
    "path_with_nul_byte",
    lambda d: "a\x00.jpg",
    "a\x00.jpg: no such file under {dir}/images",
    reason="missing_image",
)


@case(
    "paths",
    Fails(
        2,
        (
            "sources.0.images: images folder {dir}/nope does not exist",
            "--set sources.0.images=PATH",
        ),
    ),
)
def images_folder_missing(folder: Path) -> dict:
    job = Scene().write(folder)
    job["sources"][0]["images"] = str(folder / "nope")
    return job


# --------------------------------------------------------------------------- configs


def _config_case(name: str, extra: dict, code: int, *words: str, absent: tuple = ()) -> None:
    def make(folder: Path) -> dict:
        return Scene(config=_resolve(extra, folder)).write(folder)

    CASES.append(Case(name, "config", make, Fails(code, words, absent)))


def _resolve(value: object, folder: Path) -> object:
    """`{dir}` in config values is the case's folder."""
    if isinstance(value, dict):
        return {k: _resolve(v, folder) for k, v in value.items()}
    return value.replace("{dir}", str(folder)) if isinstance(value, str) else value


_config_case(
    "config_unknown_key",
    {"generator": {"batchsize": 4}},
    2,
    "unknown key 'generator.batchsize' (did you mean 'batch_size'?)",
)
_config_case(
    "config_wrong_type",
    {"generator": {"batch_size": "many"}},
    2,
    "generator.batch_size: expected an integer, got 'many' (str)",
)
_config_case(
    "config_negative_batch_size",
    {"generator": {"batch_size": -4}},
    2,
    "generator.batch_size: must be at least 1, got -4",
)
_config_case(
    "config_sources_not_a_list",
    {"sources": {"kind": "coco"}},
    2,
    "sources: expected a list of sources, got {'kind': 'coco'} (dict)",
)
_config_case(
    "config_failure_rate_out_of_range",
    {"generator": {"max_failure_rate": 1.5}},
    2,
    "generator.max_failure_rate: must be between 0 and 1, got 1.5",
)
_config_case(
    "config_api_key_in_place_of_its_variable",
    {"generator": {"backend": "openai", "model": "m", "api_key_env": "sk-live-0123456789abcdef"}},
    2,
    "generator.api_key_env: must be the name of an environment variable",
    absent=("sk-live-0123456789abcdef",),
)
_config_case(
    "config_credentials_in_base_url",
    {"generator": {"backend": "openai", "model": "m", "base_url": "http://me:hunter22@host/v1"}},
    2,
    "generator.base_url: must not hold a user name or password",
    absent=("hunter22",),
)


def _occupied(folder: Path) -> None:
    (folder / "taken").write_text("a file, not a folder")
    (folder / "theirs").mkdir()
    (folder / "theirs" / "notes.txt").write_text("someone else's")


def _output_case(name: str, out: str, *words: str) -> None:
    def make(folder: Path) -> dict:
        _occupied(folder)
        return Scene(config={"output": {"dir": out.replace("{dir}", str(folder))}}).write(folder)

    CASES.append(Case(name, "config", make, Fails(1, words)))


_output_case(
    "output_dir_is_a_file", "{dir}/taken", "output.dir {dir}/taken is a file; choose a folder"
)
_output_case(
    "output_dir_inside_a_file",
    "{dir}/taken/out",
    "cannot write to output.dir {dir}/taken/out",
    "choose a writable folder",
)
_output_case(
    "output_dir_of_someone_else",
    "{dir}/theirs",
    "output.dir {dir}/theirs is not empty and was not written by mminstruct",
)
