"""An OpenAI request -> the engine's prompt: placeholders, system prompt, limits."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.errors import DataError
from lhama.model.build import LoadedModel
from lhama.serve.errors import ModelNotFound, RequestError
from lhama.serve.prompt import Target, build_prompt, generation_config
from lhama.serve.schemas import ChatCompletionRequest
from lhama.serve.settings import ServeSettings
from tests.serve.helpers import png_data_uri


def request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "tiny-vlm", **fields})


def test_parts_become_placeholders_in_order(vlm: LoadedModel) -> None:
    target = Target(vlm, "tiny-vlm", ServeSettings())
    content = [{"type": "text", "text": "Compare"}, {"type": "image_url", "image_url": {"url": png_data_uri()}},
               {"type": "image_url", "image_url": {"url": png_data_uri(color=(0, 0, 255))}},
               {"type": "text", "text": "as duas."}]
    prompt = build_prompt(request(messages=[{"role": "user", "content": content}]), target)
    assert prompt.messages[0] == {"role": "system", "content": vlm.generation.system_prompt}
    assert prompt.messages[1] == {"role": "user", "content": "Compare\n<image>\n<image>\nas duas."}
    assert tuple(prompt.media["image"].shape) == (2, 3, 32, 32)
    expected = encode_prompt(vlm.tokenizer, render_prompt(vlm.tokenizer, prompt.messages), vlm.expansions())
    assert prompt.input_ids == expected
    assert prompt.input_ids.count(vlm.model.token_ids["image"]) == 32


def test_own_system_prompt_and_developer_role_are_kept(vlm: LoadedModel) -> None:
    target = Target(vlm, "tiny-vlm", ServeSettings())
    prompt = build_prompt(request(messages=[{"role": "developer", "content": "Seja breve."},
                                            {"role": "user", "content": "Oi"}]), target)
    assert prompt.messages == [{"role": "system", "content": "Seja breve."}, {"role": "user", "content": "Oi"}]
    assert prompt.media is None


def test_generation_settings_and_limits(vlm: LoadedModel) -> None:
    target = Target(vlm, "tiny-vlm", ServeSettings(max_tokens_cap=50, default_max_tokens=20))
    config = generation_config(request(messages=[{"role": "user", "content": "Oi"}], stop="FIM", seed=3,
                                       temperature=0.5, max_completion_tokens=7), target)
    assert config.max_new_tokens == 7 and config.seed == 3 and config.temperature == 0.5
    assert config.stop[0] == "FIM" and "\nUsuário:" in config.stop  # the base-model transcript's own stops
    assert generation_config(request(messages=[{"role": "user", "content": "Oi"}]), target).max_new_tokens == 20
    tiny = generation_config(request(messages=[{"role": "user", "content": "Oi"}], temperature=1e-300), target)
    assert tiny.temperature == 0.0  # would overflow to NaN probabilities: greedy instead
    with pytest.raises(RequestError, match="max_completion_tokens: 51 is above"):
        generation_config(request(messages=[{"role": "user", "content": "Oi"}], max_completion_tokens=51), target)
    with pytest.raises(ModelNotFound):
        build_prompt(request(model="outro", messages=[{"role": "user", "content": "Oi"}]), target)


def test_context_length_is_checked(vlm: LoadedModel) -> None:
    target = Target(vlm, "tiny-vlm", ServeSettings(max_tokens_cap=1000))
    with pytest.raises(RequestError, match="context of 512 tokens") as error:
        build_prompt(request(messages=[{"role": "user", "content": "Oi"}], max_tokens=600), target)
    assert error.value.code == "context_length_exceeded"


def test_a_chat_template_refusal_is_a_400_not_a_bug(vlm: LoadedModel) -> None:
    strict = copy.deepcopy(vlm.tokenizer)
    strict.chat_template = (
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:")
    target = Target(LoadedModel(vlm.model, strict, vlm.specs, vlm.name), "tiny-vlm", ServeSettings())
    ok = build_prompt(request(messages=[{"role": "user", "content": "Oi"}, {"role": "assistant", "content": "Olá"},
                                        {"role": "user", "content": "Tudo bem?"}]), target)
    assert ok.messages[0]["role"] == "system"  # folded into the first user turn by render_prompt
    with pytest.raises(DataError, match="roles must alternate"):
        build_prompt(request(messages=[{"role": "user", "content": "Oi"}, {"role": "user", "content": "Oi?"}]), target)


def test_image_guidance_comes_from_the_model_unless_the_request_sets_it(vlm: LoadedModel,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vlm, "generation", dataclasses.replace(vlm.generation, image_guidance=1.0))
    target = Target(vlm, "tiny-vlm", ServeSettings())
    content = [{"type": "image_url", "image_url": {"url": png_data_uri()}}, {"type": "text", "text": "Descreva."}]
    asked = request(messages=[{"role": "user", "content": content}])
    prompt = build_prompt(asked, target)
    assert generation_config(asked, target).image_guidance == 1.0
    text_only = [prompt.messages[0], {"role": "user", "content": "Descreva."}]  # the image line taken out
    assert prompt.reference_ids == encode_prompt(vlm.tokenizer, render_prompt(vlm.tokenizer, text_only), vlm.expansions())
    off = request(messages=[{"role": "user", "content": content}], image_guidance=0)
    assert build_prompt(off, target).reference_ids is None and generation_config(off, target).image_guidance == 0
    assert build_prompt(request(messages=[{"role": "user", "content": "Oi"}]), target).reference_ids is None  # no media
    with pytest.raises(ValueError):
        request(messages=[{"role": "user", "content": "Oi"}], image_guidance=-1)


@pytest.mark.parametrize("part, says", [
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, "images are only allowed"),
    ({"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}}, "videos are only allowed"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "audio is only allowed"),
])
def test_media_parts_outside_user_messages_are_refused(vlm: LoadedModel, part: dict, says: str) -> None:
    target = Target(vlm, "tiny-vlm", ServeSettings())
    messages = [{"role": "system", "content": [{"type": "text", "text": "Oi"}, part]}, {"role": "user", "content": "Oi"}]
    with pytest.raises(RequestError, match=says) as caught:
        build_prompt(request(messages=messages), target)
    assert caught.value.param == "messages[0].content[1]"


@pytest.mark.parametrize("content", ["", "  \n ", [{"type": "text", "text": " "}]])
def test_an_empty_question_is_a_400_not_an_answer(vlm: LoadedModel, content: object) -> None:
    target = Target(vlm, "tiny-vlm", ServeSettings())
    messages = [{"role": "user", "content": "Oi"}, {"role": "assistant", "content": "Olá!"}, {"role": "user", "content": content}]
    with pytest.raises(RequestError, match="is empty") as error:
        build_prompt(request(messages=messages), target)
    assert error.value.param == "messages[2].content"
    image_only = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_data_uri()}}]}]
    assert build_prompt(request(messages=image_only), target).media is not None  # an image alone is a question
