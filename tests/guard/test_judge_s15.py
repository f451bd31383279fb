"""Issue #29, fifteenth session: the second-stage dev look's summary counts what the judge would clear and lose."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_judge_s15 as g  # noqa: E402


def test_summary_counts_cleared_alarms_and_lost_catches_per_threshold():
    rows = [{"kind": "everyday", "p_yes": 0.72, "seconds": 2.0}, {"kind": "everyday", "p_yes": 0.90, "seconds": 3.0},
            {"kind": "S1", "p_yes": 0.80, "seconds": 4.0}, {"kind": "S9", "p_yes": 0.95, "seconds": 1.0}]
    s = g.summary(rows)
    assert (s["flags"], s["everyday_flags"]) == (4, 2)
    assert s["t0.70"] == {"everyday_cleared": 0, "unsafe_lost": 0}
    assert s["t0.74"] == {"everyday_cleared": 1, "unsafe_lost": 0}
    assert s["t0.82"] == {"everyday_cleared": 1, "unsafe_lost": 1}
    assert s["seconds"] == {"median": 2.5, "p90": 3.0, "max": 4.0}


def test_requests_keep_the_category_of_each_unsafe_line():
    held = Path(__file__).parents[2] / "data" / "guard" / "heldout_s14"
    items = g.requests(held)
    assert len(items) == 221 + 70 and items[0][0] == "everyday" and items[-1][0].startswith("S")
