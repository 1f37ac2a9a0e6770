"""Figure of the demo's audio, face and fused systems over seeds (docs/img/demo_av_eer.png).

Reads the ``results.json`` of several demo runs (``benchmarks/bench_demo_seeds.py`` writes them) and
draws, per trial list, each system's EER: a bar for the median, a dot per seed.

    python tools/figure_av_demo.py runs/seeds/seed0 runs/seeds/seed1 runs/seeds/seed2 --out docs/img/demo_av_eer.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# (short label, system name in results.json, colour): audio, face, fused, before and after stage II.
SYSTEMS = [
    ("audio\nCA-DINO", "CA-DINO", "tab:blue"),
    ("face\nvisual DINO", "face: visual DINO", "tab:orange"),
    ("fused\nstage I", "audio + face fused: CA-DINO + visual DINO", "tab:green"),
    ("audio\naudio-only\nDLG-LC r2", "pseudo-labels, DLG-LC, round 2", "tab:blue"),
    ("audio\ncross-modal\nr2", "audio encoder, cross-modal DLG-LC, round 2", "tab:blue"),
    ("face\ncross-modal\nr2", "face encoder, cross-modal DLG-LC, round 2", "tab:orange"),
    ("fused\ncross-modal\nr2", "audio + face fused, cross-modal DLG-LC, round 2", "tab:green"),
]


def system_key(results: dict, prefix: str) -> str:
    """The full system name starting with ``prefix`` (names carry epoch counts, e.g. "CA-DINO (16 + 5 epochs)")."""
    matches = [name for name in results if name.startswith(prefix)]
    if len(matches) != 1:
        raise SystemExit(f"expected one system named {prefix!r}..., found {matches}")
    return matches[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="demo output folders (each with results.json)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    reports = [json.loads((Path(run) / "results.json").read_text()) for run in args.runs]
    lists = reports[0]["trial_lists"]
    figure, axes = plt.subplots(1, len(lists), figsize=(6.5 * len(lists), 4.2), sharey=True)
    for axis, trial_list in zip(np.atleast_1d(axes), lists, strict=True):
        for position, (_, prefix, colour) in enumerate(SYSTEMS):
            values = [100 * r["results"][system_key(r["results"], prefix)][trial_list]["eer"] for r in reports]
            axis.bar(position, np.median(values), color=colour, alpha=0.6)
            axis.plot([position] * len(values), values, "k.", markersize=6)
        axis.set_xticks(range(len(SYSTEMS)), [label for label, _, _ in SYSTEMS], fontsize=7.5)
        axis.set_title(f"{trial_list}: EER per system (bar: median, dots: seeds)")
        axis.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("EER (%)")
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
