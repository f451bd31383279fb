"""Speech into a model without an audio branch: Whisper-base transcription (plain vs lhama's
decoding settings) and the cascade (transcript -> the LM), on held-out spoken pt-BR.

Clips: espeak-ng reads (1) the sentences held out from the audio stage-1 data (the same hash
split as `lhama data speech`, 15%) and (2) the spoken requests below (written for this
benchmark, never trained on), in voices and speeds no training used (training: `pt-br` at 160
words/min; here `pt-br+f3` at 140 and `pt-br+m3` at 185, alternating).

    PYTHONPATH=src python benchmarks/speech.py --sentences ../shared/data/tuxpaint_ptbr/captions.tsv \
        ../shared/data/admire_pt/a_pt_train_targets.tsv ../shared/data/admire_pt/a_pt_dev_targets.tsv \
        --systems greedy,lhama,cascade,qa,ttft,beam --out docs/results/speech.jsonl

The fresh held-out set (``--fresh``, session 3): the 90 sentences of
benchmarks/data/speech_fresh_ptbr.tsv (60 requests with their key words, 30 statements and
questions), written after the Whisper tuning and checked against its texts (no sentence shares
half its content words with a training, dev or earlier test sentence), read in four voices no
training used and the tuning data step refuses (lhama.recipes.default.whisper_ptbr.FRESH_VOICES:
pt-br+m8 at 150, pt-br+Andrea at 170, pt-br+Henrique at 190, pt-br+steph at 135, in turn).

    PYTHONPATH=src python benchmarks/speech.py --fresh --systems lhama --whisper whisper-base runs/whisper-ptbr-e2/model

``--fresh-set benchmarks/data/speech_fresh2_ptbr.tsv`` (session 9): 90 more sentences written the
same way (60 requests, 30 statements and questions; none near a training, dev or earlier test
sentence, the requests, or the first fresh set), in the same voices, as the first set had been
read once per session 3-8.

Systems: ``greedy`` Whisper-base as run before (greedy, no fallback); ``beam`` beam 5 and
no-repeat 3 without fallback; ``lhama`` lhama's settings (lhama.model.transcribe defaults);
``cascade`` the model (``--model``, default lhama-default, loaded as `lhama chat` loads it)
answering "Transcreva o que foi dito." with the transcript in its prompt, as chat answers it
(since #28 session 4 that answer is the transcript itself: lhama.serve.verbatim) (cascade and qa reuse
the ``lhama`` transcripts: the same settings, not heard twice); ``ttft`` seconds from attaching
a 10-s voice note to the first answer token;
``qa`` the model answering "O que a pessoa pediu?" on the requests (right = every key word of
the request in the answer, accents and case ignored). WER = word edit distance / reference
words (lowercase, punctuation removed, accents kept); content recall = reference content words
(lhama.eval.metrics.content_words) found in the output / all of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import time
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

VOICES = (("pt-br+f3", 140), ("pt-br+m3", 185))  # training used pt-br at 160 only
TRANSCRIBE = "Transcreva o que foi dito."
ASK = "O que a pessoa pediu?"

# (request, key words a right answer names). Written for this benchmark; not in any training data.
REQUESTS = [
    ("Por favor, compre pão e leite quando voltar para casa.", ["pao", "leite"]),
    ("Você pode fechar a janela da sala? Está entrando muito vento.", ["janela"]),
    ("Me lembre de ligar para o dentista amanhã de manhã.", ["dentista"]),
    ("Preciso que você leve o cachorro para passear depois do almoço.", ["cachorro", "passear"]),
    ("Pode regar as plantas do jardim hoje à tarde?", ["plantas"]),
    ("Traga uma garrafa de água gelada da cozinha, por favor.", ["agua"]),
    ("Quero que você desligue a televisão antes de dormir.", ["televisao"]),
    ("Pode me emprestar o seu guarda-chuva? Vai chover hoje.", ["guarda"]),
    ("Compre três quilos de arroz e um pacote de feijão no mercado.", ["arroz", "feijao"]),
    ("Por favor, lave a louça que ficou na pia.", ["louca"]),
    ("Você pode buscar as crianças na escola às cinco horas?", ["criancas", "escola"]),
    ("Me mande o endereço da festa por mensagem.", ["endereco"]),
    ("Preciso que alguém conserte a torneira do banheiro.", ["torneira"]),
    ("Pode colocar a roupa para secar no varal?", ["roupa"]),
    ("Marque uma consulta com o médico para sexta-feira.", ["consulta"]),
    ("Desligue o forno daqui a vinte minutos, por favor.", ["forno"]),
    ("Traga o meu casaco azul que está no quarto.", ["casaco"]),
    ("Pode pagar a conta de luz até quarta-feira?", ["conta", "luz"]),
    ("Leia uma história para o bebê antes de ele dormir.", ["historia"]),
    ("Compre flores para o aniversário da vovó.", ["flores"]),
    ("Por favor, tire o lixo antes de sair de casa.", ["lixo"]),
    ("Você pode me ajudar a carregar estas caixas pesadas?", ["caixas"]),
    ("Abra a porta da garagem para eu entrar com o carro.", ["garagem"]),
    ("Faça um bolo de chocolate para a festa de domingo.", ["bolo", "chocolate"]),
    ("Ligue o ventilador, está muito calor aqui.", ["ventilador"]),
    ("Anote o número do telefone da pizzaria.", ["telefone"]),
    ("Guarde os brinquedos na caixa depois de brincar.", ["brinquedos"]),
    ("Pode trocar a lâmpada da cozinha que queimou?", ["lampada"]),
    ("Me acorde às seis horas amanhã, por favor.", ["acord", "seis"]),
    ("Alimente o gato antes de sair para o trabalho.", ["gato"]),
    ("Compre um presente para o meu irmão, ele faz anos hoje.", ["presente", "irmao"]),
    ("Devolva os livros na biblioteca esta semana.", ["livros", "biblioteca"]),
    ("Pode passar no correio e enviar este pacote?", ["correio", "pacote"]),
    ("Feche a torneira do tanque, a água está escorrendo.", ["torneira"]),
    ("Reserve uma mesa no restaurante para quatro pessoas.", ["mesa", "restaurante"]),
    ("Por favor, limpe os sapatos antes de entrar em casa.", ["sapatos"]),
]


@dataclass(frozen=True)
class Clip:
    text: str
    wav: Path
    keys: tuple[str, ...] = ()  # a request's key words (empty: a held-out caption sentence)
    voice: str = ""


def make_clips(sentences: list[str], out_dir: Path) -> list[Clip]:
    """Speak each sentence (cached by voice, speed and text) with alternating held-out voices."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [(s, ()) for s in sentences] + [(r, tuple(k)) for r, k in REQUESTS]
    clips = []
    for i, (text, keys) in enumerate(items):
        voice, speed = VOICES[i % len(VOICES)]
        wav = out_dir / (hashlib.sha256(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16] + ".wav")
        if not wav.is_file():
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), "--", text], check=True)
        clips.append(Clip(text, wav, keys, f"{voice}@{speed}"))
    return clips


