"""Streaming a top-level JSON array: the same elements as `json.load`, at any block size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mminstruct.converters.jsonstream import ElementError, decode_problem, iter_array

from mminstruct.errors import InputError

BOM = b"\xef\xbb\xbf"
BLOCK_SIZES = [*range(1, 65), 1 << 20]

# Strings full of what the scanner must not take for structure: quotes, backslashes,
# brackets, braces and commas (and some non-ASCII), in any order.
TRICKY = st.text(alphabet=st.sampled_from('"\\[]{},:ab é\n\t/'), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=20,
)


def write(tmp: Path, data: bytes, name: str = "array.json") -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def stream(path: Path, block: int, element_type: Any = Any) -> list[Any]:
    return list(iter_array(path, element_type, block_bytes=block))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    elements=st.lists(VALUES, max_size=6),
    block=st.sampled_from(BLOCK_SIZES),
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
)
def test_elements_equal_json_load(tmp_path, elements, block, indent, ascii_only):
    text = json.dumps(elements, indent=indent, ensure_ascii=ascii_only)
    path = write(tmp_path, text.encode("utf-8"))
    assert stream(path, block) == json.loads(text)


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 1 << 20])
def test_escapes_at_every_block_boundary(tmp_path, block):
    # An escaped quote, an escaped backslash right before a closing quote, and brackets
    # in strings: each byte of this file is, for some block size, the last of a block.
    elements = [
        {"a": 'say "hi" ]', "b": "ends with a backslash \\"},
        ["\\", '\\"', "[", "{", "}]", ","],
        'a "string" element, with ] and }',
        {"nested": [{"deep": ["\\\\", '"]']}]},
    ]
    text = json.dumps(elements)
    assert stream(write(tmp_path, text.encode()), block) == elements


@pytest.mark.parametrize("block", [1, 5, 1 << 20])
def test_empty_list_and_surrounding_whitespace(tmp_path, block):
    assert stream(write(tmp_path, b"[]"), block) == []
    assert stream(write(tmp_path, b" \n\t[ \n ]\n\n"), block) == []
    assert stream(write(tmp_path, b'\n\n  [ {"a": 1} ,\n {"b": [2]} ]  \n'), block) == [
        {"a": 1},
        {"b": [2]},
    ]


@pytest.mark.parametrize("block", [8, 64, 1 << 20, 8 << 20])
def test_byte_order_mark_is_skipped(tmp_path, block):
    path = write(tmp_path, BOM + b' \n[{"a": 1}, {"b": 2}]\n')
    assert stream(path, block) == [{"a": 1}, {"b": 2}]


def test_byte_order_mark_is_skipped_at_tiny_block_sizes(tmp_path):
    path = write(tmp_path, BOM + b' \n[{"a": 1}]')
    failures = {}
    for block in range(1, 8):
        try:
            result = stream(path, block)
        except InputError as exc:
            result = str(exc)
        if result != [{"a": 1}]:
            failures[block] = result
    assert failures == {}


def test_scalars_are_element_errors_with_their_raw_text(tmp_path):
    path = write(tmp_path, b'[1, "x", {"a": 1}, null, [2], true, {"b": 2}]')
    for block in (1, 3, 1 << 20):
        items = stream(path, block, dict[str, Any])
        assert [type(i) for i in items] == [
            ElementError,
            ElementError,
            dict,
            ElementError,
            ElementError,
            ElementError,
            dict,
        ]
        assert [i.raw for i in items if isinstance(i, ElementError)] == [
            b"1",
            b'"x"',
            b"null",
            b"[2]",
            b"true",
        ]
        assert items[2] == {"a": 1} and items[6] == {"b": 2}
        assert isinstance(items[0], InputError)  # callers may treat it as any input problem
        assert str(path) in str(items[0]) and "element 0" in str(items[0])
        assert "element 5" in str(items[5])


def test_struct_elements_of_the_wrong_shape_are_element_errors(tmp_path):
    class Entry(msgspec.Struct):
        image_id: int

    path = write(tmp_path, b'[{"image_id": 1}, {"image_id": "x"}, {"image_id": 3}]')
    items = stream(path, 4, Entry)
    assert [i.image_id for i in items if isinstance(i, Entry)] == [1, 3]
    (bad,) = [i for i in items if isinstance(i, ElementError)]
    assert bad.raw == b'{"image_id": "x"}' and "element 1" in str(bad)


@pytest.mark.parametrize("tail", [b" x", b" ]", b', {"a": 2}]', b"[]"])
@pytest.mark.parametrize("block", [1, 4, 1 << 20])
def test_trailing_garbage_raises(tmp_path, tail, block):
    path = write(tmp_path, b'[{"a": 1}]' + tail)
    with pytest.raises(InputError, match="unexpected text after the JSON list"):
        stream(path, block)


@pytest.mark.parametrize("block", [1, 16, 1 << 20])
def test_truncated_file_says_so(tmp_path, block):
    text = json.dumps([{"a": [1, 2, {"b": "c]"}]}, {"d": 'e"'}]).encode()
    for cut in (len(text) - 1, len(text) // 2, 5):
        path = write(tmp_path, text[:cut])
        with pytest.raises(InputError, match="truncated") as caught:
            stream(path, block)
        assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n ", "the file is empty"),
        (b'{"image_id": 1}', "expected a JSON list"),
        (b"42", "expected a JSON list"),
    ],
)
def test_not_a_list_at_the_top_level(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(InputError, match=message):
        stream(path, 1 << 20)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        stream(tmp_path / "absent.json", 1024)
    with pytest.raises(InputError, match="is a folder"):
        stream(tmp_path, 1024)


def test_broken_element_names_its_index(tmp_path):
    path = write(tmp_path, b'[{"a": 1}, {"a": tru}, {"a": 3}]')
    with pytest.raises(InputError, match=r"element 1 is not valid JSON"):
        stream(path, 1 << 20)


@pytest.mark.parametrize("data", [b'[{"a": 1} {"b": 2}]', b'[{"a": 1},, {"b": 2}]'])
def test_missing_or_doubled_comma_is_malformed(tmp_path, data):
    with pytest.raises(InputError):
        stream(write(tmp_path, data), 1 << 20)


@pytest.mark.parametrize("block", [65536, 1 << 20])
def test_real_visual_genome_file_equals_json_load(vg_subset, block):
    path = vg_subset / "relationships.json"
    expected = json.loads(path.read_bytes())
    assert stream(path, block) == expected
    assert len(expected) == 50  # one entry per image, the last one without an image_id


@pytest.mark.parametrize(
    "exc",
    [
        msgspec.DecodeError("Invalid UTF-8 encoded string"),
        UnicodeDecodeError("utf-8", b"", 0, 1, "x"),
    ],
)
def test_decode_problem_names_the_byte_whatever_the_decoder_raised(exc):
    """msgspec 0.22 raised UnicodeDecodeError, 0.23 DecodeError without an offset: same message."""
    raw = b'{"a": "caf\xe9"}'
    assert decode_problem(raw, exc) == "not UTF-8 text: byte 0xe9 at offset 10"
    assert decode_problem(memoryview(raw), exc) == "not UTF-8 text: byte 0xe9 at offset 10"


def test_decode_problem_passes_other_errors_through():
    assert decode_problem(b'{"a": 1', ValueError("truncated")) == "truncated"
