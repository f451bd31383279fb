import json

import pytest
from PIL import Image

from lhama.errors import DataError, ModelError
from lhama.eval.cache import PredictionCache
from lhama.eval.vqa import evaluate_vqa, load_vqa


def _llava_json(tmp_path):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "r.png")
    records = [{"id": "q1", "image": "r.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat color is it?"}, {"from": "gpt", "value": "Red."}]},
        {"id": "q2", "image": "r.png", "question": "Is it a circle?", "answers": ["no"] * 10}]
    path = tmp_path / "vqa.json"
    path.write_text(json.dumps(records))
    return path


def test_llava_json_questions_and_answers(tmp_path):
    items = load_vqa(_llava_json(tmp_path))
    assert [(i.qid, i.question, i.answers[0]) for i in items] == [("q1", "What color is it?", "Red."),
                                                                    ("q2", "Is it a circle?", "no")]
    assert items[0].image == tmp_path / "r.png"


def test_easy_vqa_test_split():
    pytest.importorskip("easy_vqa")
    items = load_vqa("easy-vqa", limit=5)
    assert len(items) == 5 and items[0].image.is_file()
    assert items[0].question == "what is the red shape?" and items[0].answers == ("triangle",)


def test_accuracy_over_cached_answers(tmp_path, tiny_vlm):
    items = load_vqa(_llava_json(tmp_path))
    cache = PredictionCache(tmp_path / "c.jsonl", {"task": "vqa"})
    cache.put("model", "q1", {"answer": "red"})
    cache.put("model", "q2", {"answer": "yes"})
    result = evaluate_vqa(tiny_vlm, items, cache)
    assert result.accuracy == 0.5 and result.predictions == {"q1": "red", "q2": "yes"}


def test_model_answers_are_generated_and_cached(tmp_path, tiny_vlm):
    items = load_vqa(_llava_json(tmp_path))[:1]
    cache = PredictionCache(tmp_path / "c.jsonl", {"task": "vqa"})
    result = evaluate_vqa(tiny_vlm, items, cache)
    assert isinstance(result.predictions["q1"], str) and cache.get("model", "q1") is not None


def test_bad_inputs(tmp_path, tiny_lm):
    with pytest.raises(ModelError, match="no vision tower"):
        evaluate_vqa(tiny_lm, load_vqa(_llava_json(tmp_path)), PredictionCache(tmp_path / "c.jsonl", {}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": 7, "conversations": []}]))
    with pytest.raises(DataError, match="record 7: no 'image' field"):
        load_vqa(bad)
