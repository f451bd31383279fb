"""The branch table: one call builds every configured branch, so a model with image, video and
audio branches is composed directly (no growing after construction)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

from lhama.data.conversation import encode_prompt
from lhama.errors import CheckpointError
from lhama.model import branches
from lhama.model.build import compose
from lhama.model.config import ImageConfig, LhamaConfig, VideoConfig
from tests.audio_fixtures import AUDIO, tiny_whisper_encoder
from tests.conftest import tiny_text_config, tiny_tokenizer, tiny_vision_config

ALL = LhamaConfig(image=ImageConfig(), video=VideoConfig(frames=2, num_queries=4, qformer_heads=2), audio=AUDIO)


def test_every_branch_is_composed_at_once_and_each_reaches_the_logits() -> None:
    torch.manual_seed(0)
    tower, whisper = AutoModel.from_config(tiny_vision_config()), tiny_whisper_encoder()
    loaded = compose(ALL, AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer(), tower,
                     audio_tower=whisper)
    model = loaded.model.eval()
    expected = {attribute for kind in branches.KINDS for attribute in kind.attributes}
    assert set(model.branch_modules()) == expected and model.vision_tower is tower and model.audio_tower is whisper
    assert [b.name for b in model.branches()] == ["image", "video", "audio"]
    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<image>\n<video>\n<audio>\nO que é?", loaded.expansions())])
    assert sorted(loaded.expansions().values()) == [4, 4, 16]  # audio tokens, video queries, image patches
    media, changed = _media(seed=1), _media(seed=2)
    with torch.no_grad():
        base = model(ids, media=media).logits[0, -1]
        for kind in media:  # another item of one kind alone: the answer changes
            assert not torch.allclose(model(ids, media={**media, kind: changed[kind]}).logits[0, -1], base), kind


def _media(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    audio = torch.cat([torch.randn(1, 80, 200, generator=generator), torch.ones(1, 1, 200)], dim=1)  # mel + real-frame mask
    return {"image": torch.randn(1, 3, 32, 32, generator=generator),
            "video": torch.randn(1, 2, 3, 32, 32, generator=generator), "audio": audio}


def test_an_image_branch_without_a_tower_is_an_error() -> None:
    with pytest.raises(CheckpointError, match="image branch but no vision tower"):
        compose(LhamaConfig(image=ImageConfig()), AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer())
