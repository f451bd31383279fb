"""Session 13 of #26: PMI's caption-only prior is scored once per distinct caption and remembered
(the prompt without a picture is the same for every trial); scores and picks are the same as
scoring each trial's five captions afresh. Session 14: "afresh" is an independent computation, each
caption scored as a full prompt by ``score_continuations`` (no ``PromptScorer``, no memo), not a
memo-less mode of the class under test."""

import json

import pytest

from lhama.eval.cache import PredictionCache
from lhama.eval.retrieval import PROMPT, CaptionPrior, evaluate_retrieval, make_trials, ranked
from tests.eval.test_retrieval import CAPTIONS, _items
from tests.eval.test_retrieval_pmi import _cascade, _full


def test_the_memo_gives_each_trials_priors_and_picks_as_scoring_afresh_does(tmp_path):
    cascade = _cascade(tmp_path)
    trials = make_trials(_items(tmp_path), choices=5, seed=0)
    cache = PredictionCache(tmp_path / "r.jsonl", {})
    result = evaluate_retrieval(cascade, trials, cache)
    for trial in trials:
        record = cache.get("model", trial.item.file)
        expected = _full(cascade, PROMPT, trial.candidates)  # each of the trial's five as a full prompt
        assert record["prior"] == pytest.approx(expected, abs=1e-4)
        pmi = [s - p for s, p in zip(record["scores"], expected)]
        assert result.picks[trial.item.file] == trial.candidates[max(range(5), key=pmi.__getitem__)]
    priors = {c: p for t in trials for c, p in zip(t.candidates, cache.get("model", t.item.file)["prior"])}
    assert len({round(p, 3) for p in priors.values()}) == len(CAPTIONS)  # distinct: a swapped caption would show


def test_a_memo_scores_each_distinct_caption_once_and_keeps_call_order(tmp_path):
    cascade = _cascade(tmp_path)
    memo = CaptionPrior(cascade)
    first = memo.scores(["Um sapo.", "Uma flor.", "Um sapo."])
    second = memo.scores(["Uma flor.", "Um carro.", "Um sapo."])
    assert memo.scored == 3 and first[0] == first[2] == second[2] and first[1] == second[0]
    assert first + second == pytest.approx(_full(cascade, PROMPT, ["Um sapo.", "Uma flor.", "Um sapo."])
                                           + _full(cascade, PROMPT, ["Uma flor.", "Um carro.", "Um sapo."]), abs=1e-4)
    assert first[0] != pytest.approx(first[1], abs=1e-3)


def test_a_resumed_run_takes_the_priors_its_cache_holds(tmp_path):
    cascade = _cascade(tmp_path)
    trials = make_trials(_items(tmp_path), choices=5, seed=0)
    path = tmp_path / "r.jsonl"
    evaluate_retrieval(cascade, trials[:2], PredictionCache(path, {"task": "retrieval"}))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    first = rows[1]
    marked = first["candidates"][0]
    first["prior"][0] += 100.0  # a prior read from the cache, never recomputed, keeps this mark
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cache = PredictionCache(path, {"task": "retrieval"})
    evaluate_retrieval(cascade, trials, cache)
    later = [cache.get("model", t.item.file) for t in trials[2:]]
    carried = [r["prior"][r["candidates"].index(marked)] for r in later if marked in r["candidates"]]
    assert carried and all(p == first["prior"][0] for p in carried)
    assert ranked(later[0], "pmi") == [s - p for s, p in zip(later[0]["scores"], later[0]["prior"])]
