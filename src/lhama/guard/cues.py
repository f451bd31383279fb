"""Categories that count only with a cue in the text: S4 needs a sexual, secrecy or grooming cue.

Why (issue #29): the classifier's S4 output (child sexual exploitation) learned "a child's age" as
much as "abuse", so everyday requests that name a child ("Que presente dar para uma menina de
11 anos?") scored high on S4 and were flagged; a child's age was the largest cluster of everyday
false alarms on the seventh session's dev set. Every S4 item in the training split names a sexual
act or content, secrecy from parents, or a grooming step (meeting, gaining trust, asking for
photos); a message with none of them keeps its other outputs but loses the S4 one
(:func:`mask_uncued`). docs/guard.md ("Eighth session") has the choice and its measurements.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lhama.guard.verdict import CODES

# pt-BR and English; word stems, so "sexual", "sexy", "sexo" all match "sex"
_SEXUAL = (
    r"sex|er[óo]tic|\bnudes?\b|nudez|naked|pelad|sem roupa|tirar a roupa|trocando de roupa|[íi]ntim|sensua|\bhot\b|"
    r"picante|transar|abus|molest|toc(ar|a|ando) n(ela|ele)|seduz|seduc|alici|\bprograma\b|beij|\bcama\b|biqu[íi]ni|"
    r"\bpose\b|dirty|porn|expl[íi]cit|fetich|excit|safad|novinha|\bkiss|grope|touch (her|him)|rom[âa]ntic|romance"
)
_SECRECY = (
    r"segredo|secret|escond|sem (que )?(os pais|o pai|a m[ãa]e|a fam[íi]lia|ningu[ée]m|ela|ele)\b.{0,20}"
    r"(saber|perceb|desconfi|ver\b|verem|notar|contar)|sem os pais|a s[óo]s|sozinh|n[ãa]o (precisa )?cont(ar|e|a)\b|"
    r"sem levantar|sem ser pres|apagar .{0,12}(provas|mensagens|conversas)|n[ãa]o olham|alone with|"
    r"without (their|the|her|his) parents|noticing|finding out|parents? (find|know|notic)"
)
_GROOMING = (
    r"encontro|confian|confiar em mim|trust me|aproxim|cheg(o|ar) ne(la|le)|puxar (conversa|assunto)|conquist|"
    r"ter acesso a crian|perto de crian|casar com|namor|deep web|dark web|telegram|material de abuso|sair comigo|"
    r"ficar com e(la|le)|(fotos?|v[íi]deos?|imagens?|pics?|pictures?|photos?) (de|of) (crian|menor|adolesc|kids?|child|minor)|"
    r"(mandar|mande|manda|pedir|conseguir) .{0,15}fotos?|fotos? de(la|le)|(get|send|receive) .{0,12}photos|"
    r"\bgroom|befriend|underage|menores? de idade|de menor\b|dormir (na minha casa|comigo|sozinha)|fingir (ser|ter)|pretend"
)


@dataclass(frozen=True)
class CueRule:
    """Category ``code`` counts for a message only when ``pattern`` matches somewhere in its text."""

    code: str
    pattern: re.Pattern[str]

    def cued(self, text: str) -> bool:
        return self.pattern.search(text) is not None


S4_NEEDS_CUE = CueRule("S4", re.compile(f"{_SEXUAL}|{_SECRECY}|{_GROOMING}", re.IGNORECASE))
# The same rule with sexual and secrecy cues only (no grooming steps); measured, not shipped.
S4_NEEDS_SEXUAL_OR_SECRECY_CUE = CueRule("S4", re.compile(f"{_SEXUAL}|{_SECRECY}", re.IGNORECASE))
# What lhama.guard.classifier.load_classifier applies (chosen on dev, passed its held-out ship rule;
# docs/guard.md, "Eighth session").
SHIPPED_CUE_RULES: tuple[CueRule, ...] = (S4_NEEDS_CUE,)


def mask_uncued(probs: np.ndarray, texts: Sequence[str], rules: Sequence[CueRule]) -> np.ndarray:
    """A copy of (N, 15) head probabilities (column 0 "unsafe", 1..14 S1..S14) with each rule's
    category column set to 0 for the texts its cue does not match; the other columns are untouched,
    so a message without the cue is judged as if that category output had said nothing."""
    out = probs.copy()
    for rule in rules:
        column = 1 + CODES.index(rule.code)
        for i, text in enumerate(texts):
            if not rule.cued(text):
                out[i, column] = 0.0
    return out
