"""The ImageNet kinds table: WordNet categories with pt-BR names over the 1000 classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhama.errors import CheckpointError
from lhama.model.towers.imagenet_kinds import TABLE, KindIndex, kind_table
from lhama.model.towers.imagenet_names import class_table


def _kind(name: str):
    return next(k for k in kind_table() if k.pt_br == name)


def test_shipped_table_matches_wordnet_facts() -> None:
    kinds = kind_table()
    assert len(kinds) >= 50 and len({k.synset for k in kinds}) == len(kinds)
    synsets = {c.synset: c.index for c in class_table()}
    assert synsets["n01622779"] in _kind("uma coruja").classes  # great grey owl
    assert synsets["n01608432"] in _kind("uma ave de rapina").classes  # kite
    assert synsets["n01514668"] in _kind("uma ave").classes and synsets["n01514668"] not in _kind("um peixe").classes
    assert len(_kind("um cachorro").classes) == 118  # the 118 dog breeds
    assert synsets["n02504458"] in _kind("um elefante").classes  # African elephant


def test_chains_go_from_specific_to_general() -> None:
    index = KindIndex.load()
    owl = next(c.index for c in class_table() if c.synset == "n01622779")
    names = [index.kinds[k].pt_br for k in index.chains[owl]]
    assert names.index("uma coruja") < names.index("uma ave de rapina") < names.index("uma ave") and "um animal" not in names


def test_malformed_tables_are_one_line_errors(tmp_path: Path) -> None:
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if not line.startswith("#")][0]
    cases = {
        "ave\tuma ave\tbird\t1 2": "not a WordNet synset",
        "n01503061\tave\tbird\t1 2": "must start with its article",
        "n01503061\tuma ave\tbird\t1 x": "space-separated integers",
        "n01503061\tuma ave\tbird\t1 1000": "indices in 0..999",
        "n01503061\tuma ave\tbird": "3 columns",
    }
    for row, message in cases.items():
        bad = tmp_path / "kinds.tsv"
        bad.write_text(f"{header}\n{row}\n", encoding="utf-8")
        with pytest.raises(CheckpointError, match=message):
            kind_table(bad)
    with pytest.raises(CheckpointError, match="cannot read"):
        kind_table(tmp_path / "missing.tsv")
