"""The guard's answer: the Llama Guard 3 S1-S14 taxonomy, the :class:`Verdict` shape, and the
Portuguese refusal a caller shows when a message is unsafe.

Llama Guard 3 answers ``safe``, or ``unsafe`` with the violated categories on the next line
(``unsafe\\nS1,S9``); :meth:`Verdict.__str__` prints exactly that and :func:`parse_verdict` reads it
back from a model's generated text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Code -> (English name as in Llama Guard 3, Brazilian Portuguese name used in refusals).
CATEGORIES: dict[str, tuple[str, str]] = {
    "S1": ("Violent Crimes", "crimes violentos"),
    "S2": ("Non-Violent Crimes", "crimes não violentos"),
    "S3": ("Sex-Related Crimes", "crimes sexuais"),
    "S4": ("Child Sexual Exploitation", "exploração sexual infantil"),
    "S5": ("Defamation", "difamação"),
    "S6": ("Specialized Advice", "aconselhamento especializado perigoso"),
    "S7": ("Privacy", "violação de privacidade"),
    "S8": ("Intellectual Property", "violação de propriedade intelectual"),
    "S9": ("Indiscriminate Weapons", "armas de destruição indiscriminada"),
    "S10": ("Hate", "discurso de ódio"),
    "S11": ("Suicide & Self-Harm", "suicídio e automutilação"),
    "S12": ("Sexual Content", "conteúdo sexual explícito"),
    "S13": ("Elections", "desinformação eleitoral"),
    "S14": ("Code Interpreter Abuse", "abuso do interpretador de código"),
}
CODES: tuple[str, ...] = tuple(CATEGORIES)

_CODE = re.compile(r"\bS(1[0-4]|[1-9])\b")


@dataclass(frozen=True)
class Verdict:
    """Whether one message is safe, and if not, which S1-S14 categories it violates.

    ``score`` is the guard's unsafe score in [0, 1], the number its threshold applies to (for the
    classifier, P(unsafe) averaged with its top category probability; ``None`` when the backend
    gives none, e.g. a generative Llama Guard model).
    """

    safe: bool
    categories: tuple[str, ...] = ()
    score: float | None = None

    def __post_init__(self) -> None:
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown guard category {unknown[0]!r}; expected S1..S14")
        if self.safe and self.categories:
            raise ValueError("a safe verdict carries no categories")

    def __str__(self) -> str:
        return "safe" if self.safe else "unsafe\n" + ",".join(self.categories)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of ``lhama guard --jsonl``: ``{"verdict": ..., "categories": [...]}``."""
        return {"verdict": "safe" if self.safe else "unsafe", "categories": list(self.categories)}


SAFE = Verdict(safe=True)


def parse_verdict(text: str) -> Verdict:
    """Read a Llama-Guard-style answer (``safe`` / ``unsafe\\nS1,S2``) from generated text.

    Anything that does not start with ``safe`` counts as unsafe: a guard that cannot read its own
    model's answer fails closed rather than letting the message through.
    """
    words = text.strip().split(None, 1)
    first = words[0].lower().strip(".:,") if words else ""
    if first == "safe":
        return SAFE
    rest = words[1] if len(words) > 1 and first == "unsafe" else text
    codes = sorted({"S" + m for m in _CODE.findall(rest)}, key=lambda c: int(c[1:]))
    return Verdict(safe=False, categories=tuple(codes))


def merge(verdicts: list[Verdict]) -> Verdict:
    """One verdict for several checks of the same turn: unsafe if any is, categories united."""
    unsafe = [v for v in verdicts if not v.safe]
    if not unsafe:
        return SAFE
    codes = sorted({c for v in unsafe for c in v.categories}, key=lambda c: int(c[1:]))
    scores = [v.score for v in unsafe if v.score is not None]
    return Verdict(safe=False, categories=tuple(codes), score=max(scores) if scores else None)


def refusal_text(verdict: Verdict) -> str:
    """The Portuguese message shown instead of an answer when ``verdict`` is unsafe."""
    names = [CATEGORIES[c][1] for c in verdict.categories]
    reason = f" porque envolve {_join_pt(names)}" if names else ""
    text = f"Desculpe, não posso ajudar com esse pedido{reason}."
    if "S11" in verdict.categories:
        text += (
            " Se você está pensando em se machucar, converse com alguém agora: o CVV atende "
            "de graça, 24 horas, pelo telefone 188 ou em cvv.org.br."
        )
    elif "S6" in verdict.categories:
        text += " Em uma emergência, ligue 192 (SAMU) ou procure um profissional habilitado."
    return text


def cut_notice(verdict: Verdict, after_text: bool = True) -> str:
    """The Portuguese line appended where an unsafe answer was cut, naming the categories
    (``after_text``: part of the answer was already shown, so the notice starts on a new line)."""
    names = [f"{CATEGORIES[c][1]} ({c})" for c in verdict.categories]
    reason = f": {_join_pt(names)}" if names else ""
    return ("\n\n" if after_text else "") + f"[Resposta interrompida pelo filtro de segurança{reason}.]"


def _join_pt(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " e " + items[-1]
