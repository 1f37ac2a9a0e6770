"""What each stage bought: EER changes between named systems, against the best of several."""

from __future__ import annotations

import pytest

from avssl.errors import DataError
from avssl.eval.gains import Comparison, format_gains, stage_gains

RESULTS = {
    "baseline": {"O": {"eer": 0.40}, "H": {"eer": 0.45}},
    "audio": {"O": {"eer": 0.20}, "H": {"eer": 0.35}},
    "face": {"O": {"eer": 0.30}, "H": {"eer": 0.25}},
    "fused": {"O": {"eer": 0.15}, "H": {"eer": 0.30}},
}


def test_change_is_after_minus_before_in_points() -> None:
    (row,) = stage_gains(RESULTS, [Comparison("learning", "audio", ("baseline",))], ["O", "H"])
    assert row["eer"]["O"] == {"before": 40.0, "after": 20.0, "change": -20.0, "before_system": "baseline"}
    assert row["eer"]["H"]["change"] == -10.0


def test_several_before_systems_compare_with_the_best_on_each_list() -> None:
    (row,) = stage_gains(RESULTS, [Comparison("fusion", "fused", ("audio", "face"))], ["O", "H"])
    assert (row["eer"]["O"]["before_system"], row["eer"]["O"]["change"]) == ("audio", -5.0)
    # On H the face is the better single modality, and fusion is worse than it.
    assert (row["eer"]["H"]["before_system"], row["eer"]["H"]["change"]) == ("face", 5.0)
    table = format_gains([row], ["O", "H"])
    assert "| fusion | -5.00 (20.00 -> 15.00) | +5.00 (25.00 -> 30.00) |" in table


def test_changes_are_differences_of_the_printed_eers() -> None:
    results = {"a": {"O": {"eer": 0.37333}}, "b": {"O": {"eer": 0.24866}}}
    (row,) = stage_gains(results, [Comparison("q", "b", ("a",))], ["O"])
    assert row["eer"]["O"] == {"before": 37.33, "after": 24.87, "change": -12.46, "before_system": "a"}


def test_an_unknown_system_is_named() -> None:
    with pytest.raises(DataError, match="no system 'video'"):
        stage_gains(RESULTS, [Comparison("q", "video", ("audio",))], ["O"])
