"""``lhama chat``: talk to a model in the terminal, one-shot or interactively."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Optional

import typer
from rich.console import Console

from lhama.cli.common import DEFAULT_MODEL, QuantOpt, Safety, loader, model_directory, named_draft, named_model
from lhama.cli.options import as_typed, command

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.serve.terminal import ChatConfig


@dataclass(frozen=True)
class Media:
    PANEL: ClassVar[str] = "Media"
    image: Annotated[Optional[list[Path]], typer.Option("--image", "-i", help="An image to ask about (repeat for several). Needs a model with a vision tower.")] = None
    video: Annotated[Optional[list[Path]], typer.Option("--video", help="A video to ask about (repeat for several); 8 frames are sampled evenly. A model with a video branch sees them; otherwise its vision tower's class head names each frame (lhama-default). The sound track is heard too (its first 10 min).")] = None
    audio: Annotated[Optional[list[Path]], typer.Option("--audio", "-a", help="An audio file to ask about: wav, flac, ogg, mp3, m4a (repeat for several). A model with an audio branch hears its first window; any other model (lhama-default) gets Whisper's pt-BR transcript of up to 10 min.")] = None

    def files(self) -> tuple[tuple[str, Path], ...]:
        """(branch kind, file) of every medium given: the images, then the videos, then the audio."""
        return tuple((kind.name, path) for kind in fields(self) for path in getattr(self, kind.name) or [])  # field = kind


@dataclass(frozen=True)
class Decoding:
    """How answers are decoded. An option left out keeps the model's own setting (its
    lhama_generation.json, else GenerationConfig's default, given in each help)."""

    PANEL: ClassVar[str] = "Decoding (left out: the model's own, from its lhama_generation.json)"
    system: Annotated[Optional[str], typer.Option(help="System prompt. Default: the model's own (lhama-default's asks for brief answers in Brazilian Portuguese). Pass '' for none.")] = None
    max_tokens: Annotated[Optional[int], typer.Option(help="Most tokens to generate per answer. Default: the model's (256 unless it says otherwise).")] = None
    temperature: Annotated[Optional[float], typer.Option(help="0 = greedy (deterministic); higher = more varied. Default: the model's (0 unless it says otherwise).")] = None
    top_p: Annotated[Optional[float], typer.Option(help="Nucleus sampling: keep the tokens that make up this probability mass. Default: the model's (1.0 unless it says otherwise).")] = None
    repetition_penalty: Annotated[Optional[float], typer.Option(help="Above 1 discourages repeating tokens; small models loop less (1.1 is a common choice). Default: the model's (1.0 = off unless it says otherwise).")] = None
    seed: Annotated[Optional[int], typer.Option(help="Random seed for sampling (same seed, same answer). Default: the model's (none unless it says otherwise).")] = None
    stop: Annotated[Optional[list[str]], typer.Option(help="Stop the answer at this text (repeatable; replaces the model's own stops, if any).")] = None
    image_guidance: Annotated[Optional[float], typer.Option(help="Steer answers about images, videos or audio towards what they show: each token is scored against the same question without the media (0 = off; costs a second forward per token). Default: the model's own (0 unless it says otherwise).")] = None

    FLAG: ClassVar[dict[str, str]] = {"max_new_tokens": "--max-tokens", "top_p": "--top-p", "temperature": "--temperature",
                                      "repetition_penalty": "--repetition-penalty", "image_guidance": "--image-guidance"}

    def __post_init__(self) -> None:
        from lhama.model.generation import GenerationConfig

        try:
            GenerationConfig(**self.overrides())  # a bad value fails before the model loads
        except ValueError as exc:  # "max_new_tokens must be >= 1": named as the user typed it
            raise as_typed(exc, self.FLAG) from None

    def overrides(self) -> dict[str, Any]:
        """The GenerationConfig fields the user gave (``system`` goes to the session instead)."""
        given = {"max_new_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                 "repetition_penalty": self.repetition_penalty, "seed": self.seed, "image_guidance": self.image_guidance,
                 "stop": None if self.stop is None else tuple(self.stop)}
        return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class Extras:
    PANEL: ClassVar[str] = "Tools and files"
    tools: Annotated[Optional[Path], typer.Option("--tools", help="A JSON file with a list of OpenAI tool objects the model may call (needs a chat template with tools, e.g. Qwen2.5). Calls are printed, not run.")] = None
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="A UTF-8 text file put in front of the (first) question, e.g. to summarise or rewrite it.")] = None


