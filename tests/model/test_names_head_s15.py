"""The names head lhama-default ships since #26 session 15: session 12's head unchanged plus one row
per common-thing emoji (four emoji-datasource styles averaged, CLDR pt-BR names), and the setting
chosen on dev with the photo gate (benchmarks/naming_s15.py, docs/default-model.md "Naming, session 15")."""

from __future__ import annotations

import torch

from lhama.model.labeler import describe
from lhama.model.names_head import SHIPPED, NamedPicture, NamesHead
from lhama.weights.cascade import NAMES_HEAD, V2_LABELER


def test_the_shipped_head_is_session_12s_plus_one_row_per_common_thing_emoji() -> None:
    old, new = NamesHead.load(SHIPPED / "names_head_s12"), NamesHead.load(NAMES_HEAD)
    assert NAMES_HEAD == SHIPPED / "names_head_s15_mean"
    n = len(old.entries)
    assert new.entries[:n] == old.entries and torch.equal(new.features[:n], old.features)
    added = new.entries[n:]
    codes = [e.key.removeprefix("emoji-mean:") for e in added]
    assert len(added) == 857 and all(e.key.startswith("emoji-mean:") for e in added) and len(set(codes)) == 857
    assert all(e.name and not e.kind for e in added)  # CLDR names carry no article and no kind
    by_code = {c: e.name for c, e in zip(codes, added)}
    assert by_code["1f989"] == "coruja" and by_code["1f34e"] == "maçã vermelha" and by_code["1f3b8"] == "guitarra"
    assert not any(c.startswith(("1f600", "1f1e7", "1f468")) for c in codes)  # no faces, flags or people
    assert new.features[n:].abs().sum(1).gt(0).all()


def test_the_shipped_setting_names_the_heads_picture_from_cosine_0_6_when_imagenet_is_unsure(imagenet) -> None:
    assert (V2_LABELER.names_confident, V2_LABELER.names_yield) == (0.6, 0.5)
    names, kinds = imagenet.names, imagenet.kinds
    unsure, sure = imagenet.top1(0.45), imagenet.top1(0.8)  # ImageNet's top-1 below / above names_yield 0.5
    owl = NamedPicture("coruja", "", "emoji-mean:1f989")
    assert describe(unsure, names, V2_LABELER, kinds, (owl, 0.61)) == "[Imagem anexada: parece ser coruja.]"
    assert "coruja" not in describe(unsure, names, V2_LABELER, kinds, (owl, 0.59))
    assert "coruja" not in describe(sure, names, V2_LABELER, kinds, (owl, 0.99))
