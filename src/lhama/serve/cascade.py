"""Media a model has no trained branch for, told to it as text (a cascade).

* Speech, for a model without an audio branch: Whisper's pt-BR transcript
  (:mod:`lhama.model.transcribe`), framed as ``Transcrição do áudio: "..."``.
* A video, for a model without a video branch: what each sampled frame shows, in order, repeats
  counted (``Quadros do vídeo: galo (2 quadros), bola de futebol``). With a labeler
  (``lhama-default``) each frame is named as the labeler's note would name it as an image (its
  views, kinds and names head; a frame it does not recognise is left out); else by the top class of
  the vision tower's class head, if it has one. Plus
  its sound track's transcript (``Som do vídeo: "..."``) when the model has no audio branch.
* An image, for a model without an image branch that has a labeler (``lhama-default`` v2): the
  labeler's note of its class names (``[Imagem anexada: parece ser um galo.]``,
  :mod:`lhama.model.labeler`).

The notes go into the user's turn before the question, so the safety guard reads them like
any user text. A question that only asks for what was said ("Transcreva o que foi dito.") is
answered with the transcript itself (:mod:`lhama.serve.verbatim`, which reads a :class:`Heard`
note's ``transcript``). Chat (:mod:`lhama.serve.session`) and the API (:mod:`lhama.serve.prompt`)
both use these functions, through :class:`Cascade` (branch kind -> its stand-in:
:data:`lhama.serve.kinds.SERVED`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from lhama.data.audio import MAX_SPEECH_SECONDS, AudioSource, load_audio_track, load_speech
from lhama.data.media import image_to_tensor, load_image
from lhama.data.video import DEFAULT_FRAMES, VideoSource, sample_frames
from lhama.errors import ModelError
from lhama.model.build import LoadedModel
from lhama.model.frame_names import frame_names
from lhama.model.pictures import picture_branch
from lhama.model.transcribe import Progress, Transcriber
from lhama.weights.prepare import is_current, prepare
from lhama.weights.registry import models_dir

SPEECH_NOTE = 'Transcrição do áudio: "{}"'
TRACK_NOTE = 'Som do vídeo (transcrição): "{}"'
FRAMES_NOTE = "Quadros do vídeo: {}"
NO_SPEECH = "(nenhuma fala reconhecida)"

FrameNamer = Callable[[list[Image.Image]], list[str]]  # a video's sampled RGB frames -> names, in order
WHISPER = "whisper-base-ptbr"  # the cascade's speech model: whisper-base + lhama's pt-BR LoRA (registered)


def prepared_whisper() -> Path:
    """The transcriber's directory (:data:`WHISPER`), prepared on first use (once, seconds once whisper-base is):
    the default :class:`Transcriber` source of chat sessions and the server."""
    return models_dir() / WHISPER if is_current(WHISPER) else prepare(WHISPER)


def whisper_transcriber() -> Transcriber:
    """A transcriber with lhama's decoding settings that opens (and if needed prepares) :data:`WHISPER` on first use."""
    return Transcriber(prepared_whisper)


class Heard(str):
    """A note that frames speech (:data:`SPEECH_NOTE`, :data:`TRACK_NOTE`; :data:`NO_SPEECH` for
    none): the text the model reads, carrying ``transcript``, the words as Whisper heard them ("" for
    none), so :mod:`lhama.serve.verbatim` reads the words, not the note back. Text a user typed
    that looks like a note is a plain ``str``: nothing was heard. String operations (``strip``,
    ``+``) give a plain ``str``: keep the note itself where the transcript is needed."""

    transcript: str

    def __new__(cls, template: str, transcript: str) -> Heard:
        heard = transcript if transcript.strip() else ""
        note = super().__new__(cls, template.format(heard) if heard else template.split(":")[0] + ": " + NO_SPEECH)
        note.transcript = heard
        return note


def speech_note(source: AudioSource, transcriber: Transcriber, progress: Progress | None = None) -> Heard:
    """Transcribe a whole audio file (up to the 10-min limit) -> its framed transcript.

    Raises:
        DataError: missing, corrupt, empty, silent or over-limit audio. CheckpointError: no Whisper.
    """
    return Heard(SPEECH_NOTE, transcriber.transcribe(load_speech(source), progress).text)


def track_note(source: VideoSource, transcriber: Transcriber, progress: Progress | None = None) -> Heard | None:
    """A video's sound track (its first 10 min) as a framed transcript; None when the video
    has no sound track or a silent one."""
    samples = load_audio_track(source, max_seconds=MAX_SPEECH_SECONDS)
    if samples is None:
        return None
    return Heard(TRACK_NOTE, transcriber.transcribe(samples, progress).text)


