"""Video files -> N uniformly sampled RGB frames, without decoding the whole file.

The video is cut into N equal segments and the frame at the middle of each is taken. Far-apart
targets are reached by a keyframe seek and a short forward decode, so a two-hour file costs
about N seeks; close targets (a short clip) are reached by decoding forward, which is cheaper
than seeking back to the same keyframe again. A file whose keyframes are too sparse for seeking
(a seek lands behind what is already decoded, e.g. one keyframe per file) is decoded forward once,
as far as the last target: nothing faster exists without keyframes. Decoded frames that are not
kept are dropped at once, so memory holds at most the N kept frames.

Every failure (missing or corrupt file, no video stream, an unsupported codec, no frame) is a
one-line :class:`~lhama.errors.DataError` naming the file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch
from PIL import Image

from lhama.data.media import ImageSpec, image_to_tensor
from lhama.errors import DataError

DEFAULT_FRAMES = 8  # Video-LLaMA samples 8 frames per clip
SEEK_GAP_S = 4.0  # targets closer than this are reached by decoding forward instead of seeking
STILL = "a still image"  # what _not_a_video calls a picture
MAX_FRAME_SIDE = 1024  # kept frames are downscaled to this; towers see 224-448 px anyway

VideoSource = str | Path | bytes


@dataclass(frozen=True)
class VideoClip:
    """Sampled frames of one video."""

    frames: list[Image.Image]  # N RGB frames, in time order
    timestamps: list[float]  # seconds from the stream start, one per frame
    duration: float  # seconds
    decoded: int = 0  # frames the decoder produced to get these (the cost; not the file's length)


def sample_frames(source: VideoSource, count: int = DEFAULT_FRAMES) -> VideoClip:
    """Decode ``count`` frames at the middles of ``count`` equal segments of the video.

    A clip with fewer frames than ``count`` repeats frames, so the result always has ``count``.

    Raises:
        DataError: missing/corrupt file, no video stream, undecodable codec, or no frame.
    """
    if count < 1:
        raise DataError(f"frame count must be >= 1, got {count}")
    name = _name(source)
    with _open(source) as container:
        stream = _video_stream(container, name)
        start, duration = _time_span(container, stream, name)
        targets = [start + (i + 0.5) * duration / count for i in range(count)]
        frames, times, decoded = _decode_at(container, stream, targets, name)
    return VideoClip(frames, [t - start for t in times], duration, decoded)


def video_to_tensor(source: VideoSource, count: int, spec: ImageSpec) -> torch.Tensor:
    """Sample ``count`` frames and preprocess each like an image -> (count, 3, S, S)."""
    clip = sample_frames(source, count)
    return torch.stack([image_to_tensor(frame, spec) for frame in clip.frames])


def has_audio(source: VideoSource) -> bool:
    """True if the file has an audio stream (a video without one is fine: no audio branch input)."""
    with _open(source) as container:
        return bool(container.streams.audio)


def check_video(source: VideoSource) -> None:
    """Cheap validity check (header only): the file opens and has a decodable video stream."""
    with _open(source) as container:
        _video_stream(container, _name(source))


def _name(source: VideoSource) -> str:
    return "(uploaded video)" if isinstance(source, bytes) else str(source)


@contextmanager
def _open(source: VideoSource) -> Iterator[av.container.InputContainer]:
    name = _name(source)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise DataError(f"video not found: {name}")
    try:
        container = av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), "r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DataError(f"cannot read video {name}: {_reason(exc)}") from None
    try:
        yield container
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer, name: str) -> av.VideoStream:
    """The file's first video stream, refused when the file is not a video that FFmpeg reads as
    one (:func:`_not_a_video`)."""
    if not container.streams.video:
        raise DataError(f"{name} has no video stream (or its header is damaged)")
    other = _not_a_video(container.format.name)
    if other is not None:
        raise DataError(f"{name} is {other}, not a video" + ("; send it as an image" if other == STILL else ""))
    stream = container.streams.video[0]
    codec = stream.codec_context
    if codec is None or codec.name in ("", "none") or not _has_decoder(codec.name):
        raise DataError(f"{name}: unsupported video codec {_codec_tag(stream)!r}; re-encode it, e.g. to H.264")
    return stream


def _not_a_video(demuxer: str) -> str | None:
    """What a file FFmpeg opens as a video stream really is, by its demuxer: a still image (a JPEG
    or PNG is a one-frame "video": image2 for a file, image2pipe or ``<codec>_pipe`` for bytes), a
    text file (tty renders it as ANSI art); None for a video."""
    names = demuxer.split(",")
    if "tty" in names:
        return "a text file"
    return STILL if any(n in ("image2", "image2pipe") or n.endswith("_pipe") for n in names) else None


def _has_decoder(codec_name: str) -> bool:
    try:
        av.codec.Codec(codec_name, "r")
    except (av.FFmpegError, ValueError):
        return False
    return True


def _codec_tag(stream: av.VideoStream) -> str:
    codec = stream.codec_context
    name = codec.name if codec is not None else ""
    tag = getattr(codec, "codec_tag", "") if codec is not None else ""
    return name if name not in ("", "none") else (tag.strip("\x00 ") or "unknown")


def _time_span(container: av.container.InputContainer, stream: av.VideoStream, name: str) -> tuple[float, float]:
    """(start, duration) in seconds, from the stream header, else the container, else the
    packet timestamps (read without decoding; e.g. browser WebM files carry no duration)."""
    base = stream.time_base or Fraction(1, 1_000_000)
    start = float(stream.start_time * base) if stream.start_time is not None else 0.0
    if stream.duration:
        return start, float(stream.duration * base)
    if container.duration:
        return start, container.duration / av.time_base
    stamps = [float(p.pts * base) for p in container.demux(stream) if p.pts is not None]
    if not stamps:
        raise DataError(f"{name} has no video frames")
    container.seek(0)
    return min(stamps), max(stamps) - min(stamps) + 1e-3


def _decode_at(
    container: av.container.InputContainer, stream: av.VideoStream, targets: list[float], name: str
) -> tuple[list[Image.Image], list[float], int]:
    """The frame shown at each target time (seconds, increasing) -> (RGB frames, their times,
    frames decoded)."""
    cursor = _Cursor(container, stream)
    frames: list[Image.Image] = []
    times: list[float] = []
    try:
        for target in targets:
            frame, time = cursor.frame_at(target)
            if frame is None:
                break
            frames.append(_to_rgb(frame))
            times.append(time)
    except av.FFmpegError as exc:
        raise DataError(f"cannot decode video {name}: {_reason(exc)}") from None
    if not frames:
        raise DataError(f"{name} has no decodable video frames")
    while len(frames) < len(targets):  # the stream ended early (a wrong header duration)
        frames.append(frames[-1])
        times.append(times[-1])
    return frames, times, cursor.decoded


class _Cursor:
    """Walks one video stream forward, seeking to a keyframe only when the next target is far."""

    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        self.container, self.stream = container, stream
        self.frames: Iterator[av.VideoFrame] | None = None
        self.current: tuple[av.VideoFrame, float] | None = None  # last frame at or before the target
        self.ahead: tuple[av.VideoFrame, float] | None = None  # decoded, but after the last target
        self.decoded = 0
        self.seekable = True  # False once a seek lands behind where decoding already was

    def frame_at(self, target: float) -> tuple[av.VideoFrame | None, float]:
        """The last frame starting at or before ``target`` (else the first after it)."""
        if self.frames is None or (self.seekable and target - self._position() > SEEK_GAP_S):
            self._seek(target)
        while self.ahead is None or self.ahead[1] <= target:
            if self.ahead is not None:
                self.current = self.ahead
            self.ahead = self._next()
            if self.ahead is None:  # end of stream
                break
        best = self.current or self.ahead
        return (best[0], best[1]) if best else (None, 0.0)

    def _position(self) -> float:
        latest = self.ahead or self.current
        return latest[1] if latest else float("-inf")

    def _seek(self, target: float) -> None:
        """Jump to the keyframe at or before ``target``. If it lies behind the frames already
        decoded, keyframes are too sparse for seeking to pay (e.g. one keyframe per file): from
        then on the cursor only decodes forward, so no stretch is decoded more than twice."""
        before = self._position()
        base = self.stream.time_base or Fraction(1, 1_000_000)
        self.container.seek(max(0, int(target / base)), stream=self.stream, backward=True, any_frame=False)
        self.frames = self.container.decode(self.stream)
        self.current, self.ahead = None, self._next()
        if self.ahead is not None and self.ahead[1] <= before:
            self.seekable = False

    def _next(self) -> tuple[av.VideoFrame, float] | None:
        frame = next(self.frames, None)
        if frame is None:
            return None
        self.decoded += 1
        time = frame.time if frame.time is not None else self._position() + 1e-3
        return frame, time


def _to_rgb(frame: av.VideoFrame) -> Image.Image:
    image = frame.to_image()  # RGB, whatever the pixel format
    if max(image.size) > MAX_FRAME_SIDE:
        image.thumbnail((MAX_FRAME_SIDE, MAX_FRAME_SIDE), Image.Resampling.BILINEAR)
    return image


def _reason(exc: Exception) -> str:
    """FFmpeg's own words, without the file name it repeats."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__
