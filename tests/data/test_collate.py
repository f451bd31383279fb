"""Tokenisation for training: only assistant tokens carry labels, exactly; <image> expands to
the tower's token count; a sample with nothing to supervise aborts the run."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from PIL import Image

from lhama.data.collate import Collator, CollateConfig
from lhama.data.conversation import IGNORE_INDEX, TRANSCRIPT_PT, encode_supervised, render_conversation
from lhama.data.dataset import Sample
from lhama.data.media import ImageSpec, image_to_tensor, load_image
from lhama.data.video import video_to_tensor
from lhama.errors import DataError
from tests.conftest import tiny_tokenizer

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{% endif %}"
)
MESSAGES = [
    {"role": "system", "content": "Seja breve."},
    {"role": "user", "content": "<image> Descreva a imagem."},
    {"role": "assistant", "content": "Um gato preto."},
    {"role": "user", "content": "Qual é a capital?"},
    {"role": "assistant", "content": "Brasília."},
]


def _tokenizer(chat_template: bool):
    tok = tiny_tokenizer()
    tok.add_tokens(["<image>", "<|im_start|>", "<|im_end|>"], special_tokens=True)
    if chat_template:
        tok.chat_template = CHATML
    return tok


def _runs(tok, ids, labels):
    """Supervised runs as token strings, and the token just before each run."""
    tokens = tok.convert_ids_to_tokens(ids)
    runs, before, i = [], [], 0
    for supervised, group in itertools.groupby(range(len(ids)), key=lambda k: labels[k] != IGNORE_INDEX):
        group = list(group)
        if supervised:
            runs.append([tokens[k] for k in group])
            before.append(tokens[group[0] - 1])
    return runs, before


def test_chat_template_labels_exactly_the_assistant_turns() -> None:
    tok = _tokenizer(chat_template=True)
    rendered = render_conversation(tok, MESSAGES)
    assert [rendered.text[a:b] for a, b in rendered.assistant_spans] == [" Um gato preto.<|im_end|>", " Brasília.<|im_end|>"]
    image_id = tok.convert_tokens_to_ids("<image>")
    ids, labels = encode_supervised(tok, rendered, {image_id: 4})
    runs, before = _runs(tok, ids, labels)
    assert runs == [["▁U", "m", "▁", "gato", "▁p", "re", "to", ".", "<|im_end|>"], ["▁Bras", "í", "lia.", "<|im_end|>"]]
    assert before == ["t", "t"]  # the last token of "<|im_start|>assistant": the prompt is unsupervised
    assert all(label in (IGNORE_INDEX, token) for token, label in zip(ids, labels))
    assert ids.count(image_id) == 4 and all(lab == IGNORE_INDEX for t, lab in zip(ids, labels) if t == image_id)


def test_transcript_fallback_labels_exactly_the_assistant_turns() -> None:
    tok = _tokenizer(chat_template=False)
    rendered = render_conversation(tok, MESSAGES)  # no chat template -> the Portuguese transcript
    assert rendered.text.startswith("Seja breve.\n\nUsuário: <image> Descreva a imagem.\nAssistente: Um gato")
    assert [rendered.text[a:b] for a, b in rendered.assistant_spans] == [" Um gato preto.</s>\n", " Brasília.</s>\n"]
    ids, labels = encode_supervised(tok, rendered)
    runs, before = _runs(tok, ids, labels)
    # The end-of-sequence token (how generation stops) and the newline ("\n" is <unk> in the tiny
    # vocabulary) are supervised; "Usuário:" is not.
    assert runs == [["▁U", "m", "▁", "gato", "▁p", "re", "to", ".", "</s>", "▁", "<unk>"], ["▁Bras", "í", "lia.", "</s>", "▁", "<unk>"]]
    assert before == [":", ":"]  # "Assistente:" stays unsupervised
    assert render_conversation(tok, MESSAGES, TRANSCRIPT_PT) == rendered


def test_template_that_is_not_prefix_stable_is_an_error() -> None:
    tok = _tokenizer(chat_template=True)
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}|{% endfor %}{% if add_generation_prompt %}>{% endif %}"
    with pytest.raises(DataError, match="prefix"):
        render_conversation(tok, MESSAGES)


def _collator(tok, max_length: int = 256) -> Collator:
    image_id = tok.convert_tokens_to_ids("<image>")
    return Collator(tok, {image_id: 16}, _readers(), CollateConfig(max_length=max_length, system_prompt=""))


def _readers(frames: int | None = None) -> dict:
    """What a model with an image branch (and a video branch of ``frames`` frames) reads: 32-px images."""
    spec = ImageSpec(size=32)
    readers = {"image": lambda path: image_to_tensor(load_image(path), spec)}
    return readers | ({"video": lambda path: video_to_tensor(path, frames, spec)} if frames else {})


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "a.png"
    Image.new("RGB", (40, 30), "red").save(path)
    return path


def test_batch_expands_images_and_pads_with_ignored_labels(tmp_path: Path) -> None:
    tok = _tokenizer(chat_template=True)
    collator = _collator(tok)
    long = Sample("a", tuple(MESSAGES[1:]), _image(tmp_path))
    short = Sample("b", ({"role": "user", "content": "Oi"}, {"role": "assistant", "content": "Olá."}))
    items = [collator.encode(long), collator.encode(short)]
    batch = collator(items)
    assert batch.input_ids.shape == (2, len(items[0].input_ids))
    assert batch.media["image"].shape == (1, 3, 32, 32)
    assert int((batch.input_ids[0] == tok.convert_tokens_to_ids("<image>")).sum()) == 16
    pad = batch.attention_mask[1] == 0
    assert pad.any() and bool((batch.labels[1][pad] == IGNORE_INDEX).all())
    assert batch.target_tokens == items[0].supervised + items[1].supervised


def test_image_without_placeholder_gets_one(tmp_path: Path) -> None:
    tok = _tokenizer(chat_template=True)
    sample = Sample("c", ({"role": "user", "content": "Descreva."}, {"role": "assistant", "content": "Um gato."}), _image(tmp_path))
    encoded = _collator(tok).encode(sample)
    assert int((encoded.input_ids == tok.convert_tokens_to_ids("<image>")).sum()) == 16


def test_sample_with_no_supervised_token_aborts() -> None:
    tok = _tokenizer(chat_template=True)
    sample = Sample("sem-resposta", tuple(MESSAGES[3:5]))
    assert _collator(tok, max_length=40).encode(sample).supervised == 4
    with pytest.raises(DataError, match="sample sem-resposta has no supervised token"):
        _collator(tok, max_length=20).encode(sample)  # the answer is cut off by max_length


def test_max_length_through_an_image_is_an_error(tmp_path: Path) -> None:
    tok = _tokenizer(chat_template=True)
    sample = Sample("x", tuple(MESSAGES[1:3]), _image(tmp_path))
    with pytest.raises(DataError, match="cuts through an image"):
        _collator(tok, max_length=10).encode(sample)


def test_videos_become_frame_stacks_and_expand_their_placeholder(tmp_path: Path) -> None:
    from tests.data.video_files import tiny_mp4

    tok = _tokenizer(chat_template=True)
    tok.add_tokens(["<video>"], special_tokens=True)
    image_id, video_id = tok.convert_tokens_to_ids("<image>"), tok.convert_tokens_to_ids("<video>")
    collator = Collator(tok, {image_id: 16, video_id: 5}, _readers(frames=3), CollateConfig(system_prompt=""))
    video = tiny_mp4(tmp_path / "v.mp4")
    messages = ({"role": "user", "content": "<video>\nO que acontece?"}, {"role": "assistant", "content": "Nada."})
    batch = collator([collator.encode(Sample("v", messages, None, video)),
                      collator.encode(Sample("i", tuple(MESSAGES[1:]), _image(tmp_path)))])
    assert batch.media["video"].shape == (1, 3, 3, 32, 32) and batch.media["image"].shape == (1, 3, 32, 32)
    assert int((batch.input_ids[0] == video_id).sum()) == 5 and int((batch.input_ids[0] == image_id).sum()) == 0
    no_branch = _collator(tok)
    with pytest.raises(DataError, match="no video branch"):
        no_branch([no_branch.encode(Sample("v", messages, None, video))])
