"""``lhama prune`` and ``lhama distill``: a tiny model end to end; limits are one red line, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from lhama.cli import main
from tests.conftest import tiny_tokenizer
from tests.train.students import save_decoder, tiny_decoder, write_calibration
from tests.train.test_distill import write_chats


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["lhama", *args])
    try:
        main()
    except SystemExit as exit_:
        return exit_.code or 0
    return 0


def test_prune_writes_a_smaller_model(monkeypatch, capsys, tmp_path: Path) -> None:
    source = save_decoder(tiny_decoder("qwen2", layers=4), tmp_path / "src")
    calib = write_calibration(tmp_path / "calib.txt")
    code = _run(monkeypatch, "prune", "--model", str(source), "--out", str(tmp_path / "out"), "--layers", "1",
                "--heads", "2", "--calib", str(calib), "--calib-texts", "3")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(tmp_path / "out")
    assert "calibration: 3 texts" in captured.err  # --calib-texts: only the first 3 lines are read
    assert "layers 4 -> 3" in captured.err and "calibration perplexity" in captured.err
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.num_attention_heads == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--layers", "9"], "has 4 decoder layers; remove at most 3"),
    (["--heads", "3"], "does not split evenly over the 2 key-value groups"),
    (["--drop-layers", "1,x"], "comma-separated layer numbers"),
    (["--layers", "1", "--calib-texts", "0"], "--calib-texts must be >= 1"),
])
def test_prune_limits_are_one_red_line(monkeypatch, capsys, tmp_path: Path, args, message) -> None:
    source = save_decoder(tiny_decoder("qwen2", layers=4), tmp_path / "src")
    calib = write_calibration(tmp_path / "calib.txt")
    capsys.readouterr()
    code = _run(monkeypatch, "prune", "--model", str(source), "--out", str(tmp_path / "out"), "--calib", str(calib), *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_distill_runs_and_refuses_other_tokenizers(monkeypatch, capsys, tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer()
    teacher = save_decoder(tiny_decoder("qwen2", layers=2, seed=1), tmp_path / "teacher", tokenizer)
    student = save_decoder(tiny_decoder("qwen2", layers=1, seed=2), tmp_path / "student", tokenizer)
    data = write_chats(tmp_path / "train.jsonl", 8)
    common = ["distill", "--teacher", str(teacher), "--data", str(data), "--steps", "2", "--top-k", "4",
              "--eval-data", str(write_chats(tmp_path / "held.jsonl", 2, offset=1))]
    code = _run(monkeypatch, *common, "--student", str(student), "--out", str(tmp_path / "run"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "KL to the teacher" in err and (tmp_path / "run" / "model" / "config.json").is_file()
    other = save_decoder(tiny_decoder("qwen2", layers=1), tmp_path / "other", tiny_tokenizer(vocab_size=100))
    capsys.readouterr()
    code = _run(monkeypatch, *common, "--student", str(other), "--out", str(tmp_path / "run2"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.splitlines()[-1].startswith("error:") and "different tokenizers" in err.splitlines()[-1]
    assert not (tmp_path / "run2").exists()


def test_distill_teacher_quant_that_cannot_run_is_one_red_line(monkeypatch, capsys, tmp_path: Path) -> None:
    code = _run(monkeypatch, "distill", "--teacher", str(tmp_path / "t"), "--student", str(tmp_path / "s"), "--data",
                str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"), "--teacher-quant", "int4-g7")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.splitlines()[-1].startswith("error:") and "--teacher-quant" in err.splitlines()[-1]
    assert not (tmp_path / "run").exists()
