"""How a branch kind travels in a model directory besides its weights: the :class:`BranchFiles`
a kind of the branch table (:mod:`lhama.model.branches`) carries as its ``files``, which
:mod:`lhama.model.build` uses to save and load a model.

A kind's weights are in ``model.safetensors`` under its attributes and its config in the
``"lhama"`` block of ``config.json``; what more it writes and reads is its ``files``. The image
branch (:data:`IMAGE_FILES`) writes LLaVA's keys and ``preprocessor_config.json`` and reads back
an empty tower of its saved type (a Hugging Face tower, or one of lhama's own in
:data:`LHAMA_TOWERS`), and opens a pretrained encoder directory (a CLIP/SigLIP vision model, or a
lhama tower directory) for :func:`~lhama.model.build.build_model`; the audio branch
(:data:`AUDIO_FILES`) writes its Hugging Face encoder's ``audio_config``; the video branch, and a
kind that declares nothing, have nothing more. The
entries are defined here, not in the branch table's module, because they are transformers'
formats (house rule 12) and take a :class:`~lhama.model.build.LoadedModel`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, LlavaConfig

from lhama.data.media import ImageSpec
from lhama.errors import CheckpointError
from lhama.model import audio as audio_encoder
from lhama.model.encoders import has_cls_token, image_token_count
from lhama.model.towers import efficientnet_lite, resnet

if TYPE_CHECKING:  # build imports this module: the type only, no import cycle at run time
    from lhama.model.build import LoadedModel

# lhama's own towers (model/towers) by config model_type: their module (tower_from_config, load_tower).
LHAMA_TOWERS = {resnet.MODEL_TYPE: resnet, efficientnet_lite.MODEL_TYPE: efficientnet_lite}


def _write_image(loaded: LoadedModel, directory: Path) -> dict:
    """The image branch: LlavaConfig-compatible keys (the tower's ``vision_config``, the LM's
    ``text_config``...) and ``preprocessor_config.json`` (the pixels the tower expects)."""
    (directory / "preprocessor_config.json").write_text(
        json.dumps(loaded.specs["image"].to_preprocessor_config(), indent=2) + "\n"
    )
    model, image = loaded.model, loaded.config.branches["image"]
    tower_config = model.vision_tower.config
    text_config = model.language_model.config
    lhama_tower = _is_lhama_tower(model.vision_tower)
    llava = LlavaConfig(
        vision_config=None if lhama_tower else tower_config.to_dict(),  # LlavaConfig knows HF towers only
        text_config=text_config.to_dict(),
        image_token_index=model.token_ids["image"],
        image_seq_length=image_token_count(tower_config, image),
        projector_hidden_act="gelu",
        vision_feature_layer=image.feature_layer,
        vision_feature_select_strategy="default" if has_cls_token(tower_config) and image.select == "patch" else "full",
        multimodal_projector_bias=image.projector.bias,
        tie_word_embeddings=bool(getattr(text_config, "tie_word_embeddings", False)),
    )
    data = llava.to_dict()
    data["architectures"] = ["LlavaForConditionalGeneration"]
    if lhama_tower:
        data["vision_config"] = tower_config.to_dict()
    # transformers' LLaVA has only the 2-layer MLP projector (no input norm) and Hugging Face towers.
    if lhama_tower or image.projector.kind != "mlp2x_gelu" or image.projector.norm != "none":
        data["model_type"] = "lhama"
        data["architectures"] = ["LhamaModel"]
    return data


def _read_image(model_dir: Path, raw: dict, dtype: torch.dtype) -> tuple[nn.Module, ImageSpec]:
    """An empty tower of the saved ``vision_config`` and the saved image spec."""
    vision = raw["vision_config"]
    spec = ImageSpec.from_preprocessor_config(model_dir / "preprocessor_config.json", vision["image_size"])
    return _tower_from_config(vision, dtype), spec


def _open_image(directory: Path, dtype: torch.dtype) -> tuple[nn.Module, ImageSpec]:
    """A pretrained vision encoder directory (a CLIP/SigLIP vision model, a full CLIP/SigLIP whose
    vision half is used, or a lhama tower directory such as ``lhama models prepare
    open-nsfw-resnet50`` writes) and the pixels it expects (its ``preprocessor_config.json``)."""
    from lhama.model.build import from_pretrained, read_config  # build imports this module when it loads

    lhama_tower = LHAMA_TOWERS.get(read_config(directory).get("model_type"))
    if lhama_tower is not None:
        tower = lhama_tower.load_tower(directory).to(dtype)
    else:
        full = from_pretrained(AutoModel, directory, dtype)
        tower = getattr(full, "vision_model", full)  # CLIPModel / SiglipModel -> vision half
        if not hasattr(tower.config, "image_size"):
            raise CheckpointError(f"{directory} is not a vision model (its config has no image_size)")
    return tower, ImageSpec.from_preprocessor_config(directory / "preprocessor_config.json", tower.config.image_size)


def _write_audio(loaded: LoadedModel, directory: Path) -> dict:
    """A Hugging Face encoder's ``audio_config`` (a CTranslate2 one is named by ``audio.encoder``);
    LLaVA cannot express the branch, so the model is ``model_type: "lhama"``."""
    block = audio_encoder.tower_config_block(loaded.model.audio_tower)
    return {**block, "model_type": "lhama", "architectures": ["LhamaModel"]}


def _read_audio(model_dir: Path, raw: dict, dtype: torch.dtype) -> tuple[nn.Module | None, None]:
    """An empty Hugging Face encoder of the saved ``audio_config``; none for a CTranslate2 one
    (``compose`` opens it from ``audio.encoder``). Its spec is the encoder's own."""
    saved = raw.get("audio_config")
    return (audio_encoder.hf_encoder_from_config(saved) if saved else None), None


