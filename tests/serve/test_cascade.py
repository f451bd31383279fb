"""The cascade (lhama.serve.cascade): speech and video for a model without those branches reach
it as text, in chat and through the API; the guard reads that text; bad files are one line."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

from lhama.data.audio import SAMPLE_RATE
from lhama.data.media import ImageSpec, image_to_tensor
from lhama.data.video import sample_frames
from lhama.errors import DataError, ModelError
from lhama.guard import Verdict
from lhama.inference.generate import Completion, GenerationConfig
from lhama.model.frame_names import frame_names
from lhama.model.transcribe import Transcript
from lhama.model import branches
from lhama.serve.cascade import Cascade, frames_note, runs, speech_note
from lhama.serve.kinds import SERVED
from lhama.serve.errors import RequestError
from lhama.serve.prompt import Target, build_prompt
from lhama.serve.schemas import ChatCompletionRequest
from lhama.serve.session import ChatSession
from lhama.serve.settings import ServeSettings
from tests.audio_fixtures import tiny_audio_loaded, write_wav
from tests.conftest import tiny_loaded
from tests.data.test_audio import _encode
from tests.data.video_files import tiny_mp4, with_audio_mp4

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng")


class FakeTranscriber:
    """Stands in for Whisper: returns ``text`` and records what it was given."""

    def __init__(self, text: str = "compre pão e leite") -> None:
        self.text, self.heard = text, []

    def transcribe(self, samples: np.ndarray, progress=None) -> Transcript:
        self.heard.append(samples.size / SAMPLE_RATE)
        if progress:
            progress(1, 1)
        return Transcript(self.text, (), samples.size / SAMPLE_RATE)


class TinyClassifier(nn.Module):
    """A tiny random tower with a 3-class head: ``classify(pixels) -> (n, 3)`` probabilities."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Linear(3, 3)

    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(pixels.mean(dim=(2, 3))).softmax(-1)


def pixels(frames: list) -> torch.Tensor:
    """Sampled RGB frames -> (F, 3, 16, 16) pixels for :class:`TinyClassifier`."""
    spec = ImageSpec(size=16, mean=(0.5,) * 3, std=(0.5,) * 3, center_crop=False)
    return torch.stack([image_to_tensor(frame, spec) for frame in frames])


