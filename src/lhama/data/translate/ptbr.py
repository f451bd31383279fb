"""Brazilian vocabulary for Portuguese MT output that slips into European Portuguese.

The bundled Bergamot en->pt model was trained on mixed pt-PT/pt-BR data and sometimes says
"autocarro" for bus. This swaps unambiguous pt-PT words for their pt-BR forms, whole words
only, keeping the capital. Ambiguous words (e.g. "facto"/"fato", "equipa" as a verb) stay.
"""

from __future__ import annotations

import re
from types import MappingProxyType

# European Portuguese -> Brazilian Portuguese; only words that mean the same in context.
PT_PT_TO_BR: tuple[tuple[str, str], ...] = (
    ("autocarros", "ônibus"), ("autocarro", "ônibus"),
    ("comboios", "trens"), ("comboio", "trem"),
    ("eléctrico", "bonde"),
    ("telemóveis", "celulares"), ("telemóvel", "celular"),
    ("ecrãs", "telas"), ("ecrã", "tela"),
    ("frigoríficos", "geladeiras"), ("frigorífico", "geladeira"),
    ("pequeno-almoço", "café da manhã"),
    ("casa de banho", "banheiro"),
    ("raparigas", "garotas"), ("rapariga", "garota"),
    ("rapazes", "garotos"), ("rapaz", "garoto"),
    ("miúdos", "garotos"), ("miúdas", "garotas"),
    ("sumo", "suco"), ("sumos", "sucos"),
    ("relvado", "gramado"), ("relva", "grama"),
    ("camião", "caminhão"), ("camiões", "caminhões"),
    ("ananás", "abacaxi"),
    ("guarda-redes", "goleiro"),
    ("montra", "vitrine"), ("montras", "vitrines"),
    ("cêntimos", "centavos"), ("cêntimo", "centavo"),
    ("canalizador", "encanador"),
    ("hospedeira", "aeromoça"),
    ("pastelaria", "confeitaria"),
    ("equipas", "equipes"),
    ("desporto", "esporte"), ("desportos", "esportes"), ("desportivo", "esportivo"),
    ("registo", "registro"), ("registos", "registros"),
    ("ficheiro", "arquivo"), ("ficheiros", "arquivos"),
    ("utilizador", "usuário"), ("utilizadores", "usuários"),
)
_LONGEST_FIRST = sorted((a for a, _ in PT_PT_TO_BR), key=len, reverse=True)
_PATTERN = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, _LONGEST_FIRST)) + r")(?!\w)", re.IGNORECASE)
_LOOKUP = MappingProxyType(dict(PT_PT_TO_BR))


def to_brazilian(text: str) -> str:
    """``text`` with European-only words replaced by their Brazilian forms."""
    return _PATTERN.sub(_swap, text)


def _swap(m: re.Match[str]) -> str:
    target = _LOOKUP[m.group().lower()]
    return target[:1].upper() + target[1:] if m.group()[:1].isupper() else target