FRESH = Path(__file__).resolve().parent / "data/speech_fresh_ptbr.tsv"
# session 9: a second fresh set (90 new sentences, same layout, voices and checks), the first being worn
FRESH2 = Path(__file__).resolve().parent / "data/speech_fresh2_ptbr.tsv"


def fresh_rows(path: Path = FRESH) -> list[dict]:
    """A fresh set's rows (``text``, ``kind``, ``keys``: a request's key words), in file order."""
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def fresh_clips(out_dir: Path, path: Path = FRESH) -> list[Clip]:
    """The fresh held-out set ``path``, spoken in :data:`FRESH_VOICES` in turn (cached like
    make_clips); statements get no key words (only requests are asked about)."""
    from lhama.recipes.default.whisper_ptbr import FRESH_VOICES, missing_variants

    if missing := missing_variants([v for v, _ in FRESH_VOICES]):
        raise SystemExit(f"espeak-ng lacks the voice variants {missing}: they would be read in plain pt-br")
    rows = fresh_rows(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, row in enumerate(rows):
        voice, speed = FRESH_VOICES[i % len(FRESH_VOICES)]
        wav = out_dir / (hashlib.sha256(f"{voice}|{speed}|{row['text']}".encode()).hexdigest()[:16] + ".wav")
        if not wav.is_file():
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), "--", row["text"]], check=True)
        keys = tuple(row["keys"].split()) if row["kind"] == "pedido" else ()
        clips.append(Clip(row["text"], wav, keys, f"{voice}@{speed}"))
    return clips


