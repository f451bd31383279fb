"""Audio files -> what a Whisper encoder reads: decode, mono, 16 kHz, log-mel spectrogram.

Decoding uses libsndfile (``soundfile``: wav, flac, ogg) and FFmpeg through PyAV (mp3, m4a,
and the audio track of a video file). Only the first ``max_seconds`` are decoded, so a two-hour
file costs no more than its first window. Resampling is a polyphase windowed-sinc filter
(scipy), no torchaudio.

Documented behaviour for awkward input:

* a corrupt or empty file, an unsupported codec, zero samples: :class:`DataError` naming it;
* a silent file (peak below ``SILENCE_PEAK``, -80 dBFS): :class:`DataError` too, because
  there is nothing to hear and the model would answer about nothing;
* a video without an audio track, or whose track is silent: :func:`load_audio_track` returns
  ``None``, the caller skips the audio branch (as Video-LLaMA does for silent clips).

The log-mel features follow Whisper's recipe (25 ms Hann window, 10 ms hop, Slaney mel filters,
log10 clamped to 8 decades below the peak, scaled to about [-1, 1]); the result is packed with
a last row that marks the frames of real audio, so pooling can ignore the padding.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile
import torch
from scipy.signal import resample_poly

from lhama.errors import DataError

SAMPLE_RATE = 16_000  # Whisper's rate
HOP = 160  # 10 ms at 16 kHz: one mel frame
N_FFT = 400  # 25 ms window
SILENCE_PEAK = 1e-4  # -80 dBFS: below this a file counts as silent
SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif"}
MAX_SPEECH_SECONDS = 600.0  # 10 min: the longest audio transcribed window by window
MIN_WINDOW_SECONDS = 0.2  # a shorter tail after the last full window is dropped (no word fits)
CHECK_SECONDS = 0.1  # what check_audio decodes

AudioSource = str | Path | bytes


@dataclass(frozen=True)
class AudioSpec:
    """What an audio tower reads: ``n_mels`` mel bins over a window of ``n_frames`` 10 ms frames."""

    n_mels: int = 80  # Whisper base/small; large-v3 uses 128
    n_frames: int = 3000  # 30 s, Whisper's window; shorter audio is padded, longer cut

    @property
    def max_samples(self) -> int:
        return self.n_frames * HOP

    @property
    def seconds(self) -> float:
        return self.max_samples / SAMPLE_RATE


def load_audio(source: AudioSource, max_seconds: float = 30.0) -> np.ndarray:
    """Decode the first ``max_seconds`` of an audio (or video) file to mono 16 kHz float32.

    Raises:
        DataError: missing, corrupt, empty or silent file, no audio stream, unsupported codec.
    """
    samples = _decode(source, max_seconds, need_stream=True)
    name = _name(source)
    if samples.size == 0:
        raise DataError(f"audio {name} is empty (0 samples)")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise DataError(f"audio {name} is silent (peak below -80 dBFS): there is nothing to hear")
    return samples


def check_audio(source: AudioSource) -> None:
    """Cheap validity check: the file's first moments decode as audio (its header and a packet or
    two, as :func:`load_audio` reads them); emptiness, silence and length are judged on the read.

    Raises:
        DataError: missing file, not audio, no audio stream, an unsupported codec.
    """
    _decode(source, CHECK_SECONDS, need_stream=True)


def load_speech(source: AudioSource, limit_seconds: float = MAX_SPEECH_SECONDS) -> np.ndarray:
    """Decode a whole audio file (up to ``limit_seconds``) for transcription, mono 16 kHz float32.

    Raises:
        DataError: as :func:`load_audio`, or the file is longer than ``limit_seconds``.
    """
    samples = load_audio(source, max_seconds=limit_seconds + 1.0)  # one extra second tells "too long"
    if samples.size > limit_seconds * SAMPLE_RATE:
        raise DataError(f"audio {_name(source)} is longer than the {_minutes(limit_seconds)} limit; "
                        f"cut it into parts (e.g. `ffmpeg -i IN -t {limit_seconds:g} OUT.wav`)")
    return samples


def speech_windows(samples: np.ndarray, window_seconds: float = 30.0) -> list[np.ndarray]:
    """Consecutive ``window_seconds`` windows of ``samples`` (the last one shorter); a tail under
    ``MIN_WINDOW_SECONDS`` after a full window is dropped. Empty input gives no window."""
    size = int(window_seconds * SAMPLE_RATE)
    if size <= 0:
        raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
    windows = [samples[start:start + size] for start in range(0, samples.size, size)]
    if len(windows) > 1 and windows[-1].size < MIN_WINDOW_SECONDS * SAMPLE_RATE:
        windows.pop()
    return windows


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def load_audio_track(source: AudioSource, max_seconds: float = 30.0) -> np.ndarray | None:
    """A video's audio track as mono 16 kHz float32, or ``None`` when it has no audio track or
    the track is silent or empty (the caller then skips the audio branch).

    Raises:
        DataError: the file itself cannot be read.
    """
    samples = _decode(source, max_seconds, need_stream=False)
    if samples is None or samples.size == 0 or float(np.abs(samples).max()) < SILENCE_PEAK:
        return None
    return samples


def _decode(source: AudioSource, max_seconds: float, need_stream: bool) -> np.ndarray | None:
    name = _name(source)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise DataError(f"audio file not found: {name}")
    suffix = "" if isinstance(source, bytes) else Path(source).suffix.lower()
    if suffix in SOUNDFILE_SUFFIXES or isinstance(source, bytes):
        try:
            return _read_soundfile(source, max_seconds)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
            if suffix:  # a .wav that libsndfile cannot read is broken; FFmpeg would not do better
                raise DataError(f"cannot decode audio {name}: {_first_line(exc)}") from None
    return _read_av(source, max_seconds, need_stream)


def _read_soundfile(source: AudioSource, max_seconds: float) -> np.ndarray:
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with soundfile.SoundFile(handle) as f:
        frames = min(f.frames, int(max_seconds * f.samplerate)) if f.frames > 0 else int(max_seconds * f.samplerate)
        data = f.read(frames, dtype="float32", always_2d=True)  # (n, channels)
        rate = f.samplerate
    return resample(data.mean(axis=1), rate)


def _read_av(source: AudioSource, max_seconds: float, need_stream: bool) -> np.ndarray | None:
    import av  # FFmpeg; imported here so wav-only users never load it

    name = _name(source)
    try:
        with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
            if not container.streams.audio:
                if need_stream:
                    raise DataError(f"{name} has no audio stream")
                return None
            return _decode_stream(container, container.streams.audio[0], max_seconds)
    except av.FFmpegError as exc:
        raise DataError(f"cannot decode audio {name}: {_first_line(exc)}") from None


def _decode_stream(container, stream, max_seconds: float) -> np.ndarray:
    """Decode packets until ``max_seconds`` are collected; never the whole file."""
    import av

    rate = stream.codec_context.sample_rate or SAMPLE_RATE
    to_mono = av.AudioResampler(format="fltp", layout="mono", rate=rate)  # format and layout only
    chunks, total, wanted = [], 0, int(max_seconds * rate)
    for frame in container.decode(stream):
        for mono in to_mono.resample(frame):
            chunks.append(mono.to_ndarray()[0])
            total += chunks[-1].size
        if total >= wanted:
            break
    samples = np.concatenate(chunks)[:wanted] if chunks else np.zeros(0, np.float32)
    return resample(samples.astype(np.float32), rate)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase windowed-sinc resampling of a mono signal from ``rate`` to ``target`` Hz."""
    if rate == target or samples.size == 0:
        return samples.astype(np.float32)
    ratio = Fraction(target, rate).limit_denominator(1000)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def log_mel(samples: np.ndarray, spec: AudioSpec) -> torch.Tensor:
    """Mono 16 kHz samples -> (n_mels + 1, n_frames): Whisper log-mel rows, then a row that is
    1 on frames of real audio and 0 on padding. Audio longer than the window is cut."""
    clipped = samples[: spec.max_samples].astype(np.float32)
    padded = np.zeros(spec.max_samples, np.float32)
    padded[: clipped.size] = clipped
    power = _power_spectrum(padded)[:, : spec.n_frames]  # (N_FFT // 2 + 1, n_frames)
    mel = np.log10(np.maximum(mel_filters(spec.n_mels) @ power, 1e-10))
    mel = (np.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0  # Whisper's dynamic-range clamp and scale
    mask = np.zeros((1, spec.n_frames), np.float32)
    mask[0, : min(spec.n_frames, math.ceil(clipped.size / HOP))] = 1.0
    return torch.from_numpy(np.concatenate([mel.astype(np.float32), mask]))


def _power_spectrum(samples: np.ndarray) -> np.ndarray:
    """|STFT|^2 with a periodic Hann window, frames centred (reflect padding)."""
    padded = np.pad(samples, N_FFT // 2, mode="reflect")
    n = 1 + (padded.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(padded, (n, N_FFT), (padded.strides[0] * HOP, padded.strides[0]))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    spectrum = np.fft.rfft(frames * window, axis=1)
    return (np.abs(spectrum) ** 2).T.astype(np.float64)


def mel_filters(n_mels: int) -> np.ndarray:
    """(n_mels, N_FFT // 2 + 1) triangular filters on the Slaney mel scale, area-normalised."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    rising = (freqs[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - freqs[None, :]) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


# The Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
_F_SP, _MIN_LOG_HZ, _LOG_STEP = 200.0 / 3, 1000.0, math.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    log_part = _MIN_LOG_HZ / _F_SP + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return np.where(mel >= min_log_mel, _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - min_log_mel)), _F_SP * mel)


def audio_features(source: AudioSource, spec: AudioSpec) -> torch.Tensor:
    """Decode ``source`` (first window only) and return its packed log-mel features."""
    return log_mel(load_audio(source, max_seconds=spec.seconds), spec)


def _name(source: AudioSource) -> str:
    return "bytes" if isinstance(source, bytes) else str(source)


def _first_line(exc: BaseException) -> str:
    """FFmpeg's own reason (without errno and file name noise), else the first message line."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return (reason.strip().splitlines() or [type(exc).__name__])[0]
