"""``lhama chat`` as one call: a chat session in a terminal, one answer or a conversation.

:func:`chat` opens a :class:`~lhama.serve.session.ChatSession` from one :class:`ChatConfig`
(:func:`open_session`: the model from the caller's ``load``, its own decoding settings with the
config's overrides on top, the guard, tools, a speculative draft (the prompt lookup for greedy answers unless
told), the media and a text file for the first question), then streams one answer to stdout or runs
the REPL until ``/exit`` or Ctrl-D.
Everything but the answers goes to the caller's console (stderr in the CLI). The session knows
nothing about terminals; this module is the terminal's side, as :mod:`lhama.serve.app` is HTTP's.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lhama.errors import ConfigError, DataError, LhamaError
from lhama.guard import load_guard
from lhama.inference.generate import Completion, context_length
from lhama.inference.prefix_store import StoredPrefix, store_dir, weights_key
from lhama.inference.speculative import LOOKUP, NO_DRAFT, check_draft_options, exact_checks, open_draft
from lhama.model.branches import KIND
from lhama.model.build import LoadedModel
from lhama.model.generation import GenerationConfig
from lhama.model.transcribe import Transcriber
from lhama.serve.cascade import WHISPER, prepared_whisper
from lhama.serve.session import ChatSession
from lhama.serve.tools import load_tools, parse_reply

Load = Callable[[str, str | None], LoadedModel]  # (model name or directory, quant) -> the loaded model
Locate = Callable[[str], Path]  # a registered name -> its prepared directory

REPL_HELP = """Commands: /image PATH  attach an image to the next question
          /video PATH  attach a video (mp4, mkv, webm...) to the next question
          /audio PATH  attach an audio file (wav, flac, ogg, mp3...) to the next question
          /reset       start a new conversation
          /help        show this help
          /exit        leave (or Ctrl-D)
