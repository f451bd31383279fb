"""``lhama serve``: an OpenAI-compatible HTTP server and a chat page for one model."""

from __future__ import annotations

from typing import Annotated, Optional

import torch
import typer
from rich.console import Console

from lhama.cli.common import DEFAULT_MODEL, load_with_progress
from lhama.errors import ConfigError
from lhama.guard import load_guard
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings


def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="A prepared model name (see `lhama models list`) or a local model directory (a causal LM, or a lhama/LLaVA directory with a vision tower).")] = DEFAULT_MODEL,
    host: Annotated[str, typer.Option(help="Address to listen on. 127.0.0.1 = this machine only; 0.0.0.0 = every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="LHAMA_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 routes (also read from $LHAMA_API_KEY). Default: no key.")] = None,
    allow_remote_media: Annotated[bool, typer.Option("--allow-remote-media", help="Let requests name http(s) image URLs that the server downloads. Default: only inline data: URIs.")] = False,
    max_batch: Annotated[int, typer.Option(help="Requests decoded together in one forward step (1 = strictly one at a time).")] = 8,
    max_tokens: Annotated[int, typer.Option("--max-tokens-cap", help="The largest max_tokens a request may ask for.")] = 1024,
    max_images: Annotated[int, typer.Option(help="Images allowed in one request.")] = 4,
    max_image_pixels: Annotated[int, typer.Option(help="Width x height above which an image is refused (checked before decoding).")] = 25_000_000,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take from queueing to its last token.")] = 120.0,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch (default: torch's choice). On a busy shared machine 1 can be much faster.")] = None,
    quant: Annotated[Optional[str], typer.Option(help="Weights of the language model: none (fp32), bf16, int8 or int4 (quantised once, cached beside the model). Default: the model's registry choice, else none.")] = None,
    no_guard: Annotated[bool, typer.Option("--no-guard", help="Turn off the safety guard (S1-S14 moderation of input and output, on by default).")] = False,
    guard: Annotated[Optional[str], typer.Option("--guard", help="Safety guard backend: default = lhama's trained classifier; or a local Llama Guard model directory (see `lhama guard --help`).")] = None,
) -> None:
    """Serve a model with the OpenAI chat-completions API and a chat page at http://HOST:PORT/.

    Routes: GET /v1/models, POST /v1/chat/completions (text, image_url data: URIs, streaming),
    GET /health, GET / (the chat page, in Portuguese), GET /openapi.json (the schema; /docs
    renders it when the browser can reach the internet).

    Examples:

      lhama serve --model smollm2-135m-instruct --port 8000

      lhama serve --model ./meu-llava --api-key segredo --host 0.0.0.0

    Then, with the openai client: OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="segredo").
    """
    import uvicorn  # imported here so that other commands start without loading the web stack

    from lhama.serve.app import create_app

    settings = _settings(api_key=api_key or None, allow_remote_media=allow_remote_media, max_batch=max_batch,
                         max_tokens_cap=max_tokens, default_max_tokens=min(256, max(1, max_tokens)),
                         max_images=max_images, max_image_pixels=max_image_pixels, request_timeout_s=timeout)
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    err = Console(stderr=True)
    loaded = load_with_progress(model, err, quant)
    err.print(f"serving [bold]{loaded.name}[/] at http://{host}:{port}/  (API: http://{host}:{port}/v1)")
    safety = None if no_guard else load_guard(guard)
    err.print(f"safety guard: {'off' if safety is None else 'on'}")
    uvicorn.run(create_app(Engine(loaded, settings, guard=safety), settings), host=host, port=port, log_level="info")


def _settings(**options: object) -> ServeSettings:
    try:
        return ServeSettings(**options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
