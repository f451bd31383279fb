"""Predictions cached as JSONL while they are produced, so an interrupted evaluation resumes.

Each line is one record ``{"system": ..., "item": ..., ...}``, appended and flushed as soon as
the prediction exists. On reopening, complete lines are read back; a line cut short by a crash
(the last one) is ignored, so that prediction is simply made again. The first line records what
the predictions are for (``meta``); a cache made for other data or another model is refused
rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lhama.errors import DataError
from lhama.files import atomic_write_text
from lhama.home import lhama_home
from lhama.model.generation import GENERATION_FILE
from lhama.weights.resolve import resolve


class PredictionCache:
    """Append-only store of predictions keyed by (system, item id)."""

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        if self.path.is_file():
            self._read()
        else:
            self._append({"meta": meta})  # creates the file

    def get(self, system: str, item: str) -> dict[str, Any] | None:
        """The cached record for ``item`` by ``system``, if any."""
        return self.records.get((system, item))

    def put(self, system: str, item: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store (and durably append) a prediction; returns the full record."""
        full = {"system": system, "item": item, **record}
        self._append(full)
        self.records[(system, item)] = full
        return full

    def _append(self, record: dict[str, Any]) -> None:
        lines = [record]
        if not self.path.is_file():  # new, or removed mid-run (a cleaned /tmp): start with the meta line
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lines = [{"meta": self.meta}] if "meta" in record else [{"meta": self.meta}, record]
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
            handle.flush()
            os.fsync(handle.fileno())

    def _read(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    self._drop_torn_tail(lines)  # cut short by a crash: that prediction is redone
                    break
                raise DataError(f"prediction cache {self.path} line {number} is corrupt; delete the file to start over") from None
            if "meta" in record:
                self._check_meta(record["meta"])
            elif "system" in record and "item" in record:
                self.records[(record["system"], record["item"])] = record
        if not self.path.read_text(encoding="utf-8").endswith("\n"):
            self._append_newline()

    def _check_meta(self, meta: dict[str, Any]) -> None:
        if meta != self.meta:
            changed = sorted(k for k in set(meta) | set(self.meta) if meta.get(k) != self.meta.get(k))
            raise DataError(f"prediction cache {self.path} was made for a different run ({', '.join(changed)} "
                            "differ); pass another --cache file or delete it")

    def _drop_torn_tail(self, lines: list[str]) -> None:
        """Rewrite the file without its torn last line, so later appends start on a fresh line."""
        atomic_write_text(self.path, "".join(line + "\n" for line in lines[:-1]))

    def _append_newline(self) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("\n")


def model_fingerprint(spec: str | None) -> str | None:
    """Model dir plus its weight files' sizes and times, for a cache's ``meta``: a re-trained or
    re-prepared model under the same name (``lhama-default`` after an update) gets a new cache
    instead of the old model's predictions. ``config.json`` and ``lhama_generation.json`` count
    too: they carry settings that change answers without touching a weight (``image_guidance``)."""
    if spec is None:
        return None
    path = resolve(spec, spec)
    files = [*path.glob("*.safetensors"), *path.glob("config.json"), *path.glob(GENERATION_FILE)]
    stats = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files)
    return f"{path.resolve()} {stats}"


def cache_meta(task: str, data: str | Path, model: str, **settings: Any) -> dict[str, Any]:
    """What a cache's predictions are for: the task, its data, the model (fingerprinted) and
    the settings that change answers. Another value of any of them is another cache."""
    return {"task": task, "data": str(data), "model": model_fingerprint(model), **settings}


def default_cache_path(meta: dict[str, Any]) -> Path:
    """``$LHAMA_HOME/eval-cache/<task>-<digest of meta>.jsonl`` (a data path counts resolved)."""
    data = meta["data"]
    keyed = {**meta, "data": data if not Path(data).exists() else str(Path(data).resolve())}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    return lhama_home() / "eval-cache" / f"{meta['task']}-{key}.jsonl"


def open_cache(meta: dict[str, Any], path: Path | None = None) -> PredictionCache:
    """The cache for ``meta``: at ``path`` if given, else at its default path."""
    return PredictionCache(path or default_cache_path(meta), meta)
