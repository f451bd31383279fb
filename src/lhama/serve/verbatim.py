"""A request for the words spoken is answered with the transcript itself, not by the LM.

The rule: when a user turn carries speech told as a transcript (a model without an audio
branch: :mod:`lhama.serve.cascade`'s ``Transcrição do áudio: "..."`` or a video's ``Som do vídeo
(transcrição): "..."``) and its question only asks for what was said, the answer is Whisper's
transcript, word for word (several recordings: one line each; no speech heard:
:data:`NOTHING_HEARD`). Any other question about the speech ("O que a pessoa pediu?") is
answered by the LM from the transcript as before.

Why: asked to copy, the LM paraphrases. On #28's 90 fresh clips, ``lhama-default`` answering
"Transcreva o que foi dito." had WER 1.011 against 0.534 for the transcript it was given: it
wraps it ("A pessoa está dizendo que...") and "repairs" words it cannot parse.

A question "only asks for what was said" when, with case, accents and punctuation ignored, it
has a saying word (:data:`SAYING`: "transcreva", "transcrição", "dito", "disse", "falou", ...)
and every other word is one that names the recording or fills the sentence (:data:`FILLERS`:
"o que foi", "o áudio", "por favor", "exatamente", ...): "Transcreva o que foi dito.", "O que
foi dito no áudio?", "O que ela disse?", "Transcribe the audio, please." A question with any
other word is the LM's: "O que foi dito sobre o preço?", "Transcreva e traduza para o inglês.",
"Quem fala?". Chat (:class:`lhama.serve.session.ChatSession`) and the API
(:mod:`lhama.serve.prompt`) both apply it; the guard reads the question and the answer as it
reads the LM's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lhama.guard.features import normalize
from lhama.serve.cascade import Heard

NOTHING_HEARD = "Nenhuma fala foi reconhecida no áudio."

# Words that ask for the words spoken (folded: lowercase, no accents); "transcr..." also counts.
SAYING = frozenset("dito ditos disse disseram diz dizem falou falaram falado fala falam said say says".split())
# Words a pure transcription request may also hold: what to transcribe, courtesy, sentence glue.
FILLERS = frozenset("""
    o a os as um uma que foi foram e esta estava sendo qual quais do da dos das no na nos nas de em
    este esse esta essa isto isso aqui ai audio audios gravacao gravado gravada mensagem voz video
    som trecho arquivo clipe nota ele ela eles elas pessoa alguem locutor narrador por favor me mim
    para pra exatamente literalmente palavra palavras texto completo completa inteiro inteira todo
    toda tudo escreva escrever repita repetir diga dizer faca fazer mostre
    what was is were the this that audio recording clip it they he she of in being exactly word
    for me please text full whole
""".split())


def is_transcription_request(question: str) -> bool:
    """True when ``question`` only asks for what was said (the module's rule)."""
    words = re.findall(r"[a-z]+", normalize(question))  # lowercase, accents removed
    saying = [w for w in words if w in SAYING or w.startswith("transcr")]
    return bool(saying) and all(w in FILLERS or w in saying for w in words)


def verbatim_answer(question: str, notes: Iterable[str]) -> str | None:
    """The transcripts of the :class:`~lhama.serve.cascade.Heard` notes among ``notes`` (one line
    each; :data:`NOTHING_HEARD` when none holds speech) if ``question`` is a transcription request
    and speech was heard; else None: the LM answers. Other notes (an image's labels, frame names,
    text the user typed) are not heard."""
    heard = [note.transcript for note in notes if isinstance(note, Heard)]
    if not heard or not is_transcription_request(question):
        return None
    return "\n".join(text for text in heard if text) or NOTHING_HEARD
