"""Training configuration: one frozen dataclass per part, read from a recipe YAML plus dotted
``key=value`` overrides by :func:`lhama.config.load` (unknown keys are errors)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lhama.data.collate import CollateConfig
from lhama.data.dataset import DatasetConfig
from lhama.model.config import LoraSettings


@dataclass(frozen=True)
class ModelSpec:
    """Where the model to train comes from: an existing model directory, or an LM plus a tower."""

    init: str | None = None  # a lhama/LLaVA model dir (e.g. the stage-1 output) to continue from
    lm: str | None = None  # registry name (gemma-3-270m) or a causal-LM dir; used when init is unset
    vision: str | None = None  # registry name (open-nsfw-resnet50) or a tower dir (CLIP/SigLIP); with lm
    # The media branches to build with lm (+ vision: the image branch's tower; its config defaults
    # to ImageConfig()) or to grow on an init model that lacks them, by kind (model/branches.py):
    # ``branches: {video: {pooling: mean}, audio: {tokens: 16}}``. An init model keeps its own.
    branches: dict[str, Any] = field(default_factory=dict)
    lora: LoraSettings | None = None  # stage 2: LoRA on the decoder; None there means full fine-tuning
    gradient_checkpointing: bool = False  # trade compute for activation memory
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # frozen weights; trained ones stay fp32

    def __post_init__(self) -> None:
        from lhama.model.branches import branch_configs  # the kind table (and torch): only when a spec is built

        object.__setattr__(self, "branches", branch_configs(self.branches, "model.branches."))

    @property
    def encoders(self) -> dict[str, str]:
        """The pretrained encoders the recipe names with ``lm``, by branch kind (registry names or
        directories): ``model.vision`` is the image branch's tower."""
        return {"image": self.vision} if self.vision else {}

    @staticmethod
    def convert_old_keys(data: Mapping[str, Any]) -> dict[str, Any]:
        """Recipe keys from before ``branches`` -> ``branches.<kind>`` (:func:`lhama.config.from_dict`
        calls this): ``model.image``, ``model.video``, ``model.audio`` and their overrides
        (``model.video.pooling=mean``, laid over a ``branches`` entry of the same kind), read as
        they were: image only with lm + vision (an init model kept its own), video only with an
        init model or vision, audio always."""
        kept = {"image": not data.get("init") and bool(data.get("vision")),
                "video": bool(data.get("init") or data.get("vision")), "audio": True}
        old = {kind: data[kind] for kind in kept if data.get(kind) is not None and kept[kind]}
        converted = {key: value for key, value in data.items() if key not in kept}
        if old:
            branches = converted.get("branches") or {}
            converted["branches"] = {**branches, **{kind: _laid_over(branches.get(kind), value) for kind, value in old.items()}}
        return converted


def _laid_over(base: Any, top: Any) -> Any:
    """``top`` laid over ``base``, mapping by mapping (an override over a recipe's entry)."""
    if not isinstance(base, Mapping) or not isinstance(top, Mapping):
        return top
    return {**base, **{key: _laid_over(base.get(key), value) for key, value in top.items()}}


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3  # LLaVA-1.5 stage 1; stage 2 LoRA uses 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = 0.03  # share of steps with a linear warm-up
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    max_grad_norm: float = 1.0  # 0 disables clipping

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"optim.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass(frozen=True)
class LossConfig:
    """Terms added to the next-token loss (train/contrast.py says why)."""

    # Weight of the image-caption contrast (symmetric InfoNCE between each image's mean projected
    # token and the mean word embedding of its row's answer, in-batch negatives); 0: off.
    image_caption_contrast: float = 0.0
    contrast_temperature: float = 0.07  # CLIP's initial temperature

    def __post_init__(self) -> None:
        if self.image_caption_contrast < 0:
            raise ValueError(f"loss.image_caption_contrast must be >= 0, got {self.image_caption_contrast}")
        if self.contrast_temperature <= 0:
            raise ValueError(f"loss.contrast_temperature must be > 0, got {self.contrast_temperature}")


@dataclass(frozen=True)
class PrealignConfig:
    """``stage: prealign`` (train/prealign.py): a caption contrast on cached tower features."""

    branch: str = "image"  # the branch kind whose projector is pre-aligned, on captions of its medium
    epochs: int = 30
    batch_size: int = 256  # caption pairs per step: the other pairs are the negatives
    lr: float = 1e-3
    weight_decay: float = 0.01
    temperature: float = 0.07  # CLIP's initial temperature
    # Only samples whose first user turn is this prompt (the placeholder aside) are captions;
    # "": every sample with an image, its first answer as the caption.
    prompt: str = ""
    eval_every: int = 5  # epochs between held-out caption-retrieval checks (also at 0 and the end)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"prealign.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "temperature"):
            if getattr(self, name) <= 0:
                raise ValueError(f"prealign.{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DatasetConfig = field(default_factory=DatasetConfig)
    eval_data: DatasetConfig | None = None  # a separate held-out file (else data.eval_fraction)
    collate: CollateConfig = field(default_factory=CollateConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    prealign: PrealignConfig = field(default_factory=PrealignConfig)
    # prealign: projector only, a caption contrast on cached features (no LM loss); align:
    # projector only; finetune: + LoRA or full LM
    stage: Literal["prealign", "align", "finetune"] = "align"
    output_dir: str = "runs/lhama"
    micro_batch_size: int = 4  # samples per process per forward
    grad_accum: int = 1  # forwards per optimizer step; global batch = micro x accum x processes
    max_steps: int = 0  # 0: run `epochs` epochs
    epochs: int = 1
    stop_after: int = 0  # >0: stop (with a checkpoint) after this step, keeping the max_steps schedule
    precision: Literal["fp32", "bf16", "fp16"] = "bf16"  # autocast dtype on GPU; CPU always runs fp32
    group_by_length: bool = True  # batch samples of similar length (less padding)
    seed: int = 0
    eval_every: int = 0  # steps between held-out evaluations (also at step 0 and the end); 0: start/end only
    save_every: int = 0  # steps between checkpoints; 0: only at the end
    keep_checkpoints: int = 2
    save: Literal["merged", "adapter", "both"] = "merged"  # final export of a LoRA run
    strategy: Literal["ddp", "fsdp"] = "ddp"  # under torchrun with several processes
    num_workers: int = 0  # data-loader worker processes (image decoding)
    log_every: int = 1
    progress: bool = True  # rich progress bar on rank 0
    # Name patterns of the parameters to train instead of the stage's default, e.g.
    # [audio_projector] for the audio stage 1 (the image projector stays as it is).
    train_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.model.init and not self.model.lm:
            raise ValueError("no model: set model.init (a model dir) or model.lm (+ model.vision)")
        for name in ("micro_batch_size", "grad_accum", "epochs", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def trainable(self) -> tuple[str, ...]:
        """Name patterns of the parameters this stage trains."""
        if self.train_modules:
            return self.train_modules
        if self.stage in ("prealign", "align"):
            return ("multi_modal_projector",)
        if self.model.lora is not None:
            return ("multi_modal_projector", "lora_")
        return ("multi_modal_projector", "language_model")
