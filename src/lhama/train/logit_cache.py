"""The teacher's top-k logits, computed once and kept on disk, so distillation never runs the
teacher during training (on a CPU the teacher costs more than the student's whole step).

Layout of a cache directory::

    manifest.json            fingerprint (teacher files, token ids, k), vocabulary hash, counts
    shard-00000.safetensors  values (P, k) float16, indices (P, k) int32, offsets (n + 1,) int64
    shard-00001.safetensors  ...

Item ``i`` of a shard owns rows ``offsets[i]:offsets[i+1]``: one row per position whose *next*
token is supervised (``labels[1:] != IGNORE_INDEX``), in order. Each shard is written to a
temporary file and renamed, so an interrupted build resumes at the first missing shard.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lhama.data.collate import Batch, Encoded
from lhama.data.conversation import IGNORE_INDEX
from lhama.errors import CheckpointError
from lhama.files import atomic_write_text

MANIFEST = "manifest.json"
SHARD = "shard-{:05d}.safetensors"
Rows = tuple[torch.Tensor, torch.Tensor]  # (values (K, k) float16, indices (K, k) int32) of one item


@dataclass(frozen=True)
class TeacherTargets:
    """Every item's cached top-k rows, concatenated."""

    values: torch.Tensor  # (P, k) float16 logits
    indices: torch.Tensor  # (P, k) int32 token ids
    offsets: torch.Tensor  # (n + 1,) int64: item i owns rows offsets[i]:offsets[i + 1]

    def rows(self, items: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows of ``items``, concatenated in that order: (values (N, k), indices (N, k))."""
        spans = [torch.arange(int(self.offsets[i]), int(self.offsets[i + 1])) for i in items]
        picked = torch.cat(spans) if spans else torch.zeros(0, dtype=torch.long)
        return self.values[picked], self.indices[picked]

    def select(self, items: Sequence[int]) -> "TeacherTargets":
        """The targets of ``items`` only, renumbered 0, 1, ... in that order."""
        values, indices = self.rows(items)
        lengths = torch.tensor([0] + [int(self.offsets[i + 1] - self.offsets[i]) for i in items], dtype=torch.long)
        return TeacherTargets(values, indices, lengths.cumsum(0))

    def tail(self, first: int) -> "TeacherTargets":
        """The targets of items ``first...`` (renumbered from 0)."""
        return TeacherTargets(self.values, self.indices, self.offsets[first:])


@dataclass(frozen=True)
class CacheKey:
    """What a cache was built from; a cache is reused only when all of it matches."""

    teacher: str  # digest of the teacher directory's files (and of its quantisation, when not fp32)
    items: str  # digest of the token ids and labels of every item
    top_k: int
    vocabulary: str = ""  # digest of the tokenizer's vocabulary (recorded, checked against the student's)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.teacher}|{self.items}|{self.top_k}".encode()).hexdigest()[:32]


def cache_key(teacher_dir: str | Path, items: Sequence[Encoded], top_k: int, tokenizer: Any, quant: str = "none") -> CacheKey:
    """The key of a cache of ``teacher_dir``'s logits (as saved, or its ``quant`` copy: other logits, another key)."""
    teacher = _directory_digest(Path(teacher_dir)) + ("" if quant == "none" else f"+{quant}")
    return CacheKey(teacher, _items_digest(items), top_k, vocabulary_digest(tokenizer))


def vocabulary_digest(tokenizer: Any) -> str:
    """A digest of the token -> id map: equal for tokenizers that split text the same way."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda pair: pair[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()[:32]


def cached_vocabulary(directory: str | Path, key: CacheKey) -> str | None:
    """The vocabulary digest recorded by a *complete* cache for ``key``; None when there is none yet.

    Raises:
        CheckpointError: ``directory`` holds a cache built from another teacher, data or k."""
    manifest = _manifest(Path(directory), key)
    if manifest is None or not all((Path(directory) / SHARD.format(s)).is_file() for s in range(manifest["shards"])):
        return None
    return manifest["vocabulary"]


def build_cache(teacher_rows: Callable[[Encoded], Rows], items: Sequence[Encoded], directory: str | Path,
                key: CacheKey, progress: Callable[[int], None] = lambda n: None) -> TeacherTargets:
    """Compute the missing shards with ``teacher_rows`` (one item -> its top-k values and ids, e.g.
    :func:`teacher_topk` over a one-item batch), then load the whole cache.

    ``progress`` is called with the number of items each finished shard holds."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shard_size = 32
    shards = (len(items) + shard_size - 1) // shard_size
    if _manifest(directory, key) is None:
        manifest = {"fingerprint": key.fingerprint, "top_k": key.top_k, "items": len(items), "shard_size": shard_size,
                    "shards": shards, "vocabulary": key.vocabulary}
        atomic_write_text(directory / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    for s in range(shards):
        part = items[s * shard_size : (s + 1) * shard_size]
        if not (directory / SHARD.format(s)).is_file():
            _write_shard(directory / SHARD.format(s), [teacher_rows(item) for item in part])
        progress(len(part))
    return load_cache(directory)


def load_cache(directory: str | Path) -> TeacherTargets:
    """Every shard of a complete cache, concatenated."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    shards = [load_file(directory / SHARD.format(s)) for s in range(manifest["shards"])]
    offsets, base = [torch.zeros(1, dtype=torch.long)], 0
    for shard in shards:
        offsets.append(shard["offsets"][1:] + base)
        base += int(shard["offsets"][-1])
    return TeacherTargets(torch.cat([s["values"] for s in shards]), torch.cat([s["indices"] for s in shards]),
                          torch.cat(offsets))


def teacher_topk(teacher: nn.Module, batch: Batch, top_k: int) -> Rows:
    """The teacher's (an ``LhamaModel``) ``top_k`` logits and token ids at each position of a
    one-row ``batch`` whose next token is supervised, media included."""
    positions = (batch.labels[0, 1:] != IGNORE_INDEX).nonzero().squeeze(1)  # (K,)
    with torch.no_grad():
        logits = teacher(batch.input_ids, media=batch.media or None, logits_to_keep=positions).logits[0]  # (K, V)
    top = torch.topk(logits.float(), top_k, dim=-1)
    return top.values.half().cpu(), top.indices.int().cpu()


def _write_shard(path: Path, rows: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    lengths = torch.tensor([0] + [len(values) for values, _ in rows])
    tensors = {"values": torch.cat([v for v, _ in rows]).contiguous(), "indices": torch.cat([i for _, i in rows]).contiguous(),
               "offsets": lengths.cumsum(0)}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, tmp)
    os.replace(tmp, path)


def _manifest(directory: Path, key: CacheKey) -> dict | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("fingerprint") != key.fingerprint:
        raise CheckpointError(f"{directory} holds teacher logits for another teacher, data or top_k; "
                              "delete it or choose another output directory")
    return manifest


def _directory_digest(directory: Path) -> str:
    """Names and sizes of the teacher's files, plus the full text of its small JSON files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
        if path.suffix == ".json" and path.stat().st_size < 1_000_000:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _items_digest(items: Sequence[Encoded]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.input_ids.numpy().tobytes())
        digest.update(item.labels.numpy().tobytes())
    return digest.hexdigest()[:32]


def saved_vocabulary(model_dir: str | Path) -> dict[str, int] | None:
    """token -> id from a model directory's ``tokenizer.json`` (BPE/WordPiece vocabulary plus added
    tokens), read without loading anything; None when there is no such file or vocabulary."""
    path = Path(model_dir) / "tokenizer.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    vocab = data.get("model", {}).get("vocab") if isinstance(data, dict) else None
    if not isinstance(vocab, dict):
        return None
    return dict(vocab) | {t["content"]: t["id"] for t in data.get("added_tokens", []) if isinstance(t, dict)}
