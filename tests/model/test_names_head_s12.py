"""The names head lhama-default shipped in #26 sessions 12-14 (names_head_s12; session 15's head keeps its
rows): session 7's head (Tux Paint stamps + the openclipart pool) plus the read naming pictures, and
never a picture of the fresh set."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import torch

from lhama.model.labeler import describe
from lhama.model.names_head import SHIPPED, NamedPicture, NamesHead
from lhama.recipes.default.clipart_names import group_word
from lhama.weights.cascade import V2_LABELER

S12_HEAD = SHIPPED / "names_head_s12"
S12_LABELER = dataclasses.replace(V2_LABELER, names_confident=0.7, names_yield=0.5)  # its setting

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


def _table(name: str) -> list[dict]:
    lines = [line for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def test_the_s12_head_is_session_7s_plus_read_naming_pictures_only() -> None:
    old, new = NamesHead.load(SHIPPED / "names_head_clipart"), NamesHead.load(S12_HEAD)
    n = len(old.entries)
    assert new.entries[:n] == old.entries and torch.equal(new.features[:n], old.features)
    read = {f"openclipart:{r['image']}": r["name"] for r in _table("openclipart_names.tsv") if r["split"] != "pool"}
    read |= {f"{r['source']}:{r['image']}": r["accepted"].split("|")[0] for r in _table("naming_heldout.tsv")}
    added = new.entries[n:]
    assert len(added) == len(read) == 666 and {e.key: e.name for e in added} == read
    fresh = _table("naming_fresh_s12.tsv")
    assert len(fresh) == 132
    keys = {e.key.split(":", 1)[1] for e in new.entries if e.key.startswith("openclipart:")}
    words = {group_word(k) for k in keys}
    assert not any(r["image"] in keys or group_word(r["image"]) in words for r in fresh)


def test_the_s12_setting_names_the_heads_picture_only_when_near_and_imagenet_is_unsure(imagenet) -> None:
    names, kinds = imagenet.names, imagenet.kinds
    unsure, sure = imagenet.top1(0.45), imagenet.top1(0.8)  # ImageNet's top-1 below / above names_yield 0.5
    tux = NamedPicture("um pinguim", "uma ave", "k")
    assert describe(unsure, names, S12_LABELER, kinds, (tux, 0.71)) == "[Imagem anexada: parece ser um pinguim (uma ave).]"
    assert "pinguim" not in describe(unsure, names, S12_LABELER, kinds, (tux, 0.69))
    assert "pinguim" not in describe(sure, names, S12_LABELER, kinds, (tux, 0.99))
