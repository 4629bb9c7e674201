"""Config loading: every shipped config, typed overrides, errors by dotted path, all at once."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from bad_inputs.files import Scene

from mminstruct.cli import main
from mminstruct.config import Config, check_paths, config_from_dict, dump_config, load_config
from mminstruct.errors import ConfigError
from mminstruct.images import MAX_IMAGE_BYTES
from mminstruct.resources import shipped_configs

SOURCE = {"kind": "coco", "images": "imgs", "instances": "inst.json"}


def problems(raw: dict, overrides: list[str] = ()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, overrides)
    return info.value.problems


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_round_trips(path):
    lines = path.read_text().splitlines()
    header = lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]
    assert any("mminstruct build" in line for line in header), "starts with the command to run it"
    config = load_config(path)
    assert isinstance(config, Config)
    again = config_from_dict(yaml.safe_load(dump_config(config)))
    assert again == config


def test_shipped_configs_found_by_name():
    assert load_config("demo") == load_config("demo.yaml")
    assert load_config("demo").sources[0].name == "demo"


def test_defaults_and_single_file_becomes_tuple():
    config = config_from_dict({"sources": [SOURCE]})
    assert config.sources[0].instances == ("inst.json",)
    assert config.sources[0].captions == ()
    assert config.generator.backend == "template"
    assert config.context.decimals == 3


def test_unknown_key_names_dotted_path_and_suggests():
    found = problems({"sources": [SOURCE], "generator": {"sed": 3}})
    assert len(found) == 1
    assert "unknown key 'generator.sed'" in found[0]
    assert "did you mean 'seed'?" in found[0]
    assert "'backend'" in found[0]  # lists the valid keys


def test_unknown_key_inside_a_source():
    found = problems({"sources": [{**SOURCE, "image": "x"}]})
    assert "unknown key 'sources.0.image' (did you mean 'images'?)" in found[0]


def test_all_errors_reported_at_once():
    raw = {
        "sources": [{**SOURCE, "name": 5}],
        "context": {"decimals": "three", "crowd": "maybe"},
        "output": {"shard_max_samples": -1},
        "limt": 3,
    }
    found = problems(raw)
    text = "\n".join(found)
    assert "sources.0.name: expected a string, got 5 (int)" in text
    assert "context.decimals: expected an integer, got 'three' (str)" in text
    assert "context.crowd: 'maybe' is not a valid choice; choose one of 'keep', 'drop'" in text
    assert "unknown key 'limt' (did you mean 'limit'?)" in text
    assert len(found) == 4  # the bad shard size is reported once the types are right


def test_bad_values_after_types():
    found = problems({"sources": [SOURCE], "output": {"shard_max_samples": 0}, "limit": 0})
    assert "output.shard_max_samples: must be at least 1, got 0" in found
    assert "limit: must be at least 1 or null, got 0" in found


def test_unknown_source_kind_lists_choices():
    found = problems({"sources": [{"kind": "cocoa", "images": "x"}]})
    assert found == [
        "sources.0.kind: 'cocoa' is not a known source kind; "
        "choose one of 'coco', 'visual_genome', 'psg'"
    ]


def test_bad_backend_lists_choices():
    found = problems({"sources": [SOURCE], "generator": {"backend": "gpt"}})
    assert found == [
        "generator.backend: 'gpt' is not a valid choice; choose one of 'template', 'hf', 'hf-vlm', 'openai'"
    ]


def test_overrides_are_typed():
    config = config_from_dict(
        {"sources": [SOURCE]},
        [
            "generator.seed=7",
            "tasks.detail.enabled=false",
            "sources.0.images=/data/coco/val2017",
            "sources.0.name=2017",
            "output.dir=123",
            "context.max_objects=null",
            "sources.0.captions=[a.json, b.json]",
        ],
    )
    assert config.generator.seed == 7
    assert config.tasks.detail.enabled is False
    assert config.sources[0].images == "/data/coco/val2017"
    assert config.sources[0].name == "2017"  # text for string fields, even if it looks numeric
    assert config.output.dir == "123"
    assert config.context.max_objects is None
    assert config.sources[0].captions == ("a.json", "b.json")


def test_bad_overrides_reported_together():
    found = problems(
        {"sources": [SOURCE]},
        ["generator.seed=abc", "generator.temprature=0.7", "sources.3.images=x", "nokey"],
    )
    text = "\n".join(found)
    assert "generator.seed: expected an integer, got 'abc' (str)" in text
    assert "unknown key 'generator.temprature'" in text
    assert "--set sources.3: no such list item (there are 1, numbered from 0)" in text
    assert "--set 'nokey': expected KEY=VALUE" in text


def test_source_names_must_be_distinct_and_key_safe():
    found = problems({"sources": [SOURCE, dict(SOURCE)]})
    assert any("sources.1.name: 'coco' is already used by sources.0" in p for p in found)
    found = problems({"sources": [{**SOURCE, "name": "my.data"}]})
    assert any("letters, digits or underscores" in p for p in found)


def test_missing_required_and_empty_source():
    found = problems({"sources": [{"kind": "coco", "instances": "x"}]})
    assert found == ["sources.0.images: required key is missing"]
    found = problems({"sources": [{"kind": "coco", "images": "x"}]})
    assert found == ["sources.0: give `instances` and/or `captions` files"]


def test_load_config_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listed)


# --------------------------------------------------------------------------- hardening (issue 13)

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
MEMORY_LIMIT = 3 << 30  # address space a refused config may use in a subprocess


def build_errors(capsys, *argv: str) -> tuple[int, str]:
    """Exit status and stderr of `mminstruct build ARGV -q`, in this process."""
    code = main(["build", *argv, "-q"])
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return code, stderr


def bounded_build(path: Path, *argv: str) -> subprocess.CompletedProcess:
    """`mminstruct build` as a subprocess with a time limit and an address-space limit."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    command = [sys.executable, "-m", "mminstruct", "build", str(path), "-q", *argv]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, preexec_fn=limit_memory
    )


