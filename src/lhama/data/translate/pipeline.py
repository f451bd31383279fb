"""``translate_file``: translate a LLaVA-Instruct file, resumably, and report on quality.

Steps: check paths, scan the input (syntax, count, hash), open or resume the journal,
translate pending chunks with a worker pool, rebuild the output from the journal atomically,
write the rejected side file and the report, then delete the journal.
"""

from __future__ import annotations

import dataclasses
import itertools
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lhama.data.translate.backend import build_backend
from lhama.data.translate.backtranslate import backtranslation_chrf
from lhama.data.translate.chunk import ChunkTools, translate_chunk
from lhama.data.translate.config import TranslateConfig, TranslateSummary
from lhama.data.translate.glossary import Glossary, load_glossary
from lhama.data.translate.journal import Journal
from lhama.data.translate.output import Tally, write_outputs, write_report
from lhama.data.translate.pool import TranslatorPool
from lhama.data.translate.quality import QualityChecker
from lhama.data.translate.records import InputInfo, Item, iter_records, record_problem, scan_input
from lhama.errors import ConfigError, DataError

Progress = Callable[[int, int, int], None]  # (records done, records total, words translated)


def translate_file(cfg: TranslateConfig, progress: Progress | None = None) -> TranslateSummary:
    """Translate ``cfg.input`` to ``cfg.output``; rerunning after a crash resumes.

    Raises:
        DataError: unreadable or malformed input, bad output path, foreign journal, glossary.
        ConfigError / CheckpointError: backend or model directory problems.
    """
    start = time.perf_counter()
    _check_paths(cfg)
    info = scan_input(cfg.input)
    glossary = load_glossary(cfg.glossary)
    journal = Journal.open(cfg.journal_path, _header(cfg, info, glossary.terms))
    try:
        resumed = len(journal)
        words = _run_pending(cfg, info, journal, glossary, progress)
        tally = write_outputs(journal, info.count, info.format, cfg.output, cfg.rejected_path)
    finally:
        journal.close()
    chrf = backtranslation_chrf(cfg, info.format, tally.written_indices) if cfg.backtranslate else None
    summary = _summary(cfg, info, tally, (resumed, words, time.perf_counter() - start, chrf))
    if cfg.report is not None:
        write_report(cfg.report, _report_totals(summary), tally.notes)
    cfg.journal_path.unlink()
    return summary


def _check_paths(cfg: TranslateConfig) -> None:
    if not cfg.input.is_file():
        raise DataError(f"input file not found: {cfg.input}")
    if not cfg.output.parent.is_dir():
        raise DataError(f"output directory does not exist: {cfg.output.parent} (create it first)")
    if cfg.output.resolve() == cfg.input.resolve():
        raise DataError("output must be a different file than the input")
    if cfg.report is not None and not cfg.report.parent.is_dir():
        raise DataError(f"report directory does not exist: {cfg.report.parent}")
    if cfg.backend == "seq2seq" and (cfg.model is None or not cfg.model.is_dir()):
        raise ConfigError(f"backend seq2seq needs --model DIR, a local model directory (got {cfg.model})")


def _header(cfg: TranslateConfig, info: InputInfo, terms: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """What makes two runs' outputs comparable; a journal is resumed only if all match."""
    return {
        "lhama_translate_journal": 1,
        "input_sha256": info.sha256,
        "backend": cfg.backend,
        "model": str(cfg.model.resolve()) if cfg.model else None,
        "languages": [cfg.src_lang, cfg.tgt_lang],
        "glossary": [list(t) for t in terms],
        "chunk_records": cfg.chunk_records,
        "batch_size": cfg.batch_size,
    }


def _pending_chunks(cfg: TranslateConfig, info: InputInfo, journal: Journal) -> Iterator[list[Item]]:
    """Fixed chunks of input indices with at least one record missing from the journal.

    Chunks are fixed by index so a resumed run batches exactly like an uninterrupted one.
    """
    records = iter_records(cfg.input, info.format)
    while chunk := list(itertools.islice(records, cfg.chunk_records)):
        if any(index not in journal for index, _, _ in chunk):
            yield chunk


def _run_pending(
    cfg: TranslateConfig, info: InputInfo, journal: Journal, glossary: Glossary, progress: Progress | None
) -> int:
    """Translate and journal every pending chunk; returns the source words translated."""
    done, words = len(journal), 0
    if progress:
        progress(done, info.count, words)
    if done == info.count:
        return 0
    pool = TranslatorPool(
        lambda: build_backend(cfg.spec), cfg.n_workers, cfg.batch_size, cache_size=_cache_size(cfg)
    )
    try:
        tools = ChunkTools(pool, glossary, QualityChecker())
        for chunk in _pending_chunks(cfg, info, journal):
            entries = [e for e in translate_chunk(chunk, tools) if e["i"] not in journal]
            journal.append(entries)
            done += len(entries)
            words += sum(_words(item) for item in chunk if item[0] in {e["i"] for e in entries})
            if progress:
                progress(done, info.count, words)
    finally:
        pool.close()
    return words


def _cache_size(cfg: TranslateConfig) -> int:
    # Bergamot translates one sentence at a time, so a cached result equals a fresh one. A
    # batched seq2seq result may differ in the last float bit with its batch neighbours, so
    # sharing results across chunks would make a resumed run differ from an uninterrupted one.
    return 50_000 if cfg.backend == "bergamot" else 0


def _words(item: Item) -> int:
    """Source words of a record (0 for one that is rejected before translation)."""
    _, record, problem = item
    if problem or record_problem(record):
        return 0
    return sum(len(t["value"].split()) for t in record["conversations"])


def _summary(
    cfg: TranslateConfig, info: InputInfo, tally: Tally, run: tuple[int, int, float, float | None]
) -> TranslateSummary:
    resumed, words, seconds, chrf = run
    return TranslateSummary(
        records_in=info.count,
        written=tally.written,
        rejected=tally.rejected,
        resumed=resumed,
        flagged=dict(sorted(tally.flagged.items())),
        rejected_by=dict(sorted(tally.rejected_by.items())),
        words=words,
        seconds=seconds,
        peak_rss_mb=_peak_rss_mb(),
        backtranslation_chrf=chrf,
        output=cfg.output,
        rejected_file=cfg.rejected_path,
        report=cfg.report,
    )


def _peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` first: unlike ``ru_maxrss`` it is not
    inherited from a parent that forked us."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report_totals(summary: TranslateSummary) -> dict[str, Any]:
    totals = dataclasses.asdict(summary)
    totals.update({k: str(v) for k, v in totals.items() if isinstance(v, Path)})
    totals["words_per_second"] = round(summary.words_per_second, 1)
    return totals
