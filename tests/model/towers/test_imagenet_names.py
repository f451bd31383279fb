"""The shipped pt-BR ImageNet-1k class names: complete, Portuguese, the common objects right,
and a broken table is a one-line CheckpointError."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhama.errors import CheckpointError
from lhama.model.towers.imagenet_names import TABLE, class_names, class_table

# Names that are the same word in Portuguese and English (loan words and shared words): the only
# names allowed to equal one of their class's English lemmas. Dog breeds keep their kennel names.
LOAN_WORDS = frozenset({
    "bulbul", "iguana", "agama", "flamingo", "orca", "chihuahua", "shih-tzu", "papillon",
    "rhodesian ridgeback", "basset hound", "beagle", "bloodhound", "whippet", "saluki", "weimaraner",
    "staffordshire bull terrier", "bedlington terrier", "border terrier", "kerry blue terrier",
    "norfolk terrier", "yorkshire terrier", "lakeland terrier", "sealyham terrier", "airedale terrier",
    "cairn terrier", "dandie dinmont", "boston terrier", "silky terrier", "lhasa apso",
    "flat-coated retriever", "curly-coated retriever", "golden retriever", "chesapeake bay retriever",
    "vizsla", "gordon setter", "clumber spaniel", "cocker spaniel", "sussex spaniel", "kuvasz",
    "schipperke", "komondor", "collie", "border collie", "bouvier des flandres", "rottweiler", "boxer",
    "affenpinscher", "basenji", "pug", "keeshond", "dingo", "hamster", "zebra", "impala", "langur",
    "indri", "panda", "abaya", "altar", "banjo", "cinema", "envelope", "home theater", "ipod",
    "joystick", "minivan", "modem", "monitor", "mouse", "ocarina", "pedestal", "perfume", "poncho",
    "snorkel", "trombone", "wok", "site", "guacamole", "bagel", "pretzel", "banana", "pizza",
    "burrito", "vale",
})

# Common things a Brazilian names, by class index: the hand-checked names.
COMMON = {
    7: "galo", 8: "galinha", 96: "tucano", 99: "ganso", 145: "pinguim-rei", 292: "tigre",
    294: "urso-pardo", 296: "urso-polar", 309: "abelha", 312: "grilo", 354: "camelo", 377: "sagui",
    378: "macaco-prego", 393: "peixe-palhaço", 397: "baiacu", 402: "violão", 430: "bola de basquete",
    487: "celular", 546: "guitarra", 555: "caminhão de bombeiros", 620: "notebook", 707: "orelhão",
    719: "cofrinho", 770: "tênis", 805: "bola de futebol", 823: "estetoscópio", 850: "ursinho de pelúcia",
    929: "picolé", 934: "cachorro-quente", 955: "jaca", 956: "fruta-do-conde", 968: "xícara",
}


def test_every_class_has_a_portuguese_name() -> None:
    table = class_table()
    assert len(table) == 1000 and [c.index for c in table] == list(range(1000))
    assert table[0].synset == "n01440764" and table[999].synset == "n15075141"  # timm's first/last
    assert all(c.pt_br.strip() for c in table)
    english_left = [c.pt_br for c in table
                    if c.pt_br.lower() in {w.strip().lower() for w in c.english.split(",")}
                    and c.pt_br.lower() not in LOAN_WORDS]
    assert english_left == []


def test_common_objects_have_their_brazilian_names() -> None:
    names = class_names()
    assert {i: names[i] for i in COMMON} == COMMON
    table = class_table()
    assert table[7].english == "cock" and table[7].source == "hand"  # MT said "pau"
    assert sum(c.source == "hand" for c in table) >= 500


def test_names_are_mostly_distinct() -> None:
    names = class_names()
    # ImageNet has near-duplicates (two "crane", two "maillot", laptop/notebook): named apart by hand.
    assert len(set(names)) == 1000


def test_missing_table_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read the ImageNet class names .*reinstall lhama"):
        class_table(tmp_path / "absent.tsv")


def _write(tmp_path: Path, edit) -> Path:
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "t.tsv"
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda ls: ls[:-1], "has 999 classes, expected 1000"),
    (lambda ls: [l.replace("\tgalo\t", "\t\t") for l in ls], "class row 7: empty pt_br name for 'cock'"),
    (lambda ls: [l.replace("\tgalo\thand", "\tgalo\tguess") for l in ls], "source 'guess'"),
    (lambda ls: [l for l in ls if not l.startswith("5\t")], "class row 5: index '6', expected 5"),
    (lambda ls: [l.replace("index\tsynset", "idx\tsynset") for l in ls], "header must be"),
    (lambda ls: [l.replace("n01514668", "cock") for l in ls], "'cock' is not a WordNet synset id"),
])
def test_malformed_table_is_a_checkpoint_error(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        class_table(_write(tmp_path, edit))
