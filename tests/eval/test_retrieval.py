from collections import Counter

import pytest
from PIL import Image

from lhama.errors import DataError, ModelError
from lhama.eval.cache import PredictionCache
from lhama.eval.caption import CaptionItem, load_captions
from lhama.eval.retrieval import PROMPT, evaluate_retrieval, make_trials
from lhama.eval.scoring import ScoreRequest, score_continuations
from lhama.eval.answer import shown_image

CAPTIONS = ["Um sapo.", "Uma chaleira.", "Uma coruja.", "Um carro.", "Uma flor.", "Um peixe."]


def _items(tmp_path):
    (tmp_path / "images").mkdir()
    rows = ["file\tpt_BR"]
    for n, caption in enumerate(CAPTIONS):
        Image.new("RGB", (32, 32), (40 * n, 255 - 40 * n, 90)).save(tmp_path / "images" / f"{n}.jpg")
        rows.append(f"{n}.jpg\t{caption}")
    (tmp_path / "captions.tsv").write_text("\n".join(rows) + "\n")
    return load_captions(tmp_path)


def test_trials_hold_the_own_caption_once_among_distinct_others_and_are_seeded(tmp_path):
    items = _items(tmp_path)
    trials = make_trials(items, choices=5, seed=3)
    assert trials == make_trials(items, choices=5, seed=3) and trials != make_trials(items, choices=5, seed=4)
    for trial in trials:
        assert len(set(trial.candidates)) == 5 and trial.candidates[trial.answer] == trial.item.reference
    assert len(Counter(t.answer for t in trials)) > 1  # the right answer is not always in one slot


def test_too_few_distinct_captions(tmp_path):
    items = [CaptionItem(f"{n}.jpg", "Um sapo.", tmp_path / f"{n}.jpg") for n in range(6)]
    with pytest.raises(DataError, match="needs at least 5 distinct captions; the data has 1"):
        make_trials(items)


def test_top1_is_the_share_of_images_whose_own_caption_scores_highest(tmp_path, tiny_vlm):
    trials = make_trials(_items(tmp_path), choices=3, seed=0)
    result = evaluate_retrieval(tiny_vlm, trials, PredictionCache(tmp_path / "c.jsonl", {}), scoring="logprob")
    expected = 0
    system = {"role": "system", "content": tiny_vlm.generation.system_prompt}  # as chat sends it
    for trial in trials:  # recompute every score independently, one request at a time
        messages = (system, {"role": "user", "content": f"<image>\n{PROMPT}"})
        media = {"image": tiny_vlm.read("image", trial.item.image)[None]}
        scores = [score_continuations(tiny_vlm, [ScoreRequest(messages, c, media)])[0].logprob for c in trial.candidates]
        expected += max(range(3), key=scores.__getitem__) == trial.answer
    assert result.top1 == pytest.approx(expected / len(trials)) and result.n == 6 and result.choices == 3


def test_retrieval_with_images_needs_a_tower_but_not_without(tmp_path, tiny_lm):
    trials = make_trials(_items(tmp_path), choices=3)
    with pytest.raises(ModelError, match="no vision tower"):
        evaluate_retrieval(tiny_lm, trials, PredictionCache(tmp_path / "a.jsonl", {}))
    result = evaluate_retrieval(tiny_lm, trials, PredictionCache(tmp_path / "b.jsonl", {}), use_images=False)
    assert result.n == 6 and set(result.picks.values()) <= set(CAPTIONS)


def test_a_cascade_model_scores_its_labeler_note_in_place_of_the_image(tmp_path):
    from lhama.eval.answer import labeler_note
    from lhama.model.build import load_model
    from tests.weights.test_cascade import tiny_cascade

    cascade = load_model(tiny_cascade(tmp_path / "model"))
    trials = make_trials(_items(tmp_path), choices=3, seed=0)
    result = evaluate_retrieval(cascade, trials, PredictionCache(tmp_path / "c.jsonl", {}), scoring="logprob")
    trial = trials[0]
    note = labeler_note(cascade, trial.item.image)
    assert note.startswith("[Imagem anexada")
    messages = ({"role": "system", "content": cascade.generation.system_prompt}, {"role": "user", "content": f"{note}\n{PROMPT}"})
    scores = [score_continuations(cascade, [ScoreRequest(messages, c)])[0].logprob for c in trial.candidates]
    assert result.picks[trial.item.file] == trial.candidates[max(range(3), key=scores.__getitem__)]


def test_captions_are_scored_after_the_models_own_system_prompt_as_chat_sends_it(tmp_path):
    """Session 11 of #26: eval retrieval scored a lone user turn, so Qwen's template put "You are
    Qwen, created by Alibaba Cloud..." where lhama-default's Portuguese system prompt (the one
    that says what "[Imagem anexada: ...]" is) goes in chat."""
    from lhama.eval.answer import chat_messages, labeler_note
    from lhama.model.build import load_model
    from lhama.weights.cascade import V2_SYSTEM_PROMPT
    from tests.weights.test_cascade import tiny_cascade

    cascade = load_model(tiny_cascade(tmp_path / "model"))
    assert cascade.generation.system_prompt == V2_SYSTEM_PROMPT
    trials = make_trials(_items(tmp_path), choices=3, seed=0)
    for use_images in (True, False):
        cache = PredictionCache(tmp_path / f"{use_images}.jsonl", {})
        evaluate_retrieval(cascade, trials[:2], cache, use_images=use_images)
        for trial in trials[:2]:
            user = f"{labeler_note(cascade, trial.item.image)}\n{PROMPT}" if use_images else PROMPT
            chat = ({"role": "system", "content": V2_SYSTEM_PROMPT}, {"role": "user", "content": user})
            assert chat_messages(cascade, user) == chat
            bare = ({"role": "user", "content": user},)  # what it scored before
            want = [s.logprob for s in score_continuations(cascade, [ScoreRequest(chat, c) for c in trial.candidates])]
            old = [s.logprob for s in score_continuations(cascade, [ScoreRequest(bare, c) for c in trial.candidates])]
            got = cache.get("model", trial.item.file)["scores"]
            assert got == pytest.approx(want, abs=1e-4) and got != pytest.approx(old, abs=1e-3)


def test_a_model_without_a_system_prompt_is_scored_on_the_user_turn_alone(tmp_path):
    from dataclasses import replace

    from lhama.eval.answer import chat_messages
    from lhama.model.build import load_model
    from tests.weights.test_cascade import tiny_cascade

    cascade = load_model(tiny_cascade(tmp_path / "model"))
    cascade.generation = replace(cascade.generation, system_prompt="")  # chat sends no system message then
    assert chat_messages(cascade, PROMPT) == ({"role": "user", "content": PROMPT},)


def test_an_image_is_shown_as_its_placeholder_and_pixels_or_as_a_cascade_models_note(tmp_path):
    """eval's one answer to "what stands for this image in the prompt" (retrieval and AdMIRe ranking)."""
    import torch

    from lhama.eval.answer import labeler_note, shown_image
    from lhama.model.build import load_model
    from tests.conftest import tiny_loaded
    from tests.weights.test_cascade import tiny_cascade

    path = _items(tmp_path)[0].image
    vlm = tiny_loaded()
    shown, media = shown_image(vlm, path)
    assert shown == vlm.config.placeholders["image"] and list(media) == ["image"] and len(media["image"]) == 1
    assert torch.equal(media["image"][0], vlm.read("image", path))
    cascade = load_model(tiny_cascade(tmp_path / "model"))
    assert shown_image(cascade, path) == (labeler_note(cascade, path), {})
