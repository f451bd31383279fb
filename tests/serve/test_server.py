"""``lhama.serve.server.run``: one config in, the model loaded through the caller's ``load``, the
guard, the engine and the app built and handed to uvicorn (replaced here by a client of the app)."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import uvicorn
from fastapi.testclient import TestClient
from rich.console import Console

from lhama.errors import ConfigError
from lhama.model.build import LoadedModel
from lhama.serve import server
from lhama.serve.server import ServerConfig, run
from lhama.serve.settings import ServeSettings
from tests.conftest import tiny_loaded


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    model = tiny_loaded(image=None)
    model.generation = replace(model.generation, max_new_tokens=3)  # the model's own default length
    return model


def _serve(monkeypatch: pytest.MonkeyPatch, config: ServerConfig, loaded: LoadedModel) -> tuple[dict, list, str]:
    """Run ``config``; uvicorn's place is taken by one request without max_tokens to the app."""
    seen, asked = {}, []

    def fake_uvicorn(app, host: str, port: int, log_level: str) -> None:  # noqa: ANN001
        seen.update(host=host, port=port)
        with TestClient(app) as http:
            [served] = http.get("/v1/models").json()["data"]
            body = {"model": served["id"], "messages": [{"role": "user", "content": "Oi"}]}
            seen["usage"] = http.post("/v1/chat/completions", json=body).json()["usage"]

    def load(model: str, quant: str | None) -> LoadedModel:
        asked.append((model, quant))
        return loaded

    monkeypatch.setattr(uvicorn, "run", fake_uvicorn)
    monkeypatch.setattr(server, "check_address", lambda host, port: None)  # whatever else uses the port
    out = io.StringIO()
    run(config, load, Console(file=out, width=200))
    return seen, asked, out.getvalue()


def test_one_call_loads_builds_and_serves(monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    config = ServerConfig("tiny-dir", host="127.0.0.2", port=8123, quant="int8", guard=False)
    seen, asked, said = _serve(monkeypatch, config, loaded)
    assert asked == [("tiny-dir", "int8")]
    assert (seen["host"], seen["port"]) == ("127.0.0.2", 8123)
    assert seen["usage"]["completion_tokens"] == 3  # no max_tokens: the model's own (the random model never ends early)
    assert "at http://127.0.0.2:8123/  (API: http://127.0.0.2:8123/v1)" in said and "safety guard: off" in said


def test_the_cap_bounds_the_model_default(monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    config = ServerConfig("tiny-dir", ServeSettings(max_tokens_cap=2), guard=False)
    assert _serve(monkeypatch, config, loaded)[0]["usage"]["completion_tokens"] == 2
    fixed = replace(config, settings=ServeSettings(default_max_tokens=1), model_max_tokens=False)
    assert _serve(monkeypatch, fixed, loaded)[0]["usage"]["completion_tokens"] == 1


def test_a_bad_guard_fails_before_the_server_listens(monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("the server started"))
    monkeypatch.setattr(server, "check_address", lambda host, port: None)
    with pytest.raises(ConfigError, match="/no/such/guard"):
        run(ServerConfig("tiny-dir", guard_spec="/no/such/guard"), lambda model, quant: loaded, Console(file=io.StringIO()))


def test_bad_threads_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="threads must be >= 1, got 0"):
        ServerConfig("m", threads=0)


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_port_out_of_range_is_a_config_error(port: int) -> None:
    with pytest.raises(ConfigError, match=f"^port must be between 1 and 65535, got {port}$"):
        ServerConfig("m", port=port)


def test_a_busy_port_or_unknown_host_fails_before_the_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("the server started"))
    asked = []
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: .*pick another --port"):
            run(ServerConfig("m", port=port, guard=False), lambda model, quant: asked.append(model), Console(file=io.StringIO()))
    with pytest.raises(ConfigError, match="cannot listen on no-such-host.invalid:8000"):
        run(ServerConfig("m", host="no-such-host.invalid", guard=False), lambda model, quant: asked.append(model),
            Console(file=io.StringIO()))
    assert asked == []  # nothing loaded
