"""A names head: the name of the nearest of a set of named pictures, by the tower's pooled features.

ImageNet-1k has no class for coins, planets, the moon, most flowers, tombstones or flags, so the
labeler's ImageNet head cannot name them. The names head keeps the pooled EfficientNet-Lite2
features of pictures whose pt-BR name is known (Tux Paint stamps: ``towers/stamp_names.tsv``, made
by ``scripts/stamp_names.py``; the pool and its exclusions: ``benchmarks/names_head.py``) and
gives a new picture the name of the most similar one with that similarity (cosine of the
features after subtracting the pool's mean). The labeler states it when the similarity is at
least ``LabelerConfig.names_confident`` (:mod:`lhama.model.labeler`).

A head may also hold a *projection* (a (width, width) matrix, e.g. a within-class whitening
learned on its own pictures: :func:`within_class_whitening`): the cosine is then taken between
projected features, where different drawings of one thing lie nearer each other. And it says how
the tower's head map is pooled into its features (:data:`POOLINGS`: ``mean``, the tower's own
pooled output, or ``gem``, generalised mean with p = 3; :func:`pool`).

A head is two files in a folder (the shipped one beside :mod:`lhama.model.towers`; a model's in
its ``labeler/``): ``names_head.tsv`` (``name``, ``kind``, ``key`` per picture: the pt-BR name
with its article, a basic-level kind or empty, where the picture came from) and
``names_head.safetensors`` (``features``: (pictures, width) float16, the same order; optionally
``projection``: (width, width) float32; its metadata ``pooling``, ``mean`` when absent).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from lhama.errors import CheckpointError

TABLE_FILE = "names_head.tsv"
FEATURES_FILE = "names_head.safetensors"
COLUMNS = ["name", "kind", "key"]
POOLINGS = ("mean", "gem")
GEM_P = 3.0
SHIPPED = Path(__file__).with_name("towers")  # the head lhama ships (built by benchmarks/names_head.py)


@dataclass(frozen=True)
class NamedPicture:
    """One picture of the head: its pt-BR name ("uma moeda europeia de 1 euro"), kind ("uma moeda"
    or ""), and where it came from (a stamp key)."""

    name: str
    kind: str
    key: str


def pool(head_map: torch.Tensor, pooling: str) -> torch.Tensor:
    """(n, h*w, width) tower head map -> (n, width) features: its mean (the tower's
    ``pooler_output``) or its generalised mean with p = :data:`GEM_P` (``gem``)."""
    if pooling == "mean":
        return head_map.float().mean(1)
    return head_map.float().clamp_min(1e-6).pow(GEM_P).mean(1).pow(1 / GEM_P)


def within_class_whitening(rows: torch.Tensor, labels: torch.Tensor, shrink: float) -> torch.Tensor:
    """(width, width) W such that ``rows @ W`` has a white within-class scatter: ``rows``
    (samples, width) with class ids ``labels``; the scatter is shrunk toward its mean diagonal by
    ``shrink`` (0-1) first, so that directions no class varies in are not blown up."""
    centred = rows.float().clone()
    for c in labels.unique():
        centred[labels == c] -= centred[labels == c].mean(0)
    scatter = centred.T @ centred / len(rows)
    scatter = (1 - shrink) * scatter + shrink * scatter.diagonal().mean() * torch.eye(len(scatter))
    values, vectors = torch.linalg.eigh(scatter.double())
    return (vectors @ torch.diag(values.clamp_min(1e-9).rsqrt()) @ vectors.T).float()


class NamesHead:
    """Features of named pictures (optionally projected, see the module docstring);
    :meth:`nearest` names a new picture's features."""

    def __init__(self, features: torch.Tensor, entries: tuple[NamedPicture, ...],
                 projection: torch.Tensor | None = None, pooling: str = "mean") -> None:
        if features.ndim != 2 or features.shape[0] != len(entries) or not entries:
            raise CheckpointError(f"a names head needs one feature row per named picture: {tuple(features.shape)} "
                                  f"features for {len(entries)} names")
        width = features.shape[1]
        if projection is not None and (projection.ndim != 2 or projection.shape[0] != width):
            raise CheckpointError(f"a names head's projection must have {width} rows, got {tuple(projection.shape)}")
        if pooling not in POOLINGS:
            raise CheckpointError(f"a names head's pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.features, self.entries, self.pooling = features.float(), entries, pooling
        self.projection = None if projection is None else projection.float()
        projected = self._project(self.features)
        self.mean = projected.mean(0)
        self._unit = torch.nn.functional.normalize(projected - self.mean, dim=-1)  # (n, projected width)

    @property
    def width(self) -> int:
        return self.features.shape[1]

    def _project(self, rows: torch.Tensor) -> torch.Tensor:
        return rows if self.projection is None else rows @ self.projection

    @torch.no_grad()
    def nearest(self, pooled: torch.Tensor) -> tuple[NamedPicture, float]:
        """(width,) features of one picture (pooled as :attr:`pooling`) -> the most similar named
        picture and the cosine (in the projected space when the head has a projection)."""
        if pooled.shape != (self.width,):
            raise CheckpointError(f"the names head has {self.width}-wide features but the tower gave {tuple(pooled.shape)}")
        query = torch.nn.functional.normalize(self._project(pooled.float()) - self.mean, dim=-1)
        similarity = self._unit @ query
        best = int(similarity.argmax())
        return self.entries[best], float(similarity[best])

    def save(self, folder: Path) -> None:
        """Write the two files into ``folder`` (features as float16, the projection as float32)."""
        rows = [COLUMNS] + [[e.name, e.kind, e.key] for e in self.entries]
        (folder / TABLE_FILE).write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
        tensors = {"features": self.features.half().contiguous()}
        if self.projection is not None:
            tensors["projection"] = self.projection.contiguous()
        save_file(tensors, str(folder / FEATURES_FILE), metadata={"pooling": self.pooling})

    @classmethod
    def load(cls, folder: Path) -> NamesHead:
        """The head saved in ``folder``.

        Raises:
            CheckpointError: a file is missing or malformed (the message names it).
        """
        try:
            lines = (folder / TABLE_FILE).read_text(encoding="utf-8").splitlines()
            with safe_open(str(folder / FEATURES_FILE), framework="pt") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}
                pooling = (f.metadata() or {}).get("pooling", "mean")
            features = tensors["features"]
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"cannot read the names head in {folder} ({exc}); run `lhama models prepare` again") from None
        rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
        if not rows or rows[0] != COLUMNS or any(len(r) != 3 or not r[0] for r in rows[1:]):
            raise CheckpointError(f"{folder / TABLE_FILE} is not a names table (columns {' '.join(COLUMNS)}, a name in each row)")
        return cls(features, tuple(NamedPicture(*r) for r in rows[1:]), tensors.get("projection"), pooling)


def copy_head(source: Path, folder: Path) -> None:
    """Copy the head in ``source`` into ``folder`` after checking it loads (an error at prepare time)."""
    NamesHead.load(source)
    for name in (TABLE_FILE, FEATURES_FILE):
        shutil.copyfile(source / name, folder / name)
