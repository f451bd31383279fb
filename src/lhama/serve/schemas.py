"""The OpenAI chat-completions protocol as pydantic models: what clients send and get back.

Only the subset lhama serves is modelled; unknown top-level fields (``user``, ``logprobs``...)
are ignored as OpenAI-compatible servers usually do, but an unknown content-part ``type`` is
an error. Field constraints here are what the server reports as 400s naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageUrl(BaseModel):
    url: str = Field(description="A data: URI (data:image/png;base64,...); http(s) only with --allow-remote-media.")
    detail: Literal["auto", "low", "high"] = "auto"  # accepted for compatibility; lhama has one resolution


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(BaseModel):
    data: str = Field(description="Base64-encoded audio file bytes.")
    format: Literal["wav", "mp3"]


class AudioPart(BaseModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


class VideoUrl(BaseModel):
    url: str = Field(description="A data: URI (data:video/mp4;base64,...); http(s) only with --allow-remote-media.")


class VideoPart(BaseModel):
    """lhama extension (OpenAI has no video input): a whole video file; the server samples frames."""

    type: Literal["video_url"]
    video_url: VideoUrl


ContentPart = Annotated[Union[TextPart, ImagePart, AudioPart, VideoPart], Field(discriminator="type")]


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="The arguments as a JSON object in a string.")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[ContentPart], None] = None  # None only for an assistant turn with tool_calls
    tool_calls: list[ToolCall] | None = None  # an assistant's earlier calls (lhama.serve.tools)
    tool_call_id: str | None = None  # a tool message: the call it answers


class FunctionDefinition(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON Schema of type "object"
    strict: bool | None = None  # accepted; arguments are checked as JSON, not against the schema


class Tool(BaseModel):
    type: Literal["function"]
    function: FunctionDefinition


class ChosenFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: ChosenFunction


ToolChoice = Union[Literal["none", "auto", "required"], NamedToolChoice]


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)  # newer clients' name for max_tokens
    # None (left out): the model's own setting, from its lhama_generation.json (lhama.serve.prompt)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=2.0)  # extension (as in vLLM)
    # extension: steer answers about media towards what they show (lhama.inference.generate); None: the model's own
    image_guidance: float | None = Field(default=None, ge=0.0, le=10.0)
    stop: Union[str, list[str], None] = None
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None  # None: "auto" with tools, "none" without
    parallel_tool_calls: bool | None = None  # accepted; the model may write several calls

    @property
    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    # lhama extension: the S1-S14 categories when the safety guard refused (content_filter)
    categories: list[str] | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class FunctionCallDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta


class Delta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    categories: list[str] | None = None  # see Choice.categories


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lhama"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ModerationPart = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


class ModerationRequest(BaseModel):
    """OpenAI's moderation input: a string, a list of strings (one result each), or a list of
    text and image parts judged together (one result)."""

    input: Union[str, list[str], list[ModerationPart]]
    model: str | None = None  # accepted for compatibility; lhama's guard answers


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]
    guard_categories: list[str]  # lhama extension: the guard's own S1-S14 codes


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]
