"""Clips composed from still images, written as real MP4s and read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lhama.recipes.default.clips import pan, slideshow, square, write_video
from lhama.data.video import sample_frames
from lhama.errors import DataError


def test_slideshow_shows_each_image_in_turn(tmp_path: Path) -> None:
    red, blue = Image.new("RGB", (60, 30), (250, 0, 0)), Image.new("RGB", (20, 40), (0, 0, 250))
    frames = slideshow([red, blue], seconds_each=1.0, fps=4, side=32)
    assert len(frames) == 8 and all(f.size == (32, 32) for f in frames)
    clip = sample_frames(write_video(tmp_path / "s.mp4", frames, fps=4), 2)
    first, second = (f.getpixel((16, 16)) for f in clip.frames)
    assert first[0] > 200 > first[2] and second[2] > 200 > second[0]


def test_pan_slides_and_square_keeps_aspect() -> None:
    gradient = Image.linear_gradient("L").rotate(90).convert("RGB")  # brightness changes left to right
    frames = pan(gradient, seconds=1.0, fps=4, side=32)
    levels = [f.getpixel((16, 16))[0] for f in frames]
    assert len(frames) == 4 and levels == sorted(levels) and levels[0] < levels[-1] - 64  # the window moves
    wide = square(Image.new("RGB", (64, 16), (0, 0, 0)), side=32)
    assert wide.getpixel((16, 2)) == (255, 255, 255) and wide.getpixel((16, 16)) == (0, 0, 0)


def test_no_frames_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [])
    assert list(tmp_path.iterdir()) == []
