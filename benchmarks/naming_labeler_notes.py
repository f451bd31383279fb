"""The notes a prepared cascade's own labeler writes for the old naming split (issue #26 session 8).

``naming_fusion.py`` builds its notes from the bare tower's squashed view; the shipped labeler now
averages three views and has a names head. This writes, for the pictures of
``benchmarks/data/naming_heldout.tsv`` in one part of ``naming_split.tsv``, exactly what
``lhama-default``'s ``labeler/`` says (:meth:`lhama.model.labeler.Labeler.note`), in the notes
format ``naming_fusion.py --notes`` reads, so the LM's answers measure the shipped system:

    python benchmarks/naming_labeler_notes.py --data-dir ../shared/data/tuxpaint_ptbr --split test \
        --out /tmp/notes.json
    python benchmarks/naming_fusion.py ... --split test --notes /tmp/notes.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lhama.data.media import load_image
from lhama.eval.metrics import names_thing
from lhama.eval.naming import item_path, read_naming_items
from lhama.files import atomic_write_text
from lhama.model.labeler import load_labeler
from lhama.weights.resolve import resolve
from naming_fusion import ITEMS
from naming_kinds import split_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the Tux Paint folder (captions.tsv + images/)")
    parser.add_argument("--stamps-dir", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--model", default="lhama-default", help="a registered cascade name or its directory")
    parser.add_argument("--split", choices=("dev", "test"), required=True, help="naming_split.tsv part")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = resolve(args.model, args.model)
    labeler = load_labeler(model_dir)
    items = [i for i in read_naming_items(ITEMS) if i.image in split_images(args.split)]
    folders = {"tuxpaint_ptbr": args.data_dir / "images", "tuxpaint_stamps": args.stamps_dir}
    notes = {i.image: labeler.note(load_image(item_path(i, folders))) for i in items}
    named = sum(names_thing(notes[i.image], i.accepted) for i in items)
    row = {"setting": {"labeler": str(model_dir / "labeler")}, "named": named, "n": len(items), "notes": notes}
    atomic_write_text(args.out, json.dumps({"split": args.split, "model": str(model_dir), "rows": [row]},
                                           indent=1, ensure_ascii=False) + "\n")
    print(f"{args.model}'s labeler, naming {args.split}: the note alone names {named}/{len(items)} -> {args.out}")


if __name__ == "__main__":
    main()
