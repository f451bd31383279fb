"""``lhama chat``: talk to a model in the terminal, one-shot or interactively."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lhama.cli.common import DEFAULT_MODEL, QuantOpt, Safety, load_with_progress, model_directory
from lhama.cli.options import command
from lhama.errors import DataError, LhamaError

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.model.build import LoadedModel
    from lhama.serve.session import ChatSession

REPL_HELP = """Commands: /image PATH  attach an image to the next question
          /video PATH  attach a video (mp4, mkv, webm...) to the next question
          /audio PATH  attach an audio file (wav, flac, ogg, mp3...) to the next question
          /reset       start a new conversation
          /help        show this help
          /exit        leave (or Ctrl-D)
Ctrl-C stops the answer being written; the conversation goes on."""
WHISPER = "whisper-base-ptbr"  # hears speech for models without an audio branch (= lhama.serve.cascade.WHISPER)


class _WindowBar:
    """A progress bar on stderr while a recording longer than one 30-s window is transcribed."""

    def __init__(self, err: Console) -> None:
        self.err, self.bar = err, None

    def __call__(self, done: int, total: int) -> None:
        if total < 2:
            return
        if self.bar is None:
            self.bar = Progress(TextColumn("transcrevendo"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("janelas de 30 s"), TimeElapsedColumn(), console=self.err, transient=True)
            self.task = self.bar.add_task("", total=total)
            self.bar.start()
        self.bar.update(self.task, completed=done)
        if done >= total:
            self.bar.stop()
            self.bar = None


@dataclass(frozen=True)
class Media:
    PANEL: ClassVar[str] = "Media"
    image: Annotated[Optional[list[Path]], typer.Option("--image", "-i", help="An image to ask about (repeat for several). Needs a model with a vision tower.")] = None
    video: Annotated[Optional[list[Path]], typer.Option("--video", help="A video to ask about (repeat for several); 8 frames are sampled evenly. A model with a video branch sees them; otherwise its vision tower's class head names each frame (lhama-default). The sound track is heard too (its first 10 min).")] = None
    audio: Annotated[Optional[list[Path]], typer.Option("--audio", "-a", help="An audio file to ask about: wav, flac, ogg, mp3, m4a (repeat for several). A model with an audio branch hears its first window; any other model (lhama-default) gets Whisper's pt-BR transcript of up to 10 min.")] = None


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

    def __post_init__(self) -> None:
        from lhama.model.generation import GenerationConfig

        GenerationConfig(**self.overrides())  # a bad value fails before the model loads

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
    draft: Annotated[Optional[str], typer.Option(help="A smaller model with the same tokenizer for speculative decoding of greedy text answers (same answer, fewer big-model steps), e.g. qwen2.5-coder-0.5b-instruct.")] = None


@dataclass(frozen=True)
class ChatOptions:
    prompt: Annotated[Optional[str], typer.Argument(help="The question. Leave it out for an interactive chat.")] = None
    model: Annotated[str, typer.Option("--model", "-m", help="A prepared model name (see `lhama models list`) or a local Hugging Face model directory (a causal LM, or a lhama/LLaVA directory with a vision tower).")] = DEFAULT_MODEL
    media: Media = field(default_factory=Media)
    decoding: Decoding = field(default_factory=Decoding)
    safety: Safety = field(default_factory=Safety)
    extras: Extras = field(default_factory=Extras)
    speed: Speed = field(default_factory=Speed)


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
    err = Console(stderr=True)
    session = open_session(options, err)
    if options.prompt is not None:
        _answer(session, options.prompt, err)
        return
    _repl(session, err)


def open_session(options: ChatOptions, err: Console) -> ChatSession:
    """The model loaded and a session over it: the model's own decoding settings with the options
    given on top, the guard, tools, draft, and the media and ``--file`` attached for the first
    question. Progress goes to ``err``."""
    from lhama.guard import load_guard
    from lhama.inference.speculative import draft_for
    from lhama.model.transcribe import Transcriber
    from lhama.serve.session import ChatSession
    from lhama.serve.tools import load_tools

    loaded = load_with_progress(options.model, err, options.speed.quant)
    generation = replace(loaded.generation, **options.decoding.overrides())
    plan = None if options.extras.tools is None else load_tools(options.extras.tools, getattr(loaded.tokenizer, "chat_template", None), loaded.name)
    draft = options.speed.draft
    session = ChatSession(loaded, generation, system_prompt=options.decoding.system,
                          guard=None if options.safety.no_guard else load_guard(options.safety.guard), tools=plan,
                          transcriber=Transcriber(lambda: model_directory(WHISPER, err)), progress=_WindowBar(err),
                          draft=None if draft is None else draft_for(loaded, load_with_progress(draft, err, options.speed.quant)))
    media = options.media
    for path in media.image or []:
        session.attach_image(path)
    for path in media.video or []:
        session.attach_video(path)  # its sound track too: the audio branch, else Whisper's transcript
    for path in media.audio or []:
        session.attach_audio(path)
    if options.extras.file is not None:
        session.pending_notes.append(read_prompt_file(options.extras.file, loaded, generation.max_new_tokens))
    return session


def read_prompt_file(path: Path, loaded: LoadedModel, max_tokens: int) -> str:
    """The text of ``--file`` as a note in front of the question.

    Raises:
        DataError: missing, not UTF-8 text, or too long for the model's context with the answer.
    """
    from lhama.inference.generate import context_length

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"--file {path}: {exc.strerror}") from None
    if b"\0" in raw[:8192]:
        raise DataError(f"--file {path} is a binary file; give a UTF-8 text file")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise DataError(f"--file {path} is not UTF-8 text (byte {exc.start}); convert it with iconv first") from None
    tokens, limit = len(loaded.tokenizer(text)["input_ids"]), context_length(loaded.model)
    if tokens + max_tokens > limit:
        raise DataError(f"--file {path} has {tokens} tokens; with --max-tokens {max_tokens} that exceeds the model's "
                        f"context of {limit} tokens: shorten the file or split it")
    return f"Conteúdo do arquivo {path.name}:\n{text}\n"


def _answer(session: ChatSession, text: str, err: Console) -> None:
    """Stream one answer to stdout; Ctrl-C ends the answer, not the program."""
    from lhama.inference.generate import Completion

    if session.tools is not None:
        return _answer_with_tools(session, text, err)
    started = time.perf_counter()
    stream = session.ask(text)
    done: Completion | None = None
    try:
        for item in stream:
            if isinstance(item, Completion):
                done = item
            else:
                sys.stdout.write(item)
                sys.stdout.flush()
    except KeyboardInterrupt:
        stream.close()
        err.print("\n[yellow](interrupted)[/]", end="")
    sys.stdout.write("\n")
    sys.stdout.flush()
    if done is not None and done.finish_reason == "content_filter":
        err.print(f"[yellow](safety guard: {', '.join(done.categories) or 'unsafe'})[/]")
    elif done is not None:
        elapsed = time.perf_counter() - started
        err.print(f"[dim]{len(done.token_ids)} tokens in {elapsed:.1f} s "
                  f"({len(done.token_ids) / max(elapsed, 1e-9):.1f} tokens/s)[/]")


def _answer_with_tools(session: ChatSession, text: str, err: Console) -> None:
    """The whole answer, then each tool call it makes as a line of JSON (the calls are not run)."""
    from lhama.serve.tools import parse_reply

    with err.status("thinking ..."):
        *_, done = session.ask(text)
    reply = parse_reply(session.tools.prefix + done.text, session.tools)
    if reply.content:
        sys.stdout.write(reply.content + "\n")
    for call in reply.calls:
        sys.stdout.write(json.dumps({"tool_call": call.name, "arguments": json.loads(call.arguments)},
                                    ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _repl(session: ChatSession, err: Console) -> None:
    try:
        import readline  # noqa: F401  (arrow keys and history for input())
    except ImportError:
        pass
    err.print(f"[bold]lhama chat[/] with {session.loaded.name}. {REPL_HELP.splitlines()[0]} /help for more.")
    while True:
        try:
            line = input("você> ").strip()
        except EOFError:
            err.print()
            return
        except KeyboardInterrupt:
            err.print("\n(Ctrl-D or /exit to leave)")
            continue
        if line and not _command(session, line, err):
            return


def _command(session: ChatSession, line: str, err: Console) -> bool:
    """Handle one REPL line; False means leave."""
    command, _, argument = line.partition(" ")
    if command in ("/exit", "/quit"):
        return False
    if command == "/help":
        err.print(REPL_HELP)
    elif command == "/reset":
        session.reset()
        err.print("[dim]new conversation[/]")
    elif command in ("/image", "/video", "/audio"):
        attach = {"/image": session.attach_image, "/video": session.attach_video, "/audio": session.attach_audio}[command]
        try:
            attach(Path(argument.strip()).expanduser())
            err.print(f"[dim]attached {argument.strip()}; now ask about it[/]")
        except LhamaError as exc:
            err.print(f"[bold red]error:[/] {exc}")
    elif command.startswith("/"):
        err.print(f"[red]unknown command {command}[/]; /help lists them")
    else:
        try:
            _answer(session, line, err)
        except LhamaError as exc:  # a bad turn should not end the conversation
            err.print(f"[bold red]error:[/] {exc}")
    return True
