"""Carry a model's quantised-LM caches over to a re-prepared copy whose LM files did not change.

``lhama.inference.quant_cache`` keeps ``quant-*/`` beside a model, valid while the model's
top-level ``.json``/``.safetensors`` files keep the sizes and modification times its ``quant.json``
recorded (``sources``). Re-preparing a cascade model for a new labeler or system prompt rewrites
only its manifest and decoding file; the LM's files are hard links to the same prepared LM. So
the cache still describes the new copy's LM, and is moved over with its record updated, instead
of being dropped and rebuilt on the next load (29 s for the 1.5B here).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lhama.inference.quant_cache import SETTINGS, source_stats

NOT_QUANTISED = ("lhama-prepared.json", "lhama_generation.json")  # files a quantised copy does not depend on


def carry_caches(old_dir: Path, new_dir: Path) -> list[str]:
    """Move ``old_dir``'s current ``quant-*`` caches into ``new_dir`` when every file they were
    built from, the manifest and decoding file aside, is the same file (size and modification
    time) in both, and record ``new_dir``'s files in them. Returns the moved folders' names; a
    changed LM, a stale or unreadable cache is left behind (rebuilt on the first load)."""
    moved = []
    old, new = source_stats(old_dir), source_stats(new_dir)
    lm_files = lambda stats: {k: v for k, v in stats.items() if k not in NOT_QUANTISED}  # noqa: E731
    for cache in sorted(p for p in old_dir.glob("quant-*") if p.is_dir()):
        try:
            saved = json.loads((cache / SETTINGS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(saved, dict) or saved.get("sources") != old or lm_files(old) != lm_files(new) or set(old) != set(new):
            continue
        os.replace(cache, new_dir / cache.name)
        (new_dir / cache.name / SETTINGS).write_text(json.dumps({**saved, "sources": new}, indent=2) + "\n", encoding="utf-8")
        moved.append(cache.name)
    return moved
