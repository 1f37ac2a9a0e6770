"""Time and peak memory of EER + minDCF on VoxCeleb1-O/E/H-sized trial lists, three ways.

(a) avssl.eval.metrics: one sort, cumulative sums (exact, O(N log N), O(N) memory);
(b) sklearn.metrics.roc_curve, then the same interpolation (exact);
(c) a naive sweep over 1000 evenly spaced thresholds, vectorised in chunks of thresholds (approximate).

Run: ``.venv/bin/python benchmarks/bench_metrics.py``. Scores are random (two unit normals two apart,
half targets), so the EER should be near Phi(-1) = 15.87 %.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_curve

from avssl.eval.metrics import verification_metrics

SIZES = {"Vox1-O": 37_611, "Vox1-E": 579_818, "Vox1-H": 550_894}
P_TARGETS = (0.01, 0.05)
N_THRESHOLDS = 1000
THRESHOLD_CHUNK = 50
REPEATS = 3

Result = tuple[float, float]  # (EER fraction, minDCF at P_TARGETS[0])


def _eer_and_dcf(miss: np.ndarray, false_alarm: np.ndarray) -> Result:
    """EER interpolated at the miss / false-alarm crossing and minDCF, for curves ordered by rising miss."""
    j = int(np.argmax(miss >= false_alarm))
    above = false_alarm[j - 1] - miss[j - 1]
    below = miss[j] - false_alarm[j]
    eer = miss[j - 1] + above / (above + below) * (miss[j] - miss[j - 1])
    dcfs = [float(np.min(p * miss + (1 - p) * false_alarm) / min(p, 1 - p)) for p in P_TARGETS]
    return float(eer), dcfs[0]


def ours(scores: np.ndarray, labels: np.ndarray) -> Result:
    metrics = verification_metrics(scores, labels, P_TARGETS)
    return metrics["eer"], metrics[f"min_dcf@{P_TARGETS[0]:g}"]


def with_sklearn(scores: np.ndarray, labels: np.ndarray) -> Result:
    fpr, tpr, _ = roc_curve(labels, scores)
    # roc_curve runs from the highest threshold down; reverse so that miss rises.
    return _eer_and_dcf((1.0 - tpr)[::-1], fpr[::-1])


def naive_sweep(scores: np.ndarray, labels: np.ndarray) -> Result:
    thresholds = np.linspace(scores.min(), scores.max(), N_THRESHOLDS)
    targets = scores[labels == 1]
    nontargets = scores[labels == 0]
    miss = np.empty(N_THRESHOLDS)
    false_alarm = np.empty(N_THRESHOLDS)
    for start in range(0, N_THRESHOLDS, THRESHOLD_CHUNK):
        chunk = thresholds[start : start + THRESHOLD_CHUNK, None]
        miss[start : start + THRESHOLD_CHUNK] = (targets[None, :] < chunk).mean(axis=1)
        false_alarm[start : start + THRESHOLD_CHUNK] = (nontargets[None, :] >= chunk).mean(axis=1)
    return _eer_and_dcf(miss, false_alarm)


def measure(
    method: Callable[[np.ndarray, np.ndarray], Result], scores: np.ndarray, labels: np.ndarray
) -> tuple[float, float, Result]:
    """Median wall time over REPEATS untraced runs, then peak traced memory (MiB) of one more run."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = method(scores, labels)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    method(scores, labels)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(np.median(times)), peak / 2**20, result


def main() -> None:
    rng = np.random.default_rng(0)
    methods = {
        "ours (sort+cumsum)": ours,
        "sklearn roc_curve": with_sklearn,
        f"naive {N_THRESHOLDS} thresholds": naive_sweep,
    }
    print(f"| trials | n | method | time (s) | peak mem (MiB) | EER (%) | minDCF@{P_TARGETS[0]:g} |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, n in SIZES.items():
        labels = (rng.random(n) < 0.5).astype(np.int8)
        scores = rng.normal(size=n) + 2.0 * labels
        for method_name, method in methods.items():
            seconds, mib, (eer, dcf) = measure(method, scores, labels)
            print(
                f"| {name} | {n:,} | {method_name} | {seconds:.3f} | {mib:.1f} | {100 * eer:.3f} | {dcf:.4f} |"
            )


if __name__ == "__main__":
    main()
