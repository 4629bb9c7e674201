"""Reading YAML for a config, bounded: a file's size and encoding, then the document's shape.

A config is a few kilobytes and a few levels deep. Before any value is built, the YAML event
stream (read without recursion) is walked once: nesting deeper than `MAX_DEPTH`, aliases
(`*name`) that would expand to more than `MAX_ALIAS_VALUES` values ("billion laughs") and an
alias inside the node it names are refused, so that loading stays small in time and memory.
Every problem is a `YamlProblem` whose message is in our own words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# A config is a few KB (a list of a thousand annotation files: about 60 KB). The cap bounds
# the time PyYAML's pure-Python reader takes (about 5 s per 256 KiB on a busy core).
MAX_CONFIG_BYTES = 256 << 10
MAX_DEPTH = 32  # sections and lists nest about 4 deep in a real config
MAX_ALIAS_VALUES = 10_000  # values that aliases may add when expanded


class YamlProblem(Exception):
    """A YAML text that is not read as a config: the message says why and where."""


def read_config_text(path: Path) -> str:
    """The text of a config file: at most `MAX_CONFIG_BYTES`, UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise YamlProblem(f"cannot read the file ({exc.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise YamlProblem(
            f"the file is over {MAX_CONFIG_BYTES:,} bytes; a config is a few kilobytes of YAML"
        )
    return decode_utf8(data)


def decode_utf8(data: bytes) -> str:
    """`data` as text, or a problem naming the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlProblem(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); "
            "save the file as UTF-8"
        ) from None


def parse_yaml(text: str) -> Any:
    """The plain data of a YAML text (safe tags only), once its shape is checked.

    Raises `yaml.YAMLError` for text that is not YAML, `YamlProblem` for YAML that is refused.
    """
    check_shape(text)
    loader = _Loader(text)  # a SafeLoader: plain data only (what yaml.safe_load does)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_shape(text: str) -> None:
    """Refuse deep nesting and alias expansion past the limits, from the event stream."""
    walk = _Walk()
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        walk.step(event)


@dataclass
class _Open:
    """A mapping or sequence still being read: its anchor, its values so far (itself
    included) and the most levels of mappings and sequences inside it."""

    anchor: str | None
    values: int = 1
    height: int = 0


@dataclass
class _Walk:
    """The state of one walk over a document's events."""

    open: list[_Open] = field(default_factory=list)
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)  # values, height
    added: int = 0  # values that aliases added so far

    def step(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.CollectionStartEvent):
            self._check_depth(len(self.open) + 1, line)
            self.open.append(_Open(event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            node = self.open.pop()
            self._close(node.anchor, node.values, node.height + 1)
        elif isinstance(event, yaml.ScalarEvent):
            self._close(event.anchor, 1, 0)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event.anchor, line)

    def _alias(self, anchor: str, line: int) -> None:
        if any(node.anchor == anchor for node in self.open):
            raise YamlProblem(
                f"line {line}: alias *{anchor} is inside the node &{anchor} it names "
                "(a value that contains itself); write the value out"
            )
        if anchor not in self.anchors:
            return  # an undefined alias: the loader reports it
        values, height = self.anchors[anchor]
        self.added += values
        if self.added > MAX_ALIAS_VALUES:
            raise YamlProblem(
                f"line {line}: aliases (*{anchor} and the ones before it) expand to over "
                f"{MAX_ALIAS_VALUES:,} values; a config needs far fewer: write the values out "
                "or use fewer aliases"
            )
        self._check_depth(len(self.open) + height, line)
        self._close(None, values, height)

    def _close(self, anchor: str | None, values: int, height: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (values, height)
        if self.open:
            self.open[-1].values += values
            self.open[-1].height = max(self.open[-1].height, height)

    @staticmethod
    def _check_depth(depth: int, line: int) -> None:
        if depth > MAX_DEPTH:
            raise YamlProblem(
                f"line {line}: sections and lists nest over {MAX_DEPTH} levels deep; "
                "a config is a few levels deep"
            )


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, whose values that cannot be built become YAML errors with a
    place (a 5,000-digit integer, a date like 2024-13-45, a `!!float` of text)."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError):
            line = node.start_mark.line + 1
            tag = node.tag.rsplit(":", 1)[-1]
            text = node.value if isinstance(node.value, str) else ""
            text = text if len(text) <= 40 else text[:37] + "..."
            raise _Unbuildable(
                f"line {line}: {text!r} cannot be read as !!{tag}; put it in quotes to keep it "
                "as text"
            ) from None


class _Unbuildable(yaml.YAMLError):
    """A YAML value whose tag and text disagree."""
