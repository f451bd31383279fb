import json
from pathlib import Path

import pytest

from lhama.data.translate.records import iter_records, record_problem, scan_input, sniff_format
from lhama.errors import DataError

from .conftest import SAMPLE, write_json, write_jsonl


def test_streams_array_across_tiny_chunks(tmp_path: Path) -> None:
    src = write_json(tmp_path / "in.json", SAMPLE * 4)
    items = list(iter_records(src, "json", chunk=7))  # records span many reads
    assert [r for _, r, _ in items] == SAMPLE * 4
    assert [i for i, _, _ in items] == list(range(12))


def test_scan_counts_and_hashes(tmp_path: Path) -> None:
    a = scan_input(write_json(tmp_path / "a.json", SAMPLE))
    b = scan_input(write_jsonl(tmp_path / "b.jsonl", SAMPLE))
    assert (a.format, a.count, b.format, b.count) == ("json", 3, "jsonl", 3)
    assert a.sha256 != b.sha256 and len(a.sha256) == 64


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"hello", "not JSON"),
        (b'[{"id": 1}, {"id": 2', "truncated or malformed record 1"),
        (b'[{"id": 1} {"id": 2}]', "expected ',' or ']'"),
        (b'[{"id": 1}] trailing', "after the closing"),
    ],
)
def test_broken_arrays_stop_with_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        scan_input(path)
    assert "\n" not in str(err.value)


def test_missing_input_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        sniff_format(tmp_path / "nope.json")


def test_bad_jsonl_line_and_bad_bytes_become_record_problems(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    good = json.dumps(SAMPLE[0]).encode()
    path.write_bytes(good + b"\n{broken\n" + good.replace(b"umbrella", b"umbr\xffella") + b"\n")
    items = list(iter_records(path, "jsonl"))
    assert items[0][2] is None and record_problem(items[0][1]) is None
    assert "line 2 is not valid JSON" in items[1][2]
    assert record_problem(items[2][1]) == "non-UTF-8 bytes or lone surrogates in the record"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ([1], "not an object"),
        ({"id": 1}, "no 'conversations'"),
        ({"conversations": [{"from": "robot", "value": "hi"}]}, "unknown 'from' 'robot'"),
        ({"conversations": [{"from": "gpt", "value": "  "}]}, "empty value"),
        ({"conversations": [{"from": "gpt"}]}, "no string 'value'"),
    ],
)
def test_schema_problems_are_named(record: object, problem: str) -> None:
    assert problem in record_problem(record)
