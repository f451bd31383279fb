"""benchmarks/retrieval_s10.py (issue #26 session 10): the committed dev split, the leave-own-out
names head, the note forms, and the prefix-reusing scorer against lhama's own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from lhama.eval.scoring import ScoreRequest, score_continuations
from lhama.model.labeler import LabelerConfig
from lhama.model.names_head import NamedPicture, NamesHead
from lhama.recipes.default.splits import read_file_list

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import retrieval_s10 as rs  # noqa: E402


def test_dev_split_is_the_committed_draw_and_outside_the_heldout_split() -> None:
    committed = read_file_list(rs.DEV_SPLIT)
    heldout = set(read_file_list(rs.HELDOUT))
    assert len(committed) == rs.DEV_SIZE == len(set(committed))
    assert not set(committed) & heldout
    if (rs.DATA / "captions.tsv").is_file():  # the shared data: the draw re-derives
        assert committed == rs.dev_files(rs.read_rows(), heldout)


def test_dev_files_draw_by_name_hash_only() -> None:
    rows = [{"file": f"x_{i}.jpg", "pt_BR": "Um sapo."} for i in range(10)] + [{"file": "blank.jpg", "pt_BR": " "}]
    picked = rs.dev_files(rows, {"x_0.jpg"}, size=4)
    assert len(picked) == 4 and picked == sorted(picked)
    assert "x_0.jpg" not in picked and "blank.jpg" not in picked
    assert rs.dev_files(list(reversed(rows)), {"x_0.jpg"}, size=4) == picked


def _head() -> NamesHead:
    features = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    entries = (NamedPicture("um sapo", "um anfíbio", "animals/frog"),
               NamedPicture("um sapo", "um anfíbio", "other/frog"),
               NamedPicture("uma maçã", "uma fruta", "food/apple"),
               NamedPicture("uma lápide", "", "seasonal/grave"))
    return NamesHead(features, entries)


def test_head_ranking_leaves_out_the_picture_itself_by_key_and_stem() -> None:
    head = _head()
    ranked = rs.head_ranking(head, torch.tensor([1.0, 0.0, 0.0]), "animals/frog")
    names = [e.key for e, _ in ranked]
    assert "animals/frog" not in names and "other/frog" not in names  # same key; same stem elsewhere
    assert names and all(a >= b for (_, a), (_, b) in zip(ranked, ranked[1:]))


def test_head_ranking_leaves_out_near_copies_by_similarity() -> None:
    head = _head()
    query = head.features[2] + 0.01  # nearly the apple
    ranked = rs.head_ranking(head, query, "food/pear")
    assert all(e.key != "food/apple" for e, _ in ranked)


class _Labeler:
    names = ("galo", "galinha", "perdiz", "pato")
    config = LabelerConfig(style="hedged")
    kinds = None


def test_note_forms() -> None:
    probs = torch.tensor([0.6, 0.3, 0.06, 0.04])
    ranking = [(NamedPicture("um sapo", "", "k1"), 0.8), (NamedPicture("um sapo", "", "k2"), 0.7),
               (NamedPicture("uma lápide", "", "k3"), 0.6), (NamedPicture("uma rã", "", "k4"), 0.4)]
    shipped = rs.note_for(rs.Candidate("shipped"), probs, [], _Labeler())
    assert shipped == "[Imagem anexada: galo.]"
    more = rs.note_for(rs.Candidate("more"), probs, ranking, _Labeler())
    assert more == "[Imagem anexada: galo. Outras possibilidades: galinha, perdiz, um sapo, uma lápide.]"
    listed = rs.note_for(rs.Candidate("list"), probs, ranking, _Labeler())
    assert listed == "[Imagem anexada; classes prováveis: galo (60%), galinha (30%), perdiz (6%); parecida com: um sapo, uma lápide.]"


def test_messages_as_eval_and_as_chat() -> None:
    plain = rs.messages_for(rs.Candidate("shipped"), "[Imagem anexada: galo.]", "Texto na imagem: G", "Sistema.")
    assert plain == ({"role": "user", "content": "[Imagem anexada: galo.]\nDescreva a imagem brevemente."},)
    chat = rs.messages_for(rs.Candidate("shipped", system=True, ocr=True), "[Imagem anexada: galo.]",
                           "Texto na imagem: G", "Sistema.")
    assert chat[0] == {"role": "system", "content": "Sistema."}
    assert chat[1]["content"] == "[Imagem anexada: galo.]\nTexto na imagem: G\nDescreva a imagem brevemente."
    alone = rs.messages_for(rs.Candidate("none"), "", "", "")
    assert alone == ({"role": "user", "content": "Descreva a imagem brevemente."},)


def test_scorer_matches_lhamas_scores(tiny_lm) -> None:
    scorer = rs.Scorer(tiny_lm)
    prompts = [({"role": "user", "content": "Descreva a imagem."},), ({"role": "user", "content": "um gato preto"},)]
    for messages in prompts:
        captions = ["Um gato preto.", "Olá, como posso ajudar?", "o sofá da sala"]
        ours = [scorer.score(messages, c) for c in captions]
        theirs = [s.logprob for s in score_continuations(tiny_lm, [ScoreRequest(messages, c) for c in captions])]
        assert ours == pytest.approx(theirs, abs=1e-4)
        assert len(set(ours)) == 3


def test_note_hits_counts_the_subject_not_the_notes_own_words() -> None:
    assert rs.note_hits("[Imagem anexada: parece ser um sapo.]", "Um sapo.")
    assert not rs.note_hits("[Imagem anexada: não reconhecida.]", "Uma imagem reconhecida.")
    assert not rs.note_hits("[Imagem anexada: galo.]", "Um sapo.")
