"""Text in images, read by Debian's ``tesseract`` (apt ``tesseract-ocr`` + ``tesseract-ocr-por``).

:func:`read_text` runs the ``tesseract`` command on one image (page segmentation with
orientation detection, so a photo turned 90 degrees still reads) and keeps only words it is
confident about; an image without enough confident letters gives ``""``, so text-free or
unreadable images add nothing to a prompt. :func:`ocr_note` is the Portuguese line a chat
prompt gets next to the image.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
from dataclasses import dataclass

from PIL import Image

from lhama.errors import DataError

NOTE_PREFIX = "Texto na imagem:"
SURE = 80.0  # mean word confidence above which an upright reading is not tried turned


@dataclass(frozen=True)
class OcrConfig:
    lang: str = "por"  # tesseract language model (tesseract-ocr-por)
    psm: int = 1  # page segmentation: automatic, with orientation and script detection
    min_confidence: float = 50.0  # words tesseract scores lower (0-100) are dropped
    min_chars: int = 3  # fewer confident letters and digits than this: no text
    min_side: int = 600  # smaller images are upscaled first (tesseract wants ~20 px letters)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class OcrResult:
    text: str  # confident words, one line per text line; "" when none
    confidence: float  # mean confidence of the kept words (0 when none)
    seconds: float  # wall time of the tesseract run


def tesseract_available(lang: str = "por") -> bool:
    """True when the ``tesseract`` command is installed with the ``lang`` model."""
    if shutil.which("tesseract") is None:
        return False
    try:
        listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return lang in listed.stdout.split()


def read_text(image: Image.Image, config: OcrConfig = OcrConfig()) -> OcrResult:
    """The confident text in ``image``. A tall image read poorly upright is also read turned
    both ways (a sign photographed on its side), and the best-scored reading is kept.

    Raises:
        DataError: tesseract (or its language model) is missing, or it failed on the image.
    """
    if shutil.which("tesseract") is None:
        raise DataError("the tesseract command is not installed; install the Debian packages tesseract-ocr "
                        "and tesseract-ocr-por (apt-get install tesseract-ocr tesseract-ocr-por)")
    started = time.perf_counter()
    best = _tesseract(image, config)
    if image.height > 1.5 * image.width and best[1] < SURE:
        for angle in (270, 90):
            turned = _tesseract(image.rotate(angle, expand=True), config)
            best = max(best, turned, key=lambda reading: sum(c.isalnum() for c in reading[0]) * reading[1])
    return OcrResult(best[0], best[1], time.perf_counter() - started)


def _tesseract(image: Image.Image, config: OcrConfig) -> tuple[str, float]:
    """One tesseract run: the confident lines and their mean confidence."""
    command = ["tesseract", "stdin", "stdout", "-l", config.lang, "--psm", str(config.psm), "tsv"]
    try:
        done = subprocess.run(command, input=_png(image, config.min_side), capture_output=True,
                              timeout=config.timeout_s)
    except subprocess.TimeoutExpired:
        raise DataError(f"tesseract took longer than {config.timeout_s:.0f} s on one image") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise DataError(f"tesseract failed on the image: {reason[0]}")
    return _confident_lines(done.stdout.decode("utf-8", errors="replace"), config)


def ocr_note(text: str) -> str:
    """The line a prompt gets for an image's text; ``""`` when there is none."""
    return f"{NOTE_PREFIX} {' | '.join(text.splitlines())}" if text.strip() else ""


def _png(image: Image.Image, min_side: int) -> bytes:
    gray = image.convert("L")
    side = min(gray.size)
    if 0 < side < min_side:
        scale = min_side / side
        gray = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    gray.save(buffer, format="PNG")
    return buffer.getvalue()


def _confident_lines(tsv: str, config: OcrConfig) -> tuple[str, float]:
    """Lines of the words tesseract's TSV scores at least ``min_confidence``, and their mean score."""
    lines: dict[tuple[str, str, str, str], list[str]] = {}
    scores: list[float] = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        word = (row.get("text") or "").strip()
        try:
            confidence = float(row.get("conf") or -1)
        except ValueError:
            continue
        if word and confidence >= config.min_confidence:
            key = (row["page_num"], row["block_num"], row["par_num"], row["line_num"])
            lines.setdefault(key, []).append(word)
            scores.append(confidence)
    text = "\n".join(" ".join(words) for words in lines.values())
    if sum(ch.isalnum() for ch in text) < config.min_chars:
        return "", 0.0
    return text, sum(scores) / len(scores)


def image_note(image: Image.Image, enabled: bool | None = None, config: OcrConfig = OcrConfig()) -> str:
    """The OCR note a prompt gets for ``image``: ``""`` when OCR is off (``enabled`` None: on
    whenever tesseract with ``config.lang`` is installed) or the image has no confident text.

    Raises:
        DataError: tesseract failed on the image.
    """
    if enabled is False or (enabled is None and not tesseract_available(config.lang)):
        return ""
    return ocr_note(read_text(image, config).text)
