"""Tiny real video files for tests, written with PyAV: good clips and each kind of bad input."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

from lhama.recipes.default.clips import write_video


def gray_ramp(count: int = 40, width: int = 48, height: int = 32) -> list[np.ndarray]:
    """Frame i is uniformly gray at level 10*i (mod 256): a frame's value tells its index."""
    return [np.full((height, width, 3), (10 * i) % 256, np.uint8) for i in range(count)]


def tiny_mp4(path: Path, count: int = 40, fps: int = 8) -> Path:
    return write_video(path, gray_ramp(count), fps=fps)


def with_audio_mp4(path: Path, seconds: int = 2, fps: int = 8) -> Path:
    """An MP4 with a video and an AAC audio track (silence)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        for array in gray_ramp(seconds * fps, 32, 32):
            container.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000 * seconds), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(audio.encode(frame))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def unknown_codec(path: Path) -> bytes:
    """A valid MP4 whose video codec tag is renamed to one FFmpeg does not know."""
    return tiny_mp4(path).read_bytes().replace(b"avc1", b"lhm1")


def audio_only() -> bytes:
    """A WAV file: a container FFmpeg opens, with no video stream."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def long_video(path: Path, minutes: int = 20, fps: int = 2, keyframe_s: int = 10) -> Path:
    """A long, tiny (16x16) video with a keyframe every ``keyframe_s`` seconds; frame i is gray
    at level (i // fps) % 256, i.e. its second. About 1 s to write two hours at 1 fps."""
    frames = (np.full((16, 16, 3), (i // fps) % 256, np.uint8) for i in range(minutes * 60 * fps))
    options = {"g": str(keyframe_s * fps), "keyint_min": str(keyframe_s * fps), "sc_threshold": "0", "preset": "ultrafast"}
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return path
