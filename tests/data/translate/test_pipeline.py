"""translate_file end to end with the real Bergamot model (and once with the tiny Marian)."""

import json
from pathlib import Path

import pytest

from lhama.data.translate import TranslateConfig, translate_file
from lhama.errors import DataError

from .conftest import SAMPLE, turn, write_json, write_jsonl

BAD = [{"id": "nc"}, {"id": "robot", "conversations": [turn("robot", "beep")]}]


def test_json_run_writes_output_rejections_and_report(tmp_path: Path) -> None:
    src = write_json(tmp_path / "in.json", SAMPLE[:1] + BAD + SAMPLE[1:])
    cfg = TranslateConfig(src, tmp_path / "out.json", report=tmp_path / "r.json", chunk_records=2, backtranslate=1)
    seen: list[tuple[int, int]] = []
    summary = translate_file(cfg, lambda done, total, _: seen.append((done, total)))
    out = json.loads(cfg.output.read_text(encoding="utf-8"))
    assert (summary.records_in, summary.written, summary.rejected) == (5, 3, 2)
    assert [r["id"] for r in out] == ["a1", "b2", "c3"] and out[1]["extra"] == {"k": [1, 2]}
    assert [[t["from"] for t in r["conversations"]] for r in out] == [["human", "gpt"]] * 3
    rejected = [json.loads(line) for line in cfg.rejected_path.read_text().splitlines()]
    assert [(r["index"], r["reason"].split(":")[0]) for r in rejected] == [(1, "invalid_record"), (2, "invalid_record")]
    report = json.loads(cfg.report.read_text())
    assert report["records_in"] == 5 and report["rejected_by"] == {"invalid_record": 2}
    assert 30 < summary.backtranslation_chrf <= 100  # pt->en of one record against its English
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert not cfg.journal_path.exists()


def test_non_utf8_bytes_reject_only_their_record(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_bytes(json.dumps(SAMPLE[:2]).encode().replace(b"umbrella", b"umbr\xffella"))
    cfg = TranslateConfig(src, tmp_path / "out.json")
    summary = translate_file(cfg)
    assert (summary.written, summary.rejected) == (1, 1)
    (line,) = cfg.rejected_path.read_text(encoding="ascii").splitlines()
    assert "non-UTF-8" in json.loads(line)["reason"] and "umbr\\udcffella" in line


def test_jsonl_in_jsonl_out(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", SAMPLE[:2])
    cfg = TranslateConfig(src, tmp_path / "out.jsonl")
    translate_file(cfg)
    lines = cfg.output.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["a1", "b2"]


class Stop(Exception):
    pass


def test_interrupted_run_resumes_to_identical_bytes(tmp_path: Path) -> None:
    src = write_json(tmp_path / "in.json", SAMPLE * 2)
    whole = TranslateConfig(src, tmp_path / "whole.json", chunk_records=2)
    translate_file(whole)

    def stop_after_two(done: int, total: int, words: int) -> None:
        if done >= 2:
            raise Stop

    cut = TranslateConfig(src, tmp_path / "cut.json", chunk_records=2)
    with pytest.raises(Stop):
        translate_file(cut, stop_after_two)
    assert not cut.output.exists() and cut.journal_path.exists()
    summary = translate_file(cut)
    assert summary.resumed == 2 and summary.written == 6
    assert cut.output.read_bytes() == whole.output.read_bytes()


def test_bad_paths_and_inputs_leave_no_files(tmp_path: Path) -> None:
    src = write_json(tmp_path / "in.json", SAMPLE)
    with pytest.raises(DataError, match="output directory does not exist"):
        translate_file(TranslateConfig(src, tmp_path / "nope" / "out.json"))
    broken = tmp_path / "broken.json"
    broken.write_bytes(src.read_bytes()[:-40])
    with pytest.raises(DataError, match="truncated"):
        translate_file(TranslateConfig(broken, tmp_path / "out.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "in.json"]


def test_seq2seq_backend_end_to_end(tmp_path: Path, tiny_marian: Path) -> None:
    src = write_json(tmp_path / "in.json", SAMPLE)
    cfg = TranslateConfig(src, tmp_path / "out.json", backend="seq2seq", model=tiny_marian)
    summary = translate_file(cfg)
    out = json.loads(cfg.output.read_text(encoding="utf-8"))
    assert summary.written + summary.rejected == 3 and len(out) == summary.written
    for record in out:  # random weights: gibberish, but the structure is intact
        assert record["conversations"][0]["value"].count("<image>") == 1
