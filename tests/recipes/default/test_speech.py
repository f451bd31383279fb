from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lhama.data.audio import load_audio
from lhama.data.dataset import DatasetConfig, load_samples
from lhama.recipes.default.speech import SpeechConfig, build_speech_set, is_heldout, read_sentences, speak_files
from lhama.errors import DataError

ROOT = Path(__file__).resolve().parents[3]
TUX = ROOT.parent / "shared" / "data" / "tuxpaint_ptbr" / "captions.tsv"
ADMIRE = ROOT.parent / "shared" / "data" / "admire_pt" / "a_pt_dev_targets.tsv"


def test_real_sentences_are_read_and_deduplicated() -> None:
    sentences = read_sentences([TUX, ADMIRE])
    assert "Um sapo." in sentences and len(sentences) == len({s.lower() for s in sentences})
    assert sum(1 for s in sentences if len(s.split()) > 8) >= 10  # the AdMIRe sentences are long


def test_holdout_depends_on_the_sentence_only() -> None:
    sentences = read_sentences([TUX])
    held = [s for s in sentences if is_heldout(s, 0.15)]
    assert 0.08 < len(held) / len(sentences) < 0.22
    assert is_heldout("Um  SAPO.", 0.15) == is_heldout("um sapo.", 0.15)


def test_bad_sentence_files(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(DataError, match="no pt_BR or sentence column"):
        read_sentences([tmp_path / "x.tsv"])
    with pytest.raises(DataError, match="not found"):
        read_sentences([tmp_path / "nada.tsv"])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng (.ci/run installs it)")
def test_espeak_pairs_load_as_training_samples(tmp_path: Path) -> None:
    sentences = ["Um sapo verde.", "Uma chaleira elétrica.", "-começa com hífen", "O gato dorme no sofá."]
    config = SpeechConfig(heldout_fraction=0.5)
    summary = build_speech_set(sentences, tmp_path, config)
    assert summary.train + summary.heldout == 4 and summary.synthesized == 4
    assert build_speech_set(sentences, tmp_path, config).synthesized == 0  # reused
    train = load_samples(DatasetConfig(path=str(tmp_path / "train.jsonl"), strict=True)).samples
    held = [json.loads(line) for line in (tmp_path / "heldout.jsonl").read_text().splitlines()]
    answers = {s.messages[-1]["content"] for s in train} | {r["conversations"][1]["value"] for r in held}
    assert answers == set(sentences)
    assert not {s.messages[-1]["content"] for s in train} & {r["conversations"][1]["value"] for r in held}
    assert train[0].messages[0]["content"] == "<audio>\nO que foi dito?"
    assert 0.3 < load_audio(train[0].audio).size / 16_000 < 5.0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng (.ci/run installs it)")
def test_speak_files_reads_the_sources_and_speaks_each_sentence_once(tmp_path: Path) -> None:
    """``lhama data speech``'s one call: the files' distinct sentences, spoken with progress."""
    (tmp_path / "a.tsv").write_text("pt_BR\nUm sapo verde.\num  SAPO verde.\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("sentence\nO gato dorme.\n", encoding="utf-8")
    seen = []
    summary = speak_files([tmp_path / "a.tsv", tmp_path / "b.tsv"], tmp_path / "out", SpeechConfig(), lambda d, t: seen.append((d, t)))
    assert summary.train + summary.heldout == 2 == summary.synthesized and seen == [(1, 2), (2, 2)]
    with pytest.raises(DataError, match="sentence file not found"):
        speak_files([tmp_path / "nada.tsv"], tmp_path / "out2", SpeechConfig())
    assert not (tmp_path / "out2").exists()
