"""The draft's pace (lhama.inference.speculative.Pace): a late start and rests after poor proposals change
which steps the draft takes part in, never the answer."""

from __future__ import annotations

import copy

import pytest

from lhama.errors import ConfigError
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.speculative import Draft, Pace
from tests.inference.tiny import prompt_ids, tiny_decoder


def _answer(target, ids, config, draft=None) -> list[int]:
    return list(generate_ids(target.model, ids, config, draft=draft))


def _counting_forwards(draft: Draft) -> list[tuple[int, int]]:
    """(ids run, cache id) of every transformers forward of ``draft``'s model: its prefills and catch-ups
    after a rest (a check's 1-2 catch-up rows take the lean rows, no forward)."""
    calls, forward = [], draft.model.forward

    def counted(*args, **kwargs):
        calls.append((args[0].shape[-1], id(kwargs["past_key_values"])))
        return forward(*args, **kwargs)

    draft.model.forward = counted
    return calls


@pytest.mark.parametrize("pace", [Pace(start=5), Pace(start=100), Pace(below=0.75, window=2, rest=3),
                                  Pace(start=7, below=1.0, window=1, rest=1)])
@pytest.mark.parametrize("tokens", [1, 3])
def test_any_pace_gives_exactly_the_greedy_answer(pace: Pace, tokens: int) -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)  # a draft that often disagrees
    config = GenerationConfig(max_new_tokens=40, repetition_penalty=1.3)
    for seed in range(2):
        ids = prompt_ids(seed, length=20)
        assert _answer(target, ids, config, Draft(other.model, tokens, pace=pace)) == _answer(target, ids, config)


def test_a_late_start_prefills_the_draft_once_the_answer_has_that_many_tokens() -> None:
    target = tiny_decoder(seed=3)
    config, ids = GenerationConfig(max_new_tokens=30), prompt_ids(1, length=20)
    plain = _answer(target, ids, config)
    draft = Draft(copy.deepcopy(target.model), tokens=1, pace=Pace(start=10))
    calls = _counting_forwards(draft)
    assert _answer(target, ids, config, draft) == plain and len(plain) == 30
    assert [n for n, _ in calls] == [20 + 10]  # the prompt and the first 10 answer tokens, in one prefill
    # a sure draft (the model itself), 1 per step: tokens 11-30 in 10 steps of 2 (its own, then the model's)
    assert draft.proposed == draft.accepted == 10


def test_a_start_past_the_answer_never_runs_the_draft() -> None:
    target = tiny_decoder(seed=0)
    config, ids = GenerationConfig(max_new_tokens=12), prompt_ids(2)
    draft = Draft(tiny_decoder(seed=5).model, tokens=1, pace=Pace(start=12))
    calls = _counting_forwards(draft)
    assert _answer(target, ids, config, draft) == _answer(target, ids, config)
    assert calls == [] and draft.proposed == 0 and draft.kv.cache is None


def test_a_poor_draft_rests_and_catches_up_on_its_own_cache() -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    config, ids = GenerationConfig(max_new_tokens=60), prompt_ids(0, length=30)
    plain = _answer(target, ids, config)
    eager = Draft(other.model, tokens=1, reads=0)  # reads the whole prompt
    assert _answer(target, ids, config, eager) == plain and eager.acceptance_rate < 0.75
    resting = Draft(other.model, tokens=1, pace=Pace(below=0.75, window=4, rest=6), reads=0)
    calls = _counting_forwards(resting)
    assert _answer(target, ids, config, resting) == plain
    assert resting.proposed < eager.proposed - 6  # at least one rest of 6 tokens
    first, *resumes = calls
    assert first[0] == 31 and resumes, "one prefill of the prompt and first token, then catch-ups after rests"
    # each catch-up runs only the tokens decoded while the draft rested (6, plus the 1-2 of the last check)
    assert all(6 + 1 <= n <= 6 + 3 and cache == first[1] for n, cache in resumes)


def test_a_sure_draft_never_rests() -> None:
    target = tiny_decoder(seed=3)
    config, ids = GenerationConfig(max_new_tokens=25), prompt_ids(1)
    draft = Draft(copy.deepcopy(target.model), tokens=1, pace=Pace(below=0.99, window=1, rest=5))
    assert _answer(target, ids, config, draft) == _answer(target, ids, config)
    assert draft.acceptance_rate == 1.0 and draft.proposed == 12  # 2 tokens per step after the first


@pytest.mark.parametrize("reads", [1, 8, 100])
def test_a_draft_that_reads_the_prompt_s_end_only_gives_the_same_answer(reads: int) -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    config, ids = GenerationConfig(max_new_tokens=30), prompt_ids(0, length=20)
    plain = _answer(target, ids, config)
    draft = Draft(other.model, tokens=2, reads=reads, pace=Pace(start=3))
    calls = _counting_forwards(draft)
    assert _answer(target, ids, config, draft) == plain
    assert calls[0][0] == min(reads, 20) + 3  # its first prefill: the prompt's last tokens and the answer so far
    turn = ids + plain + prompt_ids(4, length=10)  # a next turn (as in a chat): the same answer again
    assert _answer(target, turn, config, draft) == _answer(target, turn, config)
    assert draft.skip == max(0, len(turn) - reads)


def test_a_draft_reading_less_than_nothing_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"^a draft reads the last N >= 0 prompt tokens \(0: all\), got -2$"):
        Draft(tiny_decoder(seed=0).model, reads=-2)


