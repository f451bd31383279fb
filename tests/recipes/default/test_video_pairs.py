"""Video-caption pairs composed from captioned images: captions, the hold-out, decodable clips."""

from __future__ import annotations

import json
from pathlib import Path

from lhama.data.video import sample_frames
from lhama.recipes.default.video_pairs import PairsConfig, build_video_pairs, then_caption
from tests.train.conftest import write_caption_set


def test_then_caption() -> None:
    assert then_caption("Um sapo.", "Uma chaleira.") == "Um sapo e depois uma chaleira."
    assert then_caption(" Confete. ", "Um relâmpago.") == "Confete e depois um relâmpago."


def test_pairs_keep_held_out_stamps_out_of_training(tmp_path: Path) -> None:
    write_caption_set(tmp_path / "tux", n=8)
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("# held out\nimg0.png\nimg1.png\n", encoding="utf-8")
    seen = []
    config = PairsConfig(tux_dir=str(tmp_path / "tux"), heldout=str(heldout), per_split=8)
    summary = build_video_pairs(config, tmp_path / "out", progress=lambda d, t: seen.append((d, t)))
    train = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    held = [json.loads(line) for line in (tmp_path / "out" / "eval.jsonl").read_text().splitlines()]
    assert len(held) == 2 == summary.eval and seen[-1] == (10, 10)
    assert all(set(r["sources"]) <= {"img0.png", "img1.png"} for r in held)
    composed = [r for r in train if r["kind"] != "real"]
    assert len(composed) == 8 and not any({"img0.png", "img1.png"} & set(r["sources"]) for r in composed)
    slideshow = next(r for r in composed if r["kind"] == "slideshow")
    assert " e depois " in slideshow["pt_BR"]
    clip = sample_frames(tmp_path / "out" / slideshow["video"], 8)
    assert clip.frames[0].getpixel((112, 112)) != clip.frames[-1].getpixel((112, 112))  # two different stamps


def test_cli_missing_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    from tests.cli.test_chat_cli import lhama

    result = lhama("data", "video-pairs", str(tmp_path / "out"), "--tux-dir", str(tmp_path / "nada"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no captions.tsv" in result.stderr and not (tmp_path / "out" / "train.jsonl").exists()


def test_cli_empty_held_out_list_is_one_line_exit_2(tmp_path: Path) -> None:
    from tests.cli.test_chat_cli import lhama

    write_caption_set(tmp_path / "tux", n=4)
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("# nothing held out\n", encoding="utf-8")
    result = lhama("data", "video-pairs", str(tmp_path / "out"), "--tux-dir", str(tmp_path / "tux"),
                   "--heldout", str(heldout))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no eval stamps" in result.stderr and not (tmp_path / "out" / "train.jsonl").exists()
