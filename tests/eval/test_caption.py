import pytest
from PIL import Image

from lhama.errors import DataError
from lhama.eval.cache import PredictionCache
from lhama.eval.caption import evaluate_captions, load_captions


def _data(tmp_path):
    (tmp_path / "images").mkdir()
    for name, color in (("frog.jpg", "green"), ("kettle.jpg", "gray")):
        Image.new("RGB", (32, 32), color).save(tmp_path / "images" / name)
    (tmp_path / "captions.tsv").write_text("file\tcategory\ten\tpt_BR\tpt\n"
                                           "frog.jpg\tanimals\tA frog.\tUm sapo.\tUm sapo.\n"
                                           "kettle.jpg\tthings\tA kettle.\tUma chaleira elétrica.\tUma chaleira.\n")
    return tmp_path


def test_chrf_and_bleu_of_known_captions(tmp_path, tiny_vlm):
    items = load_captions(_data(tmp_path))
    assert [i.reference for i in items] == ["Um sapo.", "Uma chaleira elétrica."]
    cache = PredictionCache(tmp_path / "c.jsonl", {"task": "caption"})
    cache.put("model", "frog.jpg", {"caption": "Um sapo."})
    cache.put("model", "kettle.jpg", {"caption": "Uma chaleira elétrica."})
    result = evaluate_captions(tiny_vlm, items, cache)
    assert result.chrf == pytest.approx(100.0) and result.bleu == pytest.approx(100.0)


def test_generated_captions_are_scored(tmp_path, tiny_vlm):
    items = load_captions(_data(tmp_path), limit=1)
    result = evaluate_captions(tiny_vlm, items, PredictionCache(tmp_path / "c.jsonl", {}))
    assert result.n == 1 and 0.0 <= result.chrf < 100.0


def test_missing_reference_column(tmp_path):
    with pytest.raises(DataError, match="missing column 'es'"):
        load_captions(_data(tmp_path), column="es")


def test_split_keeps_listed_files_and_rejects_unknown_ones(tmp_path):
    data = _data(tmp_path)
    assert [i.file for i in load_captions(data, only=["kettle.jpg"])] == ["kettle.jpg"]
    with pytest.raises(DataError, match="1 file\\(s\\) of the split are not in the data"):
        load_captions(data, only=["kettle.jpg", "owl.jpg"])


def test_no_image_captions_do_not_need_a_tower(tmp_path, tiny_lm):
    items = load_captions(_data(tmp_path), limit=1)
    result = evaluate_captions(tiny_lm, items, PredictionCache(tmp_path / "c.jsonl", {}), use_images=False)
    assert result.n == 1 and set(result.predictions) == {"frog.jpg"}
