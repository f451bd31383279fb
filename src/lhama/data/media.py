"""Media files -> tensors. Images: PIL decode, EXIF orientation, RGB, bounded size, then the
tower's resize / crop / normalise, done with PIL and torch (no torchvision)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lhama.errors import DataError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImageSpec:
    """How a tower wants its pixels: square side, normalisation, resize mode."""

    size: int
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    center_crop: bool = True  # resize shortest side then crop (CLIP); False: squash to square

    def to_preprocessor_config(self) -> dict:
        """A CLIPImageProcessor-compatible dict (``preprocessor_config.json``)."""
        return {
            "image_processor_type": "CLIPImageProcessor",
            "do_resize": True,
            "size": {"shortest_edge": self.size} if self.center_crop else {"height": self.size, "width": self.size},
            "do_center_crop": self.center_crop,
            "crop_size": {"height": self.size, "width": self.size},
            "resample": 3,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.mean),
            "image_std": list(self.std),
            "do_convert_rgb": True,
        }

    @classmethod
    def from_preprocessor_config(cls, path: Path, default_size: int) -> "ImageSpec":
        """Read ``preprocessor_config.json`` if present, else CLIP defaults at ``default_size``."""
        if not path.is_file():
            return cls(size=default_size)
        cfg = json.loads(path.read_text(encoding="utf-8"))
        crop = cfg.get("crop_size") or cfg.get("size") or {}
        size = crop.get("height") or crop.get("shortest_edge") or default_size
        return cls(
            size=int(size),
            mean=tuple(cfg.get("image_mean", CLIP_MEAN)),
            std=tuple(cfg.get("image_std", CLIP_STD)),
            center_crop=bool(cfg.get("do_center_crop", True)),
        )


def load_image(source: str | Path | bytes, max_side: int = 4096) -> Image.Image:
    """Decode an image file (or bytes) to an upright RGB PIL image no larger than ``max_side``.

    PIL's own decompression-bomb limit (about 179 Mpx) still applies: such a file is a DataError.

    Raises:
        DataError: missing, unreadable or corrupt file (the message names it).
    """
    with _opened(source) as img:
        img.load()  # decode now, so truncated files fail here
        image = _to_rgb(ImageOps.exif_transpose(img))
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def check_image(source: str | Path | bytes) -> None:
    """Cheap validity check (header only): PIL knows the file as an image; :func:`load_image`
    says the same of a file that fails here.

    Raises:
        DataError: missing or not an image file.
    """
    with _opened(source):
        pass


@contextmanager
def _opened(source: str | Path | bytes) -> Iterator[Image.Image]:
    """The image opened lazily (header read); PIL's errors, then and while the caller decodes, as
    one-line DataErrors naming the file."""
    name = "image bytes" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise DataError(f"image not found: {name}")
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
        with handle, Image.open(handle) as img:
            yield img
    except UnidentifiedImageError:  # PIL's own text names an internal file object
        raise DataError(f"cannot read image {name}: not an image file PIL can read (PNG, JPEG, WebP, GIF...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {name}: {exc}") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGBA/LA/P with transparency are flattened on white; L, CMYK, I;16 ... become RGB."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def image_to_tensor(image: Image.Image, spec: ImageSpec) -> torch.Tensor:
    """RGB PIL image -> (3, size, size) float tensor, normalised."""
    if spec.center_crop:
        image = _resize_shortest(image, spec.size)
        image = _center_crop(image, spec.size)
    else:
        image = image.resize((spec.size, spec.size), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3)
    array = (array - np.array(spec.mean, dtype=np.float32)) / np.array(spec.std, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def images_to_tensor(paths: list[str | Path], spec: ImageSpec, max_side: int = 4096) -> torch.Tensor:
    """Load and preprocess several images -> (n, 3, size, size)."""
    return torch.stack([image_to_tensor(load_image(p, max_side), spec) for p in paths])


def _resize_shortest(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    return image.resize(new, Image.Resampling.BICUBIC)


def _center_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))
