"""What each stage bought: EER differences between chosen pairs of systems of one results table.

A results table lists every system; a reader wants the few comparisons that the method's claims rest
on (does DINO beat no learning, does cluster-aware DINO beat plain DINO at the same budget, does DLG-LC
beat training without a gate, does fusing the modalities beat the better one alone). A
:class:`Comparison` names the system after and the system(s) before; its gain per trial list is the EER
change in percentage points, negative when the later system is better. With several systems before,
the comparison is against the best of them on each list, so "fusion vs the better single modality"
is not flattered by the weaker one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from avssl.errors import DataError

Results = Mapping[str, Mapping[str, Mapping[str, float]]]  # system -> trial list -> metric -> value


@dataclass(frozen=True)
class Comparison:
    """``question`` answered by the EER of ``after`` minus that of the best of ``before`` on each list."""

    question: str
    after: str
    before: tuple[str, ...]


def stage_gains(results: Results, comparisons: Sequence[Comparison], lists: Sequence[str]) -> list[dict]:
    """One row per comparison: the question, the systems, and per list the EERs (%) and their change."""
    rows = []
    for comparison in comparisons:
        for system in (comparison.after, *comparison.before):
            if system not in results:
                raise DataError(f"comparison '{comparison.question}': no system '{system}' in the results "
                                f"(systems: {', '.join(results)})")
        changes = {}
        for name in lists:
            best = min(comparison.before, key=lambda system, name=name: results[system][name]["eer"])
            # Rounded as the tables print them, so that the change is the difference of the printed EERs.
            before, after = (round(100 * results[system][name]["eer"], 2) for system in (best, comparison.after))
            changes[name] = {"before": before, "after": after, "change": round(after - before, 2), "before_system": best}
        rows.append({"question": comparison.question, "after": comparison.after, "before": list(comparison.before),
                     "eer": changes})
    return rows


def format_gains(rows: Sequence[dict], lists: Sequence[str]) -> str:
    """A markdown table: per comparison and list, ``change (before -> after)`` in EER points."""
    header = ["what each stage bought (EER points; negative = better)", *lists]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["question"]]
        for name in lists:
            eer = row["eer"][name]
            cells.append(f"{eer['change']:+.2f} ({eer['before']:.2f} -> {eer['after']:.2f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
