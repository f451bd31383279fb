"""The video branch (Video-LLaMA style): frames -> the image branch's frozen tower -> temporal
position embedding -> pooling or a small query transformer -> ``video_projector``.

Follow a video from pixels to decoder rows::

    frames (n, F, 3, H, W)
      -> encode_images, per frame   (n, F, N, D_vision)  the image branch's tower, frozen
      -> + position[f]              (n, F, N, D_vision)  learned, one vector per frame slot
      -> qformer: Q queries attend  (n, Q, D_vision)     Video-LLaMA: Q = 32
         or mean: time + space means (n, N + F, D_vision) Video-ChatGPT's pooling
      -> video_projector            (n, Q or N + F, D)   decoder width

Only ``video_temporal`` and ``video_projector`` are new (and trainable in the video stage 1).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from lhama.errors import ConfigError, ModelError
from lhama.model.config import ImageConfig, LhamaConfig, VideoConfig
from lhama.model.encoders import encode_images, image_feature_width, image_token_count
from lhama.model.projector import MultiModalProjector

VIDEO_MODULES = ("video_temporal", "video_projector")  # attribute names of the branch's own modules


def frame_config(image: ImageConfig, video: VideoConfig) -> ImageConfig:
    """How each frame is encoded: the image branch's settings, with the video's layer if set."""
    return image if video.feature_layer is None else replace(image, feature_layer=video.feature_layer)


def video_token_count(vision_config: object, image: ImageConfig, video: VideoConfig) -> int:
    """Number of tokens one video becomes, i.e. how far ``<video>`` expands."""
    if video.pooling == "qformer":
        return video.num_queries
    return image_token_count(vision_config, frame_config(image, video)) + video.frames


class QueryTransformer(nn.Module):
    """Video-LLaMA's video Q-former, small: learned queries self-attend and cross-attend to
    every frame token (pre-norm transformer decoder layers, no dropout)."""

    def __init__(self, width: int, config: VideoConfig) -> None:
        super().__init__()
        if width % config.qformer_heads:
            raise ConfigError(
                f"video.qformer_heads={config.qformer_heads} does not divide the tower's feature width "
                f"{width}; pick a divisor of {width}"
            )
        self.queries = nn.Parameter(torch.randn(config.num_queries, width) * 0.02)
        layer = nn.TransformerDecoderLayer(width, config.qformer_heads, dim_feedforward=2 * width,
                                           dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerDecoder(layer, config.qformer_layers)
        self.norm = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(n, T, D) frame tokens -> (n, Q, D)."""
        queries = self.queries.expand(tokens.shape[0], -1, -1).to(tokens.dtype)  # (n, Q, D)
        return self.norm(self.layers(queries, tokens))


class VideoTemporal(nn.Module):
    """Per-frame tower features -> a fixed number of video feature tokens."""

    def __init__(self, config: VideoConfig, frames_as: ImageConfig, width: int) -> None:
        super().__init__()
        self.frames_as = frames_as  # the ImageConfig each frame is encoded with
        self.position = nn.Embedding(config.frames, width)  # learned temporal position embedding
        self.qformer = QueryTransformer(width, config) if config.pooling == "qformer" else None

    def encode(self, tower: nn.Module, frames: torch.Tensor, config: VideoConfig) -> torch.Tensor:
        """(n, F, 3, H, W) frames -> (n, tokens, D_vision) features (a MediaBranch ``encode``).

        Raises:
            ModelError: the frame count differs from ``config.frames``.
        """
        if frames.dim() != 5 or frames.shape[1] != config.frames:
            raise ModelError(f"video input must be (n, {config.frames}, 3, H, W) frames, got {tuple(frames.shape)}")
        n, count = frames.shape[:2]
        features = encode_images(tower, frames.flatten(0, 1), self.frames_as)  # (n * F, N, D)
        return self(features.unflatten(0, (n, count)))  # (n, tokens, D)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(n, F, N, D) per-frame features -> (n, Q, D) or (n, N + F, D)."""
        position = self.position.weight.to(features.dtype)[None, :, None, :]  # (1, F, 1, D)
        features = features + position
        if self.qformer is not None:
            return self.qformer(features.flatten(1, 2))  # (n, Q, D)
        return torch.cat([features.mean(dim=1), features.mean(dim=2)], dim=1)  # (n, N + F, D)


def build_video_modules(config: LhamaConfig, tower: nn.Module, lm_width: int) -> tuple[VideoTemporal, MultiModalProjector]:
    """Fresh ``video_temporal`` and ``video_projector`` for the config's video branch on ``tower``."""
    frames_as = frame_config(config.branches["image"], config.branches["video"])
    width = image_feature_width(tower.config, frames_as)
    temporal = VideoTemporal(config.branches["video"], frames_as, width)
    return temporal, MultiModalProjector(width, lm_width, config.branches["video"].projector)
