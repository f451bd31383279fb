"""Write the final output, the rejected side file and the report, each atomically.

Everything is rebuilt from the journal in input order, so an interrupted-and-resumed run and
an uninterrupted one produce the same bytes. Files appear only complete (temp + fsync +
``os.replace``); a crash leaves the previous file, or none, never half of one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhama.data.translate.journal import Journal
from lhama.data.translate.records import Format
from lhama.files import atomic_open


@dataclass
class Tally:
    """Counts gathered while writing, and the records worth listing in the report."""

    written: int = 0
    rejected: int = 0
    flagged: Counter[str] = field(default_factory=Counter)
    rejected_by: Counter[str] = field(default_factory=Counter)
    notes: list[dict[str, Any]] = field(default_factory=list)
    written_indices: list[int] = field(default_factory=list)


def write_outputs(journal: Journal, count: int, fmt: Format, output: Path, rejected: Path) -> Tally:
    """Write translated records to ``output`` and rejected ones (with reasons) to ``rejected``."""
    tally = Tally()
    with atomic_open(output) as out, atomic_open(rejected) as rej:
        out.write("[\n" if fmt == "json" else "")
        for index in range(count):
            entry = journal.read(index)
            if entry["ok"]:
                text = json.dumps(entry["record"], ensure_ascii=False)
                out.write(((",\n" if tally.written else "") + text) if fmt == "json" else text + "\n")
                _count_written(tally, index, entry)
            else:
                line = {"index": index, "reason": entry["reason"], "record": entry["record"]}
                rej.write(json.dumps(line) + "\n")  # ASCII: bad bytes stay visible as \udcXX
                _count_rejected(tally, index, entry)
        out.write("\n]\n" if fmt == "json" and tally.written else "]\n" if fmt == "json" else "")
    return tally


def _record_id(entry: dict[str, Any]) -> Any:
    record = entry["record"]
    return record.get("id") if isinstance(record, dict) else None


def _count_written(tally: Tally, index: int, entry: dict[str, Any]) -> None:
    tally.written += 1
    tally.written_indices.append(index)
    if entry["flags"]:
        tally.flagged.update(f.split(":")[0] for f in entry["flags"])
        tally.notes.append({"index": index, "id": _record_id(entry), "flags": entry["flags"]})


def _count_rejected(tally: Tally, index: int, entry: dict[str, Any]) -> None:
    tally.rejected += 1
    tally.rejected_by[entry["reason"].split(":")[0]] += 1
    tally.notes.append({"index": index, "id": _record_id(entry), "rejected": entry["reason"]})


def write_report(path: Path, summary: dict[str, Any], notes: list[dict[str, Any]]) -> None:
    """The ``--report`` JSON: totals first, then one entry per flagged or rejected record."""
    with atomic_open(path) as f:
        json.dump({**summary, "records": notes}, f, ensure_ascii=False, indent=1)
        f.write("\n")
