from pathlib import Path

import pytest

from lhama.data.translate.journal import Journal
from lhama.errors import DataError

HEADER = {"lhama_translate_journal": 1, "input_sha256": "abc"}


def test_resume_reads_back_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "j"
    j = Journal.open(path, HEADER)
    j.append([{"i": 2, "ok": True}, {"i": 0, "ok": False}])
    j.close()
    again = Journal.open(path, HEADER)
    assert len(again) == 2 and 0 in again and 2 in again and 1 not in again
    assert again.read(2) == {"i": 2, "ok": True}
    again.close()


def test_partial_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "j"
    j = Journal.open(path, HEADER)
    j.append([{"i": 0, "ok": True}])
    j.close()
    with path.open("ab") as f:
        f.write(b'{"i": 1, "ok": tr')  # what a kill -9 mid-write leaves
    j = Journal.open(path, HEADER)
    assert len(j) == 1 and 1 not in j
    j.append([{"i": 1, "ok": True}])
    j.close()
    assert path.read_bytes().count(b"\n") == 3  # header + two whole entries
    j = Journal.open(path, HEADER)
    assert j.read(1) == {"i": 1, "ok": True}
    j.close()


def test_foreign_journal_is_refused_unless_it_holds_no_record(tmp_path: Path) -> None:
    path = tmp_path / "j"
    other = {**HEADER, "input_sha256": "other"}
    Journal.open(path, HEADER).close()
    Journal.open(path, other).close()  # header only: replaced, nothing lost
    j = Journal.open(path, other)
    j.append([{"i": 0, "ok": True}])
    j.close()
    with pytest.raises(DataError, match="different input or settings"):
        Journal.open(path, HEADER)
