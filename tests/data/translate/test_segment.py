import pytest

from lhama.data.translate.segment import join, media_layout, split_layout, split_sentences

VALUES = [
    "<image>\nWhat is the position of the skateboard?",
    "What is the main focus of the image?\n<image>",
    "The car is red. It is parked.  Mr. Smith waits!\n\n1. First item. Second part.\n   - nested\n",
    "Run this:\n```python\nprint('hi')\n```\nThen stop.",
    "```\nunterminated code",
    "  \n",
]


@pytest.mark.parametrize("value", VALUES)
def test_layout_pieces_rebuild_the_value_exactly(value: str) -> None:
    pieces = split_layout(value)
    assert "".join(p.text for p in pieces) == value
    same = {(i, j): s for i, p in enumerate(pieces) for j, s in enumerate(p.sentences)}
    assert join(pieces, same) == value


def test_media_tag_and_its_newline_are_kept_pieces() -> None:
    pieces = split_layout("<image>\nWhat is it?")
    assert [(p.kind, p.text) for p in pieces] == [("keep", "<image>"), ("keep", "\n"), ("text", "What is it?")]


def test_lists_code_and_breaks_are_never_sent_to_translation() -> None:
    value = VALUES[2] + VALUES[3]
    texts = [p.text for p in split_layout(value) if p.kind == "text"]
    assert all("\n" not in t and "```" not in t and not t.startswith(("1.", "-")) for t in texts)
    assert "First item. Second part." in texts


def test_sentences_split_on_ends_but_not_abbreviations() -> None:
    sentences, seps = split_sentences("The car is red. It is parked.  Mr. Smith waits! J. Doe too? Yes.")
    assert sentences == ("The car is red.", "It is parked.", "Mr. Smith waits!", "J. Doe too?", "Yes.")
    assert seps == (" ", "  ", " ", " ")


def test_join_uses_translations_and_original_separators() -> None:
    pieces = split_layout("<image>\nOne.  Two.", max_chars=1)
    out = join(pieces, {(2, 0): "Um.", (2, 1): "Dois."})
    assert out == "<image>\nUm.  Dois."


def test_short_sentences_are_grouped_into_units() -> None:
    (piece,) = split_layout(("Fire! Fire! Fire! " + "A long sentence goes on and on. " * 3).strip(), max_chars=40)
    assert piece.sentences == (
        "Fire! Fire! Fire!",
        "A long sentence goes on and on.",
        "A long sentence goes on and on.",
        "A long sentence goes on and on.",
    )
    (piece,) = split_layout("One. Two. Three.", max_chars=10)
    assert piece.sentences == ("One. Two.", "Three.") and piece.separators == (" ",)


def test_media_layout_tells_first_from_last() -> None:
    assert media_layout("<image>\nHi") == [("<image>", "^", "\n")]
    assert media_layout("Hi\n<image>") == [("<image>", "\n", "$")]
    assert media_layout("<image>\nHi") != media_layout("<image> Hi")
