"""Translate a chunk of records: plan every turn, translate all sentences at once, reassemble.

Per turn: layout pieces (:mod:`.segment`), sentences masked (:mod:`.spans`), one pooled call
for the whole chunk, placeholders restored. A sentence whose placeholders did not survive is
redone piecewise (the text between its spans, translated separately), so spans are never lost.
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
from lhama.data.translate.spans import Masked, find_spans, has_placeholder_clash, mask, unmask

_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class TurnPlan:
    """A turn cut into pieces, with each sentence masked, keyed by (piece, sentence)."""

    pieces: list[Piece]
    masked: dict[tuple[int, int], Masked]


@dataclass(frozen=True)
class ChunkTools:
    """What translating a chunk needs; built once per run."""

    pool: TranslatorPool
    glossary: Glossary
    checker: QualityChecker


def plan_turn(value: str, glossary: Glossary) -> TurnPlan:
    """Layout pieces of ``value`` and its masked sentences."""
    pieces = split_layout(value)
    masked = {}
    for i, piece in enumerate(pieces):
        for j, sentence in enumerate(piece.sentences):
            masked[(i, j)] = mask(sentence, find_spans(sentence, glossary.matches))
    return TurnPlan(pieces, masked)


def translate_chunk(items: list[Item], tools: ChunkTools) -> list[dict[str, Any]]:
    """Journal entries (``i``, ``ok``, ``record`` and ``flags`` or ``reason``) for ``items``."""
    entries: dict[int, dict[str, Any]] = {}
    plans: dict[int, list[TurnPlan]] = {}
    for index, record, problem in items:
        problem = problem or record_problem(record)
        if problem:
            entries[index] = {"i": index, "ok": False, "reason": f"invalid_record: {problem}", "record": record}
        else:
            plans[index] = [plan_turn(t["value"], tools.glossary) for t in record["conversations"]]
    done = translate_sentences([m for p in plans.values() for t in p for m in t.masked.values()], tools.pool)
    records = {index: record for index, record, _ in items}
    for index, turn_plans in plans.items():
        entries[index] = _finish(index, records[index], turn_plans, done, tools.checker)
    return [entries[index] for index, _, _ in items]


def translate_sentences(masked: list[Masked], pool: TranslatorPool) -> dict[str, str]:
    """Final text (spans restored) of every sentence, keyed by its source text."""
    texts = list(dict.fromkeys(m.text for m in masked))
    first = dict(zip(texts, pool.translate(texts)))
    done, failed = {}, {}
    for m in masked:
        restored = None if has_placeholder_clash(m.source) else unmask(first[m.text], m)
        if restored is None:
            failed[m.source] = m
        else:
            done[m.source] = restored
    parts = [p.strip() for m in failed.values() for p in m.pieces if _LETTER.search(p)]
    part_done = dict(zip(parts, pool.translate(parts)))
    for source, m in failed.items():
        done[source] = _piecewise(m, part_done)
    return done


def translate_values(values: list[str], pool: TranslatorPool, glossary: Glossary) -> list[str]:
    """Translate whole turn values with the same layout and span care, without checks."""
    plans = [plan_turn(v, glossary) for v in values]
    done = translate_sentences([m for p in plans for m in p.masked.values()], pool)
    return [join(p.pieces, {k: done[m.source] for k, m in p.masked.items()}) for p in plans]


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
        sentences = {key: done[m.source] for key, m in plan.masked.items()}
        turn["value"] = join(plan.pieces, sentences)
    reason = checker.rejection(record, out)
    if reason:
        return {"i": index, "ok": False, "reason": reason, "record": record}
    return {"i": index, "ok": True, "record": out, "flags": checker.flags(record, out)}
