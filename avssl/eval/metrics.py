"""Speaker-verification metrics: EER and normalised minDCF from one sort of the scores.

A threshold sweep costs O(N x thresholds) and only approximates the curve; sorting once and taking
cumulative sums of target / non-target counts gives every distinct operating point exactly in
O(N log N) time and O(N) memory, which is what the 580k-trial VoxCeleb1-E/H lists need.

Convention: a trial is accepted when ``score >= threshold``. Operating points exist only between
distinct score values, so tied scores are always accepted or rejected together.

Degenerate case: when every score is equal the only operating points are "accept all" and "reject all",
so the EER interpolates to 0.5 and the normalised minDCF is 1.0 (the cost of the best trivial decision),
which is exactly the value a system with no information earns.
"""

from __future__ import annotations

import numpy as np

from avssl.errors import ConfigError, DataError


def _validate(scores: np.ndarray | list, labels: np.ndarray | list) -> tuple[np.ndarray, np.ndarray]:
    """Return scores as float64 and labels as bool, or raise DataError saying what is wrong."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.size == 0:
        raise DataError("no trials to score: the score list is empty; check the trial list and embeddings")
    if scores.size != labels.size:
        raise DataError(
            f"{scores.size} scores but {labels.size} labels: they must come from the same trial list"
        )
    finite = np.isfinite(scores)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(
            f"{bad.size} of {scores.size} scores are NaN or infinite (first at trial index {bad[0]}); "
            "check the embeddings for non-finite values"
        )
    is_target = labels == 1
    if not (is_target | (labels == 0)).all():
        odd = np.unique(labels[~(is_target | (labels == 0))])[:5]
        raise DataError(f"labels must be 0 (non-target) or 1 (target); found {odd.tolist()}")
    n_target = int(is_target.sum())
    if n_target == 0 or n_target == scores.size:
        missing = "target" if n_target == 0 else "non-target"
        raise DataError(
            f"the trial list has no {missing} trials ({scores.size} trials in all); "
            "EER and minDCF need both kinds"
        )
    return scores, is_target


def _error_rates(scores: np.ndarray, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold, for already validated input."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    sorted_target = is_target[order]
    del order
    n = sorted_scores.size
    n_target = int(sorted_target.sum())
    n_nontarget = n - n_target
    # targets_below[i] / nontargets_below[i]: counts among the i lowest scores (i = 0..n).
    targets_below = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sorted_target, out=targets_below[1:])
    nontargets_below = np.arange(n + 1, dtype=np.int64) - targets_below
    # A cut at position i is an operating point only where the score changes (or at either end).
    cuts = np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]) + 1
    cuts = np.concatenate(([0], cuts, [n]))
    miss = targets_below[cuts] / n_target
    false_alarm = (n_nontarget - nontargets_below[cuts]) / n_nontarget
    # Threshold for cut i is the lowest accepted score; the last cut rejects everything.
    thresholds = np.empty(cuts.size, dtype=np.float64)
    thresholds[:-1] = sorted_scores[cuts[:-1]]
    thresholds[-1] = np.nextafter(sorted_scores[-1], np.inf)
    return miss, false_alarm, thresholds


def error_rates(
    scores: np.ndarray | list, labels: np.ndarray | list
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every operating point, with thresholds (accept if score >= t).

    Returned arrays have one entry per distinct score plus one: the first point accepts every trial
    (miss 0, false alarm 1), the last rejects every trial (miss 1, false alarm 0). Miss rates rise and
    false-alarm rates fall along the arrays.
    """
    return _error_rates(*_validate(scores, labels))


def _eer_from_rates(miss: np.ndarray, false_alarm: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """Interpolate linearly between the two operating points that bracket miss == false alarm."""
    # The first point has miss 0 < false alarm 1 and the last miss 1 > false alarm 0, so the crossing
    # index is at least 1 and always exists.
    j = int(np.argmax(miss >= false_alarm))
    above = false_alarm[j - 1] - miss[j - 1]
    below = miss[j] - false_alarm[j]
    frac = above / (above + below)
    eer = miss[j - 1] + frac * (miss[j] - miss[j - 1])
    threshold = thresholds[j - 1] + frac * (thresholds[j] - thresholds[j - 1])
    return float(eer), float(threshold)


def _check_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    if not 0.0 < p_target < 1.0:
        raise ConfigError(f"p_target must be strictly between 0 and 1, got {p_target}")
    if c_miss <= 0.0 or c_fa <= 0.0:
        raise ConfigError(f"c_miss and c_fa must be positive, got c_miss={c_miss}, c_fa={c_fa}")


def _min_dcf_from_rates(
    miss: np.ndarray,
    false_alarm: np.ndarray,
    thresholds: np.ndarray,
    p_target: float,
    c_miss: float,
    c_fa: float,
) -> tuple[float, float]:
    """Smallest detection cost over all operating points, divided by the best trivial system's cost."""
    cost = c_miss * p_target * miss + c_fa * (1.0 - p_target) * false_alarm
    best = int(np.argmin(cost))
    default_cost = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(cost[best] / default_cost), float(thresholds[best])


def equal_error_rate(scores: np.ndarray | list, labels: np.ndarray | list) -> tuple[float, float]:
    """EER as a fraction in [0, 1] and the (interpolated) threshold where it is reached."""
    return _eer_from_rates(*error_rates(scores, labels))


def min_dcf(
    scores: np.ndarray | list,
    labels: np.ndarray | list,
    p_target: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> tuple[float, float]:
    """Normalised minimum detection cost and the threshold that reaches it."""
    _check_costs(p_target, c_miss, c_fa)
    return _min_dcf_from_rates(*error_rates(scores, labels), p_target, c_miss, c_fa)


def verification_metrics(
    scores: np.ndarray | list,
    labels: np.ndarray | list,
    p_targets: tuple[float, ...] = (0.01, 0.05),
) -> dict[str, float | int]:
    """EER and minDCF at each ``p_target`` (c_miss = c_fa = 1) from a single sort of the scores.

    Anchors disagree on p_target (0.01 in WeSpeaker, 0.05 in LGL / 3D-Speaker), hence several.
    Keys: ``eer`` (fraction), ``eer_threshold``, ``min_dcf@<p>``, ``min_dcf_threshold@<p>``,
    ``n_target``, ``n_nontarget``.
    """
    for p in p_targets:
        _check_costs(p, 1.0, 1.0)
    scores, is_target = _validate(scores, labels)
    rates = _error_rates(scores, is_target)
    eer, eer_threshold = _eer_from_rates(*rates)
    result: dict[str, float | int] = {"eer": eer, "eer_threshold": eer_threshold}
    for p in p_targets:
        dcf, threshold = _min_dcf_from_rates(*rates, p, 1.0, 1.0)
        result[f"min_dcf@{p:g}"] = dcf
        result[f"min_dcf_threshold@{p:g}"] = threshold
    n_target = int(is_target.sum())
    result["n_target"] = n_target
    result["n_nontarget"] = int(is_target.size) - n_target
    return result