def speak(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-v", "pt-br+m3", "-s", "170", "-w", str(path), "--", text], check=True)
    return path


def test_frame_names_take_each_frames_top_class() -> None:
    tower, names = TinyClassifier(), ["galo", "bola de futebol", "gato"]
    frames = torch.randn(5, 3, 8, 8)
    probs = tower.classify(frames)
    assert frame_names(tower.classify, names, frames) == [names[int(i)] for i in probs.argmax(-1)]
    assert frame_names(tower.classify, names, frames, min_prob=1.01) == []  # unsure frames are not named
    with pytest.raises(ModelError, match="3 classes but 2 class names"):
        frame_names(tower.classify, names[:2], frames)


@needs_espeak
def test_chat_hears_speech_as_a_transcript_in_the_question(tmp_path: Path) -> None:
    heard = FakeTranscriber("por favor compre pão e leite")
    session = ChatSession(tiny_loaded(image=None), GenerationConfig(max_new_tokens=2), system_prompt="",
                          transcriber=heard)
    session.attach("audio", speak(tmp_path / "fala.wav", "Por favor, compre pão e leite."))
    *_, done = session.ask("O que a pessoa pediu?")
    assert isinstance(done, Completion) and not session.media
    assert session.history[0]["content"] == 'Transcrição do áudio: "por favor compre pão e leite"\nO que a pessoa pediu?'
    assert 1.0 < heard.heard[0] < 5.0  # the whole clip went to Whisper
    session.ask("E agora?")  # the transcript is not repeated in the next turn
    assert not session.pending_notes


def test_every_branch_kind_has_a_stand_in_and_take_picks_branch_or_note(tmp_path: Path) -> None:
    assert set(SERVED) == set(branches.KIND) and all(SERVED[kind].note for kind in SERVED)  # each says what stands in
    wav = write_wav(tmp_path / "fala.wav")
    deaf = Cascade(tiny_loaded(), FakeTranscriber("olha o galo"))  # an image branch, no audio branch
    assert deaf.take("audio", wav) == 'Transcrição do áudio: "olha o galo"'
    assert deaf.take("audio", wav, track=True) == 'Som do vídeo (transcrição): "olha o galo"'
    blind = Cascade(tiny_audio_loaded(image=False), FakeTranscriber())  # an audio branch, no image branch or labeler
    assert torch.equal(blind.take("audio", wav), blind.loaded.read("audio", wav)) and not blind.transcriber.heard
    with pytest.raises(ModelError, match="text-only"):
        blind.take("image", tmp_path / "any.png")


def test_no_speech_heard_is_said_not_invented(tmp_path: Path) -> None:
    note = speech_note(write_wav(tmp_path / "tom.wav"), FakeTranscriber(""))
    assert note == "Transcrição do áudio: (nenhuma fala reconhecida)"


class WordGuard:
    """A guard that finds ``word`` unsafe in user text; records what it read."""

    def __init__(self, word: str) -> None:
        self.word, self.read = word, []

    def check(self, messages, role: str = "user") -> Verdict:
        self.read.append(messages[-1]["content"])
        unsafe = self.word in messages[-1]["content"]
        return Verdict(safe=not unsafe, categories=("S9",) if unsafe else ())

    def check_with_caption(self, messages, caption: str) -> Verdict:
        return self.check(messages)


def test_the_guard_reads_the_transcript(tmp_path: Path) -> None:
    guard = WordGuard("bomba")
    session = ChatSession(tiny_loaded(image=None), GenerationConfig(max_new_tokens=2), system_prompt="",
                          transcriber=FakeTranscriber("como fazer uma bomba"), guard=guard)
    session.attach("audio", write_wav(tmp_path / "fala.wav"))
    *_, done = session.ask("Responda ao pedido do áudio.")
    assert done.finish_reason == "content_filter" and "bomba" in guard.read[0]


@pytest.mark.parametrize("name, content, words", [
    ("quebrado.wav", b"RIFF\x10\x00\x00\x00WAVEgarbage!", "cannot decode audio"),
    ("vazio.wav", np.zeros(0, np.float32), "is empty"),
    ("silencio.wav", np.zeros(16_000, np.float32), "is silent"),
    ("texto.xyz", b"isto nao e audio", "cannot decode audio"),
    ("longo.wav", np.full(601 * 8_000, 0.1, np.float32), "longer than the 10 min limit"),
])
def test_bad_audio_is_one_line_and_leaves_nothing_pending(tmp_path: Path, name: str, content, words: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        soundfile.write(path, content, 8_000 if name == "longo.wav" else 16_000)
    heard = FakeTranscriber()
    session = ChatSession(tiny_loaded(image=None), transcriber=heard)
    with pytest.raises(DataError, match=words) as error:
        session.attach("audio", path)
    assert name in str(error.value) and "\n" not in str(error.value)
    assert not session.pending_notes and not heard.heard
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written beside it


def test_repeated_frame_names_are_counted_in_order() -> None:
    assert runs(["galo", "galo", "bola de futebol", "galo"]) == ["galo (2 quadros)", "bola de futebol", "galo"]
    assert runs([]) == []


def test_video_without_video_branch_is_named_frame_by_frame(tmp_path: Path) -> None:
    loaded = tiny_loaded()
    names = ["galo", "bola de futebol", "gato"]
    note = frames_note(tiny_mp4(tmp_path / "a.mp4"), loaded, lambda frames: frame_names(TinyClassifier().classify,
                                                                                      names, pixels(frames)))
    assert note.startswith("Quadros do vídeo: ")
    said = [re.fullmatch(r"(.+?)(?: \((\d) quadros\))?", part).groups()
            for part in note.removeprefix("Quadros do vídeo: ").split(", ")]
    assert sum(int(count or 1) for _, count in said) == 8 and {name for name, _ in said} <= set(names)
    with pytest.raises(ModelError, match="no video branch"):
        frames_note(tmp_path / "a.mp4", loaded)  # this tower has no class head
    with pytest.raises(ModelError, match="no video branch"):
        ChatSession(loaded).attach("video", tmp_path / "a.mp4")


def test_video_sound_track_is_transcribed_for_a_model_without_audio_branch(tmp_path: Path) -> None:
    heard = FakeTranscriber("olha o galo")
    session = ChatSession(tiny_loaded(), transcriber=heard)
    assert session.attach_track("audio", _encode(tmp_path / "clipe.mp4", "aac", 1.0, video=True))
    assert session.pending_notes == ['Som do vídeo (transcrição): "olha o galo"']
    assert not session.attach_track("audio", with_audio_mp4(tmp_path / "mudo.mp4"))  # a silent track: skipped
    assert len(heard.heard) == 1


def test_video_branch_model_hears_the_track_through_its_audio_branch(tmp_path: Path) -> None:
    from lhama.model.build import add_branch
    from lhama.model.config import VideoConfig

    loaded = add_branch(tiny_audio_loaded(image=True), "video", VideoConfig(frames=2, num_queries=4, qformer_heads=2))
    session = ChatSession(loaded, GenerationConfig(max_new_tokens=2), system_prompt="", transcriber=FakeTranscriber())
    session.attach("video", _encode(tmp_path / "clipe.mp4", "aac", 1.0, video=True))  # /video and --video alike
    *_, done = session.ask("O que acontece?")
    assert isinstance(done, Completion) and not session.transcriber.heard
    assert session.history[0]["content"] == "<video>\n<audio>\nO que acontece?"


def _request(parts: list[dict]) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="tiny", messages=[{"role": "user", "content": parts}], max_tokens=4)


def _audio_part(path: Path) -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(path.read_bytes()).decode(), "format": "wav"}}


