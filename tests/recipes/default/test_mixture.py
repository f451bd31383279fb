import json

from PIL import Image

from lhama.recipes.default.mixture import (CATEGORY_PROMPT, EASY_VQA_ANSWERS, MixConfig, table_answers, build_mix, short_caption,
                                 side_by_side, split_sentences)
from lhama.files import read_jsonl

ADMIRE_HEADER = "compound\tsubset\tsentence_type\tsentence\texpected_order" + "".join(
    f"\timage{n}_name\timage{n}_caption" for n in range(1, 6))


def _sources(tmp_path):
    tux = tmp_path / "tux"
    (tux / "images").mkdir(parents=True)
    rows = ["file\tcategory\ten\tpt_BR\tpt"]
    for n in range(10):
        Image.new("RGB", (40, 30), (25 * n, 100, 200)).save(tux / "images" / f"s{n}.jpg")
        rows.append(f"s{n}.jpg\tanimals/birds\tBird {n}.\tUm pássaro {n}.\tUm pássaro {n}.")
    (tux / "captions.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "heldout.txt").write_text("# held out\ns3.jpg\ns7.jpg\n")
    admire = tmp_path / "admire"
    (admire / "red tape").mkdir(parents=True)
    cells = []
    for n in range(1, 6):
        Image.new("RGB", (20, 20), "red").save(admire / "red tape" / f"{n}.jpg")
        cells += [f"{n}.jpg", f"A roll of tape number {n}. It is red. It lies on a desk. The desk is wooden."]
    row = ["red tape", "Train", "idiomatic", "Too much red tape.", "[]", *cells]
    (admire / "train.tsv").write_text(ADMIRE_HEADER + "\n" + "\t".join(row) + "\n")
    (tmp_path / "pt.tsv").write_text("compound\tsubset\tsentence_type\tsentence\texpected_order\n"
                                     "mercado negro\tTrain\tidiomatic\tO mercado negro cresce.\t[]\n")
    return MixConfig(tuxpaint_dir=str(tux), heldout=str(tmp_path / "heldout.txt"), admire_tsv=str(admire / "train.tsv"),
                     admire_pt_tsv=str(tmp_path / "pt.tsv"), easy_vqa_images=4, compare_pairs=3, translation_turns=2)


def _fake_translate(records):
    """Stands in for MT (tested in tests/data/translate): marks every value, drops one record."""
    def mark(value):
        head, sep, text = value.rpartition("<image>\n")
        return f"{head}{sep}PT[{text}]"

    out = [dict(r, conversations=[dict(t, value=mark(t["value"])) for t in r["conversations"]]) for r in records]
    return out[:-1]


def test_mix_excludes_the_holdout_counts_every_record_and_keeps_structure(tmp_path):
    cfg = _sources(tmp_path)
    summary = build_mix(cfg, tmp_path / "mix", _fake_translate)
    stage1, stage2 = read_jsonl(tmp_path / "mix" / "stage1.jsonl"), read_jsonl(tmp_path / "mix" / "stage2.jsonl")
    held = read_jsonl(tmp_path / "mix" / "heldout.jsonl")
    assert summary.translated_in == 4 + 5 and summary.translation_rejected == 1 and summary.heldout_excluded == 2
    assert {r["id"] for r in held} == {"tux-s3.jpg", "tux-s7.jpg"}
    trained_images = {r.get("image") for r in stage1 + stage2}
    assert not any(str(path).endswith(("s3.jpg", "s7.jpg")) for path in trained_images)  # the hold-out never trains
    assert len(stage1) == 8 + 8 and summary.stage1 == len(stage1)
    assert summary.by_source["stage2"] == {"tuxpaint": 8, "admire": 4, "easyvqa": 4, "compare": 3, "text": 2 + 1 + 4}
    for record in stage1 + stage2:
        human = [t for t in record["conversations"] if t["from"] == "human"]
        assert human[0]["value"].startswith("<image>\n") == ("image" in record)
        assert sum(t["value"].count("<image>") for t in record["conversations"]) == ("image" in record)
    summary_file = json.loads((tmp_path / "mix" / "summary.json").read_text())
    assert summary_file["stage2"] == len(stage2)


def test_easy_vqa_answers_come_from_the_table_and_negations_are_left_out(tmp_path):
    cfg = _sources(tmp_path)
    build_mix(cfg, tmp_path / "mix", lambda records: records)
    vqa = [r for r in read_jsonl(tmp_path / "mix" / "stage2.jsonl") if r["source"] == "easyvqa"]
    assert len(vqa) == 4
    for record in vqa:
        answers = [t["value"] for t in record["conversations"] if t["from"] == "gpt"]
        questions = [t["value"] for t in record["conversations"] if t["from"] == "human"]
        assert set(answers) <= set(EASY_VQA_ANSWERS.values())
        assert not any(" not " in q or " no " in q for q in questions)


def test_compare_answers_name_both_stamps_left_then_right(tmp_path):
    cfg = _sources(tmp_path)
    build_mix(cfg, tmp_path / "mix", lambda records: records)
    compare = [r for r in read_jsonl(tmp_path / "mix" / "stage2.jsonl") if r["source"] == "compare"]
    for record in compare:
        answer = record["conversations"][1]["value"]
        assert answer.startswith("À esquerda, um pássaro ") and "; à direita, um pássaro " in answer
        with Image.open(record["image"]) as img:
            assert img.size == (448, 224)


def test_side_by_side_puts_each_image_in_its_half(tmp_path):
    Image.new("RGB", (50, 50), (255, 0, 0)).save(tmp_path / "r.png")
    Image.new("RGB", (50, 50), (0, 0, 255)).save(tmp_path / "b.png")
    side_by_side(tmp_path / "r.png", tmp_path / "b.png", tmp_path / "out.jpg", side=100)
    with Image.open(tmp_path / "out.jpg") as img:
        left, right = img.getpixel((50, 50)), img.getpixel((150, 50))
    assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60


def test_split_sentences():
    assert split_sentences("A dog. It runs! Why? Yes") == ["A dog.", "It runs!", "Why?", "Yes"]


def test_short_caption_drops_the_image_depicts_opening():
    assert short_caption("A imagem retrata uma maçã podre.") == "Uma maçã podre."
    assert short_caption("A imagem é uma ilustração de um gato.") == "Uma ilustração de um gato."
    assert short_caption("Um sapo verde.") == "Um sapo verde."


def test_tux_records_ask_the_category_as_a_second_turn(tmp_path):
    cfg = _sources(tmp_path)
    build_mix(cfg, tmp_path / "mix", lambda records: records)
    tux = [r for r in read_jsonl(tmp_path / "mix" / "stage1.jsonl") if r["source"] == "tuxpaint"]
    for record in tux:
        turns = record["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt", "human", "gpt"]
        assert turns[2]["value"] == CATEGORY_PROMPT and turns[3]["value"] == "Animais."


def test_easy_vqa_color_answers_get_a_question_about_colour():
    record = {"source": "easyvqa", "answers": ["blue", "circle"], "conversations": [
        {"from": "human", "value": "<image>\nQual é a forma?"}, {"from": "gpt", "value": "Blue"},
        {"from": "human", "value": "Que forma está presente?"}, {"from": "gpt", "value": "Circle"}]}
    turns = table_answers(record)["conversations"]
    assert [t["value"] for t in turns] == ["<image>\nQual é a cor da forma?", "Azul.",
                                           "Que forma está presente?", "Um círculo."]


def test_the_default_mix_translates_with_lhamas_pipeline_in_its_own_folder(tmp_path, monkeypatch):
    """``lhama data default-mix``'s one call: build_mix with the pipeline translator working in
    OUT/translate, reporting progress through the caller's function."""
    from lhama.recipes.default import mixture

    cfg, given = _sources(tmp_path), []

    def pipeline(work_dir, progress=None):
        given.append((work_dir, progress))
        return _fake_translate

    monkeypatch.setattr(mixture, "pipeline_translator", pipeline)
    show = lambda done, total, words: None  # noqa: E731
    summary = mixture.build_default_mix(cfg, tmp_path / "mix", show)
    assert given == [(tmp_path / "mix" / "translate", show)]
    assert summary.stage1 == len(read_jsonl(tmp_path / "mix" / "stage1.jsonl")) and summary.translation_rejected == 1
