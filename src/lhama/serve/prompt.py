"""An OpenAI chat request -> what the engine runs: messages with media placeholders, the
encoded prompt, decoded image tensors, and the generation settings.

Content parts become text in order; each image (video, input_audio) part becomes the model's
``<image>`` (``<video>``, ``<audio>``) placeholder on its own line. Errors name the request field (``messages[1].content[0]...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from lhama.data.conversation import Message, encode_prompt, encode_without_media, render_prompt, stop_strings
from lhama.model.branches import KIND
from lhama.model.build import LoadedModel
from lhama.model.pictures import sees_pictures
from lhama.inference.generate import GenerationConfig
from lhama.errors import DataError, ModelError
from lhama.model.transcribe import Transcriber
from lhama.serve.cascade import Cascade, whisper_transcriber
from lhama.serve.engine import Prompt
from lhama.serve.errors import ModelNotFound, RequestError
from lhama.serve.kinds import ServedKind, served_part
from lhama.serve.media import check_pixels, decode_base64, media_url_bytes
from lhama.serve.schemas import AudioPart, ChatCompletionRequest, ChatMessage, ImagePart, TextPart, VideoPart
from lhama.serve.settings import ServeSettings
from lhama.serve.tools import ToolPlan, guard_view, render_with_tools, template_message
from lhama.serve.verbatim import verbatim_answer


MIN_TEMPERATURE = 1e-3
# A request's media are collected by branch kind (tensors for the model's branches); the notes
# that went into the text instead, under their kind's ``MediaRules.told`` key (lhama.serve.kinds),
# and all of them, in order, under this one (the last message's are read by lhama.serve.verbatim):
NOTED = "noted"


@dataclass(frozen=True)
class Target:
    """What a request is checked against: the model and the server's limits."""

    loaded: LoadedModel
    model_id: str
    settings: ServeSettings
    transcriber: Transcriber = field(default_factory=whisper_transcriber)  # speech for a model without an audio branch

    @property
    def cascade(self) -> Cascade:
        """The model's branches, or what tells it a medium it has none for (lhama.serve.cascade)."""
        return Cascade(self.loaded, self.transcriber)


def build_prompt(request: ChatCompletionRequest, target: Target, tools: ToolPlan | None = None) -> Prompt:
    """Check the request against the model and limits; decode media; tokenize. With
    ``tools`` (:func:`lhama.serve.tools.plan_tools`) the chat template renders them and the
    tool turns, and the prompt ends with the plan's forced prefix.

    Raises:
        RequestError: a field is unusable (its name is in ``param``); ModelNotFound.
    """
    if request.model != target.model_id:
        raise ModelNotFound(f"the model {request.model!r} does not exist here; this server has {target.model_id!r}",
                            "model", "model_not_found")
    media: dict[str, list] = {}
    *earlier, last = request.messages
    messages = [_message(m, i, target, media) for i, m in enumerate(earlier)]
    made = len(media.get(NOTED, []))  # the notes the last message's parts make follow
    messages.append(_message(last, len(earlier), target, media))
    if last.role == "user" and not messages[-1]["content"].strip():  # else the model answers about nothing
        raise RequestError("is empty: ask a question (text, or an image, audio or video part)",
                           f"messages[{len(earlier)}].content", "invalid_value")
    if not any(m["role"] == "user" for m in messages):
        raise RequestError("needs at least one message with role 'user'", "messages", "invalid_value")
    system = target.loaded.generation.system_prompt
    if messages[0]["role"] != "system" and system:
        messages.insert(0, {"role": "system", "content": system})  # the model's Portuguese default
    tokenizer = target.loaded.tokenizer
    text = render_with_tools(tokenizer, messages, tools) if tools else render_prompt(tokenizer, messages)
    input_ids = encode_prompt(tokenizer, text, target.loaded.expansions())
    _check_length(len(input_ids), max_new_tokens(request, target.settings), target.loaded)
    branches = target.loaded.config.branches
    stacked = {kind: torch.stack(items) for kind, items in media.items() if kind in branches} or None
    reference_ids = None
    if tools:  # image guidance's text-only reference does not render tool turns
        return Prompt(guard_view(messages), input_ids, stacked)
    if stacked and image_guidance(request, target):  # the same conversation as text alone
        reference_ids = encode_without_media(tokenizer, messages, target.loaded.config.placeholders.values(),
                                             target.loaded.expansions())
    return Prompt(messages, input_ids, stacked, reference_ids, _verbatim(last, media.get(NOTED, [])[made:]))


