"""The Whisper tuning data: what is held out stays out; windows are drawn reproducibly."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lhama.data.audio import SAMPLE_RATE
from lhama.errors import DataError
from lhama.recipes.default.speech import is_heldout
from lhama.recipes.default.whisper_ptbr import (DEV_VOICES, FRESH_VOICES, HELDOUT_VOICES, MORE_VOICES, TRAIN_VOICES,
                                                Window, WindowConfig, build_windows, content_set, draw_windows,
                                                missing_variants, near, read_texts, speak, split_texts)

REQUESTS = ["Por favor, compre pão e leite quando voltar para casa.", "Feche a torneira do tanque."]


def test_split_drops_the_requests_their_near_copies_and_the_stage1_heldout():
    kept_out = next(s for s in (f"Uma frase número {i}." for i in range(200)) if is_heldout(s, 0.15))
    sentences = ["Por favor, compre pão e leite quando voltar para casa.",  # a request
                 "por favor,  COMPRE pão e leite quando voltar para casa.",  # the same, respelled
                 "Compre pão e leite quando voltar para casa, meu filho.",  # a near copy
                 kept_out, "Uma tesoura pequena.", "O gato dorme no sofá.", "Uma tesoura pequena."]
    rows = split_texts(sentences, REQUESTS, dev=1)
    texts = [t for split, t in rows if split != "test"]
    assert sorted(texts) == ["O gato dorme no sofá.", "Uma tesoura pequena."]  # deduplicated too
    assert [s for s, _ in rows].count("dev") == 1
    assert [t for s, t in rows if s == "test"] == REQUESTS


def test_the_committed_split_holds_no_request_and_no_heldout_sentence():
    from benchmarks.speech import REQUESTS as BENCH  # the benchmark's own list

    train, dev = read_texts("train"), read_texts("dev")
    requests = {r.lower() for r, _ in BENCH}
    assert len(train) > 1000 and len(dev) == 30 and not set(train) & set(dev)
    assert not {t.lower() for t in train + dev} & requests
    assert not any(is_heldout(t, 0.15) for t in train + dev)
    assert {t.lower() for t in read_texts("test")} == requests


def test_windows_never_use_a_heldout_voice_and_repeat_with_the_seed():
    config = WindowConfig(windows=40, max_sentences=3)
    texts = [f"frase {i}" for i in range(30)]
    windows = draw_windows(texts, config)
    assert windows == draw_windows(texts, config) and windows != draw_windows(texts, WindowConfig(windows=40, seed=1))
    assert not {w.voice for w in windows} & set(HELDOUT_VOICES) and len({w.voice for w in windows}) > 5
    assert all(1 <= len(w.sentences) <= 3 for w in windows)
    assert {s for w in windows[:12] for s in w.sentences} <= set(texts)
    assert len({s for w in windows for s in w.sentences}) == 30  # every text used
    with pytest.raises(DataError, match="held-out voices"):
        draw_windows(texts, config, voices=(*TRAIN_VOICES, "pt-br+f3"))
    for fresh in ("pt-br+m8", "pt-br+andrea", "pt+Henrique", "pt-br+steph"):  # any spelling, any language
        with pytest.raises(DataError, match="held-out voices"):
            draw_windows(texts, config, voices=("pt-br+m1", fresh))


def test_more_voices_are_new_and_the_dev_voices_are_never_mixed_into_training():
    variant = lambda v: v.partition("+")[2].lower()  # noqa: E731
    more, dev, held = ({variant(v) for v in vs} for vs in (MORE_VOICES, DEV_VOICES, HELDOUT_VOICES))
    assert len(more) == len(MORE_VOICES) >= 40 and len(dev) == 4
    assert not more & {variant(v) for v in TRAIN_VOICES} and not more & dev and not (more | dev) & held
    texts = [f"frase {i}" for i in range(30)]
    assert {w.voice for w in draw_windows(texts, WindowConfig(windows=40), DEV_VOICES)} == set(DEV_VOICES)
    for mixed in ((*MORE_VOICES, "pt-br+Diogo"), ("pt-br+m1", "pt-br+ALICIA")):
        with pytest.raises(DataError, match="dev voices"):
            draw_windows(texts, WindowConfig(windows=4), mixed)


def test_added_windows_go_after_the_existing_shards(tmp_path, monkeypatch):
    import torch

    from lhama.recipes.default import whisper_ptbr

    monkeypatch.setattr(whisper_ptbr, "speak", lambda w, c, seed: (np.zeros(160, np.float32), w.text))
    monkeypatch.setattr(whisper_ptbr, "encode", lambda whisper, samples: torch.zeros(1500, 4, dtype=torch.float16))
    windows = draw_windows([f"frase {i}" for i in range(9)], WindowConfig(windows=5, shard_size=2))
    (tmp_path / "shard-00000.pt").write_bytes(b"kept")  # an existing shard is not rebuilt
    paths = build_windows(None, windows, tmp_path, WindowConfig(windows=5, shard_size=2, first_shard=3))
    assert [p.name for p in paths] == ["shard-00003.pt", "shard-00004.pt", "shard-00005.pt"]
    assert (tmp_path / "shard-00000.pt").read_bytes() == b"kept"
    assert torch.load(paths[-1], weights_only=True)["texts"] == [windows[-1].text]
    with pytest.raises(ValueError, match="first_shard"):
        WindowConfig(first_shard=-1)


@pytest.mark.parametrize("second", [False, True], ids=["fresh", "fresh2"])
def test_the_fresh_heldout_set_is_new_text_in_new_voices(second):
    from benchmarks.speech import FRESH, FRESH2, REQUESTS as BENCH, fold, fresh_rows

    rows = fresh_rows(FRESH2 if second else FRESH)
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts) >= 80 and sum(r["kind"] == "pedido" for r in rows) >= 30
    assert all(k in fold(r["text"]) for r in rows for k in r["keys"].split())  # a request's key words are said
    seen = [content_set(t) for split in ("train", "dev", "test") for t in read_texts(split)]
    seen += [content_set(r) for r, _ in BENCH]
    seen += [content_set(r["text"]) for r in fresh_rows(FRESH)] if second else []  # session 9's set: new vs the first
    assert not [t for t in texts if near(t, seen)]
    assert not {v for v, _ in FRESH_VOICES} & set(TRAIN_VOICES) and len({s for _, s in FRESH_VOICES}) > 1


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_missing_variants_names_the_voices_espeak_would_read_in_plain_pt_br():
    assert missing_variants([*TRAIN_VOICES, *HELDOUT_VOICES, *MORE_VOICES, *DEV_VOICES]) == []
    assert missing_variants(["pt-br+Steph", "pt-br+m8", "pt-br+nonexistent"]) == ["pt-br+Steph", "pt-br+nonexistent"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speak_keeps_only_the_sentences_that_fit_and_adds_the_noise():
    long = "Esta é uma frase bem longa que o sintetizador vai ler devagar para ocupar tempo."
    window = Window("pt-br+m1", 150, 50, ("Uma vaca.", long, long), None)
    samples, text = speak(window, WindowConfig(window_seconds=6.0), seed=0)
    assert text.startswith("Uma vaca.") and text.count(long) < 2
    assert samples.dtype == np.float32 and samples.size <= 6.0 * SAMPLE_RATE
    noisy, _ = speak(Window("pt-br+m1", 150, 50, ("Uma vaca.",), 10.0), WindowConfig(), seed=0)
    clean, _ = speak(Window("pt-br+m1", 150, 50, ("Uma vaca.",), None), WindowConfig(), seed=0)
    assert noisy.size == clean.size and 0.05 < np.std(noisy - clean) / np.std(clean) < 1.0
