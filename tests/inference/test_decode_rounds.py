"""benchmarks/decode_rounds.py's numbers (the lead's final decode measurement): medians, ratios, bootstrap interval."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

from decode_rounds import shipped_quant, summary  # noqa: E402

from lhama.weights.registry import REGISTRY  # noqa: E402


def test_summary_gives_the_medians_the_pair_ratios_and_an_interval_around_them() -> None:
    rows = [(12.07, 11.38), (11.01, 11.77), (11.99, 13.21), (12.40, 12.00), (11.50, 12.10)]
    s = summary(rows)
    ratios = [a / b for a, b in rows]
    assert s["pairs"] == 5 and s["lhama_ahead"] == 2
    assert s["lhama_median"] == 11.99 and s["llama_cpp_median"] == 12.00
    assert s["ratio_median_of_pairs"] == pytest.approx(statistics.median(ratios))
    assert s["ratio_of_medians"] == pytest.approx(11.99 / 12.00)
    low, high = s["ratio_median_of_pairs_ci95"]
    assert min(ratios) <= low <= s["ratio_median_of_pairs"] <= high <= max(ratios) and low < high
    assert summary(rows) == s  # seeded: the same interval every run
    assert summary(rows, seed=1)["ratio_median_of_pairs_ci95"] != (0.0, 0.0)


def test_equal_ratios_give_a_zero_width_interval() -> None:
    s = summary([(10.0, 10.0), (12.0, 12.0), (9.0, 9.0)])
    assert s["ratio_median_of_pairs"] == 1.0 and s["ratio_median_of_pairs_ci95"] == (1.0, 1.0)
    assert s["lhama_ahead"] == 0


def test_the_shipped_quant_is_the_registrys_for_a_name_or_its_directory() -> None:
    default = next(spec for spec in REGISTRY if spec.name == "lhama-default")
    assert shipped_quant("lhama-default") == default.quant == "int4-g32-grid-k+lossy6"
    assert shipped_quant("/somewhere/models/lhama-default") == default.quant
    assert shipped_quant("/tmp/not-a-registered-model") == "int4"
