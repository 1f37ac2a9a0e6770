"""How well a clustering matches the true speakers: NMI, purity, inverse purity, cluster sizes.

Ground truth is for diagnostics only, never a training signal. The self-supervised stages train on
cluster ids alone; these numbers exist so a person can see whether the clustering is improving from one
iteration to the next on a corpus that happens to have speaker labels. :func:`speaker_of_key` is the
only place in avssl that derives an identity from an utterance key, and only these diagnostics call it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from avssl.errors import DataError


def cluster_diagnostics(labels: np.ndarray, truth: Sequence[str | int]) -> dict:
    """Agreement between cluster ``labels`` and true classes ``truth`` (one per item, same order).

    purity: each cluster counts its majority true class, summed over clusters, divided by N; high when
    clusters do not mix speakers (one item per cluster scores 1.0). inverse purity: each true class
    counts its largest cluster, summed, divided by N; high when speakers are not split (one cluster for
    everything scores 1.0). Either alone is trivially maxed out, so read them together; NMI weighs both.
    """
    clusters = np.asarray(labels)
    if clusters.ndim != 1:
        raise DataError(f"cluster labels must be 1-D, got shape {clusters.shape}")
    if len(clusters) == 0:
        raise DataError("no cluster labels to evaluate; cluster at least one embedding first")
    if len(truth) != len(clusters):
        raise DataError(f"{len(clusters)} cluster labels but {len(truth)} true labels; they must pair up")
    classes = _codes(truth)
    table = contingency_matrix(classes, clusters, sparse=True)  # rows: true classes, columns: clusters
    n_items = len(clusters)
    sizes = np.asarray(table.sum(axis=0)).ravel()
    return {
        "n_items": n_items,
        "n_classes": int(table.shape[0]),
        "n_clusters": int(table.shape[1]),
        "nmi": float(normalized_mutual_info_score(classes, clusters)),
        "purity": float(table.max(axis=0).sum() / n_items),
        "inverse_purity": float(table.max(axis=1).sum() / n_items),
        **size_summary(sizes),
    }


def size_summary(sizes: np.ndarray) -> dict:
    """min / median / max size of the non-empty clusters, and how many are singletons or empty."""
    sizes = np.asarray(sizes)
    used = sizes[sizes > 0]
    if used.size == 0:
        raise DataError("every cluster is empty; there is nothing to summarise")
    return {
        "size_min": int(used.min()),
        "size_median": float(np.median(used)),
        "size_max": int(used.max()),
        "singletons": int((used == 1).sum()),
        "empty_clusters": int((sizes == 0).sum()),
    }


def speaker_of_key(key: str) -> str:
    """The speaker folder of a VoxCeleb-style key: ``id00012/abc/00001`` -> ``id00012``. Diagnostics only."""
    speaker, slash, rest = key.partition("/")
    if not speaker or not slash or not rest:
        raise DataError(
            f"utterance key {key!r} is not of the form SPEAKER/SESSION/UTTERANCE, so it names no speaker; "
            "pass true labels explicitly for this corpus"
        )
    return speaker


def speakers_if_known(keys: Sequence[str]) -> list[str] | None:
    """The speakers of VoxCeleb-style keys for diagnostics, or None when the keys carry none."""
    try:
        return [speaker_of_key(k) for k in keys]
    except DataError:
        return None


def _codes(values: Sequence[Hashable]) -> np.ndarray:
    """Integer codes for arbitrary hashable labels (strings or ints), in order of first appearance."""
    index: dict[Hashable, int] = {}
    return np.fromiter((index.setdefault(value, len(index)) for value in values), np.int64, len(values))


class LabelAudit:
    """Whether a training label is "right", judged against the true speakers (diagnostics only).

    A cluster id has no speaker; it is right for an utterance when the cluster's majority speaker is the
    utterance's speaker. That is how the logs can say how many labels the gate kept were right and how
    many label corrections fixed a wrong label, without the training ever seeing the truth.
    """

    def __init__(self, labels: np.ndarray, truth: Sequence[Hashable]) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        self.truth = _codes(truth)
        n_clusters = int(labels.max()) + 1
        counts = np.zeros((n_clusters, int(self.truth.max()) + 1), dtype=np.int64)
        np.add.at(counts, (labels, self.truth), 1)
        self.majority = counts.argmax(axis=1)

    def is_right(self, labels: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Per sample: does label ``labels[j]`` stand for the true speaker of utterance ``indices[j]``?"""
        labels = np.asarray(labels, dtype=np.int64)
        return self.majority[labels] == self.truth[np.asarray(indices, dtype=np.int64)]


def true_speaker_labels(keys: Sequence[str]) -> np.ndarray:
    """Integer true-speaker labels of VoxCeleb-style keys.

    ONLY for the supervised upper-bound reference (``labels.source=true_speakers``), which shows how far
    pseudo-labels are from real ones; the self-supervised method never calls this.
    """
    return _codes([speaker_of_key(k) for k in keys])
