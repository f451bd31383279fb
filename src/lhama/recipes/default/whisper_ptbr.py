"""Training windows for tuning Whisper-base's decoder to synthetic pt-BR speech: espeak-ng
reads pt-BR sentences in many voices, speeds and pitches; the sentences are packed into 30-s
windows, each window is encoded once by Whisper's (frozen) encoder and its states are stored.

What is held out, and how (so the benchmark's clips are never trained on):

* **voices**: ``pt-br+f3`` and ``pt-br+m3`` (benchmarks/speech.py) and the fresh held-out
  set's ``m8``, ``Andrea``, ``Henrique`` and ``steph`` (:data:`FRESH_VOICES`) are never used
  here: :func:`draw_windows` refuses any voice with one of those variants, in any language;
  the :data:`DEV_VOICES` read the dev-voices split only (never mixed with training voices);
* **texts**: the shipped split (``whisper_ptbr_texts.tsv``, built by :func:`split_texts` and
  committed before training) drops every sentence of the benchmark's 36 spoken requests, any
  sentence sharing half of its content words with one, and every sentence the stage-1 speech
  split holds out (:func:`lhama.recipes.default.speech.is_heldout`).

A window holds 1-4 sentences of one voice (0.3-0.8 s of silence between them); half the
windows get white noise at 15-40 dB SNR. Everything is drawn from a seeded generator, so a
rebuild gives the same windows. Shards (``shard-00000.pt``: fp16 encoder states + texts) are
written one by one (temp + rename); a rerun skips the shards that exist.
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lhama.data.audio import SAMPLE_RATE, AudioSpec, load_speech, log_mel
from lhama.errors import DataError
from lhama.files import atomic_open
from lhama.recipes.default.speech import is_heldout

TEXTS = Path(__file__).with_name("whisper_ptbr_texts.tsv")  # split \t text, committed
# The fresh held-out set (benchmarks/data/speech_fresh_ptbr.tsv, session 3): voice, words/min.
# Variant names are espeak-ng's file names (case matters: an unknown variant silently falls back
# to plain pt-br, a training voice; see :func:`missing_variants`).
FRESH_VOICES = (("pt-br+m8", 150), ("pt-br+Andrea", 170), ("pt-br+Henrique", 190), ("pt-br+steph", 135))
HELDOUT_VOICES = ("pt-br+f3", "pt-br+m3", *(v for v, _ in FRESH_VOICES))  # never trained on
TRAIN_VOICES = ("pt-br", "pt-br+m1", "pt-br+m2", "pt-br+m4", "pt-br+m5", "pt-br+m6", "pt-br+m7",
                "pt-br+f1", "pt-br+f2", "pt-br+f4", "pt-br+f5", "pt-br+klatt", "pt-br+klatt2",
                "pt-br+klatt4", "pt-br+iven", "pt-br+linda")
# Session 5: more espeak-ng variants for the windows added by ``data --more`` (never a held-out
# voice, nor one that reads exactly like a training voice: caleb and klatt6 sound as klatt), and
# four voices kept for the dev-voices split only (:data:`DEV_VOICES`: never trained on, not in the
# fresh set): the dev figure for voices the adapter never heard.
MORE_VOICES = tuple(f"pt-br+{v}" for v in (
    "adam", "Alex", "Andy", "Annie", "antonio", "aunty", "benjamin", "boris", "david", "Denis", "ed", "edward",
    "Gene", "gustave", "Hugo", "iven2", "iven3", "Jacky", "john", "Lee", "Marco", "Mario", "max", "Michael",
    "michel", "miguel", "Mike", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro",
    "shelby", "travis", "victor", "zac", "anika", "grandma", "grandpa", "klatt3", "klatt5"))
DEV_VOICES = ("pt-br+Diogo", "pt-br+Alicia", "pt-br+marcelo", "pt-br+belinda")
Progress = Callable[[int, int], None]
Encoder = Callable[[np.ndarray], dict[str, torch.Tensor]]  # window samples -> named (1500, D) float16 tensors


@dataclass(frozen=True)
class WindowConfig:
    """How training windows are drawn."""

    windows: int = 480  # windows in the training set
    max_sentences: int = 4  # sentences per window: 1 .. this
    speeds: tuple[int, int] = (120, 210)  # espeak-ng words per minute, uniform
    pitches: tuple[int, int] = (25, 75)  # espeak-ng -p (0-99, 50 is the voice's own)
    noise_share: float = 0.5  # windows with white noise added
    snr_db: tuple[float, float] = (15.0, 40.0)
    window_seconds: float = 28.0  # packed speech stays under Whisper's 30-s window
    shard_size: int = 16  # windows per shard file
    seed: int = 0
    first_shard: int = 0  # the first shard's number (windows added to a split go after its shards)

    def __post_init__(self) -> None:
        if self.windows < 1 or self.max_sentences < 1 or self.shard_size < 1 or self.first_shard < 0:
            raise ValueError("windows, max_sentences and shard_size must be >= 1, first_shard >= 0")


@dataclass(frozen=True)
class Window:
    """One training window: who reads which sentences, how fast, at what pitch, with what noise."""

    voice: str
    speed: int
    pitch: int
    sentences: tuple[str, ...]
    snr_db: float | None  # None: clean

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def content_set(text: str) -> set[str]:
    """Lowercased words of 4+ letters (accents kept): what "shares content" compares."""
    words = "".join(c if c.isalpha() else " " for c in text.lower()).split()
    return {w for w in words if len(w) >= 4}


def near(text: str, others: Iterable[set[str]], share: float = 0.5) -> bool:
    """Whether ``text`` shares at least ``share`` of the content words of the longer of the two
    with one of ``others`` (a near copy or a paraphrase of it)."""
    mine = content_set(text)
    return any(mine and other and len(mine & other) >= share * max(len(mine), len(other)) for other in others)


def split_texts(sentences: Sequence[str], heldout: Sequence[str], dev: int = 30, seed: int = 0) -> list[tuple[str, str]]:
    """(split, text) rows: sentences that are not held out (see the module doc), deduplicated,
    ``dev`` of them (seeded) as "dev", the rest "train"; held-out texts as "test" rows last."""
    blocked = [content_set(h) for h in heldout]
    seen, kept = {" ".join(h.lower().split()) for h in heldout}, []
    for sentence in sentences:
        key = " ".join(sentence.lower().split())
        if key in seen or is_heldout(sentence, 0.15) or near(sentence, blocked):
            continue
        seen.add(key)
        kept.append(sentence)
    chosen = set(random.Random(seed).sample(range(len(kept)), min(dev, len(kept))))
    rows = [("dev" if i in chosen else "train", s) for i, s in enumerate(kept)]
    return rows + [("test", h) for h in heldout]


def read_texts(split: str, path: Path = TEXTS) -> list[str]:
    """The texts of one split of the committed table.

    Raises:
        DataError: the table is missing or the split is empty.
    """
    if not path.is_file():
        raise DataError(f"the Whisper tuning texts are missing: {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
                 if row["split"] == split]
    if not texts:
        raise DataError(f"{path} has no {split!r} texts")
    return texts


def _variant(voice: str) -> str:
    """The espeak-ng variant of ``pt-br+m8`` (``m8``), lowercased; the language for a plain voice."""
    return voice.partition("+")[2].lower() or voice.lower()


def missing_variants(voices: Iterable[str]) -> list[str]:
    """The voices whose ``+variant`` espeak-ng does not have (it would read them in plain pt-br).

    Raises:
        DataError: espeak-ng is not installed.
    """
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise DataError("espeak-ng is not installed; run `apt-get install -y espeak-ng`")
    listing = subprocess.run([espeak, "--voices=variant"], capture_output=True, text=True, check=False).stdout
    files = {line.partition("!v/")[2].split()[0] for line in listing.splitlines() if "!v/" in line}
    return [v for v in voices if "+" in v and v.partition("+")[2] not in files]


def draw_windows(texts: Sequence[str], config: WindowConfig, voices: Sequence[str] = TRAIN_VOICES) -> list[Window]:
    """``config.windows`` windows over ``texts`` (each text used before any repeats).

    Raises:
        DataError: a voice is one of :data:`HELDOUT_VOICES` (in any spelling), or ``voices`` mixes
            a :data:`DEV_VOICES` voice with others (the dev-voices split is drawn on its own).
    """
    if any(_variant(v) in {_variant(h) for h in HELDOUT_VOICES} for v in voices):
        raise DataError(f"the held-out voices {HELDOUT_VOICES} must not be used for training")
    dev = {_variant(d) for d in DEV_VOICES}
    if any(_variant(v) in dev for v in voices) and not all(_variant(v) in dev for v in voices):
        raise DataError(f"the dev voices {DEV_VOICES} must not be used for training")
    rng = random.Random(config.seed)
    order: list[str] = []
    windows = []
    for _ in range(config.windows):
        count = rng.randint(1, config.max_sentences)
        while len(order) < count:
            order += rng.sample(list(texts), len(texts))
        sentences, order = tuple(order[:count]), order[count:]
        snr = rng.uniform(*config.snr_db) if rng.random() < config.noise_share else None
        windows.append(Window(rng.choice(list(voices)), rng.randint(*config.speeds), rng.randint(*config.pitches),
                              sentences, snr))
    return windows


def speak(window: Window, config: WindowConfig, seed: int) -> tuple[np.ndarray, str]:
    """The window's audio (mono 16 kHz) and its text: each sentence spoken, joined by short
    silences; sentences that would run past ``config.window_seconds`` are left out (the first
    one is always kept, cut if it must be).

    Raises:
        DataError: espeak-ng is missing or fails.
    """
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise DataError("espeak-ng is not installed; run `apt-get install -y espeak-ng`")
    rng = np.random.default_rng(seed)
    limit = int(config.window_seconds * SAMPLE_RATE)
    parts, said = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, sentence in enumerate(window.sentences):
            wav = Path(tmp) / f"{i}.wav"
            command = [espeak, "-v", window.voice, "-s", str(window.speed), "-p", str(window.pitch), "-w", str(wav),
                       "--", sentence]
            if subprocess.run(command, capture_output=True, check=False).returncode != 0 or not wav.is_file():
                raise DataError(f"espeak-ng failed on {sentence[:40]!r} with voice {window.voice}")
            speech = load_speech(wav)
            if said and sum(p.size for p in parts) + speech.size > limit:
                break
            parts += [speech, np.zeros(int(rng.uniform(0.3, 0.8) * SAMPLE_RATE), np.float32)]
            said.append(sentence)
    samples = np.concatenate(parts)[:limit]
    if window.snr_db is not None:
        power = float(np.mean(samples**2)) / 10 ** (window.snr_db / 10)
        samples = samples + rng.normal(0.0, np.sqrt(power), samples.size).astype(np.float32)
    return samples.astype(np.float32), " ".join(said)


def encode(whisper, samples: np.ndarray) -> torch.Tensor:
    """Whisper's encoder states of one window padded to 30 s, as :class:`Transcriber` encodes
    it at inference: (1500, d_model) float16."""
    import ctranslate2

    mel = log_mel(samples, AudioSpec(n_mels=whisper.n_mels, n_frames=3000))[None, :-1].numpy()
    states = whisper.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True)
    return torch.from_numpy(np.array(states)[0]).to(torch.float16)


def build_windows(whisper, windows: Sequence[Window], out_dir: str | Path, config: WindowConfig,
                  progress: Progress | None = None, encoder: Encoder | None = None) -> list[Path]:
    """Speak and encode ``windows`` into ``out_dir/shard-NNNNN.pt`` (``states`` (n, 1500, D)
    float16, ``texts``); shards that exist are kept (a rerun resumes). Returns every shard path.
    ``encoder`` replaces :func:`encode` (``whisper`` is then unused): its named tensors are stored
    instead of ``states`` (session 6: the encoder's last-layer "mid" states).

    Raises:
        DataError: espeak-ng is missing or fails.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for first in range(0, len(windows), config.shard_size):
        path = out / f"shard-{config.first_shard + first // config.shard_size:05d}.pt"
        shards.append(path)
        if not path.is_file():
            spoken = [speak(w, config, config.seed * 1_000_003 + first + i)
                      for i, w in enumerate(windows[first:first + config.shard_size])]
            encoded = [encoder(samples) if encoder else {"states": encode(whisper, samples)} for samples, _ in spoken]
            tensors = {key: torch.stack([e[key] for e in encoded]) for key in encoded[0]}
            with atomic_open(path, "wb") as handle:
                torch.save({**tensors, "texts": [text for _, text in spoken]}, handle)
        if progress:
            progress(min(first + config.shard_size, len(windows)), len(windows))
    return shards
