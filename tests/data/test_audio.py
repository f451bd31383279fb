from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from transformers import WhisperFeatureExtractor

from lhama.data.audio import AudioSpec, check_audio, load_audio, load_audio_track, log_mel, resample
from lhama.errors import DataError
from tests.audio_fixtures import tone, write_wav


def _encode(path: Path, codec: str, seconds: float = 1.0, rate: int = 44_100, video: bool = False,
            audio: bool = True) -> Path:
    """Write a real compressed file with FFmpeg (PyAV): an audio track, a video track, or both."""
    with av.open(str(path), "w") as out:
        if video:
            vstream = out.add_stream("mpeg4", rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 32, 32, "yuv420p"
        if audio:
            astream = out.add_stream(codec, rate=rate, layout="stereo")
            signal = np.stack([tone(seconds, rate), tone(seconds, rate)])
            frame_size = astream.codec_context.frame_size or 1024
            for start in range(0, signal.shape[1], frame_size):
                chunk = np.ascontiguousarray(signal[:, start:start + frame_size])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
        if video:
            for i in range(int(seconds * 10)):
                image = av.VideoFrame.from_ndarray(np.full((32, 32, 3), (i * 20) % 256, np.uint8), format="rgb24")
                out.mux(vstream.encode(image))
            out.mux(vstream.encode(None))
    return path


@pytest.mark.parametrize("rate, channels", [(16_000, 1), (44_100, 2), (22_050, 1), (8_000, 2)])
def test_wav_becomes_mono_16k(tmp_path: Path, rate: int, channels: int) -> None:
    samples = load_audio(write_wav(tmp_path / "fala.wav", 1.5, rate, channels))
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 24_000) <= 2
    assert 0.4 < np.abs(samples).max() < 0.6  # the tone's amplitude survives mixing and resampling


def test_resampling_keeps_the_pitch() -> None:
    out = resample(tone(1.0, 44_100, freq=1000.0), 44_100)
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(int(np.argmax(spectrum)) - 1000) <= 2  # 1 Hz bins over 1 s at 16 kHz


@pytest.mark.parametrize("codec, name", [("mp3", "fala.mp3"), ("aac", "fala.m4a"), ("libopus", "fala.ogg")])
def test_compressed_files_decode(tmp_path: Path, codec: str, name: str) -> None:
    rate = 48_000 if codec == "libopus" else 44_100
    samples = load_audio(_encode(tmp_path / name, codec, 1.0, rate))
    assert abs(samples.size - 16_000) < 1_600  # encoder padding adds a few ms
    assert np.abs(samples).max() > 0.3


def test_flac_decodes(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "fala.flac", tone(2.0), 16_000)
    assert load_audio(tmp_path / "fala.flac").size == 32_000


def test_bytes_decode_like_files(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "fala.wav", 1.0, 22_050)
    mp3 = _encode(tmp_path / "fala.mp3", "mp3")
    assert np.array_equal(load_audio(path.read_bytes()), load_audio(path))
    assert load_audio(mp3.read_bytes()).size > 15_000  # libsndfile refuses, FFmpeg decodes


def test_only_the_first_window_is_decoded(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "longo.wav", 40.0)
    assert load_audio(path, max_seconds=30.0).size == 30 * 16_000
    assert load_audio(_encode(tmp_path / "longo.mp3", "mp3", 12.0), max_seconds=5.0).size == 5 * 16_000


def test_video_audio_track_and_video_without_audio(tmp_path: Path) -> None:
    with_sound = _encode(tmp_path / "clipe.mp4", "aac", 2.0, video=True)
    silent_film = _encode(tmp_path / "mudo.mp4", "aac", 2.0, video=True, audio=False)
    track = load_audio_track(with_sound)
    assert track is not None and abs(track.size - 32_000) < 3_000
    assert load_audio_track(silent_film) is None  # the caller skips the audio branch
    with pytest.raises(DataError, match="mudo.mp4 has no audio stream"):
        load_audio(silent_film)


