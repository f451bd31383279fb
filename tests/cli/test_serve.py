"""``lhama serve``: help that teaches, bad options as one red line and exit 2."""

from __future__ import annotations

import sys

import pytest

from lhama.cli import main


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from lhama.serve import server

    monkeypatch.setattr(sys, "argv", ["lhama", "serve", *args])
    monkeypatch.setattr(server, "check_address", lambda host, port: None)  # port 8000 may be in use here
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code


def test_help_lists_the_options_and_an_example(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert run(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    for option in ("--model", "--host", "--port", "--api-key", "--allow-remote-media", "--max-batch"):
        assert option in out
    assert "lhama serve --model" in out
    for route in ("/v1/chat/completions", "/v1/moderations", "input_audio", "video_url"):  # every route and part served
        assert route in out


@pytest.mark.parametrize("args, words", [
    (("--model", "/nao/existe"), "does not exist"),
    (("--threads", "0"), "--threads must be >= 1"),
    (("--port", "99999"), "--port must be between 1 and 65535, got 99999"),
    (("--max-batch", "0"), "--max-batch must be >= 1"),
    (("--max-tokens-cap", "0"), "--max-tokens-cap must be >= 1"),
    (("--timeout", "-1"), "--timeout must be > 0"),
])
def test_bad_options_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                  args: tuple[str, ...], words: str) -> None:
    assert run(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_request_without_max_tokens_gets_the_model_setting_within_the_cap() -> None:
    from lhama.cli.serve import Limits, Network, ServeOptions, Speed
    from lhama.cli.common import Safety

    assert ServeOptions().config().settings_for(model_max_tokens=64).default_max_tokens == 64  # the model's max_new_tokens
    assert ServeOptions(limits=Limits(max_tokens=32)).config().settings_for(model_max_tokens=64).default_max_tokens == 32
    assert ServeOptions().config().settings_for(model_max_tokens=64).max_tokens_cap == 1024
    config = ServeOptions(model="m", network=Network(host="0.0.0.0", port=9, api_key=""), speed=Speed(threads=2, quant="int8"),
                          safety=Safety(guard="g")).config()
    assert (config.model, config.host, config.port, config.threads, config.quant) == ("m", "0.0.0.0", 9, 2, "int8")
    assert config.guard and config.guard_spec == "g" and config.settings.api_key is None  # '' is no key
    assert not ServeOptions(safety=Safety(no_guard=True)).config().guard
