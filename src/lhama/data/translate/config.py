"""Settings of a translation run and the summary it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lhama.data.translate.backend import BackendName, BackendSpec


@dataclass(frozen=True)
class TranslateConfig:
    """One ``lhama data translate`` run.

    ``workers=0`` picks the backend's default (2 Bergamot models, 1 seq2seq model that torch
    spreads over the cores). ``chunk_records`` records are translated together and journaled
    together: a resume redoes at most one chunk.
    """

    input: Path
    output: Path
    backend: BackendName = "bergamot"
    model: Path | None = None  # seq2seq: local MarianMT / NLLB / M2M100 directory
    src_lang: str | None = None  # NLLB/M2M100 source code, e.g. eng_Latn
    tgt_lang: str | None = None  # NLLB/M2M100 target code, e.g. por_Latn
    workers: int = 0
    glossary: Path | None = None
    report: Path | None = None
    backtranslate: int = 0  # records sampled for pt->en back-translation chrF (0: off)
    chunk_records: int = 16
    batch_size: int = 8  # sentences per backend call

    def __post_init__(self) -> None:
        if self.workers < 0 or self.chunk_records < 1 or self.batch_size < 1 or self.backtranslate < 0:
            raise ValueError("workers, backtranslate must be >= 0; chunk_records, batch_size >= 1")

    @property
    def spec(self) -> BackendSpec:
        return BackendSpec(self.backend, self.model, self.src_lang, self.tgt_lang)

    @property
    def n_workers(self) -> int:
        return self.workers or self.spec.default_workers

    @property
    def journal_path(self) -> Path:
        return self.output.with_name(self.output.name + ".journal")

    @property
    def rejected_path(self) -> Path:
        return self.output.with_name(self.output.name + ".rejected.jsonl")


@dataclass(frozen=True)
class TranslateSummary:
    """What a run did. ``records_in == written + rejected`` always holds."""

    records_in: int
    written: int
    rejected: int
    resumed: int  # records found already finished in the journal
    flagged: dict[str, int] = field(default_factory=dict)  # check name -> records
    rejected_by: dict[str, int] = field(default_factory=dict)  # reason kind -> records
    words: int = 0  # source words translated in this process
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    backtranslation_chrf: float | None = None
    output: Path | None = None
    rejected_file: Path | None = None
    report: Path | None = None

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0
