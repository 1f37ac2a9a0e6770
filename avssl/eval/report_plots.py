"""Report figures for verification scores: DET curves and target / non-target score histograms.

A DET curve plots miss against false-alarm rate on normal-deviate axes, where two Gaussian score
distributions give a straight line, so systems are easy to compare across the whole operating range.
Figures are drawn on a bare Agg canvas (no pyplot state, no display needed) and written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

from avssl.eval.metrics import equal_error_rate, error_rates
from avssl.utils.atomic import atomic_write

_DET_TICKS_PERCENT = (0.1, 1, 2, 5, 10, 20, 40, 60, 80)
# Up to 80%: self-supervised systems on small data can have EERs of 20-40%.
# Rates of exactly 0 or 1 map to -inf / +inf on the normal-deviate axis; clip them just inside.
_RATE_FLOOR = 1e-5


def _save(figure: Figure, out_png: str | Path) -> Path:
    """Render the figure to PNG at ``out_png`` (parent folders created, written atomically)."""
    FigureCanvasAgg(figure)
    return atomic_write(out_png, lambda handle: figure.savefig(handle, format="png", dpi=120))


def plot_det(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path, title: str = "DET curve"
) -> Path:
    """DET curves of several systems, ``{name: (scores, labels)}``, with each system's EER in the legend."""
    figure = Figure(figsize=(5.5, 5.5))
    axes = figure.add_subplot()
    for name, (scores, labels) in curves.items():
        miss, false_alarm, _ = error_rates(scores, labels)
        eer, _ = equal_error_rate(scores, labels)
        axes.plot(
            norm.ppf(np.clip(false_alarm, _RATE_FLOOR, 1 - _RATE_FLOOR)),
            norm.ppf(np.clip(miss, _RATE_FLOOR, 1 - _RATE_FLOOR)),
            label=f"{name} (EER {100 * eer:.2f}%)",
        )
    ticks = norm.ppf(np.asarray(_DET_TICKS_PERCENT) / 100)
    labels_text = [f"{t:g}%" for t in _DET_TICKS_PERCENT]
    axes.set_xticks(ticks, labels_text)
    axes.set_yticks(ticks, labels_text)
    axes.set_xlim(ticks[0], ticks[-1])
    axes.set_ylim(ticks[0], ticks[-1])
    axes.plot([ticks[0], ticks[-1]], [ticks[0], ticks[-1]], color="grey", linewidth=0.5, linestyle=":")
    axes.set_xlabel("False alarm rate")
    axes.set_ylabel("Miss rate")
    axes.set_title(title)
    axes.grid(True, linewidth=0.3)
    axes.legend(loc="lower left", fontsize="small")
    figure.tight_layout()
    return _save(figure, out_png)


def plot_score_histograms(
    scores: np.ndarray, labels: np.ndarray, out_png: str | Path, title: str = "Score distributions"
) -> Path:
    """Target and non-target score densities on shared bins, with the EER threshold as a vertical line."""
    eer, threshold = equal_error_rate(scores, labels)  # also validates scores and labels
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_target = np.asarray(labels).ravel() == 1
    bins = np.histogram_bin_edges(scores, bins=60)
    figure = Figure(figsize=(6.5, 4))
    axes = figure.add_subplot()
    axes.hist(
        scores[~is_target], bins=bins, density=True, alpha=0.6, label=f"non-target ({(~is_target).sum()})"
    )
    axes.hist(scores[is_target], bins=bins, density=True, alpha=0.6, label=f"target ({is_target.sum()})")
    axes.axvline(threshold, color="black", linestyle="--", label=f"EER threshold (EER {100 * eer:.2f}%)")
    axes.set_xlabel("Score")
    axes.set_ylabel("Density")
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return _save(figure, out_png)
