"""Config and directories -> a ready model: compose parts, load and save model directories.

A lhama model directory is a LLaVA directory: ``config.json`` (``model_type: llava``, the LM's
``text_config``, the tower's ``vision_config``, plus lhama's own block under ``"lhama"``),
``model.safetensors`` in transformers' LLaVA key layout, the tokenizer (with ``<image>``) and
``preprocessor_config.json``. So transformers' ``LlavaForConditionalGeneration`` (and tools
built on it) load it unchanged. Text-only models are plain causal-LM directories.

A model that LLaVA cannot express (lhama's own towers, e.g. the ResNet of ``model/towers``, or
a linear projector) is written in the same layout with ``model_type: "lhama"``; only lhama
loads it. What each branch kind writes and reads besides its weights (LLaVA's keys for the image
branch, the audio encoder's config) is its ``files`` (:mod:`lhama.model.branch_files`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from lhama.errors import CheckpointError, ConfigError, ModelError
from lhama.files import atomic_directory
from lhama.model import branches
from lhama.model.branch_files import sub_config
from lhama.model.config import BranchConfig, ImageConfig, LhamaConfig
from lhama.model.generation import GenerationConfig, read_generation, split_legacy, write_generation
from lhama.model.labeler import Labeler, load_labeler
from lhama.model.lhama import LhamaModel

WEIGHTS = "model.safetensors"
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}  # config name -> dtype


@dataclass
class LoadedModel:
    """A model with everything needed to prompt it."""

    model: LhamaModel
    tokenizer: Any
    # Branch kind -> how its medium is preprocessed (ImageSpec, AudioSpec...): what ``read`` uses.
    specs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    # How it is decoded by default (system prompt, image guidance...): lhama_generation.json.
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    # A cascade model's image classifier whose names are told to the LM as text (model/labeler.py).
    labeler: Labeler | None = None

    @property
    def config(self) -> LhamaConfig:
        return self.model.config

    def expansions(self) -> dict[int, int]:
        """Placeholder token id -> tokens per media item (what ``<image>`` expands to)."""
        return {self.model.token_ids[kind.name]: kind.tokens(self.model, self.config)
                for kind, _ in branches.configured(self.config)}

    def read(self, kind: str, source: branches.MediaSource) -> torch.Tensor:
        """One medium for the ``kind`` branch (a file path or the file's bytes) -> the tensor the
        branch encodes (``model/branches.py``: an image (3, S, S), a video (F, 3, S, S), audio
        (n_mels + 1, F)), preprocessed as this model's branch expects.

        Raises:
            DataError: the medium cannot be read (the message names it).
        """
        return branches.KIND[kind].read(source, self.specs[kind], self.config.branches[kind])

    def read_track(self, kind: str, source: branches.MediaSource) -> torch.Tensor | None:
        """The ``kind`` medium inside another medium's file (a video's sound track, for the audio
        branch), as :meth:`read` gives it; None when the file has no such track (or a silent one)."""
        return branches.KIND[kind].track(source, self.specs[kind], self.config.branches[kind])

    def show(self, kind: str, items: Sequence[torch.Tensor]) -> tuple[str, dict[str, torch.Tensor] | None]:
        """What stands for ``items`` (media of the ``kind`` branch, each as :meth:`read` gives it,
        or already stacked) in a user turn: the kind's placeholder once per item, each on a line
        of its own, and the media the model takes with that text (``{kind: the items stacked}``);
        ``("", None)`` for no items."""
        if len(items) == 0:
            return "", None
        batch = items if isinstance(items, torch.Tensor) else torch.stack(list(items))
        return f"{self.config.placeholders[kind]}\n" * len(batch), {kind: batch}

    def readers(self) -> dict[str, Callable[[branches.MediaSource], torch.Tensor]]:
        """Branch kind -> :meth:`read` of that kind, for every branch the model has (what a
        :class:`lhama.data.collate.Collator` takes)."""
        return {kind: partial(self.read, kind) for kind in self.config.branches}


def compose(
    config: LhamaConfig,
    language_model: nn.Module,
    tokenizer: Any,
    towers: Mapping[str, nn.Module] | None = None,
    specs: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Join an LM, its tokenizer and the pretrained encoders of ``config``'s branches (``towers``:
    branch kind -> its tower, e.g. ``{"image": clip_vision}``; an audio encoder not given is
    opened from its config's ``encoder``) with fresh projectors. ``specs``: branch kind -> its
    preprocessing when not the tower's own (the image spec saved with a model).

    Adds the placeholder tokens to the tokenizer and grows the LM's embeddings if needed.

    Raises:
        CheckpointError: an image branch without a vision tower, an audio encoder not found.
        ConfigError: ``towers`` is not a mapping by branch kind (the old single vision tower).
        ValueError: a branch without one it needs (a ``LhamaConfig`` built directly, unchecked).
    """
    branches.check_needs(config.branches)
    by_attribute = _towers_by_attribute(towers or {})
    token_ids = add_placeholder_tokens(tokenizer, language_model, config)
    modules = branches.build_modules(config, by_attribute, language_model.config.hidden_size)
    model = LhamaModel(config, language_model, modules, token_ids)
    return LoadedModel(model, tokenizer, branches.specs(config, modules, specs or {}))


