"""Serve's record of each branch kind (:data:`SERVED`): what a model without the kind's branch is
told of a medium instead, as text (:mod:`lhama.serve.cascade`), and the API's rules for a content
part of the kind (:mod:`lhama.serve.prompt`).

A kind registered in :mod:`lhama.model.branches` gets its stand-in and its API limits by one
:func:`register` here; a kind without a record still reaches a model with its branch (chat's
``attach``), and a model without one says, in one line, that nothing tells it the kind as text.
An API content part of a new kind also needs its schema type and handler (the request format).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lhama.data.media import load_image
from lhama.data.ocr import image_note
from lhama.errors import ConfigError
from lhama.serve.cascade import frames_note, labels_note, speech_note, track_note
from lhama.serve.schemas import AudioPart, ImagePart, VideoPart

if TYPE_CHECKING:
    from lhama.serve.cascade import Cascade

# What the API's per-request limits count a told medium under (lhama.serve.prompt's ``media``):
HEARD, SEEN = "heard", "seen"  # transcripts, videos' frame names
LABELLED = "labelled"  # images told as a labeler's class names (a cascade model: lhama-default)


@dataclass(frozen=True)
class MediaRules:
    """An API content part's rules: its schema type (``lhama.serve.schemas``), the ``media`` key of
    the notes that stand in for it in a model without the kind's branch, the start of the error for
    the part outside a user message, and the per-request limit (a ``ServeSettings`` field) with the
    noun and code of its error."""

    part: type
    told: str
    others: str
    limit: str
    noun: str
    code: str


@dataclass(frozen=True)
class ServedKind:
    """A branch kind as chat and the API serve it. ``note``: (source, cascade) -> the text that
    stands in for a medium in a model without the branch; ``track_note``: the same for the kind's
    track of another medium's file (a video's sound track), None for a file without one; ``api``:
    its content part's rules (None: the API takes no part of this kind); ``text``: (source, ocr) ->
    the note of the text read in a medium (an image's, by tesseract; ``ocr``: on, off, or None:
    when installed), "" when none, added after the medium by chat and the API alike (None: the
    kind carries no readable text)."""

    name: str
    note: Callable[[Any, Cascade], str] | None = None
    track_note: Callable[[Any, Cascade], str | None] | None = None
    api: MediaRules | None = None
    text: Callable[[Any, bool | None], str] | None = None


def _told_image(source: Any, cascade: Cascade) -> str:
    return labels_note(source, cascade.loaded)


def _image_text(source: Any, ocr: bool | None) -> str:
    return image_note(load_image(source), ocr)  # upright (its EXIF orientation), as the model sees it


def _told_video(source: Any, cascade: Cascade) -> str:
    return frames_note(source, cascade.loaded)


def _told_speech(source: Any, cascade: Cascade) -> str:
    return speech_note(source, cascade.transcriber, cascade.progress)


def _told_track(source: Any, cascade: Cascade) -> str | None:
    return track_note(source, cascade.transcriber, cascade.progress)


SERVED: dict[str, ServedKind] = {kind.name: kind for kind in (  # branch kind name -> how serve takes it
    ServedKind("image", _told_image,
               api=MediaRules(ImagePart, LABELLED, "images are", "max_images", "images", "too_many_images"),
               text=_image_text),
    ServedKind("video", _told_video,
               api=MediaRules(VideoPart, SEEN, "videos are", "max_videos", "videos", "too_many_videos")),
    ServedKind("audio", _told_speech, _told_track,
               MediaRules(AudioPart, HEARD, "audio is", "max_audio_items", "audio parts", "too_many_audio")),
)}


def register(kind: ServedKind) -> None:
    """Add serve's record of a kind (one registered with ``lhama.model.branches.register``).

    Raises:
        ConfigError: a record of that name is already there.
    """
    if kind.name in SERVED:
        raise ConfigError(f"serve already has a record of the {kind.name!r} kind; kinds: {', '.join(SERVED)}")
    SERVED[kind.name] = kind


def served_part(part: object) -> ServedKind:
    """The record of the kind whose API content part ``part`` is (by its schema type).

    Raises:
        KeyError: no record has that part type.
    """
    return {kind.api.part: kind for kind in SERVED.values() if kind.api is not None}[type(part)]


def unregister(name: str) -> None:
    """Take the record ``name`` out again (what :func:`register` added; tests)."""
    SERVED.pop(name, None)
