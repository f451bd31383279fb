from lhama.data.translate.glossary import Glossary
from lhama.data.translate.spans import find_spans, has_placeholder_clash, mask, numbers_kept, unmask


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.source) for _, _, s in find_spans(text)]


def test_finds_every_kind_once_and_bbox_beats_numbers() -> None:
    text = "Box [0.12, 0.34, 0.56, 0.78] has 3 cats, `x = 1`, see https://a.org/b?c=2. Cost $12.50 or 50%."
    assert kinds(text) == [
        ("bbox", "[0.12, 0.34, 0.56, 0.78]"),
        ("number", "3"),
        ("code", "`x = 1`"),
        ("url", "https://a.org/b?c=2"),
        ("number", "$12.50"),
        ("number", "50%"),
    ]


def test_numbers_glued_to_letters_are_text_and_signs_belong_to_numbers() -> None:
    assert kinds("The 2nd player wears a 3D helmet.") == []
    assert kinds("A coin ($.25) or (0.01 €).") == [("number", "$.25"), ("number", "0.01 €")]


def test_numbers_kept_compares_exact_multisets() -> None:
    assert numbers_kept("3 cats and 3 dogs, 1.5 m", "1.5 m: 3 gatos e 3 cães")
    assert not numbers_kept("3 cats and 3 dogs", "3 gatos e cães")
    assert not numbers_kept("1.5 m", "1,5 m")


def test_mask_then_unmask_restores_bytes_even_when_reordered() -> None:
    text = "At 10:30 the value was 1,250.5 units."
    m = mask(text, find_spans(text))
    assert m.text == "At X1X the value was X2X units."
    assert m.pieces == ("At ", " the value was ", " units.")
    assert unmask("O valor era X2X unidades às X1X.", m) == "O valor era 1,250.5 unidades às 10:30."


def test_unmask_refuses_lost_duplicated_or_unknown_placeholders() -> None:
    m = mask("a 1 b 2", find_spans("a 1 b 2"))
    assert unmask("a X1X b", m) is None
    assert unmask("a X1X b X1X X2X", m) is None
    assert unmask("a X1X b X2X X3X", m) is None


def test_glossary_spans_win_and_carry_their_target() -> None:
    g = Glossary((("skateboard", "skate"), ("Tux", "Tux")))
    spans = find_spans("Tux rides a Skateboard 2 times.", g.matches)
    assert [(s.kind, s.source, s.target) for _, _, s in spans] == [
        ("glossary", "Tux", "Tux"),
        ("glossary", "Skateboard", "Skate"),
        ("number", "2", "2"),
    ]


def test_placeholder_clash_is_detected() -> None:
    assert has_placeholder_clash("model X1X is new")
    assert not has_placeholder_clash("model X1 is new")
