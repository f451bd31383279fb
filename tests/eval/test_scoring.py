import pytest
import torch

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.errors import ModelError
from lhama.eval.scoring import ScoreRequest, score_continuations
from tests.conftest import tiny_loaded

MESSAGES = ({"role": "user", "content": "<image>\nQual é a capital do Brasil?"},)


def test_batched_scores_equal_single_scores(tiny_vlm):
    image = torch.randn(3, 32, 32)
    requests = [ScoreRequest(MESSAGES, "Brasília", (image,)), ScoreRequest(MESSAGES, "A capital é Brasília.", (image,)),
                ScoreRequest(MESSAGES, "sim", (torch.zeros(3, 32, 32),))]
    batched = score_continuations(tiny_vlm, requests, batch_size=3)
    single = [score_continuations(tiny_vlm, [r], batch_size=1)[0] for r in requests]
    for b, s in zip(batched, single):
        assert b.tokens == s.tokens
        assert b.logprob == pytest.approx(s.logprob, abs=1e-4)
    assert batched[1].tokens > batched[0].tokens


def test_score_is_the_sum_of_token_log_probabilities(tiny_lm):
    messages = ({"role": "user", "content": "Olá"},)
    (score,) = score_continuations(tiny_lm, [ScoreRequest(messages, "sim")])
    tok = tiny_lm.tokenizer
    prompt = encode_prompt(tok, render_prompt(tok, messages))
    cont = tok(" sim", add_special_tokens=False)["input_ids"]  # transcript prompt ends in ':' -> space
    logits = tiny_lm.model(torch.tensor([prompt + cont])).logits[0]
    expected = sum(torch.log_softmax(logits[len(prompt) - 1 + k], -1)[t].item() for k, t in enumerate(cont))
    assert score.tokens == len(cont)
    assert score.logprob == pytest.approx(expected, abs=1e-4)
    assert score.mean == pytest.approx(expected / len(cont))


def test_the_image_changes_the_score(tiny_vlm):
    a, b = score_continuations(tiny_vlm, [ScoreRequest(MESSAGES, "sim", (torch.zeros(3, 32, 32),)),
                                          ScoreRequest(MESSAGES, "sim", (torch.ones(3, 32, 32),))])
    assert a.logprob != pytest.approx(b.logprob, abs=1e-6)


def test_images_on_a_text_only_model_is_a_one_line_error(tiny_lm):
    with pytest.raises(ModelError, match="no vision tower"):
        score_continuations(tiny_lm, [ScoreRequest(MESSAGES, "sim", (torch.zeros(3, 32, 32),))])
