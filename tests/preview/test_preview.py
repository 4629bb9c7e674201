"""`mminstruct preview`: one image through build's own code path, drawn and shown in full."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.templates import SHORT_TEMPLATES, write_short_templates

from mminstruct.cli import main
from mminstruct.config import load_config
from mminstruct.errors import ConfigError
from mminstruct.preview.run import bare_record, find_record, preview, read_annotations

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "mminstruct" / "sample" / "images"


def job(tmp_path: Path, source: dict) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps({"sources": [source]}))
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def outline_changed(drawn: np.ndarray, original: np.ndarray, box: list[float]) -> float:
    """The share of pixels on a box's outline that differ from the original image."""
    x, y, w, h = box
    x0, y0 = round(x), round(y)
    x1, y1 = max(x0, round(x + w) - 1), max(y0, round(y + h) - 1)
    ring = np.zeros(original.shape[:2], bool)
    ring[y0, x0 : x1 + 1] = ring[y1, x0 : x1 + 1] = True
    ring[y0 : y1 + 1, x0] = ring[y0 : y1 + 1, x1] = True
    return float((drawn[ring] != original[ring]).any(axis=1).mean())


def test_real_coco_image_boxes_drawn_where_they_belong(tmp_path, tiny_coco, capsys):
    out = tmp_path / "preview"
    assert (
        main(["preview", str(job(tmp_path, tiny_coco)), "--image-id", "565004", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert f"wrote {out / 'preview.png'}" in printed and f"wrote {out / 'preview.html'}" in printed
    coco = json.loads(Path(tiny_coco["instances"]).read_text())
    info = next(i for i in coco["images"] if i["id"] == 565004)
    original = pixels(Path(tiny_coco["images"]) / info["file_name"])
    drawn = pixels(out / "preview.png")
    assert drawn.shape == original.shape
    boxes = [a["bbox"] for a in coco["annotations"] if a["image_id"] == 565004]
    assert boxes
    for box in boxes:  # every box's outline is painted, at the annotated place
        assert outline_changed(drawn, original, box) > 0.9, box
    # Only outlines, labels and arrows are painted: most of the photo is untouched.
    assert (drawn == original).all(axis=2).mean() > 0.5


def test_preview_text_shows_context_instructions_and_rejections(tmp_path, capsys):
    assert main(["preview", "demo", "--image-id", "3", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "image      demo-000000000003  (320x240 png)" in text
    assert "== context" in text and "cup: [0.213, 0.475, 0.306, 0.613]" in text
    assert "(none: the template backend writes from the annotations" in text
    assert "== instructions (as written to the shard) ==" in text and "[detail] 1 turn(s)" in text
    assert "  human: " in text and "  gpt: " in text and "== rejections ==" in text


def test_preview_is_what_build_writes(tmp_path):
    out = tmp_path / "out"
    assert main(["build", "demo", "-q", "--set", f"output.dir={out}"]) == 0
    written = {}
    for shard in out.glob("shard-*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    written[member.name[:-5]] = json.loads(tar.extractfile(member).read())
    config = load_config("demo")
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    for image_id in (1, 3, 12):
        result = preview(config, find_record(config, str(image_id)))
        assert result.instructions == written[result.key]["instructions"]
        expected = [r for r in rejects if r["image_id"] == image_id]
        assert [r.to_json() for r in result.rejections] == expected


def test_html_is_self_contained_and_holds_everything(tmp_path):
    assert main(["preview", "demo", "--image-id", "12", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "preview.html").read_text()

    sources: list[str] = []

    class Refs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            sources.extend(v for k, v in attrs if k in ("src", "href") and v)

    Refs().feed(page)
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")
    embedded = base64.b64decode(sources[0].split(",", 1)[1])
    assert embedded == (tmp_path / "preview.png").read_bytes()
    assert "<script" not in page and "<link" not in page  # opens offline, as is
    result = preview(load_config("demo"), find_record(load_config("demo"), "12"))
    for instruction in result.instructions:
        for turn in instruction["conversations"]:
            escaped = turn["value"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert escaped.replace("'", "&#x27;").replace('"', "&quot;") in page
    assert "&lt;image&gt;" in page and "<image>" not in page


def test_bare_image_with_annotations_draws_relations(tmp_path, tiny_coco):
    image = Path(tiny_coco["images"]) / "000000444010.jpg"
    annotations = {
        "captions": ["Three people at a dinner table."],
        "objects": [
            {"category": "person", "bbox": [272, 74, 211, 258]},
            {"category": "dining table", "bbox": [1, 220, 500, 259]},
        ],
        "relations": [{"subject": 0, "predicate": "sitting at", "object": 1}],
    }
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    out = tmp_path / "p"
    args = ["preview", "demo", "--image", str(image), "--annotations", str(tmp_path / "a.json")]
    assert main([*args, "--out", str(out)]) == 0
    record = bare_record(image, tmp_path / "a.json")
    assert (record.width, record.height, record.image_id) == (640, 480, 444010)
    assert [(r.subject, r.predicate, r.object) for r in record.relations] == [(0, "sitting at", 1)]
    drawn, original = pixels(out / "preview.png"), pixels(image)
    for obj in annotations["objects"]:
        assert outline_changed(drawn, original, obj["bbox"]) > 0.9
    # The arrow runs from the person's centre to the table's: painted along the way.
    (ax, ay), (bx, by) = (377.5, 203), (251, 349.5)
    points = [
        (round(ax + (bx - ax) * t), round(ay + (by - ay) * t)) for t in np.linspace(0.1, 0.9, 9)
    ]
    assert all((drawn[y, x] != original[y, x]).any() for x, y in points)


def test_annotation_errors_name_every_field(tmp_path, capsys):
    bad = {
        "captions": ["ok", ""],
        "objects": [
            {"category": "dog", "bbox": [600, 0, 100, 10]},
            {"category": "cat", "box": [0, 0, 1, 1]},
        ],
        "relation": [],
        "relations": [{"subject": 0, "predicate": "near", "object": 7}],
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError) as caught:
        read_annotations(tmp_path / "bad.json", 640, 480)
    problems = "\n".join(caught.value.problems)
    assert "captions.1: must be a non-empty string" in problems
    assert "objects.0.bbox: [600, 0, 100, 10] reaches outside the 640x480 image" in problems
    assert "objects.1.box: unknown key (did you mean 'bbox'?)" in problems
    assert "objects.1.bbox: must be [x, y, width, height] in pixels, got None" in problems
    assert "relation: unknown key (did you mean 'relations'?)" in problems
    assert "relations.0.object: must index objects (0 to 1), got 7" in problems
    image = SAMPLE / "000000000001.jpg"
    args = ["preview", "demo", "--image", str(image), "--annotations", str(tmp_path / "bad.json")]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert f"{tmp_path / 'bad.json'} has 6 problem(s)" in capsys.readouterr().err


def test_boxes_that_are_not_finite_are_named_not_drawn(tmp_path, capsys):
    """JSON allows NaN and Infinity; such a box is a field error, never a traceback later."""
    text = '{"objects": [{"category": "dog", "bbox": [NaN, 0, 10, 10]},'
    text += ' {"category": "cat", "bbox": [0, 0, Infinity, 10]}]}'
    (tmp_path / "nan.json").write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_annotations(tmp_path / "nan.json", 640, 480)
    assert caught.value.problems == [
        "objects.0.bbox: must hold 4 finite numbers, got [nan, 0, 10, 10]",
        "objects.1.bbox: must hold 4 finite numbers, got [0, 0, inf, 10]",
    ]
    image = str(SAMPLE / "000000000001.jpg")
    args = ["preview", "demo", "--image", image, "--annotations", str(tmp_path / "nan.json")]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert "has 2 problem(s)" in capsys.readouterr().err


def test_out_that_is_a_file_and_odd_digit_ids_are_clean_errors(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    assert main(["preview", "demo", "--image-id", "3", "--out", str(tmp_path / "taken")]) == 1
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'taken'}: cannot make this folder" in err and "Traceback" not in err
    assert (tmp_path / "taken").read_text() == "mine"
    # "²" is a digit to str.isdigit but not a number to int(): an unknown id, not a crash.
    assert main(["preview", "demo", "--image-id", "\u00b2", "--out", str(tmp_path / "o")]) == 1
    assert "image id \u00b2 is not in source(s) 'demo'" in capsys.readouterr().err


def test_image_ids_match_as_numbers_and_unknown_ones_are_named(tmp_path, tiny_coco, capsys):
    config = load_config(job(tmp_path, tiny_coco))
    assert find_record(config, "000000444010").image_id == 444010
    assert main(["preview", str(job(tmp_path, tiny_coco)), "--image-id", "139"]) == 1
    err = capsys.readouterr().err
    assert "image id 139 is not in source(s) 'tinycoco'; ids there include 471345" in err
    assert main(["preview", "demo", "--image-id", "1", "--source", "nope"]) == 1
    assert "--source 'nope' is not in the config; choose one of demo" in capsys.readouterr().err


def test_bare_image_without_annotations_rejects_every_task_for_the_template_backend(tmp_path):
    record = bare_record(SAMPLE / "000000000002.jpg")
    result = preview(load_config("demo"), record)
    assert result.instructions == [] and result.calls == ()
    reasons = {(r.task, r.reason) for r in result.rejections}
    assert ("conversation", "insufficient_annotations") in reasons
    assert (None, "no_instructions") in reasons


def test_rule_based_preview_starts_fast_and_light(tmp_path):
    code = (
        "import sys, time; start = time.perf_counter(); from mminstruct.cli import main; "
        f"code = main(['preview', 'demo', '-q', '--image-id', '5', '--out', {str(tmp_path)!r}]); "
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'huggingface_hub', 'datasets') "
        "if m in sys.modules]; print('heavy:', heavy, 'code:', code, 'seconds:', time.perf_counter() - start)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "heavy: [] code: 0" in result.stdout, result.stderr
    seconds = float(re.search(r"seconds: ([\d.]+)", result.stdout).group(1))
    assert seconds < 5, f"the rule-based preview took {seconds:.1f} s"
    assert (tmp_path / "preview.png").is_file() and (tmp_path / "preview.html").is_file()


# --------------------------------------------------------------------------- model backends


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """Short templates whose query marks the context ("Seen: "), to find it in the messages."""
    return write_short_templates(tmp_path_factory.mktemp("templates"), "Seen: {context}")


def model_config(backend: str, model: Path, templates: Path):
    return load_config(
        "demo",
        [
            f"generator.backend={backend}",
            f"generator.model={model}",
            f"generator.templates={templates}",
            "generator.max_new_tokens=16",
            "generator.temperature=0",
        ],
    )


def test_model_preview_shows_exact_messages_tokens_and_raw_completions(
    tmp_path, templates, capsys, lm_dir
):
    pytest.importorskip("transformers")

    from mminstruct.context.render import render_context
    from mminstruct.generate.prompts import build_messages, load_task_templates

    config = model_config("hf", lm_dir, templates)
    record = find_record(config, "3")
    result = preview(config, record)
    assert {c.task for c in result.calls} == set(SHORT_TEMPLATES)
    shipped = load_task_templates(templates)
    context = render_context(record, config.context)
    for call in result.calls:
        assert call.messages[0] == {"role": "system", "content": SHORT_TEMPLATES[call.task]}
        assert call.messages[-1]["content"].startswith("Seen: ")
        if call.task == "reasoning":  # boxes shown, as configured: the full context
            assert call.messages == build_messages(shipped["reasoning"], context)
        assert len(call.message_tokens) == len(call.messages) and min(call.message_tokens) > 0
        assert call.prompt_tokens >= max(call.message_tokens) and call.completion_tokens > 0
        assert call.verdict.startswith(("parsed:", "rejected:"))
    raw = {r.raw for r in result.rejections if r.raw is not None}
    finals = [c for c in result.calls if c.attempt == 1 and c.verdict.startswith("rejected")]
    assert all(c.completion in raw for c in finals)  # the raw completion is what was rejected
    args = ["preview", "demo", "--image-id", "3", "--out", str(tmp_path / "o")]
    args += ["--set", "generator.backend=hf", "--set", f"generator.model={lm_dir}"]
    args += ["--set", f"generator.templates={templates}", "--set", "generator.max_new_tokens=16"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert (
        "prompt tokens" in text and f"system ({result.calls[0].message_tokens[0]} tokens):" in text
    )
    assert "completion (" in text and "-> " in text


def test_vlm_preview_of_a_bare_image_works_from_pixels_alone(tmp_path, templates, vlm_dir):
    pytest.importorskip("transformers")

    config = model_config("hf-vlm", vlm_dir, templates)
    result = preview(config, bare_record(SAMPLE / "000000000004.jpg"))
    assert result.context == "" and result.calls
    assert all(c.with_image and c.messages[-1]["content"] == "Seen: " for c in result.calls)
    assert "insufficient_annotations" not in {r.reason for r in result.rejections}


@pytest.mark.parametrize("side", [11_000, 100_000], ids=["over_limit", "over_twice_limit"])
def test_decompression_bomb_is_refused_as_a_build_refuses_it(tmp_path, capsys, side):
    """A header claiming more pixels than Pillow allows: `image_too_large`, as in a build,
    from the real command, never a traceback (over twice the limit Pillow raises)."""
    from bad_inputs.files import bomb_png

    (tmp_path / "bomb.png").write_bytes(bomb_png(side))
    args = ["preview", "demo", "--image", str(tmp_path / "bomb.png"), "--out", str(tmp_path / "o")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"cannot preview this image: image_too_large: {tmp_path / 'bomb.png'}" in err
    assert "decompression bomb" in err and "scale it down" in err
    result = subprocess.run(
        [sys.executable, "-m", "mminstruct", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "Warning" not in result.stderr and "image_too_large" in result.stderr
    assert not (tmp_path / "o").exists()
