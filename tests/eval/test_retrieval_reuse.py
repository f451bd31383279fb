"""Session 11 of #26: retrieval prefills a picture's prompt once and each candidate caption's own
tokens after it (the system prompt once per run), instead of 5 full prompts per picture. The
scores must be the full-prompt scores (float32, 1e-4) with the same ranking, for fewer positions."""

import pytest
import torch

from lhama.eval.answer import chat_messages, shown_image
from lhama.eval.cache import PredictionCache
from lhama.eval.retrieval import PROMPT, evaluate_retrieval, make_trials
from lhama.eval.scoring import ScoreRequest, _encode, score_continuations
from tests.eval.test_retrieval import _items


def _full_scores(loaded, trial, use_images=True):
    """What eval retrieval computed before: every candidate as one full prompt, in one batch."""
    shown, media = shown_image(loaded, trial.item.image) if use_images else ("", {})
    messages = chat_messages(loaded, f"{shown}\n{PROMPT}" if use_images else PROMPT)
    requests = [ScoreRequest(messages, c, media) for c in trial.candidates]
    return [s.logprob for s in score_continuations(loaded, requests, batch_size=len(requests))], requests


class _Positions:
    """Counts the positions the decoder actually runs (a forward hook on the language model)."""

    def __init__(self, loaded):
        self.calls: list[int] = []
        self._handle = loaded.model.language_model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        self.calls.append(int(embeds.shape[0] * embeds.shape[1]))

    def close(self):
        self._handle.remove()


def _cascade(tmp_path):
    from lhama.model.build import load_model
    from tests.weights.test_cascade import tiny_cascade

    return load_model(tiny_cascade(tmp_path / "model"))


def _ranking(scores):
    return sorted(range(len(scores)), key=lambda k: -scores[k])


@pytest.mark.parametrize("kind", ["image_branch", "cascade_note", "no_image"])
def test_reused_prefix_scores_equal_full_prompt_scores_and_rank_alike(tmp_path, tiny_vlm, kind):
    loaded = tiny_vlm if kind == "image_branch" else _cascade(tmp_path)
    assert next(loaded.model.parameters()).dtype == torch.float32
    use_images = kind != "no_image"
    trials = make_trials(_items(tmp_path), choices=5, seed=1)
    cache = PredictionCache(tmp_path / "r.jsonl", {})
    result = evaluate_retrieval(loaded, trials, cache, use_images=use_images, scoring="logprob")
    for trial in trials:
        got = cache.get("model", trial.item.file)["scores"]
        want, _ = _full_scores(loaded, trial, use_images)
        assert got == pytest.approx(want, abs=1e-4)
        assert _ranking(got) == _ranking(want)
        assert result.picks[trial.item.file] == trial.candidates[_ranking(want)[0]]


def test_fewer_positions_are_prefilled_and_the_system_prompt_only_once(tmp_path):
    cascade = _cascade(tmp_path)
    assert cascade.generation.system_prompt  # a long shared opening to reuse
    trials = make_trials(_items(tmp_path), choices=5, seed=0)
    before = _Positions(cascade)
    prompts, lengths = [], []
    for trial in trials:
        _, requests = _full_scores(cascade, trial)
        encoded = [_encode(cascade, r) for r in requests]
        prompts.append(encoded[0][0])
        lengths.append([len(c) for _, c in encoded])
    before.calls.clear()
    for trial in trials:
        _full_scores(cascade, trial)
    old = sum(before.calls)
    before.close()
    counter = _Positions(cascade)
    evaluate_retrieval(cascade, trials, PredictionCache(tmp_path / "r.jsonl", {}), scoring="logprob")
    counter.close()
    new = sum(counter.calls)
    # the full prompt of the first picture, after that only what follows the shared opening,
    # and each caption's tokens but its last (whose prediction is not needed)
    shared = [0] + [min(_common(a, b), len(b) - 1) for a, b in zip(prompts, prompts[1:])]
    want = sum(len(p) - s for p, s in zip(prompts, shared)) + sum(n - 1 for row in lengths for n in row)
    assert new == want and new < old / 3, (new, want, old)
    assert min(shared[1:]) > len(prompts[0]) / 2  # the system prompt is the larger part of each prompt
    assert counter.calls[0] == len(prompts[0]) and max(counter.calls[1:]) < len(prompts[0]) / 2


def test_a_new_picture_never_reuses_the_previous_pictures_placeholder_positions(tmp_path, tiny_vlm):
    """Two pictures' prompts have the same ids (the placeholders are alike) but other pixels:
    the second is scored as if alone."""
    trials = make_trials(_items(tmp_path), choices=5, seed=2)[:2]
    cache = PredictionCache(tmp_path / "r.jsonl", {})
    evaluate_retrieval(tiny_vlm, trials, cache)
    alone = PredictionCache(tmp_path / "alone.jsonl", {})
    evaluate_retrieval(tiny_vlm, trials[1:], alone)
    second = trials[1].item.file
    assert cache.get("model", second)["scores"] == pytest.approx(alone.get("model", second)["scores"], abs=1e-4)
    first_scores = cache.get("model", trials[0].item.file)["scores"]
    assert cache.get("model", second)["scores"] != pytest.approx(first_scores, abs=1e-3)


def _common(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
