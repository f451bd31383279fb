import json

import pytest

from lhama.errors import DataError
from lhama.eval.cache import PredictionCache

META = {"task": "admire-a", "model": "m"}


def test_records_survive_reopening(tmp_path):
    path = tmp_path / "c.jsonl"
    PredictionCache(path, META).put("random", "big fish", {"order": ["b", "a"]})
    again = PredictionCache(path, META)
    assert again.get("random", "big fish")["order"] == ["b", "a"]
    assert again.get("minilm", "big fish") is None


def test_torn_last_line_is_dropped_and_appends_continue(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = PredictionCache(path, META)
    cache.put("random", "one", {"order": [1]})
    with path.open("a") as handle:
        handle.write('{"system": "random", "item": "two", "ord')  # a crash mid-write
    cache = PredictionCache(path, META)
    assert cache.get("random", "two") is None and cache.get("random", "one") is not None
    cache.put("random", "two", {"order": [2]})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r.get("item") for r in lines[1:]] == ["one", "two"]


def test_cache_for_another_run_is_refused(tmp_path):
    path = tmp_path / "c.jsonl"
    PredictionCache(path, META)
    with pytest.raises(DataError, match="different run \\(model differ"):
        PredictionCache(path, {**META, "model": "other"})


def test_folder_removed_mid_run_is_recreated(tmp_path):
    path = tmp_path / "sub" / "c.jsonl"
    cache = PredictionCache(path, META)
    path.unlink()
    path.parent.rmdir()
    cache.put("random", "one", {"order": [1]})
    assert PredictionCache(path, META).get("random", "one")["order"] == [1]
    assert json.loads(path.read_text().splitlines()[0]) == {"meta": META}


def test_model_fingerprint_changes_when_the_weights_change(tmp_path):
    import os

    from lhama.eval.cache import model_fingerprint

    (tmp_path / "config.json").write_text("{}")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x" * 10)
    os.utime(weights, (1_000_000, 1_000_000))
    first = model_fingerprint(str(tmp_path))
    assert first == model_fingerprint(str(tmp_path)) and str(tmp_path.resolve()) in first
    weights.write_bytes(b"y" * 12)  # re-trained in place (lhama-default after an update)
    assert model_fingerprint(str(tmp_path)) != first
    assert model_fingerprint(None) is None


def test_default_cache_path_keys_on_everything_in_meta(tmp_path, monkeypatch):
    from lhama.eval.cache import default_cache_path, open_cache

    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    meta = {"task": "vqa", "data": "easy-vqa", "model": None, "lang": "en", "image_guidance": 0.0}
    path = default_cache_path(meta)
    assert path.parent == tmp_path / "home" / "eval-cache" and path.name.startswith("vqa-")
    assert default_cache_path(dict(meta)) == path
    assert default_cache_path({**meta, "image_guidance": 1.0}) != path
    store = open_cache(meta)
    assert store.path == path and path.is_file()