def test_silent_track_is_skipped_and_silent_file_is_an_error(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "silencio.wav", np.zeros(16_000, np.float32), 16_000)
    assert load_audio_track(tmp_path / "silencio.wav") is None
    with pytest.raises(DataError, match="silencio.wav is silent"):
        load_audio(tmp_path / "silencio.wav")


def test_zero_length_and_empty_files(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "vazio.wav", np.zeros(0, np.float32), 16_000)
    with pytest.raises(DataError, match=r"vazio.wav is empty \(0 samples\)"):
        load_audio(tmp_path / "vazio.wav")
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(DataError, match="cannot decode audio .*zero.wav"):
        load_audio(tmp_path / "zero.wav")


def test_corrupt_unsupported_and_missing_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "quebrado.mp3").write_bytes(b"ID3\x03\x00garbage" * 50)
    # A RIFF/WAVE header with a made-up codec tag (0x1234): a well-formed file nobody decodes.
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 16_000, 32_000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 4) + b"\x01\x02\x03\x04"
    (tmp_path / "codec.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    (tmp_path / "notas.txt").write_text("Comprar pão e leite.\n" * 40)
    for name in ("quebrado.mp3", "codec.wav", "nao-existe.wav", "notas.txt"):
        with pytest.raises(DataError) as error:
            load_audio(tmp_path / name)
        assert name in str(error.value) and "\n" not in str(error.value)
        with pytest.raises(DataError) as early:  # chat's look before the model loads says the same
            check_audio(tmp_path / name)
        assert str(early.value) == str(error.value)


def test_the_early_check_passes_what_loads(tmp_path: Path) -> None:
    write_wav(tmp_path / "fala.wav", 1.0)
    check_audio(tmp_path / "fala.wav")
    check_audio((tmp_path / "fala.wav").read_bytes())


def test_log_mel_matches_whisper_feature_extractor() -> None:
    samples = tone(3.0) + 0.05 * np.random.default_rng(0).standard_normal(48_000).astype(np.float32)
    packed = log_mel(samples, AudioSpec())
    reference = WhisperFeatureExtractor(feature_size=80)(samples, sampling_rate=16_000, return_tensors="np")
    assert packed.shape == (81, 3000)
    np.testing.assert_allclose(packed[:-1].numpy(), reference.input_features[0], atol=1e-4)
    assert packed[-1, :300].eq(1).all() and packed[-1, 300:].eq(0).all()  # 3 s of 10 ms frames


def test_log_mel_cuts_audio_longer_than_the_window() -> None:
    packed = log_mel(tone(5.0), AudioSpec(n_frames=200))
    assert packed.shape == (81, 200) and packed[-1].eq(1).all()


def test_speech_windows_cover_the_recording_in_order() -> None:
    from lhama.data.audio import speech_windows

    samples = np.arange(65 * 16_000 + 81_600 - 80_000, dtype=np.float32)
    windows = speech_windows(samples, 30.0)
    assert [w.size for w in windows] == [480_000, 480_000, 81_600]
    assert np.array_equal(np.concatenate(windows), samples)
    assert len(speech_windows(samples[: 60 * 16_000 + 100], 30.0)) == 2  # a 6 ms tail holds no word
    assert len(speech_windows(samples[:100], 30.0)) == 1 and speech_windows(samples[:0], 30.0) == []


def test_whole_file_is_read_for_speech_up_to_the_limit(tmp_path: Path) -> None:
    from lhama.data.audio import load_speech

    long = write_wav(tmp_path / "longo.wav", 40.0)
    assert load_speech(long).size == 40 * 16_000  # not only the first 30-s window
    with pytest.raises(DataError, match=r"longo.wav is longer than the 30 s limit") as error:
        load_speech(long, limit_seconds=30.0)
    assert "\n" not in str(error.value)
    mp3 = _encode(tmp_path / "longo.mp3", "mp3", 12.0)
    with pytest.raises(DataError, match=r"longo.mp3 is longer than the 10 s limit"):
        load_speech(mp3, limit_seconds=10.0)
