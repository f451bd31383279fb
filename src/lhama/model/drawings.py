"""A drawing recogniser: a learned correction of the tower's ImageNet head for drawings.

EfficientNet-Lite2's ImageNet-1k head was trained on photos; on clip art, stamps and icons it is
often confidently wrong (a drawn skyscraper -> "teclado"). The recogniser adds a low-rank
correction to the head's logits, computed from the same pooled features::

    logits = W0 f + b0 + (f A) B + bias        # f: (width,) pooled features; A (width, rank), B (rank, classes)

fitted on named drawings (their target classes are the ImageNet classes whose pt-BR name names
them) while photos keep their probabilities (``benchmarks/naming_s13_fit.py``; docs/default-model.md
"Naming, session 13"). The labeler applies it when ``LabelerConfig.drawings`` is set
(:mod:`lhama.model.labeler`). On disk: ``drawings.safetensors`` (``a``, ``b``, ``bias``, float32)
in the labeler's folder; the shipped one beside :mod:`lhama.model.towers`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from lhama.errors import CheckpointError

FILE = "drawings.safetensors"
SHIPPED = Path(__file__).with_name("towers") / "drawings_s13"  # built by benchmarks/naming_s13.py ship


class DrawingHead:
    """The correction's factors ``a`` (width, rank), ``b`` (rank, classes) and ``bias`` (classes,)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor) -> None:
        if a.ndim != 2 or b.ndim != 2 or bias.ndim != 1 or a.shape[1] != b.shape[0] or b.shape[1] != bias.shape[0]:
            raise CheckpointError(f"a drawing recogniser needs a (width, rank), b (rank, classes) and bias (classes,); "
                                  f"got {tuple(a.shape)}, {tuple(b.shape)}, {tuple(bias.shape)}")
        self.a, self.b, self.bias = a.float(), b.float(), bias.float()

    @property
    def width(self) -> int:
        return self.a.shape[0]

    @property
    def classes(self) -> int:
        return self.b.shape[1]

    def correct(self, pooled: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """(n, width) pooled features and (n, classes) head logits -> the corrected logits."""
        return logits.float() + (pooled.float() @ self.a) @ self.b + self.bias

    def save(self, folder: Path) -> None:
        save_file({"a": self.a.contiguous(), "b": self.b.contiguous(), "bias": self.bias.contiguous()},
                  str(folder / FILE))

    @classmethod
    def load(cls, folder: Path) -> DrawingHead:
        """The recogniser saved in ``folder``.

        Raises:
            CheckpointError: the file is missing, unreadable or its tensors do not fit together.
        """
        try:
            with safe_open(str(folder / FILE), framework="pt") as f:
                tensors = {k: f.get_tensor(k) for k in ("a", "b", "bias")}
        except (OSError, SafetensorError, KeyError, ValueError) as exc:
            raise CheckpointError(f"cannot read the drawing recogniser {folder / FILE} ({exc}); "
                                  "run `lhama models prepare` again") from None
        return cls(tensors["a"], tensors["b"], tensors["bias"])


def copy_drawings(source: Path, folder: Path) -> None:
    """Copy the recogniser in ``source`` into ``folder`` after checking it loads (an error at prepare time)."""
    DrawingHead.load(source)
    shutil.copyfile(source / FILE, folder / FILE)
