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



class PartnerViews:
    """``set_clusters`` / ``partner_of`` for a multi-crop dataset whose ``crops`` has ``num_global`` and
    ``num_local``: the audio and the face views mix this in, so both split crops between the anchor and
    its partner by the same rule.
    """

    _partners: ClusterPartners | None = None
    global_from_partner: int = 0
    local_from_partner: int = 0

    def set_clusters(self, labels: np.ndarray | None, global_from_partner: int = 1, local_from_partner: int = 2) -> None:
        """Draw ``global_from_partner`` global and ``local_from_partner`` local crops from a partner.

        ``labels[i]`` is the cluster of the dataset's item ``i``; ``None`` returns to same-utterance views.
        The anchor must keep at least one global crop (it is what the sample stands for).
        """
        if labels is None:
            self._partners = None
            return
        labels = np.asarray(labels)
        if labels.shape != (len(self),):
            raise ValueError(f"{labels.shape[0] if labels.ndim else 0} cluster labels for {len(self)} utterances")
        if not (0 <= global_from_partner < self.crops.num_global and 0 <= local_from_partner <= self.crops.num_local):
            raise ValueError("the anchor utterance must keep at least one global crop")
        self._partners = ClusterPartners(labels)
        self.global_from_partner = global_from_partner
        self.local_from_partner = local_from_partner

    def partner_of(self, index: int, rng: np.random.Generator) -> int:
        """Another member of ``index``'s cluster, drawn uniformly; ``index`` itself if it is alone or
        without clusters."""
        return index if self._partners is None else self._partners.partner_of(index, rng)