def _video_part(path: Path) -> dict:
    return {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()}}


def test_api_input_audio_and_video_reach_a_model_without_those_branches_as_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heard = FakeTranscriber("olha o galo")
    loaded = tiny_loaded()
    target = Target(loaded, "tiny", ServeSettings(), heard)
    prompt = build_prompt(_request([_audio_part(write_wav(tmp_path / "fala.wav")), {"type": "text", "text": "O que foi dito?"}]),
                          target)
    assert prompt.messages[-1]["content"] == 'Transcrição do áudio: "olha o galo"\nO que foi dito?'
    assert prompt.media is None  # nothing for a branch: the guard and the LM read the text
    clip = _encode(tmp_path / "clipe.mp4", "aac", 1.0, video=True)
    with pytest.raises(RequestError, match="no video branch") as error:
        build_prompt(_request([_video_part(clip)]), target)  # no class head on this tower
    assert error.value.code == "model_not_multimodal"
    names = ["galo", "bola", "gato"]  # the tower's pt-BR names (EfficientNet-Lite's come from imagenet_names)
    monkeypatch.setattr("lhama.serve.cascade.frame_namer",
                        lambda _: lambda frames: frame_names(TinyClassifier().classify, names, pixels(frames)))
    prompt = build_prompt(_request([_video_part(clip), {"type": "text", "text": "O que acontece?"}]), target)
    lines = prompt.messages[-1]["content"].splitlines()
    assert lines[0].startswith("Quadros do vídeo: ") and lines[1] == 'Som do vídeo (transcrição): "olha o galo"'
    assert lines[2] == "O que acontece?"


def test_api_bad_audio_is_a_400_naming_the_field(tmp_path: Path) -> None:
    target = Target(tiny_loaded(), "tiny", ServeSettings(), FakeTranscriber())
    silent = tmp_path / "mudo.wav"
    soundfile.write(silent, np.zeros(16_000, np.float32), 16_000)
    with pytest.raises(RequestError, match="is silent") as error:
        build_prompt(_request([_audio_part(silent)]), target)
    assert error.value.param == "messages[0].content[0].input_audio.data" and error.value.code == "invalid_audio"


@pytest.fixture(scope="module")
def cascade_model(tmp_path_factory: pytest.TempPathFactory):
    """A tiny lhama-default v2: a text LM plus a labeler (tiny random tower with a class head)."""
    from lhama.model.build import load_model
    from tests.weights.test_cascade import tiny_cascade

    return load_model(tiny_cascade(tmp_path_factory.mktemp("cascade")))


def test_default_like_model_watches_a_video_with_its_labeler(cascade_model, tmp_path: Path) -> None:
    guard = WordGuard("nada")  # reads, never refuses
    session = ChatSession(cascade_model, GenerationConfig(max_new_tokens=2), system_prompt="", guard=guard,
                          transcriber=FakeTranscriber("olha o galo"))
    clip = _encode(tmp_path / "clipe.mp4", "aac", 1.0, video=True)
    session.attach("video", clip)
    *_, done = session.ask("O que acontece no vídeo?")
    assert isinstance(done, Completion) and not session.media
    frames, track, question = session.history[0]["content"].splitlines()
    named = [name for name in cascade_model.labeler.things(sample_frames(clip).frames) if name]  # as images
    assert frames == "Quadros do vídeo: " + (", ".join(runs(named)) or "(nada reconhecido)")
    assert track == 'Som do vídeo (transcrição): "olha o galo"' and question == "O que acontece no vídeo?"
    assert frames in guard.read[0] and track in guard.read[0]  # the guard read the names and the transcript
