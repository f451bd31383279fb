"""Make ``src/lhama/model/towers/stamp_names.tsv``: the pt-BR name of the thing each Tux Paint
stamp shows, the labels of the labeler's names head (:mod:`lhama.model.names_head`).

1. The stamps are Debian's ``tuxpaint-stamps-default`` 2022.06.04-1 PNGs
   (``/usr/share/tuxpaint/stamps``, GPL-2) with their ``.txt`` descriptions: the first line is the
   English description, the ``pt_BR.utf8=`` line the Tux Paint translators' Brazilian Portuguese
   one (785 of the 796 PNGs have one; no machine translation was needed: the 11 without a
   ``.txt`` have no description at all and are left out). Pictures of the shared Tux Paint set
   (``captions.tsv``) that are not Debian PNG stamps are added with their ``pt_BR`` caption.
2. The name is the caption's first sentence up to the first clause (" que ", " é ", ", " ...),
   parentheses and quotes removed, article kept ("Um sapo." -> "um sapo"); a caption that does
   not start with an article is kept whole when it is at most 3 words ("Terra").
3. The hand corrections in ``scripts/stamp_names_hand.tsv`` (key -> name, ``-`` to drop; and the
   kind) replace the automatic name; those rows get ``name_source`` = ``hand``, the rest ``caption``.
4. ``kind``: a basic-level pt-BR kind from the stamp's folder (``KINDS`` below, written by hand),
   e.g. ``plants/flowers`` -> "uma flor"; empty when the folder gives none.
Letters, sign-language hands, chess pieces and currency symbols are left out (not things).

    python scripts/stamp_names.py --data-dir ../shared/data/tuxpaint_ptbr
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/lhama/model/towers/stamp_names.tsv"
HAND = ROOT / "scripts/stamp_names_hand.tsv"
STAMPS = Path("/usr/share/tuxpaint/stamps")
SKIP = ("symbols/alphabets/", "symbols/chess/", "symbols/money/00_symbols/", "symbols/money/00/", "symbols/music/",
        "symbols/math", "people/body/")  # not things, or a copy of a stamp under a second key
KINDS = {  # folder prefix -> kind (the longest matching prefix wins)
    "animals/birds": "uma ave", "animals/fish": "um peixe", "animals/insects": "um inseto",
    "animals/reptiles": "um réptil", "animals/amphibians": "um anfíbio", "animals/mammals/dogs": "um cachorro",
    "animals/mammals/cats": "um felino", "animals/dinosaur": "um dinossauro",
    "plants/flowers": "uma flor", "plants/trees": "uma árvore", "plants/mushrooms": "um cogumelo",
    "food/fruit": "uma fruta", "food/vegetables": "um legume", "food/nuts": "uma castanha",
    "symbols/money": "uma moeda", "space/planets": "um planeta", "space/moon": "a lua",
    "town/flags": "uma bandeira", "town/roadsigns": "uma placa", "clothes/hats": "um chapéu",
    "hobbies/music": "um instrumento musical", "household/tools": "uma ferramenta",
    "vehicles/flight": "uma aeronave", "vehicles/cycle": "uma bicicleta",
}
ARTICLE = re.compile(r"^(um|uma|uns|umas|o|a|os|as)\s+", re.I)
CLAUSE = re.compile(r"\s+(que|é|são|se|está|estão|pode|com a qual|chamad[oa])\s+|,|;|:| - | — ")
HEADER = """\
# pt-BR names of what each Tux Paint stamp shows: the labels of lhama's names head.
# key: the stamp's path under Debian tuxpaint-stamps-default 2022.06.04-1's /usr/share/tuxpaint/stamps
#   without ".png" (GPL-2; source "tuxpaint_ptbr": a picture of the shared Tux Paint set, key from
#   its file name). english: the stamp's description; pt_br: its Tux Paint pt_BR translation.
# name: "caption" = from pt_br's first clause, article kept; "hand" = corrected by hand
#   (scripts/stamp_names_hand.tsv). kind: from the stamp's folder (scripts/stamp_names.py KINDS).
# Made by scripts/stamp_names.py; edit the hand corrections there, not this file.
"""


def caption_name(caption: str) -> str:
    """The name in a pt-BR caption: first sentence, first clause, no parentheses or quotes."""
    text = re.sub(r"\([^)]*\)|[\"“”«»!?]", "", caption).strip()
    text = re.split(r"\.(\s|$)", text)[0]
    text = CLAUSE.split(text)[0].strip()
    if not ARTICLE.match(text) and len(text.split()) > 3:
        return ""
    return re.sub(r"\s+", " ", text)[:1].lower() + re.sub(r"\s+", " ", text)[1:]


def stamp_rows(stamps: Path) -> dict[str, tuple[str, str, str]]:
    """key -> (source, english, pt_br) for every Debian PNG stamp with a description."""
    rows = {}
    for png in sorted(stamps.rglob("*.png")):
        txt = png.with_suffix(".txt")
        if not txt.is_file():
            continue
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        pt = [line.split("=", 1)[1].strip() for line in lines if line.startswith("pt_BR.utf8=")]
        rows[str(png.relative_to(stamps).with_suffix(""))] = ("tuxpaint_stamps", lines[0].strip() if lines else "", pt[0] if pt else "")
    return rows


def shared_key(file_name: str) -> str:
    """``animals_birds__owl.jpg`` -> ``animals/birds/owl`` (the shared set's naming of a stamp)."""
    folder, stem = file_name.rsplit(".", 1)[0].split("__", 1)
    return folder.replace("_", "/") + "/" + stem


def shared_rows(data_dir: Path, known: set[str]) -> dict[str, tuple[str, str, str]]:
    with open(data_dir / "captions.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {shared_key(r["file"]): ("tuxpaint_ptbr", r["en"], r["pt_BR"]) for r in rows if shared_key(r["file"]) not in known}


def kind_of(key: str) -> str:
    matches = [prefix for prefix in KINDS if key.startswith(prefix + "/")]
    return KINDS[max(matches, key=len)] if matches else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the shared Tux Paint folder (captions.tsv)")
    args = parser.parse_args()
    rows = stamp_rows(STAMPS)
    rows |= shared_rows(args.data_dir, set(rows))
    hand = {r[0]: r[1:] for r in (line.split("\t") for line in HAND.read_text(encoding="utf-8").splitlines()[1:]
                                  if line and not line.startswith("#"))}
    out = [HEADER + "key\tsource\tenglish\tpt_br\tname\tkind\tname_source"]
    for key, (source, english, pt_br) in sorted(rows.items()):
        name, kind, how = (*hand[key], "hand") if key in hand else (caption_name(pt_br), "=", "caption")
        kind = {"=": kind_of(key), "-": ""}.get(kind, kind)
        if key.startswith(SKIP) or not name or name == "-":
            continue
        out.append("\t".join((key, source, english.replace("\t", " "), pt_br.replace("\t", " "), name, kind, how)))
    OUT.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"{len(out) - 1} named stamps -> {OUT}")


if __name__ == "__main__":
    main()
