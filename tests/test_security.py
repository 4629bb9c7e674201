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
            assert main(args) == 1  # every request failed: nothing written
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


# --------------------------------------------------------------------------- secrets: pieces (issue 13)


def key_runs(text: str, secret: str = SECRET) -> list[str]:
    """Every run of 8 characters of `secret` still in `text`."""
    runs = {secret[i : i + 8] for i in range(len(secret) - 7)}
    return sorted(run for run in runs if run in text)


@pytest.fixture
def registered():  # yields the registered secret
    from mminstruct import redact

    redact.register_secret(SECRET)
    yield SECRET
    redact.forget_secrets()


def test_redact_replaces_the_key_and_every_run_of_8_of_its_characters(registered):
    from mminstruct.redact import MARKER, redact

    text = f"a {SECRET} b {SECRET[:10]} c {SECRET[3:12]}{SECRET[-9:]} d {SECRET[:7]} e"
    redacted, count = redact(text)
    assert key_runs(redacted) == [] and count == 4  # two glued runs are two pieces
    assert redacted == f"a {MARKER} b {MARKER} c {MARKER}{MARKER} d {SECRET[:7]} e"
    assert redact("nothing secret here") == ("nothing secret here", 0)
    pieces = "".join(SECRET[i : i + 8] + "|" for i in range(len(SECRET) - 7))
    redacted, count = redact(pieces)
    assert key_runs(redacted) == [] and count == len(SECRET) - 7


def test_log_records_are_redacted_message_arguments_and_exception(registered):
    from mminstruct.redact import install_log_redaction

    stream = io.StringIO()
    logger = logging.getLogger("mminstruct.test.redaction")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(stream))
    install_log_redaction(logger)
    install_log_redaction(logger)  # twice is once
    try:
        logger.warning("the server said %s", f"no {SECRET[2:12]}!")
        try:
            raise ValueError(f"bad key {SECRET[-10:]}")
        except ValueError:
            logger.exception("failed with %r", SECRET)
    finally:
        logger.handlers.clear()
    assert len(logger.handlers) == 0
    text = stream.getvalue()
    assert key_runs(text) == [] and "the server said no ***!" in text
    assert "ValueError: bad key ***" in text


def every_text_under(folder: Path) -> dict[str, str]:
    """Each file's text (tar members one by one), by name, to search for the key."""
    texts = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name.endswith(".tar"):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    data = tar.extractfile(member).read() if member.isfile() else b""
                    texts[f"{path}:{member.name}"] = data.decode("latin-1")
        elif path.is_file():
            texts[str(path)] = path.read_bytes().decode("latin-1")
    return texts


def test_an_echoing_server_gets_no_piece_of_the_key_written_or_shown(tmp_path: Path):
    """A server that echoes the key it was sent, whole and in pieces of 8-10 characters,
    into kept completions, unparseable ones, error bodies, finish reasons and token counts:
    `mminstruct build` and `preview`, as a user runs them, write and print none of it."""
    import os
    import subprocess
    import sys

    from support.fake_openai import ECHOES

    server = FakeServer()
    server.plan, server.default = [*ECHOES[1:], *ECHOES[1:]], "echo"
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    env = {**os.environ, KEY_ENV: SECRET, "no_proxy": "127.0.0.1"}
    settings = ["generator.backend=openai", "generator.model=served", "generator.max_retries=0"]
    settings += [f"generator.base_url={server.url}", f"generator.api_key_env={KEY_ENV}"]
    settings = [arg for item in settings for arg in ("--set", item)]
    out, shown = tmp_path / "out", tmp_path / "preview"
    commands = [
        ["build", "demo", "--limit", "4", *settings, "--set", f"output.dir={out}"],
        ["preview", "demo", "--image-id", "1", *settings, "--out", str(shown)],
    ]
    try:
        results = [
            subprocess.run(
                [sys.executable, "-m", "mminstruct", *command],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            for command in commands
        ]
    finally:
        server.shutdown()
        server.server_close()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert all(auth == f"Bearer {SECRET}" for auth in server.auth)  # the key was sent
    texts = every_text_under(tmp_path)
    assert any(name.endswith(".json") and ":" in name for name in texts)  # shards were read
    assert {"README.md", "rejects.jsonl", "stats.json", "preview.html"} <= {
        Path(name).name for name in texts
    }
    for result in results:
        texts |= {"stdout": result.stdout, "stderr": result.stderr}
        assert "piece(s) redacted" in result.stderr  # counted and said
        leaks = {name: key_runs(text) for name, text in texts.items() if key_runs(text)}
        assert leaks == {}
    kept = "\n".join(text for name, text in texts.items() if ".tar:" in name)
    assert "They say ***" in kept  # the echo was kept as data, with the key redacted


def test_a_redirect_to_another_origin_never_gets_the_key(tmp_path: Path, monkeypatch, capsys):
    """A server that redirects to another (here: another port): the build stops saying so,
    and the other server never sees a request, let alone the key."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    servers = [FakeServer(), FakeServer()]
    for server in servers:
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    first, other = servers
    first.models_redirect = f"{other.url}/models"
    args = ["build", "demo", "-q", "--limit", "2", "--set", f"output.dir={tmp_path / 'out'}"]
    for item in ("generator.backend=openai", "generator.model=served"):
        args += ["--set", item]
    args += [
        "--set",
        f"generator.base_url={first.url}",
        "--set",
        f"generator.api_key_env={KEY_ENV}",
    ]
    try:
        code = main(args)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    err = capsys.readouterr().err
    assert code == 1 and "answered with a redirect (HTTP 302" in err and "generator.base_url" in err
    assert first.gets == [("/v1/models", f"Bearer {SECRET}")]
    assert other.gets == [] and other.auth == []