@dataclass(frozen=True)
class Speed:
    PANEL: ClassVar[str] = "Speed"
    quant: QuantOpt = None
    draft: Annotated[Optional[str], typer.Option(callback=named_draft, help="Speculative decoding of greedy text answers (the same answer, fewer big-model steps). Default: `lookup` when decoding is greedy, which proposes the words that followed the last few words' earlier occurrence in the conversation (no model; x1.03 plain decoding on 60 everyday questions on a 2-core Zen 3, more on answers that copy the question, docs/distill.md); sampled answers decode plainly. `none` turns it off. Or a smaller model with the same tokenizer, e.g. qwen2.5-coder-0.5b-instruct (slower than plain decoding on a CPU without AVX-512: x0.95 there, leave it off; a new chat with a draft model pays the system prompt's full prefill).")] = None
    draft_quant: Annotated[Optional[str], typer.Option(help="Weights of the --draft model (only with a draft model: the lookup has none), chosen apart from --quant: none, bf16, int8, int4 or an int4 plan (quantised once, cached beside it). Default: int4-g32 when the model is quantised (the cheapest draft per step), else the model's own (none or bf16).")] = None


@dataclass(frozen=True)
class ChatOptions:
    prompt: Annotated[Optional[str], typer.Argument(help="The question. Leave it out for an interactive chat.")] = None
    model: Annotated[str, typer.Option("--model", "-m", callback=named_model, help="A prepared model name (see `lhama models list`) or a local Hugging Face model directory (a causal LM, or a lhama/LLaVA directory with a vision tower).")] = DEFAULT_MODEL
    media: Media = field(default_factory=Media)
    decoding: Decoding = field(default_factory=Decoding)
    safety: Safety = field(default_factory=Safety)
    extras: Extras = field(default_factory=Extras)
    speed: Speed = field(default_factory=Speed)

    def config(self) -> ChatConfig:
        """The chat's one typed config."""
        from lhama.serve.terminal import ChatConfig

        return ChatConfig(self.model, self.prompt, self.media.files(), self.decoding.overrides(), self.decoding.system,
                          guard=not self.safety.no_guard, guard_spec=self.safety.guard, tools=self.extras.tools,
                          file=self.extras.file, quant=self.speed.quant, draft=self.speed.draft,
                          draft_quant=self.speed.draft_quant)


@command(ChatOptions)
def chat(options: ChatOptions) -> None:
    """Chat with a model in Portuguese. Answers stream as they are written.

    Examples:

      lhama chat "Qual é a capital do Brasil?"

      lhama chat --model ./meu-llava --image foto.jpg "Descreva a imagem."

      lhama chat --model runs/stage1-video/model --video clip.mp4 "O que acontece no vídeo?"

      lhama chat --audio fala.wav "O que a pessoa pediu?"      (Whisper's transcript; up to 10 min)

      lhama chat --video clip.mp4 "O que acontece no vídeo?"    (frames named by the tower + the sound)

      lhama chat --model runs/stage1-audio/model --audio fala.wav "O que foi dito?"

      lhama chat --file notas.txt "Resuma."

      lhama chat --model qwen2.5-coder-1.5b-instruct --tools ferramentas.json "Vai chover em Recife?"

      lhama chat --repetition-penalty 1.1 --max-tokens 512 "Conte uma história."   (override the model's decoding)

      lhama chat            (interactive; type /help inside)
    """
    from lhama.serve.terminal import chat as chat_in_terminal  # torch and the model code load here

    err = Console(stderr=True)
    chat_in_terminal(options.config(), loader(err), err, partial(model_directory, err=err))