def _verbatim(last: ChatMessage, notes: list[str]) -> str | None:
    """The transcript itself when the last message is a user's request for the words of the
    speech it carries, ``notes`` being the notes its parts made (lhama.serve.verbatim); else
    None: the model answers."""
    if last.role != "user" or not isinstance(last.content, list):
        return None
    return verbatim_answer(" ".join(part.text for part in last.content if isinstance(part, TextPart)), notes)


def image_guidance(request: ChatCompletionRequest, target: Target) -> float:
    """The request's ``image_guidance`` (a lhama extension), else the model's own."""
    return target.loaded.generation.image_guidance if request.image_guidance is None else request.image_guidance


def generation_config(request: ChatCompletionRequest, target: Target) -> GenerationConfig:
    """The model's own decoding settings (``LoadedModel.generation``, from its
    lhama_generation.json) with the sampling fields the request gives on top; ``stop`` replaces
    the model's stops when given. The stop strings of the model's template are always added."""
    own = target.loaded.generation
    given = {"temperature": request.temperature, "top_p": request.top_p,
             "repetition_penalty": request.repetition_penalty, "seed": request.seed}
    config = replace(own, **{name: value for name, value in given.items() if value is not None})
    stop = (own.stop if request.stop is None else request.stop_list) + stop_strings(target.loaded.tokenizer)
    # Dividing logits by a temperature near zero overflows to inf (NaN probabilities); so close
    # to zero, sampling is greedy anyway.
    temperature = config.temperature if config.temperature >= MIN_TEMPERATURE else 0.0
    return replace(config, max_new_tokens=max_new_tokens(request, target.settings), temperature=temperature,
                   stop=tuple(s for s in stop if s), image_guidance=image_guidance(request, target))


def max_new_tokens(request: ChatCompletionRequest, settings: ServeSettings) -> int:
    """``max_completion_tokens`` or ``max_tokens`` (the server default if neither), within the cap."""
    asked = request.max_completion_tokens or request.max_tokens
    field = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
    if asked is not None and asked > settings.max_tokens_cap:
        raise RequestError(f"{asked} is above this server's limit of {settings.max_tokens_cap}", field, "invalid_value")
    return asked or min(settings.default_max_tokens, settings.max_tokens_cap)


def _message(message: ChatMessage, index: int, target: Target, media: dict[str, list[torch.Tensor]]) -> Message:
    role = "system" if message.role == "developer" else message.role
    if message.tool_calls or role == "tool":
        content = "" if message.content is None and message.tool_calls else message.content
        bare = message.model_copy(update={"role": "assistant", "content": content, "tool_calls": None})
        plain = _message(bare, index, target, media)  # media only in user turns: none here
        return template_message(message, {**plain, "role": role}, index)
    if message.content is None:
        raise RequestError("is required (it may be null only in an assistant message with tool_calls)",
                           f"messages[{index}].content", "invalid_value")
    if isinstance(message.content, str):
        return {"role": role, "content": message.content}
    pieces = []
    for j, part in enumerate(message.content):
        field = f"messages[{index}].content[{j}]"
        if isinstance(part, TextPart):
            pieces.append(part.text)
            continue
        served, text = served_part(part), MEDIA_PARTS[type(part)]
        if role != "user":
            raise RequestError(f"{served.api.others} only allowed in user messages", field, "invalid_value")
        pieces.append(text(part, served, field, target, media))
    return {"role": role, "content": "\n".join(pieces)}


def _image_part(part: ImagePart, served: ServedKind, field: str, target: Target, media: dict[str, list]) -> str:
    """An image part -> its placeholder (and the OCR note of its text); a cascade model without
    an image branch gets its labeler's note of the image as text instead (lhama.serve.cascade)."""
    loaded, settings, url_field = target.loaded, target.settings, f"{field}.image_url.url"
    if not sees_pictures(loaded):
        raise RequestError(f"the model {target.model_id!r} is text-only (no vision tower) and cannot see images",
                           field, "model_not_multimodal")
    _check_limit(served, media, settings, field)
    data = media_url_bytes(part.image_url.url, url_field, settings, served.name, settings.max_image_bytes)
    check_pixels(data, url_field, settings)
    return "\n".join(filter(None, [_taken(served, data, url_field, target, media), _text_note(served, data, url_field, settings)]))


