"""Frame sampling from real (tiny, generated) video files, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lhama.data.media import ImageSpec
from lhama.data.video import check_video, has_audio, sample_frames, video_to_tensor
from lhama.errors import DataError
from tests.data.video_files import audio_only, long_video, tiny_mp4, unknown_codec, with_audio_mp4


def _level(image) -> int:
    return image.getpixel((image.width // 2, image.height // 2))[0]


def test_samples_the_middle_of_equal_segments(tmp_path: Path) -> None:
    clip = sample_frames(tiny_mp4(tmp_path / "a.mp4", count=40, fps=8), 8)  # 5 s, frame i = gray 10*i
    assert clip.duration == pytest.approx(5.0)
    assert clip.timestamps == pytest.approx([0.25 + 0.625 * i for i in range(8)])
    expected = [(10 * int(t * 8)) % 256 for t in clip.timestamps]  # the frame shown at each time
    assert all(abs(_level(f) - e) <= 3 for f, e in zip(clip.frames, expected))
    assert all(f.mode == "RGB" and f.size == (48, 32) for f in clip.frames)


def test_short_clip_repeats_frames_to_the_asked_count(tmp_path: Path) -> None:
    clip = sample_frames(tiny_mp4(tmp_path / "short.mp4", count=3, fps=8), 8)
    assert len(clip.frames) == 8
    assert [round(_level(f) / 10) for f in clip.frames] == [0, 0, 0, 1, 1, 2, 2, 2]  # in order


def test_bytes_and_tensor(tmp_path: Path) -> None:
    data = tiny_mp4(tmp_path / "a.mp4").read_bytes()
    tensor = video_to_tensor(data, 4, ImageSpec(size=32))
    assert tensor.shape == (4, 3, 32, 32)
    assert tensor[0].mean() < tensor[3].mean()  # the ramp gets brighter


def test_two_hour_video_is_not_decoded_whole(tmp_path: Path) -> None:
    path = long_video(tmp_path / "long.mp4", minutes=120, fps=1)  # 7200 frames, keyframe every 10 s
    clip = sample_frames(path, 8)
    assert clip.duration == pytest.approx(7200, abs=1)
    assert clip.decoded <= 8 * 11  # about one GOP per target, not 7200 frames
    seconds = [450 + 900 * i for i in range(8)]
    assert clip.timestamps == pytest.approx(seconds, abs=1)
    assert all(abs(_level(f) - s % 256) <= 3 for f, s in zip(clip.frames, seconds))


def test_sparse_keyframes_are_decoded_forward_once(tmp_path: Path) -> None:
    path = long_video(tmp_path / "one-keyframe.mp4", minutes=20, fps=2, keyframe_s=100_000)  # 2400 frames
    clip = sample_frames(path, 8)
    assert clip.decoded <= 2400 + 2 * 150  # seeking back to frame 0 for every target would be ~9600
    seconds = [75 + 150 * i for i in range(8)]
    assert all(abs(_level(f) - s % 256) <= 3 for f, s in zip(clip.frames, seconds))


def test_audio_track_is_reported_and_harmless(tmp_path: Path) -> None:
    with_sound = with_audio_mp4(tmp_path / "sound.mp4")
    assert has_audio(with_sound) and len(sample_frames(with_sound, 4).frames) == 4
    assert not has_audio(tiny_mp4(tmp_path / "silent.mp4"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: b"\x00\x01not a video" * 50, "cannot read video"),
        (lambda d: tiny_mp4(d / "t.mp4").read_bytes()[:300], "cannot read video"),
        (lambda d: audio_only(), "has no video stream"),
        (lambda d: unknown_codec(d / "u.mp4"), "unsupported video codec"),
    ],
    ids=["garbage", "truncated", "no-video-stream", "unknown-codec"],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(make(tmp_path))
    for check in (lambda: sample_frames(path), lambda: check_video(path)):
        with pytest.raises(DataError) as info:
            check()
        assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP", "BMP"])
def test_a_still_image_is_not_a_video_as_a_file_or_as_bytes(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"foto.{kind.lower()}"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, kind)
    for source, name in ((path, str(path)), (path.read_bytes(), "(uploaded video)")):  # chat's file, the API's upload
        for check in (sample_frames, check_video):
            with pytest.raises(DataError) as info:
                check(source)
            assert str(info.value) == f"{name} is a still image, not a video; send it as an image"


def test_a_text_file_is_not_a_video(tmp_path: Path) -> None:
    notes = tmp_path / "notas.txt"  # FFmpeg's tty demuxer would render it as ANSI-art frames
    notes.write_text("Comprar pão e leite.\n" * 40)
    for check in (sample_frames, check_video):
        with pytest.raises(DataError) as info:
            check(notes)
        assert str(info.value) == f"{notes} is a text file, not a video"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="video not found"):
        sample_frames(tmp_path / "nope.mp4")
