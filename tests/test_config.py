"""Config loading: every shipped config, typed overrides, errors by dotted path, all at once."""

from __future__ import annotations

import pytest
import yaml

from mminstruct.config import Config, config_from_dict, dump_config, load_config
from mminstruct.errors import ConfigError
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
