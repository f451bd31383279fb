import pytest
import torch

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.errors import ModelError
from lhama.eval.scoring import PromptScorer, ScoreRequest, score_continuations
from tests.conftest import tiny_loaded, tiny_video_loaded

MESSAGES = ({"role": "user", "content": "<image>\nQual é a capital do Brasil?"},)


def _image(fill: float | None = None) -> dict[str, torch.Tensor]:
    """One picture's media, as a request carries it (by branch kind, stacked)."""
    return {"image": torch.randn(1, 3, 32, 32) if fill is None else torch.full((1, 3, 32, 32), fill)}


def test_batched_scores_equal_single_scores(tiny_vlm):
    image = _image()
    requests = [ScoreRequest(MESSAGES, "Brasília", image), ScoreRequest(MESSAGES, "A capital é Brasília.", image),
                ScoreRequest(MESSAGES, "sim", _image(0.0))]
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
    a, b = score_continuations(tiny_vlm, [ScoreRequest(MESSAGES, "sim", _image(0.0)),
                                          ScoreRequest(MESSAGES, "sim", _image(1.0))])
    assert a.logprob != pytest.approx(b.logprob, abs=1e-6)


def test_media_of_a_kind_the_model_lacks_is_a_one_line_error_naming_it(tiny_lm, tiny_vlm):
    want = r"^the model .* has no image branch \(it has: text only\), so it cannot score image inputs; use --text-only"
    with pytest.raises(ModelError, match=want):
        score_continuations(tiny_lm, [ScoreRequest(MESSAGES, "sim", _image(0.0))])
    with pytest.raises(ModelError, match=want):
        PromptScorer(tiny_lm).score(MESSAGES, ["sim"], _image(0.0))
    frames = {"video": torch.zeros(1, 4, 3, 32, 32)}
    with pytest.raises(ModelError, match=r"has no video branch \(it has: image\), so it cannot score video inputs"):
        score_continuations(tiny_vlm, [ScoreRequest(MESSAGES, "sim", frames)])


def _video_requests(loaded):
    """Requests over two kinds, in an order that mixes media counts: video only, image and video,
    text only, video only (a picture and a clip of 4 frames each)."""
    video, image = loaded.config.placeholders["video"], loaded.config.placeholders["image"]
    clip = {"video": torch.randn(1, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))}
    both = {**clip, "image": torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))}
    ask = "O que acontece?"
    return [ScoreRequest(({"role": "user", "content": f"{video}\n{ask}"},), "Um gato pula.", clip),
            ScoreRequest(({"role": "user", "content": f"{image}\n{video}\n{ask}"},), "Um gato pula.", both),
            ScoreRequest(({"role": "user", "content": ask},), "Nada.", {}),
            ScoreRequest(({"role": "user", "content": f"{video}\n{ask}"},), "Nada.", clip)]


def test_any_branch_kind_is_scored_and_batches_keep_each_prompts_media():
    loaded = tiny_video_loaded()
    requests = _video_requests(loaded)
    batched = score_continuations(loaded, requests, batch_size=4)
    single = [score_continuations(loaded, [r], batch_size=1)[0] for r in requests]
    assert [b.logprob for b in batched] == pytest.approx([s.logprob for s in single], abs=1e-4)
    # the frames reach the score: the same prompt with other frames scores otherwise
    other = {"video": torch.zeros(1, 4, 3, 32, 32)}
    (moved,) = score_continuations(loaded, [ScoreRequest(requests[0].messages, requests[0].continuation, other)])
    assert moved.logprob != pytest.approx(batched[0].logprob, abs=1e-6)
    # the kept-state scorer takes the same media and gives the same scores
    kept = PromptScorer(loaded)
    for request, want in zip(requests, single):
        (got,) = kept.score(request.messages, [request.continuation], request.media)
        assert got.logprob == pytest.approx(want.logprob, abs=1e-4)


def test_requests_batch_only_with_equal_media_counts(tiny_vlm):
    one, two = _image(0.5), {"image": torch.randn(2, 3, 32, 32)}
    pair = ({"role": "user", "content": "<image>\n<image>\nSão iguais?"},)
    requests = [ScoreRequest(MESSAGES, "a", one), ScoreRequest(MESSAGES, "b", one), ScoreRequest(pair, "c", two)]
    assert [r.counts for r in requests] == [(("image", 1),)] * 2 + [(("image", 2),)]
    seen = []
    score_continuations(tiny_vlm, requests, batch_size=4, on_batch=seen.append)
    assert seen == [2, 1]
