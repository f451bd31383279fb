"""Make ``src/lhama/model/towers/imagenet_pt.tsv``: the 1000 ImageNet-1k classes with pt-BR names.

1. Synset ids (in the classifier's output order) and English WordNet lemmas come from the timm
   wheel's data files (``timm/data/_info/imagenet_synsets.txt``, ``imagenet_synset_to_lemma.txt``;
   timm is Apache-2.0, the lemmas are Princeton WordNet 3.0's). timm is not needed at run time.
2. Each class's first lemma is machine-translated with lhama's own Bergamot en->pt model
   (``lhama.data.translate.bergamot``): "This is a photo of a {lemma}." -> pt, and the
   "Esta é uma foto de um(a)" prefix is stripped (a bare word translates worse).
3. The hand corrections in ``scripts/imagenet_pt_hand.tsv`` (synset -> name) replace the MT
   name; those rows get ``source`` = ``hand``, the rest ``mt``.

Run it again after editing the hand corrections; the output is deterministic:

    unzip -o /tmp/timm/timm-1.0.31-py3-none-any.whl 'timm/data/_info/*' -d /tmp/timm_x
    python scripts/imagenet_pt_names.py --timm-info /tmp/timm_x/timm/data/_info
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

from lhama.data.translate.bergamot import BergamotBackend

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/lhama/model/towers/imagenet_pt.tsv"
HAND = ROOT / "scripts/imagenet_pt_hand.tsv"
TEMPLATE = "This is a photo of a {}."
PREFIX = re.compile(r"^(Esta|Essa|Isto|Isso) (é|e) (uma|a) (foto|fotografia|imagem) (de|do|da|dos|das)\s+((um|uma|uns|umas|o|a|os|as)\s+)?", re.I)
HEADER = """\
# ImageNet-1k class names in Brazilian Portuguese, in the classifier's output order.
# index, synset and english (the WordNet 3.0 lemmas) come from timm 1.0.31's data files
# (timm/data/_info/imagenet_synsets.txt and imagenet_synset_to_lemma.txt; timm: Apache-2.0,
# https://github.com/huggingface/pytorch-image-models; lemmas: Princeton WordNet 3.0 license).
# pt_br: source "mt" = lhama's Bergamot en->pt on "This is a photo of a {first lemma}.", prefix
# stripped; source "hand" = corrected by hand (scripts/imagenet_pt_hand.tsv).
# Made by scripts/imagenet_pt_names.py; edit the hand corrections there, not this file.
"""


def read_classes(info: Path) -> list[tuple[str, str]]:
    """(synset, English lemmas) for the 1000 classes, in output order."""
    synsets = (info / "imagenet_synsets.txt").read_text(encoding="utf-8").split()
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines())
    return [(s, lemmas[s].strip()) for s in synsets]


def machine_names(lemmas: list[str]) -> list[str]:
    """The MT name of each class's first lemma."""
    backend = BergamotBackend("en-pt")
    firsts = [lemma.split(",")[0].strip() for lemma in lemmas]
    outputs = backend.translate_batch([TEMPLATE.format(f) for f in firsts])
    return [PREFIX.sub("", out).strip().rstrip(".").strip() for out in outputs]


def read_hand(path: Path) -> dict[str, str]:
    """synset -> hand-corrected name (``#`` lines and the header skipped)."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return {row[0]: row[1].strip() for row in rows[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timm-info", type=Path, required=True, help="timm/data/_info from the timm wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    classes = read_classes(args.timm_info)
    names = machine_names([lemma for _, lemma in classes])
    hand = read_hand(HAND)
    unknown = set(hand) - {s for s, _ in classes}
    if unknown:
        raise SystemExit(f"{HAND}: synsets not in ImageNet-1k: {sorted(unknown)[:5]}")
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "synset", "english", "pt_br", "source"])
        for index, ((synset, lemma), name) in enumerate(zip(classes, names, strict=True)):
            writer.writerow([index, synset, lemma, hand.get(synset, name), "hand" if synset in hand else "mt"])
    print(f"wrote {args.out}: {len(classes)} classes, {len(hand)} corrected by hand")


if __name__ == "__main__":
    main()
