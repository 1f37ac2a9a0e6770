"""Cluster partners for cluster-aware DINO: another utterance of the same pseudo-speaker cluster.

Kept apart from any modality so that the audio views (:mod:`avssl.data.views`) and the face views
(:mod:`avssl.faces.views`) draw partners the same way.
"""

from __future__ import annotations

import numpy as np


class ClusterPartners:
    """``labels[i]`` is item ``i``'s cluster; :meth:`partner_of` draws another member uniformly."""

    def __init__(self, labels: np.ndarray) -> None:
        labels = np.asarray(labels)
        order = np.argsort(labels, kind="stable")
        clusters, starts = np.unique(labels[order], return_index=True)
        self._members = dict(zip(clusters.tolist(), np.split(order, starts[1:]), strict=True))
        self._cluster_of = labels

    def partner_of(self, index: int, rng: np.random.Generator) -> int:
        """Another member of ``index``'s cluster, or ``index`` itself if it is alone in its cluster."""
        members = self._members[self._cluster_of[index].item()]
        others = members[members != index]
        return int(others[rng.integers(len(others))]) if len(others) else index
