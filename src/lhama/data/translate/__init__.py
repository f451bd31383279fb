"""Translate LLaVA-Instruct datasets to Portuguese locally, exactly and resumably.

    from lhama.data.translate import TranslateConfig, translate_file
    summary = translate_file(TranslateConfig(Path("llava.json"), Path("llava_pt.json")))

Only each turn's ``value`` is translated; media tags, code, URLs, numbers, boxes and layout are
kept byte-exact (see :mod:`.spans`, :mod:`.segment`); a kill -9 loses nothing (:mod:`.journal`).
"""

from lhama.data.translate.config import TranslateConfig, TranslateSummary
from lhama.data.translate.pipeline import translate_file

__all__ = ["TranslateConfig", "TranslateSummary", "translate_file"]
