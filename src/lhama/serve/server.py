"""``lhama serve`` as one call: a model loaded, the guard, the engine and the app, served over HTTP.

:func:`run` takes one :class:`ServerConfig` and serves until interrupted. The model comes from
the caller's ``load`` (the CLI's prepares a registered name on first use, quantises and shows
progress), as :mod:`lhama.eval.tasks` does; what the server says goes to the caller's console.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from rich.console import Console

from lhama.errors import ConfigError
from lhama.serve.settings import ServeSettings

if TYPE_CHECKING:  # the config is plain data: building it (the CLI's option checks) loads no torch
    from lhama.model.build import LoadedModel

    Load = Callable[[str, str | None], LoadedModel]  # (model name or directory, quant) -> the loaded model


@dataclass(frozen=True)
class ServerConfig:
    model: str  # a registered name or a model directory
    settings: ServeSettings = field(default_factory=ServeSettings)  # limits, API key, batching
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int | None = None  # torch's CPU threads; None: torch's choice
    quant: str | None = None  # the LM's weights (none, bf16, int8, int4...); None: the loader's default
    guard: bool = True  # S1-S14 moderation of requests and answers
    guard_spec: str | None = None  # its backend (lhama.guard.load_guard); None: lhama's classifier
    # A request without max_tokens gets the model's own max_new_tokens (its lhama_generation.json)
    # within settings.max_tokens_cap; False: settings.default_max_tokens.
    model_max_tokens: bool = True

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be between 1 and 65535, got {self.port}")

    def settings_for(self, model_max_tokens: int) -> ServeSettings:
        """The settings served when the model's own max_new_tokens is ``model_max_tokens``."""
        if not self.model_max_tokens:
            return self.settings
        return replace(self.settings, default_max_tokens=min(model_max_tokens, self.settings.max_tokens_cap))


def run(config: ServerConfig, load: Load, err: Console) -> None:
    """Load ``config.model`` with ``load(model, quant)``, then the guard, and serve the
    OpenAI-compatible API and the chat page at ``http://host:port/`` until interrupted.

    Raises:
        LhamaError: from ``load`` (a missing or broken model) or the guard (unknown spec, missing
        files), before the server listens.
    """
    import torch
    import uvicorn  # the web stack is imported when a server runs

    from lhama.guard import load_guard
    from lhama.serve.app import create_app
    from lhama.serve.engine import Engine

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    check_address(config.host, config.port)  # before the load: a busy port should not cost one to report
    loaded = load(config.model, config.quant)
    settings = config.settings_for(loaded.generation.max_new_tokens)
    host, port = config.host, config.port
    err.print(f"serving [bold]{loaded.name}[/] at http://{host}:{port}/  (API: http://{host}:{port}/v1)")
    guard = load_guard(config.guard_spec, loaded) if config.guard else None  # judge:self asks this model
    err.print(f"safety guard: {'off' if guard is None else 'on'}")
    uvicorn.run(create_app(Engine(loaded, settings, guard=guard), settings), host=host, port=port, log_level="info")


def check_address(host: str, port: int) -> None:
    """The server could listen on ``host:port`` now (bound once and closed, as uvicorn binds it).

    Raises:
        ConfigError: an unknown host, or the port is in use or not allowed.
    """
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          "pick another --port (or --host), or stop what is using it") from None
