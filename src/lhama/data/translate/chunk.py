"""Translate a chunk of records: plan every turn, translate all sentences at once, reassemble.

Per turn: layout pieces and translation units (:mod:`.segment`), spans masked (:mod:`.spans`),
one pooled call for the whole chunk, placeholders restored. A unit whose spans did not survive
is redone with numbers masked too, then piecewise (the text between its spans, translated
separately), so a protected span is never lost.
Each record then passes the quality checks and becomes one journal entry.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from lhama.data.translate.glossary import Glossary
from lhama.data.translate.pool import TranslatorPool
from lhama.data.translate.quality import QualityChecker
from lhama.data.translate.records import Item, record_problem
from lhama.data.translate.segment import Piece, join, split_layout
from lhama.data.translate.spans import Masked, find_spans, has_placeholder_clash, mask, numbers_kept, unmask

_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class TurnPlan:
    """A turn cut into pieces; its translation units keyed by (piece, unit)."""

    pieces: list[Piece]
    units: dict[tuple[int, int], str]


@dataclass(frozen=True)
class ChunkTools:
    """What translating a chunk needs; built once per run."""

    pool: TranslatorPool
    glossary: Glossary
    checker: QualityChecker


def plan_turn(value: str) -> TurnPlan:
    """Layout pieces of ``value`` and its translation units."""
    pieces = split_layout(value)
    units = {(i, j): unit for i, piece in enumerate(pieces) for j, unit in enumerate(piece.sentences)}
    return TurnPlan(pieces, units)


def translate_chunk(items: list[Item], tools: ChunkTools) -> list[dict[str, Any]]:
    """Journal entries (``i``, ``ok``, ``record`` and ``flags`` or ``reason``) for ``items``."""
    entries: dict[int, dict[str, Any]] = {}
    plans: dict[int, list[TurnPlan]] = {}
    for index, record, problem in items:
        problem = problem or record_problem(record)
        if problem:
            reason = f"invalid_record: {problem}"
            entries[index] = {"i": index, "ok": False, "reason": reason, "record": record}
        else:
            plans[index] = [plan_turn(t["value"]) for t in record["conversations"]]
    units = [u for p in plans.values() for t in p for u in t.units.values()]
    done = translate_units(units, tools.pool, tools.glossary)
    records = {index: record for index, record, _ in items}
    for index, turn_plans in plans.items():
        entries[index] = _finish(index, records[index], turn_plans, done, tools.checker)
    return [entries[index] for index, _, _ in items]


def translate_units(units: list[str], pool: TranslatorPool, glossary: Glossary) -> dict[str, str]:
    """Final translation of every unit (spans byte-exact), keyed by the unit.

    Round 1 masks code, URLs, boxes and glossary terms but leaves numbers to the translator;
    round 2 redoes the units whose numbers changed with numbers masked too; whatever still
    fails is done piecewise around its spans.
    """
    todo, done = list(dict.fromkeys(units)), {}
    for numbers in (False, True):
        masked = {u: mask(u, find_spans(u, glossary.matches, numbers)) for u in todo}
        if numbers:  # a unit without numbers would only repeat round 1
            masked = {u: m for u, m in masked.items() if any(s.kind == "number" for s in m.spans)}
        texts = list(dict.fromkeys(m.text for m in masked.values()))
        out = dict(zip(texts, pool.translate(texts)))
        for unit, m in masked.items():
            restored = None if has_placeholder_clash(unit) else unmask(out[m.text], m)
            if restored is not None and numbers_kept(unit, restored):
                done[unit] = restored
        todo = [u for u in todo if u not in done]
    failed = [mask(u, find_spans(u, glossary.matches)) for u in todo]
    parts = list(dict.fromkeys(p.strip() for m in failed for p in m.pieces if _LETTER.search(p)))
    part_done = dict(zip(parts, pool.translate(parts)))
    done.update((m.source, _piecewise(m, part_done)) for m in failed)
    return done


def translate_values(values: list[str], pool: TranslatorPool, glossary: Glossary) -> list[str]:
    """Translate whole turn values with the same layout and span care, without checks."""
    plans = [plan_turn(v) for v in values]
    done = translate_units([u for p in plans for u in p.units.values()], pool, glossary)
    return [join(p.pieces, {k: done[u] for k, u in p.units.items()}) for p in plans]


def _piecewise(m: Masked, part_done: dict[str, str]) -> str:
    """Rebuild a sentence from separately translated pieces and its spans, blanks kept."""
    out = []
    for k, piece in enumerate(m.pieces):
        if _LETTER.search(piece):
            core = piece.strip()
            lead, trail = piece[: piece.index(core)], piece[piece.index(core) + len(core) :]
            piece = lead + part_done[core] + trail
        out.append(piece)
        if k < len(m.spans):
            out.append(m.spans[k].target)
    return "".join(out)


def _finish(
    index: int, record: dict[str, Any], plans: list[TurnPlan], done: dict[str, str], checker: QualityChecker
) -> dict[str, Any]:
    out = copy.deepcopy(record)
    for turn, plan in zip(out["conversations"], plans):
        sentences = {key: done[unit] for key, unit in plan.units.items()}
        turn["value"] = join(plan.pieces, sentences)
    reason = checker.rejection(record, out)
    if reason:
        return {"i": index, "ok": False, "reason": reason, "record": record}
    return {"i": index, "ok": True, "record": out, "flags": checker.flags(record, out)}
