from collections import Counter
from pathlib import Path

import pytest

from lhama.recipes.default.splits import read_caption_rows, read_file_list, select_rows, stratified_holdout
from lhama.errors import DataError

TUXPAINT = Path(__file__).resolve().parents[4] / "shared" / "data" / "tuxpaint_ptbr"
HELDOUT = Path(__file__).resolve().parents[3] / "data" / "tuxpaint" / "heldout.txt"


def test_committed_holdout_is_what_the_function_makes_and_a_fifth_per_category():
    rows = read_caption_rows(TUXPAINT)
    held = read_file_list(HELDOUT)
    assert held == stratified_holdout(rows)  # the committed split is reproducible
    assert len(held) == round(len(rows) / 5)
    coarse = {r["file"]: r["category"].split("/")[0] for r in rows}
    total, kept = Counter(coarse.values()), Counter(coarse[f] for f in held)
    for category, n in total.items():
        if n >= 10:
            assert abs(kept[category] / n - 0.2) < 0.07, category


def test_select_rows_partitions():
    rows = [{"file": f"{i}.jpg", "category": "a" if i % 2 else "b"} for i in range(20)]
    held = stratified_holdout(rows)
    assert len(held) == 4 and {r["file"] for r in select_rows(rows, held)} == set(held)
    assert len(select_rows(rows, held, keep=False)) == 16


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="no captions.tsv"):
        read_caption_rows(tmp_path)
    (tmp_path / "captions.tsv").write_text("name\tpt_BR\nx.jpg\tUm x.\n")
    with pytest.raises(DataError, match="no 'file' column"):
        read_caption_rows(tmp_path)
    with pytest.raises(DataError, match="split file not found"):
        read_file_list(tmp_path / "missing.txt")
