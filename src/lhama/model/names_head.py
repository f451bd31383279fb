"""A names head: the name of the nearest of a set of named pictures, by the tower's pooled features.

ImageNet-1k has no class for coins, planets, the moon, most flowers, tombstones or flags, so the
labeler's ImageNet head cannot name them. The names head keeps the pooled EfficientNet-Lite2
features of pictures whose pt-BR name is known (Tux Paint stamps: ``towers/stamp_names.tsv``, made
by ``scripts/stamp_names.py``; the pool and its exclusions: ``benchmarks/names_head.py``) and
gives a new picture the name of the most similar one with that similarity (cosine of the
features after subtracting the pool's mean). The labeler states it when the similarity is at
least ``LabelerConfig.names_confident`` (:mod:`lhama.model.labeler`).

A head is two files in a folder (the shipped one beside :mod:`lhama.model.towers`; a model's in
its ``labeler/``): ``names_head.tsv`` (``name``, ``kind``, ``key`` per picture: the pt-BR name
with its article, a basic-level kind or empty, where the picture came from) and
``names_head.safetensors`` (``features``: (pictures, width) float16, the same order).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lhama.errors import CheckpointError

TABLE_FILE = "names_head.tsv"
FEATURES_FILE = "names_head.safetensors"
COLUMNS = ["name", "kind", "key"]
SHIPPED = Path(__file__).with_name("towers")  # the head lhama ships (built by benchmarks/names_head.py)


@dataclass(frozen=True)
class NamedPicture:
    """One picture of the head: its pt-BR name ("uma moeda europeia de 1 euro"), kind ("uma moeda"
    or ""), and where it came from (a stamp key)."""

    name: str
    kind: str
    key: str


class NamesHead:
    """Pooled features of named pictures; :meth:`nearest` names a new picture's features."""

    def __init__(self, features: torch.Tensor, entries: tuple[NamedPicture, ...]) -> None:
        if features.ndim != 2 or features.shape[0] != len(entries) or not entries:
            raise CheckpointError(f"a names head needs one feature row per named picture: {tuple(features.shape)} "
                                  f"features for {len(entries)} names")
        self.features, self.entries = features.float(), entries
        self.mean = self.features.mean(0)
        self._unit = torch.nn.functional.normalize(self.features - self.mean, dim=-1)  # (n, width)

    @property
    def width(self) -> int:
        return self.features.shape[1]

    def nearest(self, pooled: torch.Tensor) -> tuple[NamedPicture, float]:
        """(width,) pooled features of one picture -> the most similar named picture and the cosine."""
        if pooled.shape != (self.width,):
            raise CheckpointError(f"the names head has {self.width}-wide features but the tower gave {tuple(pooled.shape)}")
        similarity = self._unit @ torch.nn.functional.normalize(pooled.float() - self.mean, dim=-1)
        best = int(similarity.argmax())
        return self.entries[best], float(similarity[best])

    def save(self, folder: Path) -> None:
        """Write the two files into ``folder`` (features as float16)."""
        rows = [COLUMNS] + [[e.name, e.kind, e.key] for e in self.entries]
        (folder / TABLE_FILE).write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
        save_file({"features": self.features.half().contiguous()}, str(folder / FEATURES_FILE))

    @classmethod
    def load(cls, folder: Path) -> NamesHead:
        """The head saved in ``folder``.

        Raises:
            CheckpointError: a file is missing or malformed (the message names it).
        """
        try:
            lines = (folder / TABLE_FILE).read_text(encoding="utf-8").splitlines()
            features = load_file(str(folder / FEATURES_FILE))["features"]
        except (OSError, KeyError, ValueError) as exc:
            raise CheckpointError(f"cannot read the names head in {folder} ({exc}); run `lhama models prepare` again") from None
        rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
        if not rows or rows[0] != COLUMNS or any(len(r) != 3 or not r[0] for r in rows[1:]):
            raise CheckpointError(f"{folder / TABLE_FILE} is not a names table (columns {' '.join(COLUMNS)}, a name in each row)")
        return cls(features, tuple(NamedPicture(*r) for r in rows[1:]))


def copy_head(source: Path, folder: Path) -> None:
    """Copy the head in ``source`` into ``folder`` after checking it loads (an error at prepare time)."""
    NamesHead.load(source)
    for name in (TABLE_FILE, FEATURES_FILE):
        shutil.copyfile(source / name, folder / name)