def test_config_not_utf8_names_the_file_and_the_byte(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"sources:\n  - kind: coco\n    images: imgs\n    name: caf\xe9\n")
    code, stderr = build_errors(capsys, str(path))
    assert code == 2
    assert f"{path} has 1 problem(s)" in stderr
    assert "not UTF-8 text: byte 0xe9 at offset 54 (line 4); save the file as UTF-8" in stderr


def test_config_nested_50000_deep_is_refused_quickly(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("generator:\n  model: " + "[" * 50_000 + "]" * 50_000 + "\n")
    started = time.monotonic()
    result = bounded_build(path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {path} has 1 problem(s)")
    assert "line 2: sections and lists nest over 32 levels deep" in result.stderr
    assert time.monotonic() - started < 30


def test_billion_laughs_config_is_refused_bounded(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.monotonic()
    result = bounded_build(path)
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in result.stderr
    assert "aliases (*" in result.stderr and "expand to over 10,000 values" in result.stderr


def test_a_few_aliases_still_load(tmp_path):
    """Anchors that share a value a few times are fine: only their expansion is bounded."""
    path = tmp_path / "shared.yaml"
    path.write_text(
        "sources:\n"
        "  - &coco {kind: coco, images: imgs, instances: [a.json, b.json], name: first}\n"
        "  - {<<: *coco, name: second}\n"
        "generator:\n  seed: &seed 7\noutput:\n  shard_max_samples: *seed\n"
    )
    config = load_config(path)
    assert [s.name for s in config.sources] == ["first", "second"]
    assert config.sources[1].instances == ("a.json", "b.json")
    assert config.output.shard_max_samples == 7


def test_alias_inside_its_own_anchor_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("generator:\n  model: &loop [1, *loop]\n")
    with pytest.raises(ConfigError, match=r"line 2: alias \*loop is inside the node &loop"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "generator:\n  seed: " + "1" * 5000,
            "line 2: '" + "1" * 37 + "...' cannot be read as !!int",
        ),
        ("generator:\n  model: 2024-13-45", "line 2: '2024-13-45' cannot be read as !!timestamp"),
        (
            "generator:\n  seed: !!int 1e5",
            "line 2: '1e5' cannot be read as !!int; put it in quotes",
        ),
    ],
)
def test_yaml_values_that_cannot_be_built_are_config_errors(tmp_path, text, words):
    path = tmp_path / "values.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"not valid YAML: {words}")


def test_config_file_over_256_kib_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="the file is over 262,144 bytes"):
        load_config(path)


def test_numbers_no_setting_can_use_are_refused():
    found = problems(
        {"sources": [SOURCE], "generator": {"seed": 2**64, "temperature": float("inf")}},
        ["generator.top_p=.nan", "generator.max_new_tokens=0b" + "1" * 20_000],
    )
    text = "\n".join(found)
    assert "generator.seed: 18446744073709551616 (int) is out of range" in text
    assert "generator.temperature: expected a finite number, got inf (float)" in text
    assert "generator.top_p: expected a finite number, got nan (float)" in text
    assert "generator.max_new_tokens: an integer of 20,000 bits (int) is out of range" in text


def test_ranges_name_one_key_each():
    found = problems(
        {"sources": [SOURCE]},
        ["generator.top_p=2", "generator.timeout_s=0", "generator.max_retries=-1"],
    )
    assert "--set generator.top_p=2: generator.top_p: must be in (0, 1], got 2.0" in found
    assert (
        "--set generator.timeout_s=0: generator.timeout_s: must be more than 0 seconds, got 0.0"
        in found
    )
    assert (
        "--set generator.max_retries=-1: generator.max_retries: must be at least 0, got -1" in found
    )


# --------------------------------------------------------------------------- --set attribution


