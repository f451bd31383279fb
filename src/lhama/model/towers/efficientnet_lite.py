"""A frozen EfficientNet-Lite CNN as an image tower that also keeps its ImageNet-1k head.

EfficientNet-Lite (Tan & Le 2019; the "lite" variants drop squeeze-excitation, use ReLU6 and
keep the stem and head at fixed widths) is a stem convolution, seven stages of MBConv blocks
(1x1 expand -> kxk depthwise -> 1x1 project, residual when the shape is kept), a 1x1 head
convolution to 1280 channels, global average pooling and a linear 1000-class classifier.
The defaults describe EfficientNet-Lite2; ``lhama.weights.efficientnet`` ports its weights.

The tower speaks the interface of :func:`lhama.model.encoders.encode_images`. Its
``hidden_states`` are the feature maps, flattened row-major to ``(n, h*w, channels)``:

    index  map                      260 px input (Lite2)
    0      stem (conv 3x3 /2)       130x130 x 32
    1..7   stages 1-7               grids 130, 65, 33, 17, 17, 9, 9; 16 ... 352 channels
    7      stage 7                  9x9 x 352    <- feature_layer -2 (the default): 81 tokens
    8      head (conv 1x1)          9x9 x 1280   <- feature_layer -1: 81 tokens, what the
                                                    classifier pools

Besides the maps, :meth:`EfficientNetLiteTower.forward` returns the classifier's ``logits``
(one pass gives both), and :meth:`EfficientNetLiteTower.classify` gives class probabilities.

Pixels: RGB, channels first, ``(x - 127) / 128`` in 0-255 units, squashed to the square
``image_size`` (see :func:`lite_image_spec`). Convolutions pad like TensorFlow's "same" mode
(extra padding at the bottom/right), computed per input so any size works.
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
from lhama.model.towers.resnet import FrozenBatchNorm2d

MODEL_TYPE = "lhama_efficientnet_lite"
PIXEL_MEAN, PIXEL_STD = 127.0, 128.0  # in 0-255 units: the network reads (x - 127) / 128


@dataclass(frozen=True)
class EfficientNetLiteConfig(TowerConfigSizes):
    """Sizes of the tower (defaults: EfficientNet-Lite2). Per-stage tuples have one entry per
    stage; ``hidden_state_shapes`` gives the grid and channels of each map."""

    image_size: int = 260
    stem_width: int = 32
    widths: tuple[int, ...] = (16, 24, 48, 88, 120, 208, 352)  # output channels of each stage
    depths: tuple[int, ...] = (1, 3, 3, 4, 4, 5, 1)  # MBConv blocks per stage
    kernels: tuple[int, ...] = (3, 3, 5, 3, 5, 5, 3)  # depthwise kernel size
    strides: tuple[int, ...] = (1, 2, 2, 2, 1, 2, 1)  # stride of a stage's first block
    expand_ratios: tuple[int, ...] = (1, 6, 6, 6, 6, 6, 6)  # inner width = ratio x input width
    head_width: int = 1280
    num_classes: int = 1000
    model_type: str = MODEL_TYPE

    def __post_init__(self) -> None:
        lengths = {len(t) for t in (self.widths, self.depths, self.kernels, self.strides, self.expand_ratios)}
        if len(lengths) != 1:
            raise ValueError("widths, depths, kernels, strides and expand_ratios need one entry per stage each")

    @property
    def hidden_state_shapes(self) -> tuple[tuple[int, int], ...]:
        """(grid side, channels) of every ``hidden_states`` entry: stem, each stage, head."""
        grid = math.ceil(self.image_size / 2)
        shapes = [(grid, self.stem_width)]
        for width, stride in zip(self.widths, self.strides, strict=True):
            grid = math.ceil(grid / stride)
            shapes.append((grid, width))
        shapes.append((grid, self.head_width))
        return tuple(shapes)


@dataclass
class EfficientNetLiteOutput:
    """What ``encode_images`` reads (``hidden_states``), the pooled summary and the class logits."""

    last_hidden_state: torch.Tensor  # (n, h*w, head_width): the head map
    pooler_output: torch.Tensor  # (n, head_width): its global average, the classifier's input
    logits: torch.Tensor  # (n, num_classes)
    hidden_states: tuple[torch.Tensor, ...] | None


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad like TensorFlow's "same" mode: output = ceil(size / stride), the odd pixel of
    padding at the bottom/right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dimension first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return nn.functional.pad(x, pads)


class ConvBN(nn.Module):
    """Convolution (no bias) with "same" padding, frozen batch norm, then ReLU6 if ``act``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, groups=groups, bias=False)
        self.bn = FrozenBatchNorm2d(c_out)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(_same_pad(x, self.conv.kernel_size[0], self.conv.stride[0])))
        return nn.functional.relu6(x) if self.act else x


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expand (skipped at ratio 1) -> kxk depthwise (carries the
    stride) -> 1x1 linear projection, plus the input when the shape is unchanged."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, ratio: int) -> None:
        super().__init__()
        inner = c_in * ratio
        self.expand = ConvBN(c_in, inner, 1) if ratio != 1 else None
        self.depthwise = ConvBN(inner, inner, kernel, stride, groups=inner)
        self.project = ConvBN(inner, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class EfficientNetLiteTower(nn.Module):
    """The tower: ``forward(pixel_values, output_hidden_states=True)`` -> :class:`EfficientNetLiteOutput`."""

    def __init__(self, config: EfficientNetLiteConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = ConvBN(3, config.stem_width, 3, stride=2)
        stages, c_in = [], config.stem_width
        for width, depth, kernel, stride, ratio in zip(
            config.widths, config.depths, config.kernels, config.strides, config.expand_ratios, strict=True
        ):
            blocks = [MBConv(c_in if i == 0 else width, width, kernel, stride if i == 0 else 1, ratio) for i in range(depth)]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.head = ConvBN(c_in, config.head_width, 1)
        self.classifier = nn.Linear(config.head_width, config.num_classes)

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = True) -> EfficientNetLiteOutput:
        """(n, 3, H, W) RGB pixels, ``(x - 127) / 128`` -> feature maps and class logits."""
        x = self.stem(pixel_values)
        maps = [x]  # (n, C, h, w) each
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        maps.append(self.head(x))
        pooled = maps[-1].mean(dim=(2, 3))  # (n, head_width)
        tokens = tuple(m.flatten(2).transpose(1, 2) for m in maps)  # (n, h*w, C), row-major
        return EfficientNetLiteOutput(
            last_hidden_state=tokens[-1],
            pooler_output=pooled,
            logits=self.classifier(pooled),  # (n, num_classes)
            hidden_states=tokens if output_hidden_states else None,
        )

    @torch.no_grad()
    def classify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) pixels -> (n, num_classes) class probabilities (softmax; rows sum to 1)."""
        logits = self(pixel_values, output_hidden_states=False).logits
        return torch.softmax(logits.float(), dim=-1)


def lite_image_spec(config: EfficientNetLiteConfig) -> ImageSpec:
    """The tower's pixels as an ImageSpec: squash to the square size (keeps the whole image),
    then ``(x / 255 - 127 / 255) / (128 / 255)`` = ``(x - 127) / 128`` in 0-255 units.
    Transparency is flattened on white by :func:`lhama.data.media.load_image`."""
    return ImageSpec(
        size=config.image_size,
        mean=(PIXEL_MEAN / 255,) * 3,
        std=(PIXEL_STD / 255,) * 3,
        center_crop=False,
    )


def tower_from_config(data: dict) -> EfficientNetLiteTower:
    """A randomly initialised tower from a ``vision_config`` dict (weights are loaded after).

    Raises:
        CheckpointError: the dict is not a lhama EfficientNet-Lite tower config.
    """
    if data.get("model_type") != MODEL_TYPE:
        raise CheckpointError(f"not a lhama EfficientNet-Lite config: model_type {data.get('model_type')!r}, expected {MODEL_TYPE!r}")
    return EfficientNetLiteTower(EfficientNetLiteConfig.from_dict(data))


def save_tower(tower: EfficientNetLiteTower, directory: Path) -> None:
    """Write the tower directory (``towers.common.save_tower_dir``) into ``directory``."""
    save_tower_dir(tower, directory, lite_image_spec(tower.config))


def load_tower(directory: Path) -> EfficientNetLiteTower:
    """Inverse of :func:`save_tower`, in eval mode. Raises CheckpointError on a missing or
    mismatched file."""
    return load_tower_dir(directory, tower_from_config)
