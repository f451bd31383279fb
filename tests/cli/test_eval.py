"""``lhama eval`` end to end, in-process through ``lhama.cli.main`` (exit codes, one-line errors)."""

import json
import sys

import pytest

from lhama.cli import main
from lhama.model.build import save_model
from tests.conftest import tiny_loaded
from tests.eval.helpers import write_admire


def run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["lhama", "eval", *args])
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables at 80 columns when not on a terminal
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    return write_admire(tmp_path / "data")


def test_admire_writes_metrics_submission_and_report(tmp_path, data, monkeypatch, capsys):
    model = save_model(tiny_loaded(), tmp_path / "vlm")
    code, out, _ = run(monkeypatch, capsys, "admire", "--data", str(data), "--model", str(model), "--baselines", "random",
                       "--metrics", str(tmp_path / "m.json"), "--output", str(tmp_path / "s.tsv"),
                       "--report", str(tmp_path / "r.html"))
    assert code in (0, None)
    assert "random" in out and "vlm (image)" in out and "Top-1" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["system"] == "vlm (image)" and set(metrics["dcg"]) == {"all", "idiomatic", "literal"}
    assert (tmp_path / "s.tsv").read_text().startswith("compound\texpected_order\nhot potato\t['")
    assert (tmp_path / "r.html").read_text().count('<tr class="item"') == 3
    assert list((tmp_path / "home" / "eval-cache").glob("admire-*.jsonl"))


@pytest.mark.parametrize("case, expected", [
    ("missing_image", "error: item 'big fish': image bigfish2.jpg not found"),
    ("bad_order", "error: subtask_a_dev.tsv item 'hot potato': expected_order is not a list"),
    ("missing_column", "error: subtask_a_dev.tsv: missing column 'image1_caption_pt'"),
    ("no_vision", "has no vision tower, so it cannot rank images; add --text-only"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, data, monkeypatch, capsys, case, expected):
    args = ["admire", "--data", str(data), "--baselines", ""]
    if case == "missing_image":
        (data.parent / "big fish" / "bigfish2.jpg").unlink()
        args += ["--model", str(save_model(tiny_loaded(), tmp_path / "vlm"))]
    elif case == "bad_order":
        data.write_text(data.read_text().replace("['hotpotato1.jpg'", "[[hotpotato1.jpg'", 1))
    elif case == "missing_column":
        args += ["--lang", "pt"]
    else:
        args += ["--model", str(save_model(tiny_loaded(image=None), tmp_path / "lm"))]
    code, _, err = run(monkeypatch, capsys, *args)
    assert code == 2
    assert expected in " ".join(err.split())
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0]  # one line (COLUMNS=200 keeps rich from wrapping)
    assert "\n\n" not in "\n" + err, repr(err[:60])  # no empty line (a progress bar stopped before it showed)


def test_idiom_prints_three_systems(tmp_path, data, monkeypatch, capsys):
    model = save_model(tiny_loaded(image=None), tmp_path / "lm")
    code, out, _ = run(monkeypatch, capsys, "idiom", "--data", str(data), "--train", str(data), "--model", str(model),
                       "--lang", "en", "--shots", "2")
    assert code in (0, None)
    assert "majority (idiomatic)" in out and "lm zero-shot" in out and "lm 2-shot" in out and "Macro-F1" in out


def test_vqa_and_caption_need_a_vision_tower(tmp_path, data, monkeypatch, capsys):
    model = str(save_model(tiny_loaded(image=None), tmp_path / "lm"))
    (tmp_path / "caps").mkdir()
    (tmp_path / "caps" / "captions.tsv").write_text("file\tpt_BR\na.jpg\tUm sapo.\n")
    for args in (["vqa", "--data", "easy-vqa", "--limit", "1"], ["caption", "--data", str(tmp_path / "caps")]):
        code, _, err = run(monkeypatch, capsys, *args, "--model", model)
        assert code == 2 and "error: the model lm has no vision tower" in err and "Traceback" not in err


def test_caption_image_guidance_is_its_own_run_and_checked(tmp_path, data, monkeypatch, capsys):
    from tests.train.conftest import write_caption_set

    model = str(save_model(tiny_loaded(), tmp_path / "vlm"))
    captions = write_caption_set(tmp_path / "caps", n=3).parent
    for guidance in ("0", "2.0"):
        code, out, _ = run(monkeypatch, capsys, "caption", "--data", str(captions), "--model", model,
                           "--image-guidance", guidance)
        assert code in (0, None) and "on 3 images" in out
    caches = sorted((tmp_path / "home" / "eval-cache").glob("caption-*.jsonl"))
    assert len(caches) == 2  # guided captions never reuse the plain ones, or the reverse
    assert {json.loads(c.read_text().splitlines()[0])["meta"]["image_guidance"] for c in caches} == {0.0, 2.0}
    code, _, err = run(monkeypatch, capsys, "caption", "--data", str(captions), "--model", model, "--image-guidance", "-1")
    assert code == 2 and "error: --image-guidance must be >= 0, got -1.0" in err