def _towers_by_attribute(towers: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    """Towers by branch kind -> by the model attribute that holds them (``compose``'s argument)."""
    if not isinstance(towers, Mapping):
        raise ConfigError(f"compose() takes the towers by branch kind, not a {type(towers).__name__}: "
                          f"pass {{'image': tower}} (or {{'image': tower, 'audio': encoder}})")
    unknown = sorted(set(towers) - set(branches.KIND))
    if unknown:
        raise ConfigError(f"compose(): no branch kind {unknown[0]!r} for a tower; kinds: {', '.join(branches.KIND)}")
    return {branches.KIND[kind].tower: tower for kind, tower in towers.items()}


def add_branch(loaded: LoadedModel, kind: str, config: BranchConfig, tower: nn.Module | None = None) -> LoadedModel:
    """A new :class:`LoadedModel`: ``loaded``'s model plus a fresh (untrained) ``kind`` branch
    (``"video"``, ``"audio"``... see ``model/branches.py``) built on the towers it has, or on
    ``tower`` for a branch with its own encoder (an audio encoder not given is opened from
    ``config.encoder``). ``loaded`` keeps its model; the LM, the other branches and the tokenizer
    are shared, not copied: the tokenizer gains the placeholder and the LM's embeddings grow if
    needed. The fresh trained modules take the dtype of the model's projectors, if it has any.

    Raises:
        ModelError: the model already has the branch, or lacks one it needs (video: image).
        CheckpointError: an audio encoder not found.
    """
    model, name = loaded.model, loaded.name or ""
    if kind in loaded.config.branches:
        raise ModelError(f"the model {name} already has {'an' if kind[0] in 'aeiou' else 'a'} {kind} branch")
    for needed in branches.KIND[kind].needs if kind in branches.KIND else ():
        if needed not in loaded.config.branches:
            what = "text-only" if not loaded.config.branches else f"without a {needed} branch"
            raise ModelError(f"the model {name} is {what}; a {kind} branch needs its {needed} tower")
    grown_config = branches.lhama_config(**{**loaded.config.branches, kind: config})  # a new config: nothing patched
    token_ids = add_placeholder_tokens(loaded.tokenizer, model.language_model, grown_config)
    towers = {**model.branch_modules(), **({branches.KIND[kind].tower: tower} if tower is not None else {})}
    fresh = branches.KIND[kind].build(grown_config, towers, model.language_model.config.hidden_size)
    dtype = _projector_dtype(model)
    fresh = {attr: module if attr == branches.KIND[kind].tower or dtype is None else module.to(dtype)
             for attr, module in fresh.items()}
    grown = LhamaModel(grown_config, model.language_model, {**model.branch_modules(), **fresh}, token_ids)
    specs = branches.specs(grown_config, grown.branch_modules(), loaded.specs)
    return LoadedModel(grown.train(model.training), loaded.tokenizer, specs, loaded.name, loaded.generation, loaded.labeler)


def _projector_dtype(model: LhamaModel) -> torch.dtype | None:
    """The dtype of the model's first branch projector; None for a text-only model."""
    for attr, module in model.branch_modules().items():
        if attr.endswith("_projector"):
            return next(module.parameters()).dtype
    return None


def add_placeholder_tokens(tokenizer: Any, language_model: nn.Module, config: LhamaConfig) -> dict[str, int]:
    """Make each placeholder one special token; return modality -> token id."""
    placeholders = config.placeholders
    if placeholders:
        tokenizer.add_tokens(list(placeholders.values()), special_tokens=True)
        if len(tokenizer) > language_model.get_input_embeddings().num_embeddings:
            language_model.resize_token_embeddings(len(tokenizer))
    return {name: tokenizer.convert_tokens_to_ids(text) for name, text in placeholders.items()}


def build_model(
    lm_dir: str | Path,
    encoders: Mapping[str, str | Path] | None = None,
    config: LhamaConfig | None = None,
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """Compose a new model from a pretrained LM directory and pretrained encoder directories by
    branch kind, each opened as its kind opens one (``BranchFiles.pretrained``: for the image
    kind a CLIP/SigLIP vision model, a full CLIP/SigLIP whose vision half is used, or a lhama tower
    directory such as ``lhama models prepare open-nsfw-resnet50`` writes). ``config``: the
    model's branches (None: each given encoder's kind with its default config).

    Raises:
        ConfigError: an encoder of a kind the config has no branch for, or whose kind opens none."""
    encoders = {kind: Path(directory) for kind, directory in (encoders or {}).items()}
    defaults = {kind: branches.KIND[kind].config() if kind in branches.KIND else None for kind in encoders}
    config = config or branches.lhama_config(**defaults)  # an unknown kind is refused there
    openers = {kind: _encoder_opener(config, kind, directory) for kind, directory in encoders.items()}
    language_model = from_pretrained(AutoModelForCausalLM, lm_dir, dtype)
    tokenizer = _tokenizer(lm_dir)
    towers, specs = {}, {}
    for kind, directory in encoders.items():
        towers[kind], specs[kind] = openers[kind](directory, dtype)
    loaded = compose(config, language_model, tokenizer, towers, specs)
    loaded.name = Path(lm_dir).name
    return loaded


def _encoder_opener(config: LhamaConfig, kind: str, directory: Path) -> Callable[[Path, torch.dtype], tuple[nn.Module, Any]]:
    """How ``kind`` opens its pretrained encoder ``directory`` (checked before anything loads)."""
    if kind not in config.branches:
        raise ConfigError(f"an encoder for the {kind} branch was given ({directory}) but the config has no {kind} "
                          f"branch: add one (lhama_config({kind}=...)) or leave the encoder directory out")
    opener = branches.KIND[kind].files.pretrained
    if opener is None:
        raise ConfigError(f"the {kind} branch opens no pretrained encoder directory ({directory}); "
                          "its encoder comes from its config")
    return opener


def load_model(model_dir: str | Path, dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a lhama/LLaVA directory, or a plain causal-LM directory as a text-only model."""
    model_dir = Path(model_dir)
    raw = read_config(model_dir)
    if "lhama" not in raw and raw.get("model_type") != "llava":
        language_model = from_pretrained(AutoModelForCausalLM, model_dir, dtype)
        model, tokenizer, specs = LhamaModel(LhamaConfig(), language_model), _tokenizer(model_dir), {}
    else:
        model, tokenizer, specs = _load_multimodal(model_dir, raw, dtype)
    generation = read_generation(model_dir, split_legacy(raw.get("lhama", {}))[1])
    return LoadedModel(model.eval(), tokenizer, specs, model_dir.name, generation, load_labeler(model_dir))


def _load_multimodal(model_dir: Path, raw: dict, dtype: torch.dtype) -> tuple[LhamaModel, Any, dict[str, Any]]:
    """A lhama/LLaVA directory's model (its towers composed, its weights loaded, at ``dtype``), its
    tokenizer and its branches' preprocessing specs."""
    config = _lhama_config(raw)
    language_model = AutoModelForCausalLM.from_config(sub_config(raw["text_config"]), dtype=dtype)
    towers, specs = {}, {}  # by branch kind: the saved towers (empty, weights below), saved specs
    for kind, _ in branches.configured(config):
        tower, spec = kind.files.read(model_dir, raw, dtype)
        towers.update({kind.name: tower} if tower is not None else {})
        specs.update({kind.name: spec} if spec is not None else {})
    loaded = compose(config, language_model, _tokenizer(model_dir), towers, specs)
    _load_weights(loaded.model, model_dir)
    return loaded.model.to(dtype), loaded.tokenizer, loaded.specs


def save_model(loaded: LoadedModel, out_dir: str | Path) -> Path:
    """Write ``loaded`` as a model directory, atomically (temp dir + rename)."""
    with atomic_directory(out_dir) as tmp:
        _write_model_dir(loaded, tmp)
    return Path(out_dir)


def _write_model_dir(loaded: LoadedModel, directory: Path) -> None:
    model = loaded.model
    if not model.branches():
        model.language_model.save_pretrained(directory)
    else:
        (directory / "config.json").write_text(json.dumps(_model_config(loaded, directory), indent=2) + "\n")
        save_file(_state_dict_for_disk(model), directory / WEIGHTS, metadata={"format": "pt"})
        if getattr(model.language_model, "generation_config", None) is not None:
            model.language_model.generation_config.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    write_generation(loaded.generation, directory)


def _model_config(loaded: LoadedModel, directory: Path) -> dict:
    """``config.json`` of a model with media branches: the LM's ``text_config``, what each
    branch kind's ``files`` add (LLaVA's layout for the image branch), and
    lhama's own block. A model LLaVA cannot express is ``model_type: "lhama"``."""
    data: dict[str, Any] = {}
    for kind, _ in branches.configured(loaded.config):  # in merge order: a later kind may set model_type "lhama"
        data.update(kind.files.write(loaded, directory))
    data.setdefault("text_config", loaded.model.language_model.config.to_dict())
    data.setdefault("model_type", "lhama")
    data.setdefault("architectures", ["LhamaModel"])
    data["lhama"] = branches.config_to_dict(loaded.config)
    return data


def _state_dict_for_disk(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict without tied duplicates (safetensors stores each tensor once)."""
    state = model.state_dict()
    head, embed = "language_model.lm_head.weight", "language_model.model.embed_tokens.weight"
    if head in state and embed in state and state[head].data_ptr() == state[embed].data_ptr():
        del state[head]
    return {key: value.contiguous() for key, value in state.items()}


def _load_weights(model: nn.Module, model_dir: Path) -> None:
    state = _read_safetensors(model_dir)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"language_model.lm_head.weight"} if _is_tied(model) else set()
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        key = (missing or unexpected)[0]
        kind = "is missing weight" if missing else "has unexpected weight"
        raise CheckpointError(
            f"{model_dir} {kind} {key} ({len(missing)} missing, {len(unexpected)} unexpected); "
            "is it a complete lhama/LLaVA model directory?"
        )


def _read_safetensors(model_dir: Path) -> dict[str, torch.Tensor]:
    index = model_dir / f"{WEIGHTS}.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else [WEIGHTS]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        path = model_dir / name
        if not path.is_file():
            raise CheckpointError(f"{model_dir} has no {name}")
        try:
            state.update(load_file(path))
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise CheckpointError(f"cannot read {path}: {exc}") from None
    return state


def _is_tied(model: LhamaModel) -> bool:
    lm = model.language_model
    head = lm.get_output_embeddings()
    return head is not None and head.weight.data_ptr() == lm.get_input_embeddings().weight.data_ptr()


def _lhama_config(raw: dict) -> LhamaConfig:
    if "lhama" in raw:  # without the decoding keys older versions kept there
        return branches.config_from_dict(split_legacy(raw["lhama"])[0])
    # A LLaVA directory made by other tools: read its choices into lhama's config.
    layer = raw.get("vision_feature_layer", -2)
    if not isinstance(layer, int):
        raise CheckpointError("LLaVA models with several vision_feature_layer values are not supported yet")
    select = "full" if raw.get("vision_feature_select_strategy") == "full" else "patch"
    return branches.lhama_config(image=ImageConfig(feature_layer=layer, select=select))


def read_config(model_dir: Path) -> dict:
    """A model directory's ``config.json``.

    Raises:
        CheckpointError: no such directory, no ``config.json`` in it, or not valid JSON."""
    if not model_dir.is_dir():
        raise CheckpointError(f"model directory not found: {model_dir}")
    path = model_dir / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{model_dir} has no config.json: not a Hugging Face model directory")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None


def from_pretrained(cls: Any, directory: str | Path, dtype: torch.dtype) -> nn.Module:
    """``cls.from_pretrained(directory)`` (a transformers auto class) at ``dtype``, without its
    progress bar; a directory it cannot load is a one-line CheckpointError."""
    from transformers.utils import logging as hf_logging

    read_config(Path(directory))
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # its "Loading weights" bar cut into the callers' own progress lines
    try:
        return cls.from_pretrained(str(directory), dtype=dtype)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load {directory}: {str(exc).splitlines()[0]}") from None
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_encoder(model_dir: str | Path, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, Any]:
    """A plain text encoder (e.g. BERT, for sentence embeddings) and its tokenizer, in eval mode."""
    return from_pretrained(AutoModel, model_dir, dtype).eval(), _tokenizer(model_dir)


def _tokenizer(directory: str | Path) -> Any:
    # A lhama config.json has a model_type transformers does not know, and AutoTokenizer reads it
    # (with a warning on every load) unless it is handed the language model's own config.
    raw = read_config(Path(directory)) if (Path(directory) / "config.json").is_file() else {}
    config = {"config": sub_config(raw["text_config"])} if "text_config" in raw else {}
    try:
        return AutoTokenizer.from_pretrained(str(directory), **config)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load the tokenizer of {directory}: {str(exc).splitlines()[0]}") from None
