"""Which fusion lets a text-only LM use EfficientNet-Lite2's class head? Measured on naming.

Each picture of ``benchmarks/data/naming_heldout.tsv`` goes through the classifier once; for each
fusion style (``lhama.model.labeler``: ``top1``, ``topk``, ``hedged``, ``kinds``) its note goes into the user
turn before "O que é isto?", the LM answers greedily, and the answer counts when it names the
thing (``lhama.eval.metrics.names_thing``). The classifier's own top-1 name (no LM) is the
baseline. Also counted: answers that name two or more of the classifier's top-3 (hedging).

    python benchmarks/naming_fusion.py --data-dir ../shared/data/tuxpaint_ptbr \
        --model qwen2.5-coder-1.5b-instruct --quant int8 --styles top1,topk,hedged

Takes the heavy lock's time: ~4 s per answer for the 1.5B on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from batched import answer_all, overridden
from rich.console import Console
from rich.table import Table

from lhama.data.media import image_to_tensor, load_image
from lhama.eval.metrics import names_thing
from lhama.eval.naming import NamingItem, item_path, read_naming_items
from lhama.inference.quant_cache import load_for_inference
from lhama.model.labeler import LabelerConfig, describe
from lhama.model.towers.imagenet_kinds import KindIndex
from lhama.model.towers.efficientnet_lite import lite_image_spec, load_tower
from lhama.model.towers.imagenet_names import class_names
from lhama.weights.prepare import prepare
from lhama.weights.resolve import resolve
from lhama.weights.cascade import V2_GENERATION
from naming_kinds import VIEWS, split_images

QUESTION = "O que é isto?"
ITEMS = Path(__file__).with_name("data") / "naming_heldout.tsv"


@torch.no_grad()
def probabilities(paths: list[Path], views: tuple[str, ...] = ("squash",), batch: int = 16) -> torch.Tensor:
    """(n, 1000) class probabilities of the prepared EfficientNet-Lite2, averaged over ``views``
    (``naming_kinds.VIEWS``; "squash" alone is what lhama's labeler does)."""
    tower = load_tower(prepare("efficientnet-lite2"))
    spec = lite_image_spec(tower.config)
    rows = []
    for start in range(0, len(paths), batch):
        images = [load_image(p) for p in paths[start:start + batch]]
        rows.append(torch.stack([tower.classify(torch.stack([image_to_tensor(VIEWS[v](i), spec) for i in images]))
                                 for v in views]).mean(0))
    return torch.cat(rows)


def run_style(loaded, style: str, items, probs: torch.Tensor, names, args) -> list[dict]:
    config = LabelerConfig(style=style, kind_confident=args.kind_confident)
    system = [{"role": "system", "content": args.system}] if args.system else []
    kinds = KindIndex.load() if style == "kinds" else None
    notes = [describe(p, names, config, kinds) for p in probs]
    if args.notes:  # notes made elsewhere (benchmarks/names_head.py score --out: the names head's)
        given = json.loads(args.notes.read_text(encoding="utf-8"))["rows"][0]["notes"]
        notes = [given[item.image] for item in items]
    answers = answer_all(loaded, [system + [{"role": "user", "content": f"{n}\n{QUESTION}"}] for n in notes],
                         args.max_new_tokens, args.batch, args.decoding)
    rows = []
    for item, p, note, done in zip(items, probs, notes, answers):
        text = done.text.strip()
        top3 = [names[int(i)] for i in p.topk(3).indices]
        rows.append({"image": item.image, "note": note, "answer": text, "named": names_thing(text, item.accepted),
                     "hedged": sum(names_thing(text, [n]) for n in top3) >= 2})
        print(style, item.image, "|", note, "->", text, "|", rows[-1]["named"], flush=True)
    return rows


def clipart_items(part: str) -> list[NamingItem]:
    """The fresh clip-art half ``part`` (its leakage exclusions left out) as naming items."""
    from naming_openclipart import eval_pictures

    return [NamingItem(f"{p.image}.png", "openclipart", p.english, p.accepted) for p in eval_pictures(part)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the Tux Paint folder (captions.tsv + images/)")
    parser.add_argument("--stamps-dir", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="a registered name or a model directory")
    parser.add_argument("--quant", default="int8", help="none, bf16, int8 or int4 (lhama.inference.quant)")
    parser.add_argument("--styles", default="top1,topk,hedged")
    parser.add_argument("--system", default=V2_GENERATION.system_prompt, help="system prompt ('' for none)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--repetition-penalty", type=float, default=None, help="default: the model's own")
    parser.add_argument("--no-repeat-ngram", type=int, default=None, help="default: the model's own (0: off)")
    parser.add_argument("--repetition-scope", choices=("all", "answer"), default=None,
                        help="the tokens the penalty counts: prompt and answer, or the answer only; default: the model's own")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pictures (0: all)")
    parser.add_argument("--batch", type=int, default=8, help="answers decoded together (lhama's serving engine)")
    parser.add_argument("--sample", type=int, default=0, help="N pictures spread evenly over the set (0: all)")
    parser.add_argument("--split", choices=("all", "dev", "test"), default="all", help="naming_split.tsv part")
    parser.add_argument("--kind-confident", type=float, default=0.5, help="the kinds style's threshold")
    parser.add_argument("--views", default="squash", help="comma-separated preprocessing views averaged (naming_kinds.VIEWS)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 under the heavy scheduler)")
    parser.add_argument("--notes", type=Path, default=None,
                        help="use these notes (names_head.py score --only ... --out FILE) instead of the style's")
    parser.add_argument("--clipart-dir", type=Path, default=None,
                        help="openclipart-png's png folder: name the fresh clip-art set (naming_openclipart.py) instead")
    parser.add_argument("--clipart-split", choices=("dev", "test"), default="dev", help="with --clipart-dir: which half")
    parser.add_argument("--out", type=Path, default=Path("docs/results/naming_fusion.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = clipart_items(args.clipart_split) if args.clipart_dir else read_naming_items(ITEMS)
    if args.split != "all" and not args.clipart_dir:
        items = [i for i in items if i.image in split_images(args.split)]
    items = items[: args.limit] if args.limit else items
    if args.sample and args.sample < len(items):  # every (len/N)-th item: both sources, in proportion
        items = [items[i * len(items) // args.sample] for i in range(args.sample)]
    names = class_names()
    folders = {"tuxpaint_ptbr": args.data_dir / "images", "tuxpaint_stamps": args.stamps_dir, "openclipart": args.clipart_dir}
    probs = probabilities([item_path(i, folders) for i in items], tuple(args.views.split(",")))
    baseline = sum(names_thing(names[int(p.argmax())], i.accepted) for i, p in zip(items, probs))
    loaded = load_for_inference(resolve(args.model, args.model), args.quant)
    args.decoding = overridden(loaded.generation, args)
    results, seconds = {}, {}
    for style in args.styles.split(","):
        start = time.perf_counter()
        results[style] = run_style(loaded, style, items, probs, names, args)
        seconds[style] = round(time.perf_counter() - start, 1)
    summary = {"classifier top-1 (no LM)": {"named": baseline, "n": len(items)}}
    for style, rows in results.items():
        summary[style] = {"named": sum(r["named"] for r in rows), "n": len(rows), "hedged": sum(r["hedged"] for r in rows)}
    table = Table(title=f"Naming {len(items)} held-out pictures: {args.model} ({args.quant}) + EfficientNet-Lite2 head")
    for column in ("fusion", "named", "rate", "answers naming 2+ of the top-3"):
        table.add_column(column)
    for style, s in summary.items():
        table.add_row(style, f"{s['named']}/{s['n']}", f"{s['named'] / s['n']:.1%}", str(s.get("hedged", "-")))
    Console().print(table)
    out = {"command": "python benchmarks/naming_fusion.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "decoding"),
           "machine": f"{platform.machine()} CPU, {args.threads} thread(s), shared with other jobs", "question": QUESTION,
           "system_prompt": args.system,
           "repetition_penalty": args.decoding.repetition_penalty, "repetition_scope": args.decoding.repetition_scope,
           "no_repeat_ngram": args.decoding.no_repeat_ngram, "seconds": seconds, "summary": summary, "items": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
