"""Spoken pt-BR sentences for the audio branch's stage 1: Debian's ``espeak-ng`` reads real
Portuguese sentences aloud; each becomes a wav file and a record "<audio> O que foi dito?" ->
the sentence.

Sentences are deduplicated (case and spacing ignored) and a fixed share is held out by a hash
of the sentence, so a held-out sentence is never trained on, on every machine and every run.
A wav is named by a hash of (voice, sentence): running the builder again reuses what exists.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError
from lhama.files import atomic_write_text

TEXT_COLUMNS = ("pt_BR", "sentence")  # Tux Paint captions, AdMIRe sentences


@dataclass(frozen=True)
class SpeechConfig:
    voice: str = "pt-br"  # espeak-ng voice
    speed: int = 160  # words per minute (espeak-ng's default is 175)
    heldout_fraction: float = 0.15  # share of distinct sentences never trained on
    prompt: str = "<audio>\nO que foi dito?"  # the user turn; the answer is the sentence

    def __post_init__(self) -> None:
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")


@dataclass(frozen=True)
class SpeechSummary:
    train: int  # records in train.jsonl
    heldout: int  # records in heldout.jsonl
    synthesized: int  # wav files written by this run (the rest existed)


def read_sentences(paths: Iterable[str | Path]) -> list[str]:
    """Distinct sentences from TSV files (column ``pt_BR`` or ``sentence``), first spelling kept.

    Raises:
        DataError: a file is missing or has neither column.
    """
    seen: dict[str, str] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"sentence file not found: {path}")
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            column = next((c for c in TEXT_COLUMNS if c in (reader.fieldnames or [])), None)
            if column is None:
                raise DataError(f"{path} has no {' or '.join(TEXT_COLUMNS)} column")
            for row in reader:
                text = " ".join((row.get(column) or "").split())
                if text:
                    seen.setdefault(text.lower(), text)
    return list(seen.values())


def is_heldout(sentence: str, fraction: float) -> bool:
    """Stable hold-out choice: a hash of the normalised sentence, not its position."""
    digest = hashlib.sha256(" ".join(sentence.lower().split()).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < fraction * 10_000


def build_speech_set(
    sentences: Sequence[str],
    out_dir: str | Path,
    config: SpeechConfig,
    progress: Callable[[int, int], None] | None = None,
) -> SpeechSummary:
    """Write ``out_dir/audio/*.wav``, ``train.jsonl`` and ``heldout.jsonl`` (paths relative to
    ``out_dir``); ``progress(done, total)`` after each sentence.

    Raises:
        DataError: no sentences, espeak-ng missing, or espeak-ng fails on a sentence.
    """
    if not sentences:
        raise DataError("no sentences to speak")
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise DataError("espeak-ng is not installed; run `apt-get install -y espeak-ng`")
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[str]] = {"train": [], "heldout": []}
    written = 0
    for done, sentence in enumerate(sentences, 1):
        name = f"audio/{_wav_name(config, sentence)}"
        written += _speak(espeak, sentence, out / name, config)
        split = "heldout" if is_heldout(sentence, config.heldout_fraction) else "train"
        rows[split].append(json.dumps(_record(name, sentence, config), ensure_ascii=False))
        if progress:
            progress(done, len(sentences))
    for split, lines in rows.items():
        atomic_write_text(out / f"{split}.jsonl", "".join(line + "\n" for line in lines))
    return SpeechSummary(len(rows["train"]), len(rows["heldout"]), written)


def speak_files(
    sources: Iterable[str | Path],
    out_dir: str | Path,
    config: SpeechConfig,
    progress: Callable[[int, int], None] | None = None,
) -> SpeechSummary:
    """``lhama data speech``'s one call: the distinct sentences of the TSV ``sources``
    (:func:`read_sentences`) spoken into ``out_dir`` (:func:`build_speech_set`).

    Raises:
        DataError: a missing or unreadable source, no sentences, or espeak-ng missing or failing.
    """
    return build_speech_set(read_sentences(sources), out_dir, config, progress)


def _record(audio: str, sentence: str, config: SpeechConfig) -> dict:
    return {
        "id": Path(audio).stem,
        "audio": audio,
        "conversations": [{"from": "human", "value": config.prompt}, {"from": "gpt", "value": sentence}],
    }


def _wav_name(config: SpeechConfig, sentence: str) -> str:
    key = f"{config.voice}|{config.speed}|{sentence}".encode()
    return hashlib.sha256(key).hexdigest()[:16] + ".wav"


def _speak(espeak: str, sentence: str, target: Path, config: SpeechConfig) -> int:
    """Synthesize ``sentence`` into ``target`` (temp file + rename); 0 if it already exists."""
    if target.is_file():
        return 0
    tmp = target.with_name(f".{target.name}.tmp")
    # "--" ends the options: a sentence starting with "-" is text, not a flag.
    command = [espeak, "-v", config.voice, "-s", str(config.speed), "-w", str(tmp), "--", sentence]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise DataError(f"espeak-ng failed on {sentence[:40]!r}: {result.stderr.strip()[:200]}")
    os.replace(tmp, target)
    return 1
