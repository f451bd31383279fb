"""`lhama chat --audio` end to end: a real process, real wav files, a tiny audio model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pexpect
import pytest
import soundfile

from lhama.model.build import save_model
from tests.audio_fixtures import tiny_audio_loaded, write_wav
from tests.cli.test_chat_cli import _spawn, lhama
from tests.conftest import tiny_loaded


@pytest.fixture(scope="module")
def audio_model_dir(tmp_path_factory) -> Path:
    return save_model(tiny_audio_loaded(image=False), tmp_path_factory.mktemp("alm") / "tiny-alm")


@pytest.fixture(scope="module")
def lm_only_dir(tmp_path_factory) -> Path:
    return save_model(tiny_loaded(image=None), tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_one_shot_with_audio(audio_model_dir: Path, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "fala.wav", 1.0, 22_050)
    result = lhama("chat", "--model", str(audio_model_dir), "--audio", str(wav), "--max-tokens", "4",
                   "--no-guard", "O que foi dito?")
    assert result.returncode == 0, result.stderr
    assert "tokens in" in result.stderr


@pytest.mark.parametrize("name, content, words", [
    ("quebrado.wav", b"RIFF\x10\x00\x00\x00WAVEgarbage!", "cannot decode audio"),
    ("silencio.wav", None, "is silent"),
    ("vazio.wav", np.zeros(0, np.float32), "is empty"),
])
def test_bad_audio_is_one_line_and_exit_2(audio_model_dir: Path, tmp_path: Path, name: str, content, words: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        soundfile.write(path, np.zeros(16_000, np.float32) if content is None else content, 16_000)
    result = lhama("chat", "--model", str(audio_model_dir), "--audio", str(path), "--no-guard", "O que foi dito?")
    assert result.returncode == 2, result.stderr
    assert name in result.stderr and words in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error")]) == 1


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng")
def test_model_without_audio_branch_hears_through_whisper(lm_only_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The cascade end to end: whisper-base-ptbr is prepared on first use (a fresh LHAMA_HOME), the
    speech is transcribed and the answer written; a broken file is still one line, exit 2."""
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    wav = tmp_path / "fala.wav"
    subprocess.run(["espeak-ng", "-v", "pt-br+f3", "-w", str(wav), "Compre pão e leite."], check=True)
    result = lhama("chat", "--model", str(lm_only_dir), "--audio", str(wav), "--max-tokens", "2", "--no-guard",
                   "O que a pessoa pediu?")
    assert result.returncode == 0, result.stderr
    assert "whisper-base-ptbr is not prepared" in result.stderr and "tokens in" in result.stderr
    broken = tmp_path / "quebrado.mp3"
    broken.write_bytes(b"ID3\x03\x00garbage" * 10)
    result = lhama("chat", "--model", str(lm_only_dir), "--audio", str(broken), "--no-guard", "O que foi dito?")
    assert result.returncode == 2 and "quebrado.mp3" in result.stderr and "Traceback" not in result.stderr


def test_repl_audio_command(audio_model_dir: Path, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "fala.wav")
    child = _spawn(audio_model_dir, "--max-tokens", "3", "--no-guard")
    child.expect("você> ")
    child.sendline(f"/audio {tmp_path / 'nada.wav'}")
    child.expect("audio file not found")
    child.expect("você> ")
    child.sendline(f"/audio {wav}")
    child.expect("attached")
    child.expect("você> ")
    child.sendline("O que foi dito?")
    child.expect("tokens in")
    child.expect("você> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
