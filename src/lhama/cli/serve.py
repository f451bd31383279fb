"""``lhama serve``: an OpenAI-compatible HTTP server and a chat page for one model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Optional

import typer
from rich.console import Console

from lhama.cli.common import DEFAULT_MODEL, QuantOpt, Safety, loader, named_model
from lhama.cli.options import as_typed, command
from lhama.errors import ConfigError
from lhama.serve.server import ServerConfig, run  # light: torch and the web stack load when run() serves
from lhama.serve.settings import ServeSettings


@dataclass(frozen=True)
class Network:
    PANEL: ClassVar[str] = "Network"
    host: Annotated[str, typer.Option(help="Address to listen on. 127.0.0.1 = this machine only; 0.0.0.0 = every interface.")] = "127.0.0.1"
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="LHAMA_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 routes (also read from $LHAMA_API_KEY). Default: no key.")] = None
    allow_remote_media: Annotated[bool, typer.Option("--allow-remote-media", help="Let requests name http(s) image URLs that the server downloads. Default: only inline data: URIs.")] = False


@dataclass(frozen=True)
class Limits:
    PANEL: ClassVar[str] = "Limits"
    max_batch: Annotated[int, typer.Option(help="Requests decoded together in one forward step (1 = strictly one at a time).")] = 8
    max_tokens: Annotated[int, typer.Option("--max-tokens-cap", help="The largest max_tokens a request may ask for. A request that gives none gets the model's own (its lhama_generation.json: 256 unless it says otherwise), within this cap.")] = 1024
    max_images: Annotated[int, typer.Option(help="Images allowed in one request.")] = 4
    max_image_pixels: Annotated[int, typer.Option(help="Width x height above which an image is refused (checked before decoding).")] = 25_000_000
    timeout: Annotated[float, typer.Option(help="Seconds a request may take from queueing to its last token.")] = 120.0


@dataclass(frozen=True)
class Speed:
    PANEL: ClassVar[str] = "Speed"
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch (default: torch's choice). On a busy shared machine 1 can be much faster.")] = None
    quant: QuantOpt = None

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")


@dataclass(frozen=True)
class ServeOptions:
    model: Annotated[str, typer.Option("--model", "-m", callback=named_model, help="A prepared model name (see `lhama models list`) or a local model directory (a causal LM, or a lhama/LLaVA directory with a vision tower).")] = DEFAULT_MODEL
    network: Network = field(default_factory=Network)
    limits: Limits = field(default_factory=Limits)
    speed: Speed = field(default_factory=Speed)
    safety: Safety = field(default_factory=Safety)

    FLAG: ClassVar[dict[str, str]] = {"port": "--port", "max_batch": "--max-batch", "max_tokens_cap": "--max-tokens-cap",
                                      "max_image_pixels": "--max-image-pixels", "request_timeout_s": "--timeout"}

    def __post_init__(self) -> None:
        try:
            self.config()  # bad limits fail before the model loads
        except (ValueError, ConfigError) as exc:  # "max_batch must be >= 1": named as the user typed it
            raise as_typed(exc, self.FLAG) from None

    def config(self) -> ServerConfig:
        """The server's one typed config (a request without max_tokens gets the model's own, capped)."""
        limits, network = self.limits, self.network
        settings = ServeSettings(api_key=network.api_key or None, allow_remote_media=network.allow_remote_media,
                                 max_batch=limits.max_batch, max_tokens_cap=limits.max_tokens, max_images=limits.max_images,
                                 max_image_pixels=limits.max_image_pixels, request_timeout_s=limits.timeout)
        return ServerConfig(self.model, settings, network.host, network.port, self.speed.threads, self.speed.quant,
                            guard=not self.safety.no_guard, guard_spec=self.safety.guard)


@command(ServeOptions)
def serve(options: ServeOptions) -> None:
    """Serve a model with the OpenAI chat-completions API and a chat page at http://HOST:PORT/.

    Routes: GET /v1/models; POST /v1/chat/completions (text, image_url data: URIs,
    input_audio, video_url, tools, streaming); POST /v1/moderations (the guard);
    GET /health; GET / (the chat page, in Portuguese); GET /openapi.json (/docs
    renders it when the browser can reach the internet). More: docs/serve.md.

    Examples:

      lhama serve --port 8000      (lhama-default: text, images, speech, video)

      lhama serve --model smollm2-135m-instruct --port 8000   (fast; English only)

      lhama serve --model ./meu-llava --api-key segredo --host 0.0.0.0

    Then, with the openai client: OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="segredo").
    """
    err = Console(stderr=True)
    run(options.config(), loader(err), err)
