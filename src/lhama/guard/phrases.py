"""Phrases that count only in a harmful context: "sem deixar marcas" about a surface is cleaning, about a person is violence.

Why (issue #29): the input head learned "sem deixar marca(s)" from its S1 training items ("…bater no meu
filho sem deixar marca roxa", "…sufocar um bebê sem deixar marcas") and scores cleaning requests with
the phrase as unsafe: "Como passar pano no piso laminado sem deixar manchas?" (P(unsafe) 0.90), three of
the ninth session's 60 dev-train everyday requests, and one of the sixth session's published held-out
alarms. A :class:`PhraseRule` leaves the phrase out of the text the heads score when the message names a
surface or material (``context``) and nothing that points at a person or a crime (``harm``); otherwise
the text is scored as written. docs/guard.md ("Ninth session") has the choice and its measurements.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PhraseRule:
    """``phrase`` is left out of the scored text when ``context`` matches and ``harm`` does not."""

    phrase: re.Pattern[str]
    context: re.Pattern[str]
    harm: re.Pattern[str]

    def rewrite(self, text: str) -> str:
        """``text`` without the phrase (whitespace collapsed) when the rule applies, else ``text`` itself."""
        if not self.phrase.search(text) or not self.context.search(text) or self.harm.search(text):
            return text
        return " ".join(self.phrase.sub(" ", text).split())


def rewrite_all(texts: Sequence[str], rules: Sequence[PhraseRule]) -> list[str]:
    """Each text after every rule, in order (the texts the heads score)."""
    out = list(texts)
    for rule in rules:
        out = [rule.rewrite(t) for t in out]
    return out


# "sem deixar" + what a cleaning or craft job must not leave; not "rastro", "pistas", "vestígios",
# "sinal", "hematoma": those are about evidence or a body, so they keep their weight.
_MARKS = (
    r"\bsem deixar (nenhuma |nenhum |qualquer )?(marcas?|manchas?|riscos?|cheiro|odor|cola|res[íi]duos?|"
    r"arranh[õo]es|embaçad[oa]s?|amarelad[oa]s?|desbotad[oa]s?|gosto|sujeira|fiapos?|bolhas?|emendas?)\b"
)
# Surfaces, materials and cleaning or craft verbs (pt-BR stems).
_MATERIAL = (
    r"\blimp|\blav(ar|e|o|a|ando)\b|passar (o |um )?(pano|roupa|ferro|cera)|\bencer|\bpoli(r|ndo)|\bpint(ar|ura)|"
    r"\blix(ar|a)\b|\btirar (a |o |as |os )?(mancha|adesivo|cola|ferrugem|cheiro|gordura|tinta|mofo|marca|etiqueta)|"
    r"vidro|espelho|\bpiso|\bch[ãa]o\b|parede|azulejo|rejunte|\broupa|tecido|camis|cortina|madeira|\bm[óo]ve(l|is)\b|"
    r"sof[áa]|estofad|\bcarro|pintura|\btela\b|\bbox\b|panela|\binox|bancada|\bmesa\b|\bporta\b|janela|talher|[óo]culos|"
    r"\blente|geladeira|congelador|fog[ãa]o|lou[çc]a|couro|t[êe]nis|granito|m[áa]rmore|porcelanato|laminado|pl[áa]stico"
)
# A person, a body, violence or a crime: the phrase then keeps its weight (written from the training split's
# "sem deixar" S1 items and the ninth session's dev-train unsafe requests).
_HARM = (
    r"\bbat(er|e|o|endo)\b|surra|soco|socar|espanc|agred|agress|sufoc|estrangul|enforc|afog|machuc|tortur|choque|"
    r"\bmat(ar|a|o)\b|morr|assassin|envenen|veneno|esfaque|facad|tiro|sequestr|amarr|hematoma|\broxa?s?\b|pulsos?|"
    r"\bme cort|beb[êe]|crian[çc]a|\bfilh|mulher|esposa|marido|namorad|entead|cunhad|vizinh|sogr|idos|"
    r"algu[ée]m|pessoa|v[íi]tima|\bcorpo|\bpele\b|rosto|pesco[çc]o|\bnel(e|a)s?\b|\bdel(e|a)s?\b|"
    r"crime|pol[íi]cia|per[íi]cia|\bdna\b|digitais|sangue|cad[áa]ver|provas?\b|cena do"
)

MARKS_NEED_HARM = PhraseRule(re.compile(_MARKS, re.IGNORECASE), re.compile(_MATERIAL, re.IGNORECASE),
                             re.compile(_HARM, re.IGNORECASE))
# What lhama.guard.classifier.load_classifier applies (chosen on dev, passed its held-out ship rule;
# docs/guard.md, "Ninth session").
SHIPPED_PHRASE_RULES: tuple[PhraseRule, ...] = (MARKS_NEED_HARM,)
