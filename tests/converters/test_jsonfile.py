"""Whole-file checks on broken JSON (converters/jsonfile.py): right at block edges, in words."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from mminstruct.converters import jsonfile
from mminstruct.converters.jsonfile import (
    end_problem,
    first_non_utf8_of,
    lenient_can_help,
    start_problem,
    utf8_problem,
)


def opened(tmp_path: Path, data: bytes):
    path = tmp_path / "file.json"
    path.write_bytes(data)
    return open(path, "rb")


def reference(data: bytes) -> int | None:
    try:
        codecs.decode(data, "utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


@pytest.mark.parametrize(
    "data",
    [b"", b"plain", b"caf\xe9 au lait", "é".encode() * 9 + b"\xff", b"abc" + "é".encode()[:1]],
)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1 << 20])
def test_first_non_utf8_of_agrees_with_one_decode_whatever_the_pieces(data, size):
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    assert first_non_utf8_of(pieces) == reference(data)


@pytest.mark.parametrize(
    "data,problem",
    [
        (b'\xef\xbb\xbf \n {"images": []}', None),
        (b"  [1, 2]", None),
        (b"", "holds nothing but whitespace"),
        (b" \n\t", "holds nothing but whitespace"),
        (
            b"\0" * 100,
            "starts with zero bytes (as an interrupted download or copy leaves them, "
            "or a file made to size and never written)",
        ),
        (b"  \xff\xfe\x00garbage", "is not UTF-8 text: byte 0xff at offset 2"),
        (b"images: [this is YAML]", "starts with b'images: [this is'"),
    ],
)
def test_start_problem_in_words(tmp_path, data, problem):
    with opened(tmp_path, data) as handle:
        assert start_problem(handle, b"{[") == problem


def test_start_problem_reads_past_a_block_of_whitespace(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonfile, "BLOCK_BYTES", 4)
    with opened(tmp_path, b" " * 10 + b"nope") as handle:
        assert start_problem(handle, b"{") == "starts with b'nope'"


@pytest.mark.parametrize(
    "data,helps",
    [
        (b'{"a": [1, 2', False),
        (b'{"a": [NaN, 2', True),
        (b'{"a": -Infinity', True),
        (b'{"a": "caf\xe9"', True),
        (b'{"a": "caf\xc3', True),  # ends inside a character
        (b"{" + b"\0" * 50, False),
    ],
)
@pytest.mark.parametrize("block", [3, 5, 1 << 20])
def test_lenient_can_help_finds_tokens_and_bad_bytes_across_blocks(
    tmp_path, monkeypatch, data, helps, block
):
    monkeypatch.setattr(jsonfile, "BLOCK_BYTES", block)
    with opened(tmp_path, data) as handle:
        assert lenient_can_help(handle) is helps


def test_utf8_and_end_problems(tmp_path):
    with opened(tmp_path, b'{"a": "caf\xe9"}') as handle:
        assert utf8_problem(handle) == "not UTF-8 text: byte 0xe9 at offset 10"
        assert end_problem(handle, b"}") is None
    with opened(tmp_path, b'{"a": [1, 2\n\n') as handle:
        assert utf8_problem(handle) is None
        assert end_problem(handle, b"}") == "ends with b'{\"a\": [1, 2'"
