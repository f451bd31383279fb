"""A real uvicorn server on a free loopback port, run in a thread for the tests."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import uvicorn
from PIL import Image

from lhama.model.build import load_model, save_model
from lhama.serve.app import create_app
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.conftest import tiny_loaded

TUXPAINT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tuxpaint_ptbr"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(engine: Engine, settings: ServeSettings) -> Iterator[str]:
    """Serve ``create_app(engine, settings)`` with uvicorn; yield the base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(engine, settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def tiny_model_dir(directory: Path, image: bool = True) -> Path:
    """A tiny random model saved and loaded back the way ``lhama serve --model DIR`` does."""
    from lhama.model.config import ImageConfig

    save_model(tiny_loaded(image=ImageConfig() if image else None), directory)
    return directory


def loaded_from(directory: Path):
    return load_model(directory)


def png_data_uri(size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (200, 30, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def file_data_uri(path: Path) -> str:
    mime = "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()
