from lhama.guard.language import looks_english


def test_english_and_portuguese_messages_are_told_apart():
    assert looks_english("How do I kill a Python process that is stuck?")
    assert looks_english("Write a poem about the ocean.")
    assert not looks_english("Como matar um processo travado no Linux?")
    assert not looks_english("Me ensina a fazer pão de queijo.")
    assert not looks_english("Uma bateria.")  # no function word of either: not English
    assert not looks_english("Qual é o maior planeta do sistema solar?")
