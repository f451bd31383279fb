"""Short video clips composed from still images (video-text training pairs from captioned
images), and the MP4 writer they share with the tests and the decoding benchmark.

Two compositions: a *slideshow* (image A, then image B: "Um sapo e depois uma chaleira.") and
a *pan* (a window sliding across one image). Written with PyAV (H.264 in MP4), atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
from PIL import Image

from lhama.errors import DataError
from lhama.files import atomic_open

CLIP_SIDE = 224  # frames are square; the towers resize to their own size anyway


def write_video(path: str | Path, frames: Iterable[Image.Image | np.ndarray], fps: int = 8,
                codec: str = "libx264") -> Path:
    """Encode RGB frames (PIL images or (H, W, 3) uint8 arrays, all one size) to a video file,
    atomically. The container follows the suffix (.mp4, .mkv, .avi...).

    Raises:
        DataError: no frames (nothing is written)."""
    path = Path(path)
    with atomic_open(path, "wb") as handle, av.open(handle, "w", format=_format(path)) as container:
        stream = None
        for frame in frames:
            array = np.asarray(frame.convert("RGB") if isinstance(frame, Image.Image) else frame, dtype=np.uint8)
            if stream is None:
                stream = _add_stream(container, codec, fps, array.shape[1], array.shape[0])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        if stream is None:
            raise DataError(f"no frames to write to {path}")
        container.mux(stream.encode(None))  # flush the encoder
    return path


def _format(path: Path) -> str:
    return {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".avi": "avi"}.get(path.suffix.lower(), "mp4")


def _add_stream(container: av.container.OutputContainer, codec: str, fps: int, width: int, height: int) -> av.VideoStream:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = width - width % 2, height - height % 2  # yuv420p needs even sides
    stream.pix_fmt = "yuv420p"
    return stream


def square(image: Image.Image, side: int = CLIP_SIDE) -> Image.Image:
    """Fit an image into a white ``side`` x ``side`` frame, keeping its aspect ratio."""
    image = image.convert("RGB")
    image.thumbnail((side, side), Image.Resampling.BICUBIC)
    frame = Image.new("RGB", (side, side), (255, 255, 255))
    frame.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return frame


def slideshow(images: list[Image.Image], seconds_each: float = 1.5, fps: int = 8,
              side: int = CLIP_SIDE) -> list[Image.Image]:
    """Frames showing each image in turn for ``seconds_each`` seconds."""
    per_image = max(1, round(seconds_each * fps))
    return [square(image, side) for image in images for _ in range(per_image)]


def pan(image: Image.Image, seconds: float = 3.0, fps: int = 8, side: int = CLIP_SIDE) -> list[Image.Image]:
    """Frames of a square window sliding left to right across ``image`` (scaled to 2x wide)."""
    wide = square(image, side).resize((2 * side, side), Image.Resampling.BICUBIC)
    count = max(2, round(seconds * fps))
    return [wide.crop((x, 0, x + side, side)) for x in np.linspace(0, side, count).astype(int)]
