import json

import pytest

from lhama.errors import ConfigError, DataError, ModelError
from lhama.eval.report import render_report
from lhama.eval.runner import AdmireConfig, evaluate_admire, write_metrics, write_submission
from lhama.model.build import save_model
from tests.conftest import tiny_loaded
from tests.eval.helpers import write_admire


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"vlm": str(save_model(tiny_loaded(), root / "vlm")),
            "lm": str(save_model(tiny_loaded(image=None), root / "lm"))}


def _cfg(tmp_path, **kw):
    return AdmireConfig(data=write_admire(tmp_path / "data"), cache=tmp_path / "cache.jsonl", **kw)


def test_model_and_random_baseline_in_one_run(tmp_path, model_dirs):
    results = evaluate_admire(_cfg(tmp_path, model=model_dirs["vlm"], baselines=("random",)))
    assert [s.name for s in results.systems] == ["random", "vlm (image)"]
    assert results.primary.name == "vlm (image)"
    for system in results.systems:
        assert set(system.metrics) == {"top1", "dcg", "spearman", "n"}
        assert system.metrics["n"] == {"all": 3, "idiomatic": 2, "literal": 1}
        assert 1 / 3 <= system.metrics["dcg"]["all"] <= 3.631


def test_metrics_json_and_submission_tsv(tmp_path, model_dirs):
    results = evaluate_admire(_cfg(tmp_path, model=model_dirs["lm"], text_only=True, baselines=("random",)))
    data = json.loads(write_metrics(results, tmp_path / "m.json").read_text())
    assert data["system"] == "lm (text)"
    for name in ("top1", "dcg", "spearman"):
        assert set(data[name]) == {"all", "idiomatic", "literal"}
    assert set(data["systems"]) == {"random", "lm (text)"}
    lines = write_submission(results, tmp_path / "s.tsv").read_text().splitlines()
    assert lines[0] == "compound\texpected_order"
    compound, order = lines[1].split("\t")
    assert compound == "hot potato" and eval(order) == list(results.primary.rankings["hot potato"].order)


def test_known_predictions_from_the_cache_give_known_metrics(tmp_path):
    """Resume: a cached prediction is used, not recomputed; perfect orders score 1 and 3.631."""
    cfg = _cfg(tmp_path, baselines=("random",))
    first = evaluate_admire(cfg)
    records = [json.loads(line) for line in cfg.cache.read_text().splitlines()]
    for record in records[1:]:
        record["order"] = sorted(record["order"])  # the gold order of the helper data is sorted
    cfg.cache.write_text("".join(json.dumps(r) + "\n" for r in records))
    again = evaluate_admire(cfg).primary.metrics
    assert again["top1"]["all"] == 1.0
    assert again["dcg"]["all"] == pytest.approx(3.6309, abs=1e-4)
    assert again["spearman"]["all"] == 1.0
    assert first.primary.metrics["top1"]["all"] < 1.0


def test_interrupted_run_resumes(tmp_path, model_dirs, monkeypatch):
    cfg = _cfg(tmp_path, model=model_dirs["lm"], text_only=True, baselines=())
    from lhama.eval import rankers

    calls = []
    real = rankers.ModelRanker.rank

    def crash_on_second(self, item):
        calls.append(item.item_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, item)

    monkeypatch.setattr(rankers.ModelRanker, "rank", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        evaluate_admire(cfg)
    monkeypatch.setattr(rankers.ModelRanker, "rank", lambda self, item: calls.append(item.item_id) or real(self, item))
    evaluate_admire(cfg)
    assert calls == ["hot potato", "big fish", "big fish", "night owl"]  # "hot potato" came from the cache


def test_text_only_model_on_image_track_is_refused(tmp_path, model_dirs):
    with pytest.raises(ModelError, match="has no vision tower.*--text-only"):
        evaluate_admire(_cfg(tmp_path, model=model_dirs["lm"]))


def test_missing_image_on_image_track(tmp_path, model_dirs):
    cfg = _cfg(tmp_path, model=model_dirs["vlm"], baselines=())
    (cfg.data.parent / "big fish" / "bigfish2.jpg").unlink()
    with pytest.raises(DataError, match="item 'big fish': image bigfish2.jpg not found"):
        evaluate_admire(cfg)


def test_unlabelled_split_and_unknown_baseline(tmp_path):
    cfg = _cfg(tmp_path, baselines=("random",))
    cfg.data.write_text(cfg.data.read_text().replace("['hotpotato1.jpg', 'hotpotato2.jpg', 'hotpotato3.jpg', "
                                                     "'hotpotato4.jpg', 'hotpotato5.jpg']", ""))
    with pytest.raises(DataError, match="'hot potato' has no gold answer"):
        evaluate_admire(cfg)
    with pytest.raises(ConfigError, match="unknown baseline 'clip'"):
        evaluate_admire(_cfg(tmp_path / "b", baselines=("clip",)))


def test_subtask_b_item_and_sentence_type_accuracy(tmp_path, model_dirs):
    header = ["compound", "subset", "sentence_type", "sequence_caption1", "sequence_caption2",
              *[f"image{n}_{k}" for n in range(1, 5) for k in ("name", "caption")], "expected_item"]
    rows = [[c, "Train", kind, "A boy steals an apple.", "The police arrive.",
             *[v for n in range(1, 5) for v in (f"{n}.png", f"caption {n} of {c}")], "2.png"]
            for c, kind in (("bad apple", "idiomatic"), ("green apple", "literal"))]
    tsv = tmp_path / "subtask_b_train.tsv"
    tsv.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    cfg = AdmireConfig(data=tsv, model=model_dirs["lm"], text_only=True, subtask="b", baselines=("random",),
                       cache=tmp_path / "c.jsonl")
    results = evaluate_admire(cfg)
    assert [s.name for s in results.systems] == ["random", "lm (text)"]
    for system in results.systems:
        assert set(system.metrics["item_accuracy"]) == {"all", "idiomatic", "literal"}
        assert system.metrics["sentence_type_accuracy"] in (0.0, 0.5, 1.0)
    lines = write_submission(results, tmp_path / "b.tsv").read_text().splitlines()
    assert lines[0] == "compound\texpected_item\tsentence_type"
    name, item, sense = lines[1].split("\t")
    assert name == "bad apple" and item.endswith(".png") and sense in ("idiomatic", "literal")
    page = render_report(results)
    assert page.count('<tr class="item"') == 2 and "<th>sentence_type_accuracy</th>" in page
