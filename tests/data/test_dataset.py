"""Data files -> samples: LLaVA JSON / JSONL and caption TSV; bad records counted by reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lhama.data.dataset import DatasetConfig, load_samples, split_samples
from lhama.errors import DataError


def _images(root: Path) -> None:
    Image.new("RGB", (8, 8), "blue").save(root / "ok.jpg")
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")


def _llava(root: Path) -> list[dict]:
    conv = [{"from": "human", "value": "<image>\nO que há aqui?"}, {"from": "gpt", "value": "Um quadrado azul."}]
    return [
        {"id": "a", "image": "ok.jpg", "conversations": conv},
        {"id": "b", "image": "missing.jpg", "conversations": conv},
        {"id": "c", "image": "broken.jpg", "conversations": conv},
        {"id": "d", "conversations": [{"from": "human", "value": "Oi"}, {"from": "gpt", "value": "Olá!"}]},
        {"id": "e", "image": "ok.jpg", "conversations": [{"from": "human", "value": "<image>"}]},
    ]


def test_llava_json_skips_and_counts_bad_records(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "data.json").write_text(json.dumps(_llava(tmp_path)))
    report = load_samples(DatasetConfig(path=str(tmp_path / "data.json")))
    assert [s.id for s in report.samples] == ["a", "d"]
    assert report.samples[0].messages[1] == {"role": "assistant", "content": "Um quadrado azul."}
    assert report.samples[0].image == tmp_path / "ok.jpg" and report.samples[1].image is None
    assert report.skipped == {"image not found": 1, "image unreadable": 1, "no assistant turn": 1}
    assert "2 of 5 records kept" in report.summary() and "image not found x1 (e.g. b)" in report.summary()


def test_strict_fails_fast_naming_the_record(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in _llava(tmp_path)))
    with pytest.raises(DataError, match=r"record b: image not found: .*missing.jpg \(strict=true\)"):
        load_samples(DatasetConfig(path=str(tmp_path / "data.jsonl"), strict=True))


def test_caption_tsv_becomes_a_two_turn_conversation(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "c.tsv").write_text("file\tpt_BR\nok.jpg\tUm quadrado.\nnope.jpg\tNada.\n")
    report = load_samples(DatasetConfig(path=str(tmp_path / "c.tsv"), caption_prompt="<image>\nDescreva."))
    (sample,) = report.samples
    assert sample.id == "ok.jpg" and sample.messages == (
        {"role": "user", "content": "<image>\nDescreva."}, {"role": "assistant", "content": "Um quadrado."})
    assert report.skipped == {"image not found": 1}


def test_empty_dataset_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError) as info:
        load_samples(DatasetConfig(path=str(tmp_path / "empty.jsonl")))
    assert "has no usable records" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DataError, match="data file not found"):
        load_samples(DatasetConfig(path=str(tmp_path / "absent.json")))


def test_split_is_stable_and_disjoint(tmp_path: Path) -> None:
    _images(tmp_path)
    rows = "".join(f"ok.jpg\tLegenda {i}.\n" for i in range(40))
    (tmp_path / "c.tsv").write_text("file\tpt_BR\n" + rows)
    samples = [s for s in load_samples(DatasetConfig(path=str(tmp_path / "c.tsv"))).samples]
    samples = [type(s)(f"id{i}", s.messages, s.image) for i, s in enumerate(samples)]
    train, held = split_samples(samples, 0.25)
    assert len(train) + len(held) == 40 and 0 < len(held) < 20
    assert split_samples(samples[::-1], 0.25)[1] == held[::-1]


def test_video_records(tmp_path) -> None:
    import json

    from tests.data.video_files import tiny_mp4

    tiny_mp4(tmp_path / "ok.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 20)
    records = [
        {"id": "a", "video": "ok.mp4", "pt_BR": "Um sapo."},
        {"id": "b", "video": "bad.mp4", "pt_BR": "Um sapo."},
        {"id": "c", "video": "missing.mp4", "pt_BR": "Um sapo."},
        {"id": "d", "conversations": [{"from": "human", "value": "O que há? <video>"}, {"from": "gpt", "value": "Nada."}]},
        {"id": "e", "video": "ok.mp4", "conversations": [{"from": "human", "value": "Oi"}, {"from": "gpt", "value": "Oi."}]},
        {"id": "f", "video": "ok.mp4", "conversations": [{"from": "human", "value": "<video>\nO quê?"}, {"from": "gpt", "value": "Um sapo."}]},
    ]
    path = tmp_path / "v.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = load_samples(DatasetConfig(path=str(path), caption_prompt="<video>\nO que acontece?"))
    assert [s.id for s in report.samples] == ["a", "f"]
    assert report.samples[0].video == tmp_path / "ok.mp4" and report.samples[0].image is None
    assert dict(report.skipped) == {
        "video unreadable": 1, "video not found": 1,
        "malformed record": 2,  # <video> without a video field; a video field without <video>
    }
