"""5-way caption retrieval, issue #26 session 10: can the LM use the image note better? (dev only)

``lhama eval retrieval`` ranks each picture's own caption against 4 others by the LM's summed
log-probability of the caption as the answer to "Descreva a imagem brevemente.", the picture
shown as the labeler's note (``lhama.eval.retrieval``). This script asks, on a DEV split of the
Tux Paint pictures outside the held-out split, whether another note (more of what the
classifier knows, more views of the picture) or the prompt chat really sends (lhama's system
prompt, the OCR line) ranks better. The rule, the split and the candidates are fixed in
``docs/results/retrieval_s10_rule.md``, committed before any score.

    python benchmarks/retrieval_s10.py split                      # writes the dev split (once)
    /work/team/heavy -- python benchmarks/retrieval_s10.py tower  # the labeler's views of each dev picture
    /work/team/heavy -- python benchmarks/retrieval_s10.py score  # every candidate; docs/results/retrieval_s10_dev.json

The dev pictures' own stamps are in the shipped names head (it was built from the Tux Paint
stamps outside the held-out split), so each dev picture is named by the head *without* the
pictures that are it: same stamp key, same file stem, or head similarity >= 0.90 (the leakage
rule of session 3). Scores are cached per (system prompt, user turn, caption) in ``WORK``; a
candidate whose note is the same as another's costs nothing more. Scoring reuses the prompt's
keys/values across the 5 captions (``Scorer``); ``score --check N`` compares it with
``lhama.eval.scoring.score_continuations`` on N pictures.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tuxpaint_ptbr"
HELDOUT = ROOT / "data" / "tuxpaint" / "heldout.txt"
DEV_SPLIT = ROOT / "data" / "tuxpaint" / "retrieval_dev_s10.txt"
WORK = Path("/tmp/26b")
DEV_SIZE = 200
ALL_VIEWS = ("squash", "pad", "squash_flip", "pad_flip", "fit", "fit_flip")
SHIPPED_VIEWS = ("squash", "fit", "fit_flip")
SAME_PICTURE = 0.90  # head similarity at or above which a head picture counts as the dev picture itself
EXTRA_CLASS_MIN, EXTRA_HEAD_MIN = 0.05, 0.5  # the "more names" forms: weakest ImageNet class / head picture listed


@dataclass(frozen=True)
class Candidate:
    """One way of showing a picture: its note form (``shipped``, ``more``, ``list``), the views
    averaged, whether lhama's system prompt and the OCR line are in the prompt (as chat sends
    them), or no picture at all (``form`` = ``none``: the LM's prior)."""

    form: str
    views: tuple[str, ...] = SHIPPED_VIEWS
    system: bool = False
    ocr: bool = False


CANDIDATES = {
    "lm_alone": Candidate("none"),
    "shipped": Candidate("shipped"),
    "views6": Candidate("shipped", ALL_VIEWS),
    "more": Candidate("more"),
    "list": Candidate("list"),
    "more_views6": Candidate("more", ALL_VIEWS),
    "chat_lm_alone": Candidate("none", system=True),
    "chat_shipped": Candidate("shipped", system=True),
    "chat_shipped_ocr": Candidate("shipped", system=True, ocr=True),
    "chat_more": Candidate("more", system=True),
}
NOTE_CANDIDATES = ("views6", "more", "list", "more_views6")  # change lhama-default's note (rule part A)


def read_rows() -> list[dict[str, str]]:
    with (DATA / "captions.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def dev_files(rows: list[dict[str, str]], heldout: set[str], size: int = DEV_SIZE) -> list[str]:
    """The dev split: of the pictures outside the held-out split, the ``size`` whose file name's
    sha256 is smallest (a fixed draw no score can steer), in file order."""
    pool = [r["file"] for r in rows if r["file"] not in heldout and r["pt_BR"].strip()]
    return sorted(sorted(pool, key=lambda f: hashlib.sha256(f.encode()).hexdigest())[:size])


def stamp_key(row: dict[str, str]) -> str:
    """A shared picture's Tux Paint stamp key (the names head's ``key``): category/stem."""
    return f"{row['category']}/{row['file'].split('__', 1)[1].rsplit('.', 1)[0]}"


def own_pictures(head, key: str, similarity: torch.Tensor) -> torch.Tensor:
    """(pictures,) True where a head picture is the dev picture itself: its key, its file stem in
    another folder, or a similarity of at least :data:`SAME_PICTURE`."""
    stem = key.rsplit("/", 1)[-1]
    same = torch.tensor([e.key == key or e.key.rsplit("/", 1)[-1] == stem for e in head.entries])
    return same | (similarity >= SAME_PICTURE)


def head_ranking(head, pooled: torch.Tensor, key: str) -> list[tuple[object, float]]:
    """The head's pictures by similarity to ``pooled``, the dev picture's own left out."""
    query = torch.nn.functional.normalize(head._project(pooled.float()) - head.mean, dim=-1)
    similarity = head._unit @ query
    similarity = similarity.masked_fill(own_pictures(head, key, similarity), -2.0)
    order = similarity.argsort(descending=True)
    return [(head.entries[int(i)], float(similarity[i])) for i in order[:20] if similarity[i] > -2.0]


def note_for(candidate: Candidate, probs: torch.Tensor, ranking: list, labeler) -> str:
    """The note ``candidate`` shows for one picture: ``probs`` (classes,) averaged over its views,
    ``ranking`` the names head's pictures best first (own left out)."""
    from lhama.model.labeler import describe

    nearest = ranking[0] if ranking else None
    shipped = describe(probs, labeler.names, labeler.config, labeler.kinds, nearest)
    if candidate.form == "shipped":
        return shipped
    classes = [(labeler.names[int(c)], float(p)) for p, c in zip(*probs.topk(min(5, len(probs)))) if p >= EXTRA_CLASS_MIN]
    pictures = _distinct([e.name for e, s in ranking if s >= EXTRA_HEAD_MIN])[:2]
    if candidate.form == "list":
        listed = ", ".join(f"{n} ({p:.0%})" for n, p in classes[:3]) or "nenhuma"
        tail = f"; parecida com: {', '.join(pictures)}" if pictures else ""
        return f"[Imagem anexada; classes prováveis: {listed}{tail}.]"
    extra = [n for n in _distinct([n for n, _ in classes[:3]] + pictures) if n not in shipped]
    return shipped if not extra else f"{shipped[:-1]} Outras possibilidades: {', '.join(extra)}.]"


def _distinct(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


class Scorer:
    """Summed log-probability of a continuation after a chat prompt, as
    ``lhama.eval.scoring.score_continuations`` computes it, one request at a time on one
    DynamicCache: the prefix the previous request shares is not recomputed."""

    def __init__(self, loaded) -> None:
        from transformers import DynamicCache

        self.loaded, self.cache, self.ids = loaded, DynamicCache(), []

    @torch.no_grad()
    def score(self, messages: tuple[dict, ...], continuation: str) -> float:
        from transformers import DynamicCache

        from lhama.eval.scoring import ScoreRequest, _encode

        prompt, cont = _encode(self.loaded, ScoreRequest(messages, continuation))
        full = prompt + cont
        keep = 0
        while keep < min(len(self.ids), len(prompt) - 1) and self.ids[keep] == full[keep]:
            keep += 1
        extra = self.cache.get_seq_length() - keep
        if keep == 0:
            self.cache = DynamicCache()
        elif extra > 0:
            self.cache.crop(-extra)  # this transformers crops by how many positions to drop
        out = self.loaded.model(torch.tensor([full[keep:]]), past_key_values=self.cache, use_cache=True)
        self.ids = full
        logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)  # (len(full) - keep, V)
        rows = torch.arange(len(prompt) - 1 - keep, len(full) - 1 - keep)
        return float(logprobs[rows, torch.tensor(cont)].sum())


def messages_for(candidate: Candidate, note: str, ocr_line: str, system_prompt: str) -> tuple[dict, ...]:
    """The prompt ``candidate`` scores a caption after: as ``lhama eval retrieval`` builds it, or
    as chat builds it (system prompt; the note, the OCR line, then the question)."""
    from lhama.eval.retrieval import PROMPT

    lines = [] if candidate.form == "none" else [note] + ([ocr_line] if candidate.ocr and ocr_line else [])
    user = {"role": "user", "content": "\n".join([*lines, PROMPT])}
    return ({"role": "system", "content": system_prompt}, user) if candidate.system else (user,)


def split_command(_args) -> None:
    from lhama.recipes.default.splits import read_file_list

    files = dev_files(read_rows(), set(read_file_list(HELDOUT)))
    header = ("# Tux Paint retrieval DEV split, issue #26 session 10 (benchmarks/retrieval_s10.py split):\n"
              f"# of the shared pictures outside data/tuxpaint/heldout.txt, the {DEV_SIZE} whose file name's sha256 is\n"
              "# smallest. Written before any score; only dev decisions are read on it.\n")
    DEV_SPLIT.write_text(header + "".join(f"{f}\n" for f in files), encoding="utf-8")
    print(f"{len(files)} pictures -> {DEV_SPLIT}")


def tower_command(args) -> None:
    """Each picture's probabilities and pooled features under every view, and its OCR line."""
    from lhama.data.media import load_image
    from lhama.data.ocr import image_note
    from lhama.model.labeler import view
    from lhama.data.media import image_to_tensor

    labeler = _labeler()
    out = WORK / f"tower_{args.split.stem}.pt"
    done = torch.load(out) if out.is_file() else {}
    for n, item in enumerate(_items(args.split)):
        if item.file in done:
            continue
        image = load_image(item.image)
        pixels = torch.stack([image_to_tensor(view(image, v), labeler.image_spec) for v in ALL_VIEWS])
        with torch.no_grad():
            probs, pooled = labeler._read(pixels)
        done[item.file] = {"probs": probs, "pooled": pooled, "ocr": image_note(image)}
        if n % 20 == 0:
            torch.save(done, out)
            print(n, flush=True)
    torch.save(done, out)
    print(f"{len(done)} pictures -> {out}")


def _labeler():
    from lhama.model.labeler import load_labeler
    from lhama.weights.prepare import prepare

    return load_labeler(prepare("lhama-default"))


def _items(split: Path):
    from lhama.eval.caption import load_captions
    from lhama.recipes.default.splits import read_file_list

    return load_captions(DATA, "pt_BR", None, read_file_list(split))


def notes(candidate: Candidate, items, tower: dict, labeler) -> dict[str, str]:
    """file -> the note ``candidate`` shows (empty for the LM alone)."""
    if candidate.form == "none":
        return {i.file: "" for i in items}
    keys = {r["file"]: stamp_key(r) for r in read_rows()}
    index = [ALL_VIEWS.index(v) for v in candidate.views]
    shown = {}
    for item in items:
        probs, pooled = tower[item.file]["probs"][index].mean(0), tower[item.file]["pooled"][index].mean(0)
        shown[item.file] = note_for(candidate, probs, head_ranking(labeler.names_head, pooled, keys[item.file]), labeler)
    return shown


class ScoreStore:
    """Scores already computed, by (messages, caption), kept in a JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path, self.known = path, {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.known[row["key"]] = row["logprob"]

    def get(self, scorer: Scorer, messages: tuple[dict, ...], caption: str) -> float:
        key = json.dumps([messages, caption], ensure_ascii=False)
        if key not in self.known:
            self.known[key] = scorer.score(messages, caption)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "logprob": self.known[key]}, ensure_ascii=False) + "\n")
        return self.known[key]


def score_command(args) -> None:
    from rich.console import Console

    from lhama.cli.common import load_with_progress
    from lhama.eval.retrieval import make_trials

    torch.set_num_threads(args.threads)
    items = _items(args.split)
    trials = make_trials(items, 5, 0)  # drawn in file order, as lhama eval retrieval draws them
    trials = sorted(trials, key=lambda t: hashlib.sha256(t.item.file.encode()).hexdigest())[: args.limit]  # any prefix: a fair sample
    tower, labeler = torch.load(WORK / f"tower_{args.split.stem}.pt"), _labeler()
    chosen = args.only.split(",") if args.only else list(CANDIDATES)
    shown = {name: notes(CANDIDATES[name], items, tower, labeler) for name in chosen}
    if args.model_dir:  # e.g. links to lhama-default's files, its LM in another quant (cached beside them)
        from lhama.inference.quant_cache import load_for_inference

        loaded = load_for_inference(args.model_dir, args.quant, progress=print)
    else:
        loaded = load_with_progress("lhama-default", Console(stderr=True))
    if args.check:
        check(loaded, trials[: args.check], shown["shipped"])
    system_prompt = loaded.generation.system_prompt
    tag = f"_{args.quant}" if args.model_dir else ""
    scorer, store = Scorer(loaded), ScoreStore(WORK / f"scores_{args.split.stem}{tag}.jsonl")
    rows, started = [], time.perf_counter()
    for n, trial in enumerate(trials):
        row = {"file": trial.item.file, "answer": trial.answer, "candidates": list(trial.candidates), "picks": {}, "notes": {}}
        for name in chosen:
            candidate = CANDIDATES[name]
            messages = messages_for(candidate, shown[name][trial.item.file], tower[trial.item.file]["ocr"], system_prompt)
            scores = [store.get(scorer, messages, c) for c in trial.candidates]
            row["picks"][name] = max(range(len(scores)), key=scores.__getitem__)
            row["notes"][name] = messages[-1]["content"]
        rows.append(row)
        if n % 10 == 9 or n == len(trials) - 1:  # the report so far: a stopped run leaves a fair prefix
            print(f"{n + 1}/{len(trials)} {time.perf_counter() - started:.0f} s", flush=True)
            report(rows, chosen, args.out)


def report(rows: list[dict], chosen: list[str], out: Path) -> None:
    """Top-1 of each candidate, and against ``shipped`` the pictures gained and lost."""
    summary = {}
    for name in chosen:
        right = [r["picks"][name] == r["answer"] for r in rows]
        base = [r["picks"].get("shipped") == r["answer"] for r in rows]
        summary[name] = {"top1": round(sum(right) / len(rows), 4), "right": sum(right), "n": len(rows),
                         "gained_vs_shipped": sum(a and not b for a, b in zip(right, base)),
                         "lost_vs_shipped": sum(b and not a for a, b in zip(right, base))}
        print(f"{name:18s} {summary[name]}")
    out.write_text(json.dumps({"summary": summary, "rows": rows}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"-> {out}")


def check(loaded, trials, shown: dict[str, str]) -> None:
    """The cached scorer against lhama's own on ``trials`` (the shipped note, eval's prompt)."""
    from lhama.eval.scoring import ScoreRequest, score_continuations

    scorer = Scorer(loaded)
    for trial in trials:
        messages = messages_for(CANDIDATES["shipped"], shown[trial.item.file], "", "")
        ours = [scorer.score(messages, c) for c in trial.candidates]
        theirs = [s.logprob for s in score_continuations(loaded, [ScoreRequest(messages, c) for c in trial.candidates],
                                                         batch_size=len(trial.candidates))]
        print(trial.item.file, [round(a - b, 4) for a, b in zip(ours, theirs)],
              "same pick" if max(range(5), key=ours.__getitem__) == max(range(5), key=theirs.__getitem__) else "DIFFERENT PICK")


NOTE_WORDS = {"imagem", "anexada", "parece", "talvez", "outras", "possibilidades", "reconhecida", "classes",
              "prováveis", "parecida", "nenhuma"}  # the notes' own words, never a caption's subject


def note_hits(note: str, caption: str) -> bool:
    """Whether a note names something its caption names: a shared content word
    (``lhama.eval.metrics.content_words``) other than the note's own words."""
    from lhama.eval.metrics import content_words

    return bool((content_words(note) - NOTE_WORDS) & content_words(caption))


def analyse_command(args) -> None:
    """Top-1 of each candidate where its note names the caption's subject and where it does not:
    how far a better note can move retrieval (no LM run; reads a ``score`` report)."""
    rows = json.loads(args.report.read_text(encoding="utf-8"))["rows"]
    captions = {i.file: i.reference for i in _items(args.split)}
    for name in rows[0]["picks"]:
        if name.endswith("lm_alone"):
            continue
        hit = [note_hits(r["notes"][name], captions[r["file"]]) for r in rows]
        right = [r["picks"][name] == r["answer"] for r in rows]
        with_hit = [g for g, h in zip(right, hit) if h]
        without = [g for g, h in zip(right, hit) if not h]
        print(f"{name:18s} n={len(rows)} note names the subject {len(with_hit)}: top-1 {sum(with_hit)}/{len(with_hit)}; "
              f"otherwise {sum(without)}/{len(without)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("split")
    for name in ("tower", "score"):
        p = sub.add_parser(name)
        p.add_argument("--split", type=Path, default=DEV_SPLIT)
        p.add_argument("--threads", type=int, default=1)
    score = sub.choices["score"]
    score.add_argument("--only", help="comma-separated candidates (default: all of CANDIDATES)")
    score.add_argument("--limit", type=int)
    score.add_argument("--model-dir", type=Path, help="load this directory with --quant instead of lhama-default as chat does")
    score.add_argument("--quant", default="int8")
    score.add_argument("--check", type=int, default=0, help="first compare the scorer with lhama's on N pictures")
    score.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "retrieval_s10_dev.json")
    analyse = sub.add_parser("analyse")
    analyse.add_argument("--report", type=Path, default=ROOT / "docs" / "results" / "retrieval_s10_dev_int8.json")
    analyse.add_argument("--split", type=Path, default=DEV_SPLIT)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    {"split": split_command, "tower": tower_command, "score": score_command, "analyse": analyse_command}[args.command](args)


if __name__ == "__main__":
    main()
