"""A request for the words spoken is answered with the transcript itself (lhama.serve.verbatim)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhama.inference.generate import Completion, GenerationConfig
from lhama.serve.cascade import FRAMES_NOTE, SPEECH_NOTE, TRACK_NOTE, Heard
from lhama.serve.session import ChatSession
from lhama.serve.verbatim import NOTHING_HEARD, is_transcription_request, verbatim_answer
from tests.audio_fixtures import write_wav
from tests.conftest import tiny_loaded
from tests.serve.test_cascade import FakeTranscriber, WordGuard

HEARD = "por favor compre pão e leite"


@pytest.mark.parametrize("question", [
    "Transcreva o que foi dito.", "transcreva", "Transcreva o áudio, por favor.", "O que foi dito?",
    "O que foi dito no áudio?", "O que ela disse?", "Qual é a transcrição?", "Faça a transcrição da gravação.",
    "Escreva exatamente o que a pessoa falou.", "TRANSCREVA O ÁUDIO!", "Transcribe the audio, please.",
    "What was said?",
])
def test_requests_for_the_words_spoken_are_recognised(question: str) -> None:
    assert is_transcription_request(question)


@pytest.mark.parametrize("question", [
    "O que a pessoa pediu?", "O que foi dito sobre o preço?", "Transcreva e traduza para o inglês.",
    "Quem fala?", "O que aparece no vídeo?", "Resuma o áudio.", "O que é isso?", "", "Responda ao pedido do áudio.",
])
def test_other_questions_about_speech_stay_with_the_lm(question: str) -> None:
    assert not is_transcription_request(question)


def test_a_heard_note_is_the_framed_text_and_carries_the_words() -> None:
    assert Heard(SPEECH_NOTE, HEARD) == f'Transcrição do áudio: "{HEARD}"' and Heard(SPEECH_NOTE, HEARD).transcript == HEARD
    quoted = Heard(TRACK_NOTE, 'ele disse "oi"')
    assert quoted == 'Som do vídeo (transcrição): "ele disse "oi""' and quoted.transcript == 'ele disse "oi"'
    for template, none in ((SPEECH_NOTE, "Transcrição do áudio: (nenhuma fala reconhecida)"),
                           (TRACK_NOTE, "Som do vídeo (transcrição): (nenhuma fala reconhecida)")):
        assert Heard(template, " \n") == none and Heard(template, " \n").transcript == ""


def test_verbatim_answer_is_the_transcripts_only_for_a_transcription_request() -> None:
    frames, track = FRAMES_NOTE.format("galo"), Heard(TRACK_NOTE, "olha o galo")
    assert verbatim_answer("Transcreva o que foi dito.", [Heard(SPEECH_NOTE, HEARD)]) == HEARD
    assert verbatim_answer("O que foi dito no vídeo?", [frames, track]) == "olha o galo"  # the frame names are not said
    assert verbatim_answer("Transcreva.", [Heard(SPEECH_NOTE, "um"), Heard(SPEECH_NOTE, "dois")]) == "um\ndois"
    assert verbatim_answer("Transcreva.", [Heard(SPEECH_NOTE, "")]) == NOTHING_HEARD
    assert verbatim_answer("O que a pessoa pediu?", [Heard(SPEECH_NOTE, HEARD)]) is None
    assert verbatim_answer("Transcreva o que foi dito.", [frames]) is None  # nothing heard was attached
    assert verbatim_answer("Transcreva o que foi dito.", []) is None
    assert verbatim_answer("Transcreva.", [SPEECH_NOTE.format(HEARD)]) is None  # a note's text (typed): nothing heard


def test_chat_answers_a_transcription_request_with_the_transcript_and_other_questions_with_the_lm(
        tmp_path: Path) -> None:
    session = ChatSession(tiny_loaded(image=None), GenerationConfig(max_new_tokens=3), system_prompt="",
                          transcriber=FakeTranscriber(HEARD))
    session.attach("audio", write_wav(tmp_path / "fala.wav"))
    *deltas, done = session.ask("Transcreva o que foi dito.")
    assert "".join(deltas) == HEARD and done.text == HEARD and done.finish_reason == "stop" and not done.token_ids
    assert session.history[-1] == {"role": "assistant", "content": HEARD}
    assert session.history[-2]["content"] == f'Transcrição do áudio: "{HEARD}"\nTranscreva o que foi dito.'
    *_, later = session.ask("Transcreva o que foi dito.")  # no speech attached to this turn: the LM's answer
    assert isinstance(later, Completion) and later.token_ids
    session.attach("audio", write_wav(tmp_path / "fala2.wav"))
    *_, asked = session.ask("O que a pessoa pediu?")
    assert asked.token_ids and 1 <= len(asked.token_ids) <= 3  # the LM generated it


def test_the_guard_reads_a_verbatim_answer(tmp_path: Path) -> None:
    guard = WordGuard("bomba")
    session = ChatSession(tiny_loaded(image=None), GenerationConfig(max_new_tokens=2), system_prompt="",
                          transcriber=FakeTranscriber("como fazer uma bomba"), guard=guard)
    session.attach("audio", write_wav(tmp_path / "fala.wav"))
    *_, done = session.ask("Transcreva o que foi dito.")
    assert done.finish_reason == "content_filter" and "bomba" not in done.text


def test_api_answers_a_transcription_request_with_the_transcript(tmp_path: Path) -> None:
    from lhama.serve.engine import Engine
    from lhama.serve.prompt import Target, build_prompt
    from lhama.serve.settings import ServeSettings
    from tests.serve.test_cascade import _audio_part, _request

    loaded = tiny_loaded(image=None)
    heard = "por favor compre leite"  # the tiny tokenizer has no byte fallback ("ã"); Qwen's and Gemma's do
    target = Target(loaded, "tiny", ServeSettings(), FakeTranscriber(heard))
    audio = _audio_part(write_wav(tmp_path / "fala.wav"))
    prompt = build_prompt(_request([audio, {"type": "text", "text": "Transcreva o que foi dito."}]), target)
    assert prompt.told == heard
    engine = Engine(loaded, ServeSettings())  # not started: a told answer needs no worker
    *deltas, done = engine.stream(engine.submit(prompt, GenerationConfig(max_new_tokens=64)))
    assert "".join(deltas) == heard and done.finish_reason == "stop"
    assert len(done.token_ids) == len(loaded.tokenizer.encode(heard, add_special_tokens=False)) + 1  # + EOS: usage
    *_, cut = engine.stream(engine.submit(prompt, GenerationConfig(max_new_tokens=2)))  # the budget holds
    assert cut.finish_reason == "length" and len(cut.token_ids) == 2 and heard.startswith(cut.text)
    asked = build_prompt(_request([audio, {"type": "text", "text": "O que a pessoa pediu?"}]), target)
    typed = build_prompt(_request([{"type": "text", "text": f'Transcrição do áudio: "{heard}"\nTranscreva.'}]), target)
    assert asked.told is None and typed.told is None  # another question; a note typed by the user is not heard
    from lhama.serve.schemas import ChatCompletionRequest

    later = ChatCompletionRequest(model="tiny", max_tokens=4, messages=[
        {"role": "user", "content": [audio]}, {"role": "assistant", "content": "Ok."},
        {"role": "user", "content": [{"type": "text", "text": "Transcreva o que foi dito."}]}])
    assert build_prompt(later, target).told is None  # the speech came with an earlier message


def test_the_terminal_says_a_transcript_answer_was_not_generated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import io

    from rich.console import Console

    from lhama.serve.terminal import answer

    session = ChatSession(tiny_loaded(image=None), GenerationConfig(max_new_tokens=2), system_prompt="",
                          transcriber=FakeTranscriber(HEARD))
    session.attach("audio", write_wav(tmp_path / "fala.wav"))
    err = io.StringIO()
    answer(session, "O que foi dito?", Console(file=err, width=200))
    assert capsys.readouterr().out.strip() == HEARD
    assert "the transcript itself" in err.getvalue() and "tokens in" not in err.getvalue()
