"""Safe defaults: no code from configs, templates or models runs unless asked; nothing from
the input reaches the filesystem unchecked; image bombs are refused; keys stay secret.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import json
import logging
import tarfile
import threading
from pathlib import Path

import pytest
from PIL import Image
from support.fake_openai import FakeServer

from mminstruct.cli import main
from mminstruct.config import GeneratorConfig, load_config
from mminstruct.errors import ConfigError
from mminstruct.generate.prompts import build_messages, load_task_templates
from mminstruct.generate.rule_based import load_phrasings, render
from mminstruct.images import image_problem
from mminstruct.resources import shipped_dir

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "mminstruct").rglob("*.py"), *(REPO / "converters").rglob("*.py")])
PILLOW_LIMIT = 1024 * 1024 * 1024 // 4 // 3  # Pillow's own MAX_IMAGE_PIXELS


# --------------------------------------------------------------------------- the code itself


def calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """Every call with its dotted name (`yaml.load`, `eval`, `x.from_pretrained`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, target = [], node.func
            while isinstance(target, ast.Attribute):
                parts.append(target.attr)
                target = target.value
            if isinstance(target, ast.Name):
                parts.append(target.id)
            found.append((".".join(reversed(parts)), node))
    return found


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


UNSAFE = {
    "eval": "runs code from a string",
    "exec": "runs code from a string",
    "__import__": "imports by a name from data",
    "yaml.load": "constructs Python objects from YAML; use yaml.safe_load",
    "yaml.unsafe_load": "constructs Python objects from YAML; use yaml.safe_load",
    "yaml.full_load": "constructs Python objects from YAML; use yaml.safe_load",
    "pickle.load": "unpickling runs code",
    "pickle.loads": "unpickling runs code",
    "marshal.loads": "loads code objects",
    "os.system": "runs a shell",
    "os.popen": "runs a shell",
    "jinja2.Template": "a Jinja template can reach Python objects; render with str methods",
    "jinja2.Environment": "a Jinja template can reach Python objects; render with str methods",
}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_code_runs_from_data(path: Path):
    """No eval, unsafe YAML, unpickling, shell, trust_remote_code=True or pickle weights."""
    problems = []
    for name, call in calls(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(REPO)}:{call.lineno}: {name}"
        short = ".".join(name.split(".")[-2:])
        if name in UNSAFE or short in UNSAFE:
            problems.append(f"{where}: {UNSAFE.get(name) or UNSAFE[short]}")
        if name.endswith("torch.load") and not is_true(keyword(call, "weights_only")):
            problems.append(f"{where}: torch.load without weights_only=True unpickles")
        if is_true(keyword(call, "shell")):
            problems.append(f"{where}: shell=True")
        if is_true(keyword(call, "trust_remote_code")):
            problems.append(f"{where}: trust_remote_code=True; it must come from the config")
        safetensors = keyword(call, "use_safetensors")
        if isinstance(safetensors, ast.Constant) and safetensors.value is False:
            problems.append(f"{where}: use_safetensors=False allows pickle weights")
        if name.endswith("from_pretrained") and not _options_from_config(call):
            problems.append(f"{where}: pass trust_remote_code from the config")
    assert problems == []


def _options_from_config(call: ast.Call) -> bool:
    """`from_pretrained(..., trust_remote_code=config...)` or `**load_options(config)`."""
    value = keyword(call, "trust_remote_code")
    if value is not None:
        return "config" in ast.unparse(value)
    return any(k.arg is None and "load_options" in ast.unparse(k.value) for k in call.keywords)


def test_model_code_and_pickle_are_off_by_default():
    config = GeneratorConfig()
    assert config.trust_remote_code is False and config.allow_pickle is False


# --------------------------------------------------------------------------- YAML and templates

PAYLOAD = "!!python/object/apply:os.system ['touch {mark}']"


def test_yaml_tags_never_run_code(tmp_path: Path):
    mark = tmp_path / "pwned"
    payload = PAYLOAD.format(mark=mark)
    config = tmp_path / "job.yaml"
    config.write_text(f"sources: []\noutput:\n  dir: {payload}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(config)
    templates = tmp_path / "templates"
    templates.mkdir()
    for task in ("conversation", "detail", "reasoning"):
        (templates / f"{task}.yaml").write_text(f"system: {payload}\nexamples: []\nquery: x\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_task_templates(templates)
    (templates / "rule_based.yaml").write_text(f"detail:\n  question: {payload}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_phrasings(templates)
    # An override is parsed as YAML too: the tag fails, the text stays text.
    shipped = load_config("demo", [f"output.dir={payload}"])
    assert shipped.output.dir == payload
    assert not mark.exists()


def test_templates_from_disk_render_as_plain_text(tmp_path: Path):
    """Jinja, format fields and attribute lookups in a user's templates stay literal."""
    folder = tmp_path / "templates"
    folder.mkdir()
    tricks = "{{ cycler.__init__.__globals__.os.popen('id').read() }} {% for x in y %}{0.__class__}"
    for task in ("conversation", "detail", "reasoning"):
        text = {
            "system": f"System {tricks}",
            "examples": [{"context": "{context}", "answer": "Question: a?\nAnswer: b."}],
            "query": "Context: {context} {context.__class__} %s %(x)s",
        }
        (folder / f"{task}.yaml").write_text(json.dumps(text))
    template = load_task_templates(folder)["conversation"]
    context = "A sign says {context} and {{7*7}}."
    messages = build_messages(template, context)
    assert messages[0]["content"] == f"System {tricks}"
    assert messages[1]["content"] == "Context: {context} {context.__class__} %s %(x)s"
    assert messages[-1]["content"] == f"Context: {context} {{context.__class__}} %s %(x)s"
    assert "49" not in messages[-1]["content"]
    # The rule-based phrasings fill `{name}` only; an attribute lookup is left as written.
    assert render("{first.__class__.__init__.__globals__} {first}", {"first": "dog"}) == (
        "{first.__class__.__init__.__globals__} dog"
    )


# --------------------------------------------------------------------------- output names


HOSTILE_IDS = [
    "../../outside",
    "/etc/passwd",
    "a.b.c",
    "x" * 300,
    "line\nbreak",
    "nul\x00byte",
    "😀",
    "C:\\Windows\\win.ini",
    "-1",
    "shard-000000",
    "abc-h0123456789ab",
    -5,
    0,
]


def test_output_names_come_only_from_sanitized_keys(tmp_path: Path):
    images = tmp_path / "in" / "images"
    images.mkdir(parents=True)
    entries, boxes = [], []
    for n, image_id in enumerate(HOSTILE_IDS):
        Image.new("RGB", (16, 12), (n * 9, 80, 120)).save(images / f"{n}.png")
        entries.append({"id": image_id, "file_name": f"{n}.png", "width": 16, "height": 12})
        boxes.append({"id": n, "image_id": image_id, "category_id": 1, "bbox": [1, 1, 8, 6]})
    instances = tmp_path / "in" / "instances.json"
    instances.write_text(
        json.dumps(
            {"images": entries, "annotations": boxes, "categories": [{"id": 1, "name": "dog"}]}
        )
    )
    source = {"kind": "coco", "images": str(images), "instances": str(instances)}
    job = tmp_path / "in" / "job.yaml"
    job.write_text(json.dumps({"sources": [source], "output": {"dir": str(tmp_path / "out")}}))
    before = {p for p in tmp_path.rglob("*")}
    assert main(["build", str(job), "-q"]) == 0
    created = {p for p in tmp_path.rglob("*")} - before
    assert all(p.is_relative_to(tmp_path / "out") for p in created)
    members = []
    for shard in (tmp_path / "out").glob("shard-*.tar"):
        with tarfile.open(shard) as tar:
            members += [(m.name, m.isfile()) for m in tar.getmembers()]
    keys = {name.rsplit(".", 1)[0] for name, _ in members}
    assert len(keys) == len(HOSTILE_IDS)  # one sample each, none merged with another
    for name, regular in members:
        stem, _, extension = name.partition(".")
        assert regular and extension in ("json", "png") and len(name.encode()) < 100
        assert stem.replace("-", "").replace("_", "").isalnum() and stem.isascii()


# --------------------------------------------------------------------------- image bombs


def test_pillow_bomb_limit_is_never_lifted():
    """No module sets Pillow's limit (read the source: importing the model backends would
    cost seconds of torch), and the modules a build imports leave it where it was."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            assigned = isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            named = isinstance(node, ast.Constant) and node.value == "MAX_IMAGE_PIXELS"
            assert not (assigned and node.attr == "MAX_IMAGE_PIXELS") and not named, path
    for name in (
        "pipeline",
        "cli",
        "images",
        "generate.model",
        "generate.backends.openai",
        "preview",
        "publish.export",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(f"mminstruct.{name}")
    assert Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT


def test_an_image_over_the_limit_is_refused_not_decoded():
    """Between 1x and 2x the limit Pillow only warns; that is a refusal too."""
    side = int(PILLOW_LIMIT**0.5) + 100
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")  # 1 bit per pixel: small file
    reason, detail = image_problem(buffer.getvalue(), side, side, "decode")
    assert reason == "image_too_large" and "decompression bomb" in detail


# --------------------------------------------------------------------------- secrets

KEY_ENV = "MMINSTRUCT_TEST_SECRET_KEY"
SECRET = "sk-live-do-not-write-me-0123456789"


def test_api_key_is_never_written_or_logged(tmp_path: Path, monkeypatch, capsys, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = FakeServer()
    server.plan = ["400", "500", "401"] * 2  # error bodies that echo the Authorization header
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    out = tmp_path / "out"
    args = ["build", "demo", "--limit", "2", "--set", f"output.dir={out}"]
    args += ["--set", "generator.backend=openai", "--set", "generator.model=served"]
    args += [
        "--set",
        f"generator.base_url={server.url}",
        "--set",
        f"generator.api_key_env={KEY_ENV}",
    ]
    args += ["--set", "generator.max_retries=0", "--set", "generator.retry=false"]
    try:
        with caplog.at_level(logging.DEBUG):
            assert main(args) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert server.auth[0] == f"Bearer {SECRET}"  # the key was used...
    rejects = (out / "rejects.jsonl").read_text()
    assert "Bearer ***" in rejects  # ...echoed back by the server, and blanked out
    printed = capsys.readouterr()
    for text in (printed.out, printed.err, caplog.text):
        assert SECRET not in text
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert KEY_ENV in (out / "config.yaml").read_text()  # the variable's name is what is saved


def test_shipped_configs_name_no_secret():
    for path in sorted(shipped_dir("configs").glob("*.yaml")):
        generator = load_config(path).generator
        assert generator.api_key_env.isidentifier(), path
        assert "@" not in generator.base_url, path