def test_set_problems_name_the_set_item_not_the_file(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"sources": [SOURCE], "generator": {"batchsize": 4}}))
    code, stderr = build_errors(
        capsys, str(path), "--set", "generator.seed=abc", "--set", "context.crowd=maybe"
    )
    assert code == 2
    assert f"{path} (with 2 --set override(s)) has 3 problem(s)" in stderr
    assert "--set generator.seed=abc: generator.seed: expected an integer, got 'abc'" in stderr
    assert "--set context.crowd=maybe: context.crowd: 'maybe' is not a valid choice" in stderr
    assert "  - unknown key 'generator.batchsize'" in stderr  # the file's own: not attributed


def test_set_problems_are_attributed_to_the_item_that_set_the_value():
    found = problems(
        {"sources": [SOURCE]},
        [
            "generator={backend: gpt}",
            "generator.temprature=3",
            "output.max_image_bytes=0",
            "sources.0.name=a.b",
        ],
    )
    assert found[0].startswith("--set generator.temprature=3: unknown key 'generator.temprature'")
    assert found[1].startswith("--set generator={backend: gpt}: generator.backend: 'gpt'")
    found = problems({"sources": [SOURCE]}, ["output.max_image_bytes=0", "sources.0.name=a.b"])
    assert (
        "--set output.max_image_bytes=0: output.max_image_bytes: must be at least 1, got 0" in found
    )
    assert any(
        p.startswith("--set sources.0.name=a.b: sources.0.name: 'a.b' must be") for p in found
    )


def test_set_value_nested_too_deep_is_refused():
    found = problems({"sources": [SOURCE]}, ["generator.model=" + "[" * 50_000])
    item = "generator.model=" + "[" * 41 + "..."  # the item, cut to 60 characters
    assert found == [
        f"--set {item}: line 1: sections and lists nest over 32 levels deep; "
        "a config is a few levels deep"
    ]


def test_problems_of_the_file_alone_keep_the_file_as_origin(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"sources": [SOURCE], "limit": 0}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path} has 1 problem(s)")
    assert info.value.problems == ["limit: must be at least 1 or null, got 0"]


# --------------------------------------------------------------------------- paths of a build


def test_check_paths_resolves_package_paths():
    check_paths(load_config("demo"))  # `package:sample/images` exists inside the package


def test_check_paths_names_each_missing_images_folder(tmp_path):
    config = config_from_dict(
        {
            "sources": [
                {**SOURCE, "images": str(tmp_path), "name": "here"},
                {**SOURCE, "images": str(tmp_path / "nope"), "name": "gone"},
                {**SOURCE, "images": "package:nowhere/images", "name": "pkg"},
            ]
        }
    )
    with pytest.raises(ConfigError) as info:
        check_paths(config)
    assert info.value.problems == [
        f"sources.1.images: images folder {tmp_path / 'nope'} does not exist; give the folder "
        "that holds the image files (in the config, or --set sources.1.images=PATH)",
        "sources.2.images: images folder package:nowhere/images does not exist in the installed "
        "package; give the folder that holds the image files (in the config, or --set "
        "sources.2.images=PATH)",
    ]


def test_missing_images_folder_stops_before_annotations_are_read(tmp_path, capsys):
    """Exit 2 for the images folder, although the annotation file is missing too: the folder
    is checked first, and nothing is written."""
    job = Scene().write(tmp_path)
    job["sources"][0] |= {"images": str(tmp_path / "nope"), "instances": str(tmp_path / "x.json")}
    job["output"]["dir"] = str(tmp_path / "out")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    code, stderr = build_errors(capsys, str(path))
    assert code == 2
    assert f"sources.0.images: images folder {tmp_path / 'nope'} does not exist" in stderr
    assert "x.json" not in stderr
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- output.max_image_bytes


def test_max_image_bytes_defaults_to_the_image_reader_limit():
    config = config_from_dict({"sources": [SOURCE]})
    assert config.output.max_image_bytes == MAX_IMAGE_BYTES == 64 << 20


def test_preview_honours_max_image_bytes(tmp_path, capsys):
    job = Scene().write(tmp_path)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    argv = ["preview", str(path), "--image-id", "1", "--out", str(tmp_path / "p"), "-q"]
    code = main([*argv, "--set", "output.max_image_bytes=1000"])
    stderr = capsys.readouterr().err
    assert code == 1 and "Traceback" not in stderr
    assert "cannot preview this image: image_too_large" in stderr
    assert "over output.max_image_bytes (1,000)" in stderr


# --------------------------------------------------------------------------- the command's help


def test_build_help_lists_every_shipped_config(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    out = capsys.readouterr().out
    listed = out.split("Shipped configs", 1)[1]
    names = [path.stem for path in shipped_configs()]
    assert len(names) >= 7
    assert all(re.search(rf"\b{name}\b", listed) for name in names), listed
