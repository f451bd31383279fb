import numpy as np

from lhama.guard.features import hashed_features, ngram_counts, normalize


def test_normalize_strips_accents_and_case():
    assert normalize("  Não   SEI, Ação! ") == "nao sei, acao!"


def test_ngrams_cover_chars_words_and_bigrams():
    counts = ngram_counts("mata gato")
    assert counts["wmata"] == 1 and counts["bmata gato"] == 1
    assert counts["c ma"] == 1 and counts["cato "] == 1  # padded word edges
    # 7-grams across the word boundary, on the padded sentence " mata gato "
    assert sorted(g for g in counts if g[0] == "x") == ["x mata g", "xa gato ", "xata gat", "xmata ga", "xta gato"]
    assert not ngram_counts("")


def test_hashed_features_are_deterministic_unit_rows():
    x = hashed_features(["Como envenenar alguém?", "como envenenar alguem", ""], 1024)
    assert x.shape == (3, 1024) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x[:2], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(x[0], x[1])  # accents and case do not change the features
    assert not x[2].any()
    np.testing.assert_array_equal(x, hashed_features(["Como envenenar alguém?", "como envenenar alguem", ""], 1024))
