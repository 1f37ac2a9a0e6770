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


def views_partners(
    labels: np.ndarray, n_items: int, num_global: int, num_local: int, global_from_partner: int, local_from_partner: int
) -> ClusterPartners:
    """Check a multi-crop dataset's cluster labels and partner-crop split, and build its partners.

    The anchor utterance must keep at least one global crop (it is what the sample stands for), and a
    view cannot take more local crops from the partner than it has.
    """
    labels = np.asarray(labels)
    if labels.shape != (n_items,):
        raise ValueError(f"{labels.shape[0] if labels.ndim else 0} cluster labels for {n_items} utterances")
    if not (0 <= global_from_partner < num_global and 0 <= local_from_partner <= num_local):
        raise ValueError("the anchor utterance must keep at least one global crop")
    return ClusterPartners(labels)