def frames_note(source: VideoSource, loaded: LoadedModel, namer: FrameNamer | None = None) -> str:
    """Name what each of the video's sampled frames shows -> ``Quadros do vídeo: ...``.

    ``namer`` defaults to :func:`frame_namer` of the model.

    Raises:
        ModelError: the model has neither a video branch nor a tower with a class head.
        DataError: the video cannot be read.
    """
    namer = namer or frame_namer(loaded)
    if namer is None:
        raise ModelError(
            f"the model {loaded.name or ''} has no video branch and its vision tower has no class head, so it "
            "cannot watch videos; pass --model DIR with a model trained by `lhama train --config stage1-video`"
        )
    frames = sample_frames(source, DEFAULT_FRAMES).frames
    return FRAMES_NOTE.format(", ".join(runs(namer(frames))) or "(nada reconhecido)")


def runs(names: list[str]) -> list[str]:
    """Consecutive repeats told once with their count: galo, galo, bola -> galo (2 quadros), bola."""
    told: list[list] = []
    for name in names:
        if told and told[-1][0] == name:
            told[-1][1] += 1
        else:
            told.append([name, 1])
    return [name if count == 1 else f"{name} ({count} quadros)" for name, count in told]


def labels_note(source: str | Path | bytes, loaded: LoadedModel) -> str:
    """An image -> the labeler's note of what it shows, for a model without an image branch.

    Raises:
        ModelError: the model has neither an image branch nor a labeler.
        DataError: the image cannot be read (the message names the file).
    """
    labeler = loaded.labeler
    if labeler is None:
        raise ModelError(
            f"the model {loaded.name or ''} is text-only (no vision tower), so it cannot see images; "
            "pass --model lhama-default, or a lhama/LLaVA model directory that has one"
        )
    return labeler.note(load_image(source, max_side=labeler.config.max_image_side))


def frame_namer(loaded: LoadedModel) -> FrameNamer | None:
    """Per-frame naming: with the model's labeler, what its note would name for each frame as an
    image (``Labeler.things``: the same views, kinds and names head; frames it does not recognise
    left out); else with its own vision tower's class head, if its names are known (EfficientNet-Lite's
    ImageNet-1k head, pt-BR names), the top class of each frame; else None."""
    if loaded.labeler is not None:
        labeler = loaded.labeler
        return lambda frames: [name for name in labeler.things(frames) if name is not None]
    image = picture_branch(loaded)  # its tower, through the branch table
    if image is None or not hasattr(image.tower, "classify"):
        return None
    from lhama.model.towers.imagenet_names import class_names

    names, spec, classify = class_names(), loaded.specs[image.name], image.tower.classify
    return lambda frames: frame_names(classify, names, torch.stack([image_to_tensor(f, spec) for f in frames]))


@dataclass(frozen=True)
class Cascade:
    """A model and what tells it, as text, the media it has no branch for (its labeler or
    frame namer, Whisper): :meth:`take` gives a medium to the model's branch, else its note."""

    loaded: LoadedModel
    transcriber: Transcriber
    progress: Progress | None = None  # (done, total) windows while a long recording is transcribed

    def take(self, kind: str, source: str | Path | bytes, track: bool = False) -> torch.Tensor | str | None:
        """``source`` (a file or its bytes) for the model: read for its ``kind`` branch
        (``LoadedModel.read``; with ``track``, the sound track of a video file:
        ``LoadedModel.read_track``), else the note that stands in for it (its
        :data:`lhama.serve.kinds.SERVED` record's ``note`` or ``track_note``). None: a track the
        file lacks, or a silent one.

        Raises:
            ModelError: no branch and nothing to tell it with (a text-only model and an image; a
                kind without a note in its record, or without a record).
            DataError: the medium cannot be read. CheckpointError: no Whisper.
        """
        if kind in self.loaded.config.branches:
            return self.loaded.read_track(kind, source) if track else self.loaded.read(kind, source)
        from lhama.serve.kinds import SERVED  # its records name this module's notes: imported late

        served = SERVED.get(kind)
        note = None if served is None else served.track_note if track else served.note
        if note is None:  # a kind (registered outside lhama) that declares no stand-in
            raise ModelError(f"the model {self.loaded.name or ''} has no {kind} branch and nothing tells it a {kind} as text")
        return note(source, self)

