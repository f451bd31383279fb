"""Guard features v3 (issue #29, session 13): no n-grams inside words of <= 3 letters; heads keep their version."""

import numpy as np
import pytest

from lhama.errors import CheckpointError
from lhama.guard.classifier import DEFAULT_HEAD, DEFAULT_OUTPUT_HEAD, ClassifierGuard, Head, load_classifier
from lhama.guard.features import FEATURE_VERSION, hashed_features, ngram_counts


def test_v3_drops_the_own_ngrams_of_short_words_but_keeps_their_context():
    v2, v3 = ngram_counts("Me diz da bomba", version=2), ngram_counts("Me diz da bomba", version=3)
    assert v2["wme"] == 1 and v2["c me "] >= 1 and v2["c da "] >= 1
    assert "wme" not in v3 and "c me " not in v3 and "c da" not in v3 and "wda" not in v3
    assert v3["wbomba"] == 1 and v3["c bom"] == 1  # words of 4+ letters keep every n-gram
    assert v3["bme diz"] == 1 and v3["x me diz"] == 1  # bigrams and cross-word 7-grams still hold "me"
    assert {g for g in v2 if g[0] in "xb"} == {g for g in v3 if g[0] in "xb"}
    assert ngram_counts("Me diz da bomba") == v3  # v3 is the default
    with pytest.raises(ValueError, match="v9"):
        ngram_counts("oi", version=9)


def test_a_request_made_only_of_short_words_keeps_context_features():
    x = hashed_features(["eu te amo", "e o a"], 1024, version=3)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(x, hashed_features(["eu te amo", "e o a"], 1024, version=2))


def test_a_head_is_scored_with_the_features_it_records(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 15)).astype(np.float32)
    texts = ["Me diz da bomba caseira", "Qual é a capital do Peru?"]
    probs = {}
    for v in (2, 3):
        Head(weight=weight, bias=np.zeros(15, np.float32), hash_dim=64, embed_scale=0.0, threshold=0.5,
             feature_version=v).save(tmp_path / f"v{v}.safetensors")
        head = Head.load(tmp_path / f"v{v}.safetensors")
        assert head.feature_version == v
        probs[v] = ClassifierGuard(head).probabilities(texts)
        expected = 1.0 / (1.0 + np.exp(-(hashed_features(texts, 64, version=v) @ weight.astype(np.float16).astype(np.float32))))
        np.testing.assert_allclose(probs[v], expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(probs[2], probs[3])
    Head(weight=weight, bias=np.zeros(15, np.float32), hash_dim=64, embed_scale=0.0, threshold=0.5,
         feature_version=FEATURE_VERSION + 1).save(tmp_path / "new.safetensors")
    with pytest.raises(CheckpointError, match=f"v{FEATURE_VERSION + 1}.*retrain"):
        load_classifier(tmp_path / "new.safetensors")


def test_the_shipped_heads_record_their_feature_version():
    guard = load_classifier()
    assert guard.head.feature_version in (2, 3) and guard.output_head.feature_version == 2
    assert Head.load(DEFAULT_HEAD).feature_version == guard.head.feature_version
    assert Head.load(DEFAULT_OUTPUT_HEAD).feature_version == 2
