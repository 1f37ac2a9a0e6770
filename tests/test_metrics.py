"""EER / minDCF checked against an independent computation (sklearn ROC and a brute-force sweep)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from avssl.errors import DataError
from avssl.eval.metrics import equal_error_rate, error_rates, min_dcf, verification_metrics


def _brute_force_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss / false alarm at every distinct score and above the maximum, by direct counting."""
    thresholds = np.append(np.unique(scores), np.inf)
    accepted = scores[None, :] >= thresholds[:, None]
    miss = (~accepted[:, labels == 1]).mean(axis=1)
    false_alarm = accepted[:, labels == 0].mean(axis=1)
    return miss, false_alarm, thresholds


def _sklearn_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER by linear interpolation on sklearn's full ROC (no intermediate points dropped)."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    j = int(np.argmax(fpr >= fnr))  # sklearn runs from the highest threshold down
    gap_before = fnr[j - 1] - fpr[j - 1]
    gap_after = fpr[j] - fnr[j]
    frac = gap_before / (gap_before + gap_after)
    return float(fnr[j - 1] + frac * (fnr[j] - fnr[j - 1]))


def _random_trials(seed: int, n: int = 600, rounding: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int64)
    scores = rng.normal(size=n) + 1.2 * labels
    if rounding is not None:
        scores = np.round(scores, rounding)
    return scores, labels


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("rounding", [None, 1])
def test_against_independent_computation(seed: int, rounding: int | None) -> None:
    scores, labels = _random_trials(seed, rounding=rounding)
    miss, false_alarm, thresholds = error_rates(scores, labels)
    ref_miss, ref_fa, ref_thresholds = _brute_force_rates(scores, labels)
    np.testing.assert_allclose(miss, ref_miss)
    np.testing.assert_allclose(false_alarm, ref_fa)
    np.testing.assert_array_equal(thresholds[:-1], ref_thresholds[:-1])
    assert thresholds[-1] > scores.max()

    eer, _ = equal_error_rate(scores, labels)
    assert eer == pytest.approx(_sklearn_eer(scores, labels), abs=1e-12)
    assert np.minimum(ref_miss, ref_fa).max() <= eer <= np.maximum(ref_miss, ref_fa).min()

    for p_target in (0.01, 0.05, 0.5):
        dcf, threshold = min_dcf(scores, labels, p_target)
        ref_cost = (p_target * ref_miss + (1 - p_target) * ref_fa) / min(p_target, 1 - p_target)
        assert dcf == pytest.approx(ref_cost.min(), abs=1e-12)
        accepted = scores >= threshold
        cost_at_threshold = p_target * np.mean(~accepted[labels == 1]) + (1 - p_target) * np.mean(
            accepted[labels == 0]
        )
        assert cost_at_threshold / min(p_target, 1 - p_target) == pytest.approx(dcf, abs=1e-12)


def test_costs_weight_min_dcf() -> None:
    scores, labels = _random_trials(7)
    ref_miss, ref_fa, _ = _brute_force_rates(scores, labels)
    dcf, _ = min_dcf(scores, labels, 0.05, c_miss=10.0, c_fa=1.0)
    ref = (10.0 * 0.05 * ref_miss + 0.95 * ref_fa).min() / min(10.0 * 0.05, 0.95)
    assert dcf == pytest.approx(ref, abs=1e-12)


def test_eer_threshold_sits_between_the_classes_when_separable() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    eer, threshold = equal_error_rate(scores, labels)
    assert eer == 0.0
    assert 0.3 < threshold <= 0.7
    assert min_dcf(scores, labels, 0.01)[0] == 0.0


def test_fully_inverted_scores() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert equal_error_rate(scores, labels)[0] == pytest.approx(1.0)
    assert min_dcf(scores, labels, 0.05)[0] == pytest.approx(1.0)


def test_ties_across_classes() -> None:
    # One target and one non-target share a score: they can only be accepted together.
    scores = np.array([0.0, 0.5, 0.5, 1.0])
    labels = np.array([0, 0, 1, 1])
    miss, false_alarm, thresholds = error_rates(scores, labels)
    np.testing.assert_allclose(miss, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(false_alarm, [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(thresholds[:-1], [0.0, 0.5, 1.0])
    assert equal_error_rate(scores, labels)[0] == pytest.approx(0.25)


def test_all_scores_equal() -> None:
    scores = np.full(10, 0.3)
    labels = np.array([0, 1] * 5)
    eer, threshold = equal_error_rate(scores, labels)
    assert eer == pytest.approx(0.5)
    assert threshold == pytest.approx(0.3)
    assert min_dcf(scores, labels, 0.01)[0] == pytest.approx(1.0)


def test_verification_metrics_keys() -> None:
    scores, labels = _random_trials(3)
    result = verification_metrics(scores, labels)
    assert result["eer"] == pytest.approx(equal_error_rate(scores, labels)[0])
    assert result["min_dcf@0.01"] == pytest.approx(min_dcf(scores, labels, 0.01)[0])
    assert result["min_dcf@0.05"] == pytest.approx(min_dcf(scores, labels, 0.05)[0])
    assert result["n_target"] == int(labels.sum())
    assert result["n_nontarget"] == int((labels == 0).sum())


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [0, 0], "no target"),
        ([0.1, 0.2], [1, 1], "no non-target"),
        ([0.1, np.nan], [0, 1], "NaN"),
        ([0.1, np.inf], [0, 1], "NaN or infinite"),
        ([0.1, 0.2], [0, 2], "0 .*or 1"),
        ([0.1, 0.2, 0.3], [0, 1], "3 scores but 2 labels"),
        ([], [], "empty"),
    ],
)
def test_bad_input_raises_data_error(scores: list, labels: list, message: str) -> None:
    with pytest.raises(DataError, match=message):
        verification_metrics(scores, labels)


def test_large_trial_list_runs() -> None:
    rng = np.random.default_rng(0)
    n = 579_818
    labels = (rng.random(n) < 0.5).astype(np.int8)
    scores = rng.normal(size=n).astype(np.float32) + 2.0 * labels
    result = verification_metrics(scores, labels)
    # Two unit normals two apart cross at 1: EER = Phi(-1) ~ 0.1587.
    assert result["eer"] == pytest.approx(0.1587, abs=0.005)