def breakdown(clips: list[Clip], texts: list[str]) -> None:
    """WER and content recall per voice, and how many request transcripts hold every key word."""
    from lhama.eval.metrics import word_error_rate

    for voice in dict.fromkeys(c.voice for c in clips):
        pairs = [(c.text, t) for c, t in zip(clips, texts) if c.voice == voice]
        refs, outs = [r for r, _ in pairs], [t for _, t in pairs]
        print(f"    {voice:<22} {len(pairs):>3} clips  WER {word_error_rate(refs, outs):.3f}  "
              f"content {content_recall(refs, outs):.3f}", flush=True)
    asked = [(c, t) for c, t in zip(clips, texts) if c.keys]
    if asked:
        print(f"    request transcripts with every key word: {sum(is_right(t, c.keys) for c, t in asked)}/{len(asked)}",
              flush=True)


def heldout_sentences(paths: list[Path]) -> list[str]:
    from lhama.recipes.default.speech import SpeechConfig, is_heldout, read_sentences

    fraction = SpeechConfig().heldout_fraction
    return [s for s in read_sentences(paths) if is_heldout(s, fraction)]


class CachedTranscriber:
    """The same transcription reused: the cascade systems read what ``lhama`` already heard."""

    def __init__(self, inner) -> None:
        self.inner, self.cache = inner, {}

    def transcribe(self, samples, progress=None):
        key = hashlib.sha1(samples.tobytes()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.inner.transcribe(samples, progress)
        return self.cache[key]


def whisper_texts(clips: list[Clip], transcriber, label: str) -> tuple[list[str], float, int]:
    from lhama.data.audio import load_speech

    texts, fallbacks, started = [], 0, time.perf_counter()
    for clip in clips:
        transcript = transcriber.transcribe(load_speech(clip.wav))
        texts.append(transcript.text)
        _trace(f"whisper {label}", clip, transcript.text)
        fallbacks += sum(a.tries > 1 for a in transcript.windows)
    return texts, time.perf_counter() - started, fallbacks


def model_answers(clips: list[Clip], loaded, question: str, transcriber) -> tuple[list[str], float]:
    from lhama.inference.generate import Completion, GenerationConfig
    from lhama.serve.session import ChatSession

    texts, started = [], time.perf_counter()
    for clip in clips:
        session = ChatSession(loaded, GenerationConfig(max_new_tokens=48), transcriber=transcriber)
        session.attach("audio", clip.wav)
        _trace("heard", clip, session.pending_notes[-1].removeprefix("Transcrição do áudio: ").strip('"'))
        done = [item for item in session.ask(question) if isinstance(item, Completion)][-1]
        texts.append(done.text.strip())
        _trace(question, clip, texts[-1])
    return texts, time.perf_counter() - started


def first_token_seconds(clips: list[Clip], loaded, source: str, out_dir: Path) -> tuple[float, float]:
    """A ~10-s voice note (requests joined) through a fresh transcriber: seconds from attaching
    it to the first answer token, and its length in seconds (Whisper opened beforehand)."""
    import numpy as np
    import soundfile

    from lhama.data.audio import SAMPLE_RATE, load_speech
    from lhama.inference.generate import GenerationConfig
    from lhama.model.transcribe import Transcriber
    from lhama.serve.session import ChatSession

    samples = np.concatenate([load_speech(c.wav) for c in clips if c.keys][:4])[: 10 * SAMPLE_RATE]
    note = out_dir / "nota-10s.wav"
    soundfile.write(note, samples, SAMPLE_RATE)
    transcriber = Transcriber(source)
    transcriber.transcribe(samples[:SAMPLE_RATE])  # open the model first: time the request, not the load
    session = ChatSession(loaded, GenerationConfig(max_new_tokens=16), transcriber=transcriber)
    started = time.perf_counter()
    session.attach("audio", note)
    next(iter(session.ask(ASK)))
    return time.perf_counter() - started, samples.size / SAMPLE_RATE


def _load(model: str):
    """As `lhama chat --model` loads it (the registry's weight format: int8 for lhama-default)."""
    from rich.console import Console

    from lhama.cli.common import load_with_progress

    return load_with_progress(model, Console(stderr=True))


def _trace(system: str, clip: Clip, output: str) -> None:
    """One line per clip as it is done (a long run cut short can still be scored from its log)."""
    print(json.dumps({"trace": system, "reference": clip.text, "output": output}, ensure_ascii=False), flush=True)


def spread(clips: list[Clip], count: int) -> list[Clip]:
    """``count`` clips evenly spaced over the list (captions and requests alike); 0: all."""
    if not count or count >= len(clips):
        return clips
    return [clips[round(i * (len(clips) - 1) / (count - 1))] for i in range(count)]


def content_recall(references: list[str], hypotheses: list[str]) -> float:
    from lhama.eval.metrics import content_words

    wanted = [content_words(r) for r in references]
    found = sum(len(w & content_words(h)) for w, h in zip(wanted, hypotheses))
    return found / max(1, sum(len(w) for w in wanted))


def fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()


def is_right(answer: str, keys: tuple[str, ...]) -> bool:
    return all(k in fold(answer) for k in keys)


def score(paths: list[Path]) -> None:
    """WER and content recall of every system in the ``--out`` files of a run split into jobs."""
    from lhama.eval.metrics import word_error_rate

    rows = [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines()]
    for system in dict.fromkeys(k for row in rows for k in row if k not in ("reference", "wav_voice")):
        done = [r for r in rows if system in r]
        clips = [Clip(r["reference"], Path(), (), r["wav_voice"]) for r in done]
        texts = [r[system] for r in done]
        print(f"{system}: {len(done)} clips, WER {word_error_rate([c.text for c in clips], texts):.3f}, "
              f"content {content_recall([c.text for c in clips], texts):.3f}")
        breakdown(clips, texts)


def why(paths: list[Path], near: float = 0.7) -> None:
    """What fails in ``qa`` (the ``--out`` files of a ``--fresh`` run): for each wrong answer, the
    key words its transcript (``lhama``) lacks, each a *near miss* (a transcript word with
    ``difflib`` similarity >= ``near``) or *lost*; then the counts."""
    from difflib import SequenceMatcher

    keys = {r["text"]: r["keys"].split() for path in (FRESH, FRESH2) for r in fresh_rows(path) if r["kind"] == "pedido"}
    rows = [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines()]
    asked = [r for r in rows if "qa" in r and r["reference"] in keys]
    kinds = {"near": [], "lost": []}
    for row in (r for r in asked if not is_right(r["qa"], keys[r["reference"]])):
        words = [w.strip(".,?!") for w in fold(row["lhama"]).split()] or [""]
        missing = [k for k in keys[row["reference"]] if k not in fold(row["lhama"])]
        for key in missing:
            best = max(words, key=lambda w: SequenceMatcher(None, key, w).ratio())
            kinds["near" if SequenceMatcher(None, key, best).ratio() >= near else "lost"].append(f"{key}->{best}")
        print(f"[{row['wav_voice']}] missing {missing or '(none: the LM dropped it)'}\n  said:  {row['reference']}\n"
              f"  heard: {row['lhama']}\n  answer: {row['qa']}")
    right = sum(is_right(r["qa"], keys[r["reference"]]) for r in asked)
    heard = sum(all(k in fold(r["lhama"]) for k in keys[r["reference"]]) for r in asked)
    print(f"right {right}/{len(asked)}; transcript holds every key word {heard}/{len(asked)}")
    for kind, found in kinds.items():
        print(f"{kind} ({len(found)}): {', '.join(found)}")


def main() -> None:
    from lhama.eval.metrics import word_error_rate
    from lhama.model.transcribe import WHISPER_GREEDY, TranscribeConfig, Transcriber

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=Path, nargs="+", help="the stage-1 sentence TSVs (not with --fresh)")
    parser.add_argument("--fresh", action="store_true", help="the fresh held-out set (90 clips, four new voices)")
    parser.add_argument("--fresh-set", type=Path, default=FRESH, help="with --fresh: its sentences "
                        "(benchmarks/data/speech_fresh2_ptbr.tsv: session 9's new set)")
    parser.add_argument("--systems", default="greedy,beam,lhama")
    parser.add_argument("--model", default="lhama-default", help="model for cascade/qa/ttft (name or directory)")
    parser.add_argument("--whisper", nargs="+", default=["whisper-base"],
                        help="Whisper models (name or directory): `lhama` runs each; the others use the first")
    parser.add_argument("--wav-dir", type=Path, default=Path("/tmp/lhama-speech-bench"))
    parser.add_argument("--offset", type=int, default=0, help="skip the first clips (split a long run into jobs)")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--score", type=Path, nargs="+", help="only score the --out files of split runs, together")
    parser.add_argument("--why", type=Path, nargs="+", help="only list what fails in `qa` in these --out files")
    parser.add_argument("--requests-only", action="store_true", help="only the 36 spoken requests")
    parser.add_argument("--cascade-clips", type=int, default=80, help="cascade on this many clips, evenly spaced (0: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.score:
        return score(args.score)
    if args.why:
        return why(args.why)
    if not args.fresh and not args.sentences:
        parser.error("--sentences is required (or --fresh)")
    clips = (fresh_clips(args.wav_dir, args.fresh_set) if args.fresh
             else make_clips(heldout_sentences(args.sentences), args.wav_dir))
    clips = [c for c in clips if c.keys] if args.requests_only else clips
    clips = clips[args.offset: args.offset + args.limit] if args.limit else clips[args.offset:]
    refs = [c.text for c in clips]
    configs = {"greedy": WHISPER_GREEDY, "beam": replace(TranscribeConfig(), temperatures=(0.0,))}
    print(f"{len(clips)} clips ({sum(bool(c.keys) for c in clips)} requests); load average {os.getloadavg()[0]:.1f}")
    print(f"{'system':<10} {'clips':>5} {'WER':>6} {'content':>8} {'s/clip':>7} {'fallback':>8} {'QA right':>9}")
    rows, loaded, chosen = {}, None, clips
    heard = CachedTranscriber(Transcriber(args.whisper[0]))  # lhama's settings, shared by cascade and qa
    systems = [f"lhama:{w}" if s == "lhama" and len(args.whisper) > 1 else s
               for s in args.systems.split(",") for w in (args.whisper if s == "lhama" else [None])]
    for system in systems:
        fallbacks, right = "", ""
        if system in ("cascade", "qa", "ttft") and loaded is None:
            loaded = _load(args.model)
        if system == "lhama" or system == f"lhama:{args.whisper[0]}":
            texts, seconds, fallbacks = whisper_texts(clips, heard, system)
        elif system.startswith("lhama:"):
            texts, seconds, fallbacks = whisper_texts(clips, Transcriber(system.removeprefix("lhama:")), system)
        elif system in configs:
            texts, seconds, fallbacks = whisper_texts(clips, Transcriber(args.whisper[0], configs[system]), system)
        elif system == "cascade":
            chosen = spread(clips, args.cascade_clips)
            texts, seconds = model_answers(chosen, loaded, TRANSCRIBE, heard)
        elif system == "qa":
            asked = [c for c in clips if c.keys]
            texts, seconds = model_answers(asked, loaded, ASK, heard)
            right = f"{sum(is_right(t, c.keys) for t, c in zip(texts, asked))}/{len(asked)}"
        elif system == "ttft":
            seconds, length = first_token_seconds(clips, loaded, args.whisper[0], args.wav_dir)
            print(f"time to first token, {length:.1f}-s voice note: {seconds:.1f} s", flush=True)
            continue
        else:
            raise SystemExit(f"unknown system {system!r}")
        base = {"qa": [c.text for c in clips if c.keys], "cascade": [c.text for c in chosen]}.get(system, refs)
        wer = word_error_rate(base, texts) if system != "qa" else float("nan")
        print(f"{system:<10} {len(texts):>5} {wer:>6.3f} {content_recall(base, texts):>8.3f} "
              f"{seconds / len(texts):>7.2f} {fallbacks!s:>8} {right:>9}", flush=True)
        if system != "qa":
            breakdown(chosen if system == "cascade" else clips, texts)
        rows[system] = dict(zip(base, texts))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.out:
        lines = [json.dumps({"reference": c.text, "wav_voice": c.voice,
                             **{n: t[c.text] for n, t in rows.items() if c.text in t}}, ensure_ascii=False)
                 for c in clips]
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
