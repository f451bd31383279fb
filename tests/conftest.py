"""Shared fixtures: tiny random-initialised models built from configs (no downloads), and real
weights prepared once per test session and reused by every test that needs them (about 30 s
for SmolLM2-135M on a 2-core CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModel, AutoModelForCausalLM, CLIPVisionConfig, LlamaConfig, PreTrainedTokenizerFast

from lhama.model.build import LoadedModel, compose
from lhama.model.branches import lhama_config
from lhama.model.config import ImageConfig

CORPUS = [
    "Qual é a capital do Brasil? A capital do Brasil é Brasília.",
    "Descreva a imagem. Um gato preto dorme sobre o sofá da sala.",
    "Usuário: olá! Assistente: Olá, como posso ajudar você hoje?",
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.fixture(autouse=True, scope="session")
def _stored_openings_stay_out_of_the_users_home(tmp_path_factory: pytest.TempPathFactory):
    """``lhama chat`` stores its system prompt's keys/values (:mod:`lhama.inference.prefix_store`);
    the tests' files go to a session-wide temporary directory, never into ``~/.cache/lhama``."""
    patch = pytest.MonkeyPatch()
    patch.setenv("LHAMA_PREFIX_DIR", str(tmp_path_factory.mktemp("prefix-cache")))
    yield
    patch.undo()


def tiny_tokenizer(vocab_size: int = 120) -> PreTrainedTokenizerFast:
    """A real (trained) BPE tokenizer small enough for a width-32 test model."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>"])
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def tiny_text_config(vocab_size: int = 128, tie: bool = False) -> LlamaConfig:
    return LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=vocab_size, max_position_embeddings=512,
        tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=3,
    )


def tiny_vision_config() -> CLIPVisionConfig:
    # 32 px images in 8 px patches: 16 patch tokens (+ CLS, dropped by default).
    return CLIPVisionConfig(
        hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8,
    )


def tiny_loaded(image: ImageConfig | None = ImageConfig(), tie: bool = False, seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    language_model = AutoModelForCausalLM.from_config(tiny_text_config(tie=tie))
    tower = AutoModel.from_config(tiny_vision_config()) if image else None
    loaded = compose(lhama_config(image=image), language_model, tiny_tokenizer(), {"image": tower} if tower else None)
    loaded.model.eval()
    return loaded


@pytest.fixture
def tiny_vlm() -> LoadedModel:
    return tiny_loaded()


@pytest.fixture
def tiny_lm() -> LoadedModel:
    return tiny_loaded(image=None)


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared SmolLM2-135M-Instruct directory (float32 safetensors, tokenizer with ChatML
    template) in a session-wide temporary LHAMA_HOME; load it with ``from_pretrained(dir)``.
    Do not modify it: copy it first."""
    from lhama.weights.prepare import prepare  # imported here so test collection stays fast

    return prepare("smollm2-135m-instruct", home=tmp_path_factory.mktemp("lhama_home"))


def tiny_video_loaded(video: "VideoConfig | None" = None, seed: int = 0) -> LoadedModel:
    """The tiny image model grown a video branch: 4 frames, 6 queries (qformer) by default."""
    from lhama.model.build import add_branch
    from lhama.model.config import VideoConfig

    loaded = tiny_loaded(seed=seed)
    torch.manual_seed(seed)
    grown = add_branch(loaded, "video", video or VideoConfig(frames=4, num_queries=6, qformer_layers=1))
    grown.model.eval()
    return grown

