"""Make ``src/lhama/model/towers/imagenet_kinds.tsv``: coarser pt-BR names ("kinds") for the
ImageNet-1k classes, from the WordNet hierarchy the classes come from.

The 1000 ImageNet classes ARE WordNet 3.0 noun synsets (``n01514668`` is offset 01514668 in
``data.noun``). Each kind below is a WordNet synset chosen by hand as a name a Brazilian would
give a thing when unsure of the exact species or model (a basic-level or familiar category:
"uma ave de rapina", "um cachorro", "uma flor", "um carro"), with its pt-BR name and article. Its
member classes are computed, not chosen: every class whose hypernym closure (``@`` and ``@i``
pointers) contains the kind's synset. A kind with no member class is an error.

Needs WordNet 3.0's database (Debian ``wordnet-base``: ``apt-get install wordnet-base`` puts it in
/usr/share/wordnet; Princeton WordNet 3.0 license). Not needed at run time. Deterministic:

    python scripts/imagenet_kinds.py --wordnet /usr/share/wordnet/data.noun
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ROOT / "src/lhama/model/towers/imagenet_pt.tsv"
OUT = ROOT / "src/lhama/model/towers/imagenet_kinds.tsv"

# synset -> pt-BR name with its article. Chosen as familiar names, never looked up from the
# naming benchmark's answers; a synset's English lemma is written beside it in the table.
# Categories above the basic level (animal, mammal, food, container, structure) are left out:
# they name nothing a person would call the thing, and with hundreds of classes their summed
# probability is large even when the classifier is lost (on the dev pictures a lavender
# drawing summed to 0.3 "animal").
KINDS = {
    # animals
    "n01503061": "uma ave",
    "n01604330": "uma ave de rapina", "n01621127": "uma coruja", "n01613294": "uma águia",
    "n01816887": "um papagaio", "n01846331": "um pato", "n01524359": "um pássaro",
    "n02512053": "um peixe", "n01482330": "um tubarão", "n01495701": "uma raia",
    "n01726692": "uma cobra", "n01674464": "um lagarto", "n01662784": "uma tartaruga",
    "n01696633": "um crocodilo", "n01639765": "um sapo", "n01629276": "uma salamandra",
    "n02159955": "um inseto", "n02274259": "uma borboleta", "n02164464": "um besouro",
    "n01772222": "uma aranha", "n01976957": "um caranguejo", "n01974773": "um crustáceo",
    "n01940736": "um molusco", "n02084071": "um cachorro", "n02114100": "um lobo",
    "n02118333": "uma raposa", "n02121808": "um gato", "n02127808": "um grande felino",
    "n02120997": "um felino", "n02131653": "um urso", "n02484322": "um macaco",
    "n02470325": "um macaco", "n02469914": "um primata", "n02329401": "um roedor",
    "n02411705": "uma ovelha", "n02416519": "uma cabra", "n02395003": "um porco",
    "n02419796": "um antílope", "n02374451": "um cavalo", "n02062744": "uma baleia",
    "n02503517": "um elefante",
    # plants and food
    "n11669921": "uma flor", "n12992868": "um cogumelo", "n07705931": "uma fruta",
    "n07707451": "um legume", "n07747055": "uma fruta cítrica", "n07715561": "uma abóbora",
    "n07679356": "um pão", "n07609840": "uma sobremesa", "n07881800": "uma bebida",
    # things
    "n04524313": "um veículo", "n02958343": "um carro", "n04490091": "um caminhão",
    "n02924116": "um ônibus", "n02834778": "uma bicicleta", "n02686568": "uma aeronave",
    "n02691156": "um avião", "n03684823": "uma locomotiva", "n04530566": "uma embarcação",
    "n02858304": "um barco", "n04194289": "um navio", "n03764276": "um veículo militar",
    "n03800933": "um instrumento musical", "n04451818": "uma ferramenta", "n04565375": "uma arma",
    "n02778669": "uma bola", "n03497657": "um chapéu", "n03051540": "uma roupa",
    "n03380867": "um calçado", "n04199027": "um sapato", "n03405725": "um móvel",
    "n03001627": "uma cadeira", "n04379243": "uma mesa", "n02876657": "uma garrafa",
    "n03990474": "uma panela", "n03621049": "um utensílio de cozinha", "n03082979": "um computador",
    "n04401088": "um telefone", "n04437953": "um relógio", "n03636248": "uma luminária",
    "n03528263": "um eletrodoméstico", "n02913152": "um prédio",
    "n02898711": "uma ponte", "n03278248": "um aparelho eletrônico", "n03964744": "um brinquedo",
    "n02773037": "uma bolsa", "n02883344": "uma caixa",
    "n02942699": "uma câmera", "n03614007": "um teclado", "n03513137": "um capacete",
    "n09359803": "uma montanha",
}
HEADER = """\
# Kinds: coarser pt-BR names for ImageNet-1k classes, from WordNet 3.0's hypernym hierarchy.
# synset: a WordNet 3.0 noun synset chosen by hand as a familiar category (scripts/imagenet_kinds.py);
# pt_br: its name with article; english: its WordNet lemmas; classes: the classifier output indices
# (imagenet_pt.tsv) of every class whose hypernym closure contains the synset (computed from
# Debian wordnet-base 1:3.0 data.noun; Princeton WordNet 3.0 license).
# Made by scripts/imagenet_kinds.py; edit the KINDS there, not this file.
"""


def read_wordnet(path: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """data.noun -> (offset -> lemmas, offset -> hypernym offsets, instance hypernyms included)."""
    lemmas, hypernyms = {}, defaultdict(list)
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the license header
            continue
        fields = line.partition(" | ")[0].split()
        offset, count = fields[0], int(fields[3], 16)
        lemmas[offset] = [fields[4 + 2 * i] for i in range(count)]
        at = 4 + 2 * count
        for i in range(int(fields[at])):
            symbol, target, pos = fields[at + 1 + 4 * i: at + 4 + 4 * i]
            if symbol in ("@", "@i") and pos == "n":
                hypernyms[offset].append(target)
    return lemmas, hypernyms


def closure(offset: str, hypernyms: dict[str, list[str]]) -> set[str]:
    """The synset and all its hypernyms."""
    seen, stack = {offset}, [offset]
    while stack:
        for parent in hypernyms[stack.pop()]:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet/data.noun"))
    args = parser.parse_args()
    lemmas, hypernyms = read_wordnet(args.wordnet)
    rows = [line.split("\t") for line in CLASSES.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")][1:]
    closures = [closure(row[1][1:], hypernyms) for row in rows]
    lines = [HEADER + "synset\tpt_br\tenglish\tclasses"]
    for synset, name in KINDS.items():
        members = [str(i) for i, up in enumerate(closures) if synset[1:] in up]
        if not members:
            raise SystemExit(f"kind {synset} ({name}) has no ImageNet class under it")
        lines.append(f"{synset}\t{name}\t{', '.join(lemmas[synset[1:]]).replace('_', ' ')}\t{' '.join(members)}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(KINDS)} kinds")


if __name__ == "__main__":
    main()