@pytest.mark.parametrize("bad", [{"start": -1}, {"window": 0}, {"rest": 0}, {"below": 1.5}, {"below": -0.1}, {"streak": -1}])
def test_a_bad_pace_is_a_one_line_error(bad: dict) -> None:
    with pytest.raises(ConfigError, match=r"^bad draft pace .*start >= 0, window >= 1") as caught:
        Pace(**bad)
    assert "\n" not in str(caught.value)


def test_by_default_the_draft_reads_the_prompt_s_last_draft_reads_tokens() -> None:
    from lhama.inference.speculative import DRAFT_READS

    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    config, ids = GenerationConfig(max_new_tokens=20), prompt_ids(0, length=DRAFT_READS + 16)
    draft = Draft(other.model, tokens=1)
    calls = _counting_forwards(draft)
    assert _answer(target, ids, config, draft) == _answer(target, ids, config)
    assert calls[0][0] == DRAFT_READS + 1 and draft.skip == 16  # its last DRAFT_READS tokens and the first answer token


@pytest.mark.parametrize("streak", [1, 2])
def test_a_growing_proposal_gives_exactly_the_greedy_answer(streak: int) -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    config = GenerationConfig(max_new_tokens=40, repetition_penalty=1.3)
    for seed in range(2):
        ids = prompt_ids(seed, length=20)
        assert _answer(target, ids, config, Draft(other.model, 3, pace=Pace(streak=streak))) == _answer(target, ids, config)


def test_a_sure_draft_grows_its_proposal_after_each_streak_up_to_its_tokens() -> None:
    target = tiny_decoder(seed=3)
    config, ids = GenerationConfig(max_new_tokens=23), prompt_ids(1)
    plain = _answer(target, ids, config)
    grown = Draft(copy.deepcopy(target.model), tokens=3, pace=Pace(streak=2))
    assert _answer(target, ids, config, grown) == plain and len(plain) == 23
    # proposals of 1, 1, 2, 2, 3, 3, 3 (each kept whole, plus the model's token): 1 + 22 tokens in 7 checks
    assert grown.proposed == grown.accepted == 15
    fixed = Draft(copy.deepcopy(target.model), tokens=3)
    assert _answer(target, ids, config, fixed) == plain and fixed.proposed == 16  # 3 a step from the first


def test_a_rejection_drops_the_proposal_back_to_one_token(monkeypatch) -> None:
    from lhama.inference import speculative
    from tests.train.test_distill_acceptance import noisy_copy

    target = tiny_decoder(seed=3)
    config, ids = GenerationConfig(max_new_tokens=60), prompt_ids(2, length=16)
    checks, check = [], speculative._check

    def logged(checker, token, proposal, draft):
        kept = check(checker, token, proposal, draft)
        checks.append((len(proposal), len(kept) - 1))
        return kept

    monkeypatch.setattr(speculative, "_check", logged)
    draft = Draft(noisy_copy(target, 0.15, seed=4).model, tokens=3, pace=Pace(streak=1))
    assert _answer(target, ids, config, draft) == _answer(target, ids, config)
    size, want = 1, []
    for proposed, kept in checks:  # the rule, re-derived: 1 after a rejection, one more after a whole one
        want.append(size)
        size = 1 if kept < proposed else size + 1
    got = [proposed for proposed, _ in checks]
    assert got[:-1] == [min(s, 3) for s in want][:-1]  # the last may be cut by the budget
    assert 1 in got[1:] and max(got) == 3, "both a fall back to 1 and a full proposal happen here"


@pytest.mark.parametrize("pace", [Pace(start=10), Pace(start=3, below=0.75, window=2, rest=3), Pace(start=6, streak=1)])
def test_a_draft_reading_at_its_join_gives_exactly_the_greedy_answer(pace: Pace) -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    config = GenerationConfig(max_new_tokens=40, repetition_penalty=1.3)
    for seed in range(2):
        ids = prompt_ids(seed, length=20)
        draft = Draft(other.model, 3, pace=pace, reads=8, reads_at_join=True)
        assert _answer(target, ids, config, draft) == _answer(target, ids, config)


@pytest.mark.parametrize("at_join, first, skip", [(False, 8 + 10, 12), (True, 8 + 1, 21)])
def test_a_late_draft_reads_the_prompt_s_end_or_the_last_tokens_before_it_joins(at_join: bool, first: int, skip: int) -> None:
    target = tiny_decoder(seed=3)
    config, ids = GenerationConfig(max_new_tokens=30), prompt_ids(1, length=20)
    draft = Draft(copy.deepcopy(target.model), tokens=1, pace=Pace(start=10), reads=8, reads_at_join=at_join)
    calls = _counting_forwards(draft)
    assert _answer(target, ids, config, draft) == _answer(target, ids, config)
    # after 10 answer tokens: the prompt's last 8 and all 10, or the last 8 of prompt + 9 tokens and the 10th
    assert [n for n, _ in calls] == [first] and draft.skip == skip
    assert 10 <= draft.proposed <= 19 and draft.accepted < draft.proposed  # it proposes at each step after it joins


def test_reading_at_the_join_changes_nothing_for_a_draft_from_the_first_token() -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    config, ids = GenerationConfig(max_new_tokens=20), prompt_ids(0, length=30)
    runs = []
    for at_join in (False, True):
        draft = Draft(other.model, tokens=2, reads=8, reads_at_join=at_join)
        calls = _counting_forwards(draft)
        runs.append((_answer(target, ids, config, draft), [n for n, _ in calls], draft.skip, draft.proposed, draft.accepted))
        del draft.model.forward  # the class's forward again, for the next count
    assert runs[0] == runs[1] and runs[0][1][0] == 8 + 1 and runs[0][2] == 22
