"""`lhama chat --video` as a user runs it (a real process, real MP4 files) and `/video` in the REPL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from lhama.serve.terminal import repl_line
from lhama.model.build import save_model
from lhama.serve.session import ChatSession
from tests.cli.test_chat_cli import lhama
from tests.conftest import tiny_loaded, tiny_video_loaded
from tests.data.video_files import long_video, tiny_mp4, unknown_codec, with_audio_mp4


@pytest.fixture(scope="module")
def video_model_dir(tmp_path_factory) -> Path:
    return save_model(tiny_video_loaded(), tmp_path_factory.mktemp("vid") / "tiny-video")


@pytest.fixture(scope="module")
def image_model_dir(tmp_path_factory) -> Path:
    return save_model(tiny_loaded(), tmp_path_factory.mktemp("img") / "tiny-vlm")


def _one_error_line(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line]  # besides "loaded in 1.0 s"
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert all(n in lines[0] for n in needles), lines[0]


def test_two_hour_video_and_one_with_sound_are_answered(video_model_dir: Path, tmp_path: Path) -> None:
    two_hours = long_video(tmp_path / "duas-horas.mp4", minutes=120, fps=1)
    with_sound = with_audio_mp4(tmp_path / "com-som.mp4")
    silent = tiny_mp4(tmp_path / "mudo.mp4")  # no audio track: fine
    result = lhama("chat", "--model", str(video_model_dir), "--video", str(two_hours), "--video", str(with_sound),
                   "--video", str(silent), "--max-tokens", "3", "--no-guard", "O que acontece no vídeo?", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tokens in" in result.stderr


@pytest.mark.parametrize("kind", ["corrupt", "codec", "still"])
def test_bad_video_is_one_line_and_exit_2(video_model_dir: Path, tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "ruim.mp4"
    if kind == "corrupt":
        bad.write_bytes(tiny_mp4(tmp_path / "ok.mp4").read_bytes()[:400])
        needle = "cannot read video"
    elif kind == "still":  # a JPEG given as a video: the API's 400 says the same (tests/serve/test_video_api.py)
        Image.new("RGB", (64, 48), (200, 30, 30)).save(bad, "JPEG")
        needle = "is a still image, not a video; send it as an image"
    else:
        bad.write_bytes(unknown_codec(tmp_path / "ok.mp4"))
        needle = "unsupported video codec"
    result = lhama("chat", "--model", str(video_model_dir), "--video", str(bad), "--no-guard", "O que acontece?")
    _one_error_line(result, "ruim.mp4", needle)


def test_video_with_an_image_only_model_says_how_to_fix(image_model_dir: Path, tmp_path: Path) -> None:
    result = lhama("chat", "--model", str(image_model_dir), "--video", str(tiny_mp4(tmp_path / "a.mp4")), "Oi")
    _one_error_line(result, "no video branch", "stage1-video")


def test_repl_video_command_attaches_or_reports(tmp_path: Path) -> None:
    session = ChatSession(tiny_video_loaded())
    out = io.StringIO()
    err = Console(file=out, width=200)
    assert repl_line(session, f"/video {tiny_mp4(tmp_path / 'a.mp4')}", err)
    assert len(session.pending_media["video"]) == 1 and session.pending_media["video"][0].shape == (4, 3, 32, 32)
    assert repl_line(session, f"/video {tmp_path / 'nope.mp4'}", err)
    assert "video not found" in out.getvalue()
    assert len(session.pending_media["video"]) == 1
