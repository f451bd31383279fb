"""Audio records through dataset.py and collate.py: the "audio" field, <audio> expansion and
media["audio"] batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lhama.data.audio import AudioSpec
from lhama.data.collate import CollateConfig, Collator
from lhama.data.dataset import DatasetConfig, load_samples
from lhama.errors import DataError
from tests.audio_fixtures import tiny_audio_loaded, write_wav


def _records(root: Path) -> Path:
    write_wav(root / "a.wav", 1.0)
    write_wav(root / "b.wav", 0.4, 44_100, 2)
    turns = lambda answer: [{"from": "human", "value": "<audio>\nO que foi dito?"}, {"from": "gpt", "value": answer}]  # noqa: E731
    rows = [
        {"id": "ok1", "audio": "a.wav", "conversations": turns("Um sapo.")},
        {"id": "ok2", "audio": "b.wav", "conversations": turns("Uma casa azul.")},
        {"id": "sem-arquivo", "audio": "nada.wav", "conversations": turns("x")},
        {"id": "sem-campo", "conversations": turns("x")},
    ]
    path = root / "speech.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_audio_records_are_loaded_and_bad_ones_counted(tmp_path: Path) -> None:
    report = load_samples(DatasetConfig(path=str(_records(tmp_path))))
    assert [s.id for s in report.samples] == ["ok1", "ok2"]
    assert report.samples[0].audio == tmp_path / "a.wav"
    assert report.skipped == {"audio not found": 1, "malformed record": 1}


def test_collate_expands_audio_and_stacks_features(tmp_path: Path) -> None:
    loaded = tiny_audio_loaded(image=False)
    samples = load_samples(DatasetConfig(path=str(_records(tmp_path)))).samples
    collator = Collator(loaded.tokenizer, loaded.expansions(), loaded.readers(), CollateConfig())
    batch = collator([collator.encode(s) for s in samples])
    assert batch.media["audio"].shape == (2, 81, 200)
    assert int((batch.input_ids == loaded.model.token_ids["audio"]).sum()) == 2 * 4
    assert batch.media["audio"][1, -1].sum() == 40  # 0.4 s of real audio = 40 frames
    out = loaded.model(batch.input_ids, media=batch.media, attention_mask=batch.attention_mask, labels=batch.labels)
    assert out.loss.isfinite()


def test_audio_for_a_model_without_audio_branch(tmp_path: Path) -> None:
    loaded = tiny_audio_loaded(image=False)
    samples = load_samples(DatasetConfig(path=str(_records(tmp_path)))).samples
    collator = Collator(loaded.tokenizer, loaded.expansions(), None, CollateConfig())
    with pytest.raises(DataError, match="no audio branch"):
        collator([collator.encode(samples[0])])
    assert AudioSpec().seconds == 30.0
