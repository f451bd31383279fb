"""A frozen ResNet-50-style CNN as an image tower: its stage feature maps become patch tokens.

The layout is Caffe's ResNet-50 (the stride of a downsampling block sits in its first 1x1
convolution; every convolution has a bias; batch norms are kept as the frozen affine maps the
trained network uses), at configurable widths. Yahoo's open-NSFW network is the half-width
variant (``resnet_50_1by2``), which the defaults describe; ``open_nsfw.py`` ports its weights.

The tower speaks the interface of :func:`lhama.model.encoders.encode_images`. Its
``hidden_states`` are the feature maps, flattened row-major to ``(n, h*w, channels)``:

    index  map                       224 px input, default widths
    0      stem (conv 7x7 + pool)    56x56 x 64
    1      stage 1                   56x56 x 128
    2      stage 2                   28x28 x 256
    3      stage 3                   14x14 x 512    <- feature_layer -2 (the default): 196 tokens
    4      stage 4                    7x7  x 1024   <- feature_layer -1: 49 tokens

Pixels arrive as lhama's other towers get them (RGB, channels first); the ImageSpec subtracts
the Caffe mean in 0-255 units (see :func:`caffe_image_spec`) and :meth:`ResNetTower.forward`
swaps the channels to the BGR order the network was trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lhama.data.media import ImageSpec
from lhama.errors import CheckpointError
from lhama.model.towers.common import TowerConfigSizes, load_tower_dir, save_tower_dir

MODEL_TYPE = "lhama_resnet"  # not "clip...": the tower has no CLS token to drop
# Caffe's ImageNet channel means in 0-255 units, in RGB order (the network subtracts them in BGR).
CAFFE_MEAN_RGB = (123.0, 117.0, 104.0)


@dataclass(frozen=True)
class ResNetTowerConfig(TowerConfigSizes):
    """Sizes of the tower. ``hidden_state_shapes`` gives the grid and channels of each map."""

    image_size: int = 224
    stem_width: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)  # bottleneck width of each stage
    depths: tuple[int, ...] = (3, 4, 6, 3)  # blocks per stage (ResNet-50)
    expansion: int = 4  # a block's output channels = expansion x its width
    model_type: str = MODEL_TYPE

    @property
    def hidden_state_shapes(self) -> tuple[tuple[int, int], ...]:
        """(grid side, channels) of every ``hidden_states`` entry: stem, then each stage."""
        grid = math.ceil(math.ceil(self.image_size / 2) / 2)  # stride-2 conv, stride-2 pool
        shapes = [(grid, self.stem_width)]
        for index, width in enumerate(self.widths):
            grid = grid if index == 0 else math.ceil(grid / 2)
            shapes.append((grid, width * self.expansion))
        return tuple(shapes)


@dataclass
class ResNetTowerOutput:
    """What ``encode_images`` reads (``hidden_states``), plus the usual pooled summary."""

    last_hidden_state: torch.Tensor  # (n, h*w, C) of the last stage
    pooler_output: torch.Tensor  # (n, C): global average of the last stage
    hidden_states: tuple[torch.Tensor, ...] | None


class FrozenBatchNorm2d(nn.Module):
    """Inference-time batch norm as the trained graph computes it: ``(x - mean) * scale + shift``.

    ``scale`` is gamma / sqrt(var + eps) already; buffers, not parameters, since the tower is
    never trained.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))
        self.register_buffer("shift", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        return (x - self.running_mean.view(shape)) * self.scale.view(shape) + self.shift.view(shape)


class ConvBN(nn.Sequential):
    """Convolution (with bias) followed by a frozen batch norm; no activation."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)
        self.bn = FrozenBatchNorm2d(c_out)


class Bottleneck(nn.Module):
    """1x1 reduce (carries the stride) -> 3x3 -> 1x1 expand, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, width: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(c_in, width, 1, stride)
        self.conv2 = ConvBN(width, width, 3)
        self.conv3 = ConvBN(width, c_out, 1)
        # A projection where the shape changes, identity otherwise.
        self.downsample = ConvBN(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.conv1(x))
        out = torch.relu(self.conv2(out))
        return torch.relu(self.conv3(out) + shortcut)


class Stem(nn.Module):
    """7x7 stride-2 conv, ReLU, then 3x3 stride-2 max-pool with TensorFlow "same" padding
    (the ported graph pads the bottom/right edge only)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(3, width, 7, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        pad_h, pad_w = _same_pad(x.shape[-2]), _same_pad(x.shape[-1])
        x = nn.functional.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=-math.inf)
        return nn.functional.max_pool2d(x, kernel_size=3, stride=2)


def _same_pad(size: int, kernel: int = 3, stride: int = 2) -> int:
    """Total padding TensorFlow's "same" mode adds so that output = ceil(size / stride)."""
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


class ResNetTower(nn.Module):
    """The tower: ``forward(pixel_values, output_hidden_states=True)`` -> :class:`ResNetTowerOutput`."""

    def __init__(self, config: ResNetTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = Stem(config.stem_width)
        stages, c_in = [], config.stem_width
        for index, (width, depth) in enumerate(zip(config.widths, config.depths, strict=True)):
            c_out, stride = width * config.expansion, 1 if index == 0 else 2
            blocks = [Bottleneck(c_in if i == 0 else c_out, width, c_out, stride if i == 0 else 1) for i in range(depth)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.ModuleList(stages)

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = True) -> ResNetTowerOutput:
        """(n, 3, H, W) RGB pixels, Caffe-mean subtracted in 0-255 units -> feature maps."""
        x = self.stem(pixel_values.flip(1))  # RGB -> BGR, the order the network was trained on
        maps = [x]  # (n, C, h, w) each
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        tokens = tuple(m.flatten(2).transpose(1, 2) for m in maps)  # (n, h*w, C), row-major
        return ResNetTowerOutput(
            last_hidden_state=tokens[-1],
            pooler_output=maps[-1].mean(dim=(2, 3)),
            hidden_states=tokens if output_hidden_states else None,
        )


def caffe_image_spec(config: ResNetTowerConfig) -> ImageSpec:
    """The tower's pixels as an ImageSpec: squash to the square size (keeps the whole image),
    then ``(x / 255 - mean / 255) / (1 / 255)`` = ``x - mean`` in 0-255 units."""
    return ImageSpec(
        size=config.image_size,
        mean=tuple(m / 255 for m in CAFFE_MEAN_RGB),
        std=(1 / 255,) * 3,
        center_crop=False,
    )


def tower_from_config(data: dict) -> ResNetTower:
    """A randomly initialised tower from a ``vision_config`` dict (weights are loaded after).

    Raises:
        CheckpointError: the dict is not a lhama ResNet tower config.
    """
    if data.get("model_type") != MODEL_TYPE:
        raise CheckpointError(f"not a lhama tower config: model_type {data.get('model_type')!r}, expected {MODEL_TYPE!r}")
    return ResNetTower(ResNetTowerConfig.from_dict(data))


def save_tower(tower: ResNetTower, directory: Path) -> None:
    """Write the tower directory (``towers.common.save_tower_dir``) into ``directory``."""
    save_tower_dir(tower, directory, caffe_image_spec(tower.config))


def load_tower(directory: Path) -> ResNetTower:
    """Inverse of :func:`save_tower`, in eval mode. Raises CheckpointError on a missing or
    mismatched file."""
    return load_tower_dir(directory, tower_from_config)
