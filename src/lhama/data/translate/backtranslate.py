"""Optional back-translation check: pt -> en with Bergamot, chrF against the English source.

A low chrF on a sample means meaning was lost somewhere; it is a corpus-level signal, not a
per-record verdict. It always uses the bundled Bergamot pt->en model, whatever the forward
backend was, and samples written records evenly so the number is reproducible.
"""

from __future__ import annotations

from pathlib import Path

from lhama.data.translate.backend import BackendSpec, build_backend
from lhama.data.translate.chunk import translate_values
from lhama.data.translate.config import TranslateConfig
from lhama.data.translate.glossary import Glossary
from lhama.data.translate.pool import TranslatorPool
from lhama.data.translate.records import Format, iter_records


def backtranslation_chrf(cfg: TranslateConfig, fmt: Format, written: list[int]) -> float | None:
    """chrF (sacrebleu) of back-translated gpt turns of ``cfg.backtranslate`` sampled records."""
    import sacrebleu

    if not written:
        return None
    step = max(1, len(written) // cfg.backtranslate)
    sample = set(written[::step][: cfg.backtranslate])
    sources = _gpt_values(cfg.input, fmt, sample)
    outputs = _gpt_values(cfg.output, fmt, sample, renumber=sorted(written))
    spec = BackendSpec("bergamot", direction="pt-en")
    workers = cfg.n_workers if cfg.backend == "bergamot" else spec.default_workers
    pool = TranslatorPool(lambda: build_backend(spec), workers, cfg.batch_size)
    try:
        back = translate_values(outputs, pool, Glossary())  # forward glossary terms mean nothing in pt
    finally:
        pool.close()
    return round(sacrebleu.corpus_chrf(back, [sources]).score, 2)


def _gpt_values(path: Path, fmt: Format, wanted: set[int], renumber: list[int] | None = None) -> list[str]:
    """gpt turn values of the wanted input indices; ``renumber`` maps output rows to them."""
    values = []
    for row, record, _ in iter_records(path, fmt):
        index = renumber[row] if renumber is not None else row
        if index in wanted:
            values += [t["value"] for t in record["conversations"] if t["from"] == "gpt"]
    return values