def _text_note(served: ServedKind, data: bytes, field: str, settings: ServeSettings) -> str:
    """The text read in an (already checked) medium, as a prompt line (``ServedKind.text``: an
    image's, by tesseract, as chat reads it); "" when none, when OCR is off or the kind has none."""
    if served.text is None or settings.ocr is False:
        return ""
    try:
        return served.text(data, settings.ocr)
    except DataError as exc:
        raise RequestError(f"the text in the image could not be read: {exc}", field, "ocr_failed") from None


def _video(part: VideoPart, served: ServedKind, field: str, target: Target, media: dict[str, list]) -> str:
    """A video part -> its frames for the video branch (else the tower's per-frame names as text)
    and its sound track for the audio branch (else Whisper's transcript as text); returns the
    part's text in the message: placeholders and/or notes."""
    settings = target.settings
    _check_limit(served, media, settings, field)
    url_field = f"{field}.video_url.url"
    data = media_url_bytes(part.video_url.url, url_field, settings, served.name, settings.max_video_bytes)
    try:
        pieces = [_taken(served, data, url_field, target, media)]
        for carried in KIND[served.name].carries:  # its sound track, as chat's attach takes it
            pieces += _track(carried, data, target, media)
    except ModelError as exc:
        raise RequestError(str(exc), field, "model_not_multimodal") from None
    except DataError as exc:
        raise RequestError(str(exc), url_field, "invalid_video") from None
    return "\n".join(pieces)


def _track(kind: str, data: bytes, target: Target, media: dict[str, list]) -> list[str]:
    """The ``kind`` track of a file (a video's sound track): for the ``kind`` branch (log-mel),
    else its note (a transcript); [] when the file has none or a silent one."""
    heard = target.cascade.take(kind, data, track=True)
    if heard is None or isinstance(heard, str) and not heard:
        return []
    return [_kept(kind, heard, None, target, media)]


def _audio(part: AudioPart, served: ServedKind, field: str, target: Target, media: dict[str, list]) -> str:
    """Base64 is checked first (so a client learns about bad data first), then the per-request
    limit and the audio itself (corrupt, empty, silent, over 10 min: 400). A model with an audio
    branch gets its features; any other gets Whisper's transcript as text."""
    settings = target.settings
    data_field = f"{field}.input_audio.data"
    data = decode_base64(part.input_audio.data, data_field, settings.max_audio_bytes)
    _check_limit(served, media, settings, field)
    return _taken(served, data, data_field, target, media)


def _taken(served: ServedKind, data: bytes, field: str, target: Target, media: dict[str, list]) -> str:
    """A part's file bytes for the model (its branch, or the note that stands in for it); its text
    in the message. Unreadable data is a RequestError naming ``field`` (code ``invalid_<kind>``)."""
    try:
        item = target.cascade.take(served.name, data)
    except DataError as exc:
        raise RequestError(str(exc).replace("audio bytes", "the audio"), field, f"invalid_{served.name}") from None
    return _kept(served.name, item, served.api.told, target, media)


def _kept(kind: str, item: torch.Tensor | str, told: str | None, target: Target, media: dict[str, list]) -> str:
    """A medium read for the ``kind`` branch goes into ``media[kind]`` and the text gets its
    placeholder; a note that stands in for it is the text (and goes into ``media[told]``, which
    the per-request limits count, and ``media[NOTED]``)."""
    if isinstance(item, torch.Tensor):
        media.setdefault(kind, []).append(item)
        return target.loaded.config.branches[kind].placeholder
    media.setdefault(NOTED, []).append(item)
    if told is not None:
        media.setdefault(told, []).append(item)
    return item


# A user message's media part type -> (part, its kind's lhama.serve.kinds record, field, target,
# media) -> its text in the message.
MEDIA_PARTS = {ImagePart: _image_part, VideoPart: _video, AudioPart: _audio}


def _check_limit(served: ServedKind, media: dict[str, list], settings: ServeSettings, field: str) -> None:
    """A request may carry at most the limit of a part's kind (read by its branch or told as notes)."""
    rules = served.api
    limit = getattr(settings, rules.limit)
    if sum(len(media.get(key, [])) for key in (served.name, rules.told)) >= limit:
        raise RequestError(f"too many {rules.noun}: this server accepts at most {limit} per request", field, rules.code)


def _check_length(prompt_tokens: int, new_tokens: int, loaded: LoadedModel) -> None:
    limit = getattr(loaded.model.language_model.config, "max_position_embeddings", None)
    if limit and prompt_tokens + new_tokens > limit:
        raise RequestError(
            f"the prompt has {prompt_tokens} tokens; with max_tokens {new_tokens} that exceeds the model's "
            f"context of {limit} tokens", "messages", "context_length_exceeded",
        )
