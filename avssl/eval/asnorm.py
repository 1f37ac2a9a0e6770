"""Label-free adaptive score normalisation (AS-norm; Matejka et al., Interspeech 2017).

Cosine scores drift with each utterance: a noisy or unusual recording is close to many speakers and so
scores high against everyone. AS-norm measures that drift against a cohort of impostor embeddings,
keeping only each utterance's ``top_k`` closest cohort entries (the impostors it is most confusable
with), and standardises the trial score with their mean and standard deviation, on both sides:

    score = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)

The self-supervised protocol forbids speaker labels, so the cohort is never built from true labels:
:func:`cluster_mean_cohort` makes it from the pseudo-speaker (cluster) means of the training data.
"""

from __future__ import annotations

import numpy as np

from avssl.errors import ConfigError, DataError
from avssl.eval.scoring import _row_index, cosine_scores, unit_rows
from avssl.eval.trials import TrialList

# Cosines held at once while ranking utterances against the cohort (rows x cohort size): 32 MiB in float64.
_BLOCK = 1 << 22
# A cohort whose top-k scores are all equal has no spread; this floor keeps the division finite.
_MIN_STD = 1e-6


def cluster_mean_cohort(
    train_embeddings: np.ndarray, cluster_labels: np.ndarray, mean: np.ndarray | None = None
) -> np.ndarray:
    """An AS-norm cohort: one L2-normalised mean embedding per pseudo-speaker cluster, in label order.

    ``cluster_labels`` are the training data's pseudo-labels (clusters of SSL embeddings), NEVER true
    speaker labels: that keeps the normalisation label-free. Negative labels (unclustered / noise
    points) are ignored. ``mean`` is the mean training embedding, subtracted first as in cosine
    scoring; each embedding is length-normalised before averaging so every utterance weighs the same in
    its cluster's direction, exactly as it does in a cosine score.
    """
    embeddings = np.asarray(train_embeddings, dtype=np.float64)
    labels = np.asarray(cluster_labels).ravel()
    if embeddings.ndim != 2 or embeddings.shape[0] != labels.size:
        raise DataError(
            f"train embeddings must be a (len(cluster_labels), dim) = ({labels.size}, dim) matrix, "
            f"got shape {embeddings.shape}"
        )
    if mean is not None:
        embeddings = embeddings - np.asarray(mean, dtype=np.float64).ravel()
    keep = labels >= 0
    if not keep.any():
        raise DataError("no clustered training embeddings: every cluster label is negative (noise)")
    clusters, members = np.unique(labels[keep], return_inverse=True)
    sums = np.zeros((clusters.size, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, members, unit_rows(embeddings[keep]))
    # The direction of a sum is the direction of the mean, so the per-cluster count need not be divided.
    return unit_rows(sums)


def _top_k_stats(table: np.ndarray, cohort: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each row's ``top_k`` highest cosines against the cohort, in bounded-memory chunks."""
    mu = np.empty(table.shape[0], dtype=np.float64)
    sd = np.empty(table.shape[0], dtype=np.float64)
    chunk = max(1, _BLOCK // cohort.shape[0])
    for start in range(0, table.shape[0], chunk):
        cosines = table[start : start + chunk] @ cohort.T
        top = np.partition(cosines, cosines.shape[1] - top_k, axis=1)[:, -top_k:]
        mu[start : start + chunk] = top.mean(axis=1)
        sd[start : start + chunk] = top.std(axis=1)
    return mu, np.maximum(sd, _MIN_STD)


def asnorm_scores(
    trials: TrialList,
    keys: list[str],
    embeddings: np.ndarray,
    cohort: np.ndarray,
    top_k: int = 300,
    mean: np.ndarray | None = None,
) -> np.ndarray:
    """AS-norm scores of a trial list (row ``i`` of ``embeddings`` is ``keys[i]``), float64 in trial order.

    ``cohort`` is a (cohort size, dim) matrix of label-free impostor embeddings: build it with
    :func:`cluster_mean_cohort` from the pseudo-speaker (cluster) means of the TRAINING data, never from
    true labels, and with the same ``mean`` (the mean training embedding) that is given here. Cohort rows
    are length-normalised. A ``top_k`` larger than the cohort is clamped to the cohort size (every
    cohort entry is then used). Cohort statistics are computed once per unique utterance, not per
    trial, since an utterance appears in many trials.
    """
    if top_k < 2:
        raise ConfigError(f"AS-norm top_k must be at least 2 (the std of fewer scores is 0), got {top_k}")
    raw = cosine_scores(trials, keys, embeddings, mean)  # also validates keys, shapes and finiteness
    embeddings = np.asarray(embeddings)
    cohort = np.asarray(cohort, dtype=np.float64)
    if cohort.ndim != 2 or cohort.shape[1] != embeddings.shape[1] or cohort.shape[0] < 2:
        raise DataError(
            f"the AS-norm cohort must be a (size >= 2, {embeddings.shape[1]}) matrix, got shape {cohort.shape}"
        )
    if not np.isfinite(cohort).all():
        raise DataError("the AS-norm cohort contains NaN or infinite values; rebuild it")
    enrol, test = _row_index(trials, keys)
    used, position = np.unique(np.concatenate([enrol, test]), return_inverse=True)
    table = embeddings[used].astype(np.float64)
    if mean is not None:
        table -= np.asarray(mean, dtype=np.float64).ravel()
    mu, sd = _top_k_stats(unit_rows(table), unit_rows(cohort), min(top_k, cohort.shape[0]))
    enrol_at, test_at = position[: enrol.size], position[enrol.size :]
    return 0.5 * ((raw - mu[enrol_at]) / sd[enrol_at] + (raw - mu[test_at]) / sd[test_at])
