"""A bounded schemathesis run against the server's own OpenAPI schema finds no 500.

Valid (positive) and invalid (negative) requests are generated for every operation; half of
the chat requests are kept as generated, the other half are made servable except for their
sampling fields, so that real generation runs with fuzzed parameters.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from lhama.model.build import LoadedModel
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.serve.helpers import running

FUZZ = ServeSettings(max_tokens_cap=4, default_max_tokens=2, max_image_pixels=100_000, max_body_bytes=200_000)
EXAMPLES = 30  # per operation and mode: bounded for CI time


@pytest.fixture(scope="module")
def fuzz_server(vlm: LoadedModel) -> Iterator[str]:
    with running(Engine(vlm, FUZZ), FUZZ) as url:
        yield url


def _reachable(case: schemathesis.Case) -> schemathesis.Case:
    """Keep the fuzzed sampling fields but make the rest servable (served model, a user turn,
    text content, few tokens), so fuzzing reaches generation instead of stopping at the first 4xx."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("messages"), list) and body["messages"]:
        body["model"] = "tiny-vlm"
        body["messages"] = [{"role": "user", "content": _servable_text(m)} for m in body["messages"]]
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(body.get(key), int) and body[key] > FUZZ.max_tokens_cap:
                body[key] = FUZZ.max_tokens_cap
    return case


def _servable_text(message: object) -> str:
    """A message's content as text; a blank one (hypothesis favours "") becomes "?", since the
    server answers 400 to a blank question and the reachable half must reach generation."""
    text = str(message.get("content", "")) if isinstance(message, dict) else ""
    return text if text.strip() else "?"


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_server_error_for_generated_requests(fuzz_server: str, mode: schemathesis.GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server}/openapi.json")
    statuses: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is schemathesis.GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # the GET routes take no input, so there is nothing to make invalid
        fuzzed = operation.as_strategy(generation_mode=mode)
        cases = st.one_of(fuzzed, fuzzed.map(_reachable))

        @given(case=cases)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=fuzz_server, timeout=60)
            statuses.setdefault(operation.label, []).append(response.status_code)
            case.validate_response(response, checks=(not_a_server_error,))

        check()
    chat = statuses["POST /v1/chat/completions"]
    print(mode.value, {label: sorted(set(codes)) for label, codes in statuses.items()})
    if mode is schemathesis.GenerationMode.POSITIVE:
        assert 200 in chat  # valid requests reached real generation, not only errors
    assert any(400 <= s < 500 for s in chat)