Ctrl-C stops the answer being written; the conversation goes on."""


@dataclass(frozen=True)
class ChatConfig:
    model: str  # a registered name or a model directory
    prompt: str | None = None  # the question; None: an interactive chat (REPL)
    media: tuple[tuple[str, Path], ...] = ()  # (branch kind, file) for the first question, attached in order
    decoding: dict[str, Any] = field(default_factory=dict)  # GenerationConfig fields over the model's own
    system: str | None = None  # system prompt; None: the model's own; "": none
    guard: bool = True  # S1-S14 moderation of what goes in and of the answers
    guard_spec: str | None = None  # its backend (lhama.guard.load_guard); None: lhama's classifier
    tools: Path | None = None  # a JSON list of OpenAI tool objects; calls are printed, not run
    file: Path | None = None  # a UTF-8 text file put in front of the first question
    quant: str | None = None  # the LM's weights (none, bf16, int8, int4...); None: the loader's default
    draft: str | None = None  # speculative decoding: "lookup", "none" or a smaller model (same tokenizer); None: chat_draft's
    draft_quant: str | None = None  # the draft's weights; None: lhama.inference.speculative.draft_quant's choice

    def __post_init__(self) -> None:
        check_draft_options(self.draft, self.draft_quant)
        unknown = sorted({kind for kind, _ in self.media} - set(KIND))
        if unknown:
            raise ConfigError(f"media kinds {unknown} are not branch kinds; use {list(KIND)}")
        try:
            GenerationConfig(**self.decoding)  # a bad value fails before the model loads
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"decoding: {exc}") from None
        if self.prompt is not None and not self.prompt.strip() and not self.media and self.file is None:
            raise ConfigError('the question is empty: write one (lhama chat "Qual é a capital do Brasil?"), '
                              "or leave it out for an interactive chat")


def chat(config: ChatConfig, load: Load, err: Console, locate: Locate | None = None) -> None:
    """Open the session (:func:`open_session`), then answer ``config.prompt`` on stdout, or
    talk until ``/exit`` or Ctrl-D when there is none.

    Raises:
        LhamaError: a bad model, medium, tools or text file (before anything is asked), or a
        bad one-shot question; in the REPL a bad turn is printed and the conversation goes on.
    """
    session = open_session(config, load, err, locate)
    if config.prompt is not None:
        answer(session, config.prompt, err)
        return
    repl(session, err)


def open_session(config: ChatConfig, load: Load, err: Console, locate: Locate | None = None) -> ChatSession:
    """The model loaded and a session over it: the model's own decoding settings with
    ``config.decoding`` on top, the guard, tools, draft, the stored system-prompt opening
    (:mod:`lhama.inference.prefix_store`), and the media and ``config.file`` attached for the first question. Speech for a model without an audio branch is heard by
    :data:`~lhama.serve.cascade.WHISPER`, found with ``locate`` (None: prepared quietly)."""
    check_files(config)  # before the load: a typo should not cost a load (or a first-use prepare) to report
    loaded = load(config.model, config.quant)
    generation = replace(loaded.generation, **config.decoding)
    plan = None if config.tools is None else load_tools(config.tools, getattr(loaded.tokenizer, "chat_template", None), loaded.name)
    heard = prepared_whisper if locate is None else lambda: locate(WHISPER)
    session = ChatSession(loaded, generation, system_prompt=config.system,
                          guard=load_guard(config.guard_spec, loaded) if config.guard else None, tools=plan,
                          transcriber=Transcriber(heard), progress=_WindowBar(err),
                          draft=open_draft(chat_draft(config.draft, loaded, generation), loaded, load, config.draft_quant),
                          prefix=StoredPrefix(store_dir(), weights_key(loaded.model)))
    for kind, path in config.media:
        session.attach(kind, path)  # a video's sound track too: the audio branch, else Whisper's transcript
    if config.file is not None:
        session.pending_notes.append(read_prompt_file(config.file, loaded, generation.max_new_tokens))
    return session


def chat_draft(given: str | None, target: LoadedModel, generation: GenerationConfig) -> str | None:
    """The draft the chat decodes ``target`` with (for ``open_draft``): ``given`` as named (``--draft none``: no draft),
    else the prompt lookup where it is proven to give plain decoding's answer token for token: greedy decoding with a
    KV cache on a model whose checks are the one-row steps' bits (``speculative.exact_checks``: the lean step with
    quantised or bf16 weights, as lhama-default's). Sampling, fp32 weights (``--quant none``) and models whose checks
    run the transformers forward decode plainly unless a draft is named. With ``--tools`` too: the same greedy text
    decoding (tests/serve/test_chat_draft.py)."""
    if given == NO_DRAFT:
        return None
    if given is not None:
        return given
    greedy = generation.temperature == 0 and generation.use_cache
    return LOOKUP if greedy and exact_checks(target) else None


def check_files(config: ChatConfig) -> None:
    """Every file ``config`` names (media, ``file``, ``tools``) is there, and each medium's header
    is its kind's (``BranchKind.check``: a text file given as ``--video`` fails here); contents are
    read later.

    Raises:
        DataError: a missing file or a directory, named with its option (ConfigError for ``--tools``),
            or a medium that is not of its kind (named as its reader names it).
    """
    named = [*((f"--{kind}", path, DataError) for kind, path in config.media), ("--file", config.file, DataError),
             ("--tools", config.tools, ConfigError)]
    for option, path, error in named:
        if path is not None and not Path(path).is_file():
            reason = "Is a directory" if Path(path).is_dir() else "No such file or directory"
            raise error(f"{option} {path}: {reason}; give the path of a file")
    for kind, path in config.media:
        if KIND[kind].check is not None:
            KIND[kind].check(path)


def read_prompt_file(path: Path, loaded: LoadedModel, max_tokens: int) -> str:
    """The text of ``--file`` as a note in front of the question.

    Raises:
        DataError: missing, not UTF-8 text, or too long for the model's context with the answer.
    """
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


def answer(session: ChatSession, text: str, err: Console) -> None:
    """Stream one answer to stdout; Ctrl-C ends the answer, not the program."""
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
    elif done is not None and not done.token_ids:  # lhama.serve.verbatim: nothing was generated
        err.print("[dim](the transcript itself: a request for the words spoken is not sent to the model)[/]")
    elif done is not None:
        elapsed = time.perf_counter() - started
        err.print(f"[dim]{len(done.token_ids)} tokens in {elapsed:.1f} s "
                  f"({len(done.token_ids) / max(elapsed, 1e-9):.1f} tokens/s)[/]")


def _answer_with_tools(session: ChatSession, text: str, err: Console) -> None:
    """The whole answer, then each tool call it makes as a line of JSON (the calls are not run)."""
    with err.status("thinking ..."):
        *_, done = session.ask(text)
    reply = parse_reply(session.tools.prefix + done.text, session.tools)
    if reply.content:
        sys.stdout.write(reply.content + "\n")
    for call in reply.calls:
        sys.stdout.write(json.dumps({"tool_call": call.name, "arguments": json.loads(call.arguments)},
                                    ensure_ascii=False) + "\n")
    sys.stdout.flush()


def repl(session: ChatSession, err: Console) -> None:
    """Read questions and ``/`` commands from stdin until ``/exit`` or Ctrl-D."""
    try:
        import readline  # noqa: F401  (arrow keys and history for input())
    except ImportError:
        pass
    err.print(f"[bold]lhama chat[/] with {session.loaded.name}. Type a question; /image, /audio or /video PATH "
              "attaches a file to it; /help for more, /exit to leave.")
    while True:
        try:
            line = input("você> ").strip()
        except EOFError:
            err.print()
            return
        except KeyboardInterrupt:
            err.print("\n(Ctrl-D or /exit to leave)")
            continue
        if line and not repl_line(session, line, err):
            return


def repl_line(session: ChatSession, line: str, err: Console) -> bool:
    """Handle one REPL line; False means leave."""
    command, _, argument = line.partition(" ")
    if command in ("/exit", "/quit"):
        return False
    if command == "/help":
        err.print(REPL_HELP)
    elif command == "/reset":
        session.reset()
        err.print("[dim]new conversation[/]")
    elif command[1:] in KIND and not argument.strip():
        err.print(f"[red]{command} needs a file:[/] {command} PATH, then ask about it")
    elif command[1:] in KIND:  # /image, /video, /audio
        try:
            session.attach(command[1:], Path(argument.strip()).expanduser())
            err.print(f"[dim]attached {argument.strip()}; now ask about it[/]")
        except LhamaError as exc:
            err.print(f"[bold red]error:[/] {exc}")
    elif command.startswith("/"):
        err.print(f"[red]unknown command {command}[/]; /help lists them")
    else:
        try:
            answer(session, line, err)
        except LhamaError as exc:  # a bad turn should not end the conversation
            err.print(f"[bold red]error:[/] {exc}")
    return True


class _WindowBar:
    """A progress bar on ``err`` while a recording longer than one 30-s window is transcribed."""

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
