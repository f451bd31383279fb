"""The real ``openai`` client against a real uvicorn server running a tiny random model.

The tiny model's answers are random tokens, so the tests check the protocol: ids, roles,
finish reasons, usage equal to real token counts, streamed deltas that add up to the
non-streamed answer, and OpenAI-style errors naming the offending field.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import openai
import pytest
from openai import OpenAI
from PIL import Image

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.data.media import image_to_tensor, load_image
from lhama.model.build import LoadedModel, load_model
from lhama.inference.generate import Completion, GenerationConfig, complete
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.serve.conftest import SETTINGS
from tests.serve.helpers import TUXPAINT, file_data_uri, png_data_uri, running

QUESTION = [{"role": "user", "content": "Qual é a capital do Brasil?"}]


def client(url: str, key: str = "sem-chave") -> OpenAI:
    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def expected_answer(loaded: LoadedModel, messages: list[dict], max_tokens: int, media: dict | None = None) -> Completion:
    """What lhama.inference.generate.complete answers for the same prompt (greedy)."""
    rendered = [{"role": "system", "content": loaded.generation.system_prompt}, *messages]
    ids = encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, rendered), loaded.expansions())
    *_, done = complete(loaded.model, loaded.tokenizer, ids, GenerationConfig(max_new_tokens=max_tokens), media)
    return done


def post(url: str, body: object, **headers: str) -> httpx2.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return httpx2.post(f"{url}/v1/chat/completions", content=content,
                       headers={"content-type": "application/json", **headers}, timeout=60)


def image_message(uri: str, text: str = "O que há na imagem?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": text}]}]


def test_models_and_health(server: str) -> None:
    models = client(server).models.list()
    assert [m.id for m in models.data] == ["tiny-vlm"]
    health = httpx2.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny-vlm"


def test_plain_completion_matches_direct_generation(server: str, vlm: LoadedModel) -> None:
    reply = client(server).chat.completions.create(model="tiny-vlm", messages=QUESTION, max_tokens=9)
    expected = expected_answer(vlm, QUESTION, 9)
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == expected.text
    assert reply.choices[0].finish_reason == expected.finish_reason
    assert reply.usage.prompt_tokens == expected.prompt_tokens
    assert reply.usage.completion_tokens == len(expected.token_ids)
    assert reply.usage.total_tokens == expected.prompt_tokens + len(expected.token_ids)


def test_streamed_deltas_add_up_to_the_plain_answer(server: str) -> None:
    api = client(server)
    plain = api.chat.completions.create(model="tiny-vlm", messages=QUESTION, max_tokens=12)
    chunks = list(api.chat.completions.create(model="tiny-vlm", messages=QUESTION, max_tokens=12, stream=True,
                                              stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [plain.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_stream_ends_with_done(server: str) -> None:
    body = {"model": "tiny-vlm", "messages": QUESTION, "max_tokens": 3, "stream": True}
    response = post(server, body)
    events = [line for line in response.text.split("\n\n") if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


def test_image_part_answer_matches_direct_generation(server: str, vlm: LoadedModel) -> None:
    photo = sorted((TUXPAINT / "images").glob("*.jpg"))[0]
    reply = client(server).chat.completions.create(model="tiny-vlm", messages=image_message(file_data_uri(photo)),
                                                    max_tokens=6)
    pixels = image_to_tensor(load_image(photo), vlm.specs["image"])[None]  # (1, 3, 32, 32)
    as_text = [{"role": "user", "content": "<image>\nO que há na imagem?"}]
    expected = expected_answer(vlm, as_text, 6, {"image": pixels})
    assert reply.choices[0].message.content == expected.text
    assert reply.usage.prompt_tokens == expected.prompt_tokens
    assert reply.usage.completion_tokens == len(expected.token_ids)


def test_seeded_sampling_is_repeatable(server: str) -> None:
    api = client(server)
    answers = {api.chat.completions.create(model="tiny-vlm", messages=QUESTION, max_tokens=8, temperature=1.0,
                                           seed=7).choices[0].message.content for _ in range(2)}
    assert len(answers) == 1


def test_stop_string_ends_the_answer(server: str) -> None:
    api = client(server)
    full = api.chat.completions.create(model="tiny-vlm", messages=QUESTION, max_tokens=12).choices[0].message.content
    assert len(full) > 2
    stop = full[1:3]
    cut = api.chat.completions.create(model="tiny-vlm", messages=QUESTION, max_tokens=12, stop=[stop])
    assert cut.choices[0].message.content == full[: full.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_openai_errors(server: str) -> None:
    api = client(server)
    with pytest.raises(openai.NotFoundError) as unknown:
        api.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert unknown.value.body["param"] == "model" and unknown.value.body["code"] == "model_not_found"
    bad_b64 = image_message("data:image/png;base64,@@not base64@@")
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(model="tiny-vlm", messages=bad_b64)
    assert bad.value.body["param"] == "messages[0].content[0].image_url.url" and "base64" in bad.value.body["message"]
    big = Image.frombytes("RGB", (300, 300), bytes(range(256)) * 1055)  # noisy: does not compress
    buffer = io.BytesIO()
    big.save(buffer, format="BMP")
    too_big = image_message("data:image/bmp;base64," + base64.b64encode(buffer.getvalue()).decode())
    with pytest.raises(openai.APIStatusError) as oversized:
        api.chat.completions.create(model="tiny-vlm", messages=too_big)
    assert oversized.value.status_code == 413 and oversized.value.body["code"] == "media_too_large"


def test_too_many_images(server: str) -> None:
    part = image_message(png_data_uri())[0]["content"][0]
    messages = [{"role": "user", "content": [part] * (SETTINGS.max_images + 1)}]
    with pytest.raises(openai.BadRequestError) as bad:
        client(server).chat.completions.create(model="tiny-vlm", messages=messages, max_tokens=2)
    body = bad.value.body
    assert body["code"] == "too_many_images" and body["param"] == f"messages[0].content[{SETTINGS.max_images}]"
    assert f"at most {SETTINGS.max_images} per request" in body["message"]


@pytest.mark.parametrize("body, param, words", [
    ('{"model": "tiny-vlm", "messages": [', "body", "not valid JSON"),
    ({"model": "tiny-vlm", "messages": []}, "messages", "at least 1"),
    ({"model": "tiny-vlm", "messages": [{"role": "user", "content": [{"type": "file_url", "file_url": {}}]}]},
     "messages[0].content[0]", "file_url"),
    ({"model": "tiny-vlm", "messages": image_message("data:image/png;base64," + base64.b64encode(b"%PDF-1.4 no").decode())},
     "messages[0].content[0].image_url.url", "not an image"),
    ({"model": "tiny-vlm", "messages": QUESTION, "max_tokens": -5}, "max_tokens", "greater than or equal to 1"),
    ({"model": "tiny-vlm", "messages": QUESTION, "max_tokens": 65}, "max_tokens", "limit of 64"),
    ({"model": "tiny-vlm", "messages": QUESTION, "n": 2}, "n", "less than or equal to 1"),
    ({"model": "tiny-vlm", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "Input should be"),
    ({"model": "tiny-vlm", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id", "no earlier"),
    ({"model": "tiny-vlm", "messages": [{"role": "system", "content": "x"}]}, "messages", "role 'user'"),
    ({"model": "tiny-vlm", "messages": image_message(png_data_uri()) * 3}, "messages[2].content[0]", "at most 2"),
    ({"model": "tiny-vlm", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]},
     "messages[0].content[0].input_audio.data", "cannot decode the audio"),
    ({"model": "tiny-vlm", "messages": image_message("https://example.com/gato.jpg")},
     "messages[0].content[0].image_url.url", "--allow-remote-media"),
])
def test_bad_input_is_a_400_naming_the_field(server: str, body: object, param: str, words: str) -> None:
    response = post(server, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert words in error["message"] and error["type"] == "invalid_request_error"


def test_fifty_megapixel_image_is_refused_before_decoding(server: str) -> None:
    buffer = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(buffer, format="PNG")  # 50 Mpx, a few KB
    response = post(server, {"model": "tiny-vlm", "messages": image_message(
        "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())})
    assert response.status_code == 400
    assert "10000x5000 = 50000000 pixels" in response.json()["error"]["message"]


def test_body_over_the_limit_is_413(server: str) -> None:
    response = post(server, {"model": "tiny-vlm", "messages": [{"role": "user", "content": "a" * 1_100_000}]})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_text_only_model_refuses_images(lm_dir: Path) -> None:
    engine = Engine(load_model(lm_dir), SETTINGS)
    with running(engine, SETTINGS) as url:
        response = post(url, {"model": "tiny-lm", "messages": image_message(png_data_uri())})
        reply = client(url).chat.completions.create(model="tiny-lm", messages=QUESTION, max_tokens=4)
    assert response.status_code == 400 and "text-only" in response.json()["error"]["message"]
    assert reply.usage.completion_tokens >= 1


def test_api_key_is_required(vlm: LoadedModel) -> None:
    settings = ServeSettings(api_key="segredo", max_tokens_cap=16)
    with running(Engine(vlm, settings), settings) as url:
        with pytest.raises(openai.AuthenticationError) as missing:
            client(url, "errada").chat.completions.create(model="tiny-vlm", messages=QUESTION)
        no_header = httpx2.get(f"{url}/v1/models")
        ok = client(url, "segredo").chat.completions.create(model="tiny-vlm", messages=QUESTION, max_tokens=2)
        health = httpx2.get(f"{url}/health")
    assert missing.value.status_code == 401 and missing.value.body["code"] == "invalid_api_key"
    assert no_header.status_code == 401
    assert ok.usage.completion_tokens >= 1 and health.status_code == 200


def test_remote_images_only_when_allowed(vlm: LoadedModel) -> None:
    png = base64.b64decode(png_data_uri().split(",", 1)[1])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: object) -> None:
            pass

    media = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=media.serve_forever, daemon=True).start()
    settings = ServeSettings(allow_remote_media=True, max_tokens_cap=16)
    try:
        with running(Engine(vlm, settings), settings) as url:
            reply = client(url).chat.completions.create(
                model="tiny-vlm", messages=image_message(f"http://127.0.0.1:{media.server_port}/gato.png"), max_tokens=2)
    finally:
        media.shutdown()
    assert reply.usage.prompt_tokens > 16


def test_chat_page_is_served(server: str) -> None:
    page = httpx2.get(f"{server}/")
    assert page.status_code == 200 and 'lang="pt-BR"' in page.text and "/web/chat.js" in page.text
    assert httpx2.get(f"{server}/web/chat.js").status_code == 200
    missing = httpx2.get(f"{server}/nada")
    assert missing.status_code == 404 and "error" in missing.json()


def test_concurrent_streams_get_their_own_solo_answers(server: str) -> None:
    """Many clients at once (batched decoding) get exactly what each gets alone (seeded
    sampling, so that the tiny model's answers differ from one request to another)."""
    api = client(server)
    questions = [[{"role": "user", "content": q}] for q in
                 ("Qual é a capital do Brasil?", "olá", "Descreva a imagem.", "Um gato preto dorme sobre o sofá.",
                  "Como posso ajudar você hoje?", "The quick brown fox")]
    sampling = {"max_tokens": 16, "temperature": 1.5}
    alone = [api.chat.completions.create(model="tiny-vlm", messages=m, seed=i, **sampling).choices[0].message.content
             for i, m in enumerate(questions)]

    def streamed(i: int) -> str:
        chunks = api.chat.completions.create(model="tiny-vlm", messages=questions[i], seed=i, stream=True, **sampling)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    with ThreadPoolExecutor(len(questions)) as pool:
        together = list(pool.map(streamed, range(len(questions))))
    assert together == alone
    assert len(set(alone)) > 1  # the questions really lead to different answers
