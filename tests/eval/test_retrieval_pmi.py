"""Session 12 of #26: eval retrieval ranks captions by PMI (log-prob after the picture minus
log-prob after the same prompt without it) by default; the summed log-prob stays available and is
reported from the same scores."""

import json

import pytest

from lhama.errors import ConfigError
from lhama.eval.answer import chat_messages, labeler_note
from lhama.eval.cache import PredictionCache
from lhama.eval.retrieval import PROMPT, evaluate_retrieval, make_trials, ranked
from lhama.eval.scoring import ScoreRequest, score_continuations
from lhama.eval.tasks import RetrievalTask
from tests.eval.test_retrieval import _items


def _cascade(tmp_path):
    from lhama.model.build import load_model
    from tests.weights.test_cascade import tiny_cascade

    return load_model(tiny_cascade(tmp_path / "model"))


def _full(loaded, user, candidates):
    messages = chat_messages(loaded, user)
    return [s.logprob for s in score_continuations(loaded, [ScoreRequest(messages, c) for c in candidates])]


def test_pmi_is_the_pictures_log_prob_minus_the_prompt_without_it(tmp_path):
    cascade = _cascade(tmp_path)
    trials = make_trials(_items(tmp_path), choices=5, seed=0)
    cache = PredictionCache(tmp_path / "r.jsonl", {})
    result = evaluate_retrieval(cascade, trials, cache)
    assert result.scoring == "pmi"
    right = plain = 0
    for trial in trials:  # every score recomputed independently, as full prompts
        seen = _full(cascade, f"{labeler_note(cascade, trial.item.image)}\n{PROMPT}", trial.candidates)
        prior = _full(cascade, PROMPT, trial.candidates)
        record = cache.get("model", trial.item.file)
        assert record["scores"] == pytest.approx(seen, abs=1e-4) and record["prior"] == pytest.approx(prior, abs=1e-4)
        pmi = [s - p for s, p in zip(seen, prior)]
        best = max(range(5), key=pmi.__getitem__)
        assert result.picks[trial.item.file] == trial.candidates[best]
        right += best == trial.answer
        plain += max(range(5), key=seen.__getitem__) == trial.answer
    assert result.top1 == pytest.approx(right / len(trials)) and result.top1_logprob == pytest.approx(plain / len(trials))


def test_the_prior_turns_a_pick_the_summed_log_prob_got_wrong(tmp_path, tiny_vlm):
    """A caption likely whatever the picture (high prior) loses to one the picture made likelier."""
    trials = make_trials(_items(tmp_path), choices=3, seed=0)
    cache = PredictionCache(tmp_path / "r.jsonl", {})
    for trial in trials:  # cached records: evaluate_retrieval reads them, it computes nothing
        wrong = (trial.answer + 1) % 3
        scores, prior = [-10.0] * 3, [-12.0] * 3
        scores[wrong], prior[wrong] = -5.0, -1.0  # likeliest after the picture, likelier still without it
        scores[trial.answer], prior[trial.answer] = -6.0, -9.0  # the picture lifted it by 3 nats
        cache.put("model", trial.item.file, {"scores": scores, "prior": prior, "candidates": list(trial.candidates)})
    pmi = evaluate_retrieval(tiny_vlm, trials, cache)
    plain = evaluate_retrieval(tiny_vlm, trials, cache, scoring="logprob")
    assert (pmi.top1, pmi.top1_logprob) == (1.0, 0.0) and (plain.top1, plain.scoring) == (0.0, "logprob")
    assert all(pmi.picks[t.item.file] == t.item.reference != plain.picks[t.item.file] for t in trials)
    assert ranked({"scores": [-1.0, -2.0], "prior": [-0.5, -3.0]}, "pmi") == [-0.5, 1.0]


def test_a_session_11_cache_resumes_its_scores_and_gains_the_prior(tmp_path):
    cascade = _cascade(tmp_path)
    trials = make_trials(_items(tmp_path), choices=5, seed=0)[:2]
    path = tmp_path / "r.jsonl"
    evaluate_retrieval(cascade, trials, PredictionCache(path, {"task": "retrieval"}), scoring="logprob")
    old = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    assert all("prior" not in r for r in old)
    old[0]["scores"] = [s + 100.0 for s in old[0]["scores"]]  # marks a score as read from the cache, not recomputed
    path.write_text("\n".join(json.dumps(r) for r in [{"meta": {"task": "retrieval"}}, *old]) + "\n")
    cache = PredictionCache(path, {"task": "retrieval"})
    evaluate_retrieval(cascade, trials, cache)
    record = cache.get("model", trials[0].item.file)
    assert record["scores"] == old[0]["scores"] and len(record["prior"]) == 5
    assert PredictionCache(path, {"task": "retrieval"}).get("model", trials[1].item.file)["prior"]  # written through


def test_without_images_there_is_no_prior_to_take_out(tmp_path, tiny_lm):
    trials = make_trials(_items(tmp_path), choices=3)
    cache = PredictionCache(tmp_path / "n.jsonl", {})
    result = evaluate_retrieval(tiny_lm, trials, cache, use_images=False)
    assert result.scoring == "logprob" and result.top1 == result.top1_logprob
    assert all("prior" not in cache.get("model", t.item.file) for t in trials)


def test_an_unknown_scoring_is_a_config_error(tmp_path, tiny_vlm):
    with pytest.raises(ConfigError, match="unknown retrieval scoring 'mean'.*pmi, logprob"):
        evaluate_retrieval(tiny_vlm, [], PredictionCache(tmp_path / "x.jsonl", {}), scoring="mean")
    with pytest.raises(ConfigError, match="unknown retrieval scoring 'mean'"):
        RetrievalTask(tmp_path, "lhama-default", scoring="mean")