def _nothing_written(loaded: LoadedModel, directory: Path) -> dict:
    return {}


def _nothing_read(model_dir: Path, raw: dict, dtype: torch.dtype) -> tuple[None, None]:
    return None, None


@dataclass(frozen=True)
class BranchFiles:
    """How one branch kind travels in a model directory besides its weights (those are in
    ``model.safetensors`` under its attributes, and its config in the ``"lhama"`` block).
    ``write(loaded, directory)``: the keys it adds to ``config.json`` (it may write a file of
    its own); ``read(model_dir, raw config.json, dtype)``: what :func:`compose` takes for it:
    (its saved tower, empty, or None; its saved spec or None); ``pretrained(directory, dtype)``: a
    pretrained encoder directory of the kind -> (its tower with weights, its spec), what
    :func:`~lhama.model.build.build_model` composes a new model from (None: the kind opens none).
    The default: nothing more."""

    write: Callable[[LoadedModel, Path], dict] = _nothing_written
    read: Callable[[Path, dict, torch.dtype], tuple[nn.Module | None, Any]] = _nothing_read
    pretrained: Callable[[Path, torch.dtype], tuple[nn.Module, Any]] | None = None


# What the image and audio kinds of model/branches.py carry as their ``files``.
IMAGE_FILES = BranchFiles(_write_image, _read_image, _open_image)
AUDIO_FILES = BranchFiles(_write_audio, _read_audio)


def _tower_from_config(vision_config: dict, dtype: torch.dtype) -> nn.Module:
    """An empty tower of the saved type (weights are loaded afterwards)."""
    lhama_tower = LHAMA_TOWERS.get(vision_config.get("model_type"))
    if lhama_tower is not None:
        return lhama_tower.tower_from_config(vision_config).to(dtype)
    return AutoModel.from_config(sub_config(vision_config), dtype=dtype)


def _is_lhama_tower(tower: nn.Module) -> bool:
    return getattr(tower.config, "model_type", None) in LHAMA_TOWERS


def sub_config(data: dict) -> Any:
    """A saved sub-config (``text_config``, ``vision_config``: a dict with its ``model_type``)
    -> its transformers config."""
    data = dict(data)
    return AutoConfig.for_model(data.pop("model_type"), **data)
