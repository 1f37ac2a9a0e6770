"""Audio + face score fusion: a weighted sum of z-normalised scores, the weight never chosen on test trials.

Cosine scores of two encoders live on different scales, so each modality's scores are first
z-normalised with the mean and standard deviation of its impostor (non-target) scores, taken from a
development trial list the user supplies or, without one, from random pairs of a label-free cohort
(training utterances, mostly of different speakers). The fused score is
``(1 - w) * z_audio + w * z_face``; ``w`` is given by the user or fitted on the development list, never
on a test list, which would report a tuned-on-test number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avssl.errors import ConfigError, DataError
from avssl.eval.metrics import equal_error_rate
from avssl.eval.scoring import unit_rows

# Weights tried when fitting on the development list: 0, 0.01, ..., 1.
_WEIGHT_GRID = np.linspace(0.0, 1.0, 101)
# Cohort pairs sampled for the impostor statistics: enough for a std within about 0.3 %.
_COHORT_PAIRS = 200_000
_MIN_STD = 1e-6


@dataclass(frozen=True)
class ZNorm:
    """Impostor-score statistics of one modality, and where they came from (for the report)."""

    mean: float
    std: float
    source: str

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, dtype=np.float64) - self.mean) / self.std


def znorm_from_trials(scores: np.ndarray, labels: np.ndarray, source: str) -> ZNorm:
    """Statistics of the non-target scores of a (development) trial list."""
    impostor = np.asarray(scores, dtype=np.float64)[np.asarray(labels) == 0]
    if impostor.size < 2:
        raise DataError(f"{source}: z-normalisation needs at least 2 non-target trials, got {impostor.size}")
    return ZNorm(float(impostor.mean()), max(float(impostor.std()), _MIN_STD), source)


def znorm_from_cohort(cohort: np.ndarray, mean: np.ndarray | None, seed: int, source: str) -> ZNorm:
    """Statistics of cosine scores between random distinct pairs of label-free cohort embeddings.

    ``mean`` is subtracted first, as in scoring. Two random training utterances are almost always of
    different speakers, so these pairs stand in for impostor trials without using any label.
    """
    table = np.asarray(cohort, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] < 2:
        raise DataError(f"{source}: a cohort for z-normalisation needs at least 2 embeddings, got {table.shape}")
    if mean is not None:
        table = table - np.asarray(mean, dtype=np.float64).ravel()
    table = unit_rows(table)
    rng = np.random.default_rng(seed)
    n = table.shape[0]
    first = rng.integers(0, n, _COHORT_PAIRS)
    second = (first + rng.integers(1, n, _COHORT_PAIRS)) % n  # never the same row
    scores = np.einsum("ij,ij->i", table[first], table[second])
    return ZNorm(float(scores.mean()), max(float(scores.std()), _MIN_STD), source)


def check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"--fusion-weight is the face weight, a number in [0, 1]; got {weight}")
    return float(weight)


def fuse(audio_z: np.ndarray, face_z: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * audio + weight * face`` for already z-normalised scores."""
    return (1.0 - weight) * np.asarray(audio_z) + weight * np.asarray(face_z)


def fit_fusion_weight(audio_z: np.ndarray, face_z: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The face weight on a 0.01 grid with the lowest EER on a DEVELOPMENT list, and that EER.

    Ties go to the smaller face weight (audio is the primary modality). Pass dev scores only.
    """
    best_weight, best_eer = 0.0, np.inf
    for weight in _WEIGHT_GRID:
        eer, _ = equal_error_rate(fuse(audio_z, face_z, weight), labels)
        if eer < best_eer:
            best_weight, best_eer = float(weight), eer
    return best_weight, float(best_eer)
