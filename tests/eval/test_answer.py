"""eval/answer.generate_answer: each image file shown as the model takes it (its branch's
placeholder with pixels, or a cascade model's labeler note), so VQA and captioning run on
lhama-default's kind of model too (before session 10 they raised KeyError 'image' on one)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.eval import answer
from lhama.eval.answer import generate_answer, labeler_note
from lhama.eval.cache import PredictionCache
from lhama.eval.caption import PROMPTS, evaluate_captions, load_captions
from lhama.eval.vqa import evaluate_vqa, load_vqa
from lhama.model.build import load_model
from tests.eval.test_caption import _data
from tests.eval.test_vqa import _llava_json
from tests.weights.test_cascade import tiny_cascade


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], dict | None]]:
    """The (input ids, media) of every answer generated, as ``complete`` receives them."""
    seen, real = [], answer.complete
    monkeypatch.setattr(answer, "complete", lambda model, tokenizer, ids, config, media, reference:
                        seen.append((ids, media)) or real(model, tokenizer, ids, config, media, reference))
    return seen


def test_a_cascade_model_answers_and_captions_through_its_labelers_note(tmp_path, prompts, monkeypatch) -> None:
    cascade = load_model(tiny_cascade(tmp_path / "model"))
    turns, real = [], answer.render_prompt
    monkeypatch.setattr(answer, "render_prompt", lambda tokenizer, messages: turns.append(messages[-1]["content"])
                        or real(tokenizer, messages))
    captions = load_captions(_data(tmp_path), limit=1)
    result = evaluate_captions(cascade, captions, PredictionCache(tmp_path / "c.jsonl", {}))
    questions = load_vqa(_llava_json(tmp_path))[:1]
    asked = evaluate_vqa(cascade, questions, PredictionCache(tmp_path / "v.jsonl", {}))
    assert result.n == 1 and isinstance(asked.predictions["q1"], str)
    assert [media for _, media in prompts] == [None, None]  # told as text: no pixels
    for turn, image, text in zip(turns, (captions[0].image, questions[0].image), (PROMPTS["pt"], "What color is it?")):
        assert turn.startswith(labeler_note(cascade, image) + "\n") and text in turn


def test_an_image_branch_gets_the_placeholder_and_pixels_as_before(tmp_path, tiny_vlm, prompts) -> None:
    path = tmp_path / "r.png"
    Image.new("RGB", (32, 32), "red").save(path)
    generate_answer(tiny_vlm, "De que cor é?", [path, path], max_new_tokens=2)
    placeholder = tiny_vlm.config.placeholders["image"]
    before = render_prompt(tiny_vlm.tokenizer, [{"role": "user", "content": f"{placeholder}\n" * 2 + "De que cor é?"}])
    (ids, media), = prompts
    assert ids == encode_prompt(tiny_vlm.tokenizer, before, tiny_vlm.expansions())
    assert torch.equal(media["image"], torch.stack([tiny_vlm.read("image", path)] * 2))
