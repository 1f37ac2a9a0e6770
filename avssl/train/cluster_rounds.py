"""Clustering rounds of cluster-aware DINO: embed every training utterance, k-means, share the labels.

A round runs at the first epoch (fixed clustering) and, for progressive clustering, every
``recluster_every_epochs`` epochs with the current teacher; K follows ``n_clusters`` round by round.
Every process embeds a disjoint share of the (clean, full-length) utterances; the main process
merges them, clusters once and writes ``clusters/epochNNNN.tsv`` with a JSON report; every process
then reads that one file, so all ranks build their views from the same labels. The files make a
resumed run reuse its rounds instead of recomputing them.

:func:`cluster_round` takes the embedding step as a function, so audio and face training cluster the
same way; :func:`clustering_round` is its audio form (waveforms through an fbank and an encoder).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from accelerate import Accelerator
from torch import nn

from avssl.data.manifest import Utterance
from avssl.errors import ConfigError
from avssl.eval.extract import embed_utterances, encoder_embedder, load_embeddings, save_embeddings
from avssl.pseudo.diagnostics import speakers_if_known
from avssl.pseudo.kmeans import cluster_embeddings
from avssl.pseudo.labels import cluster_report, labels_in_order, write_pseudo_labels
from avssl.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

# Utterances -> their (n, dim) embeddings, in the order given; every utterance must be embeddable.
Embed = Callable[[Sequence[Utterance]], np.ndarray]


@dataclass(frozen=True)
class ClusterSchedule:
    """When rounds happen and with how many clusters."""

    n_clusters: Sequence[int]
    every: int  # 0: one round at epoch 0

    def latest_round(self, epoch: int) -> int:
        """The epoch of the round whose labels apply at ``epoch``."""
        return 0 if self.every == 0 else (epoch // self.every) * self.every

    def clusters_at(self, round_epoch: int) -> int:
        index = 0 if self.every == 0 else round_epoch // self.every
        return int(self.n_clusters[min(index, len(self.n_clusters) - 1)])


def clustering_round(
    accelerator: Accelerator,
    encoder: nn.Module,
    fbank: nn.Module,
    utterances: Sequence[Utterance],
    sample_rate: int,
    n_clusters: int,
    labels_path: Path,
    seed: int,
    iterations: int,
) -> tuple[np.ndarray, dict | None]:
    """:func:`cluster_round` with full-utterance embeddings of clean audio by ``encoder`` on ``fbank``."""

    def embed(share: Sequence[Utterance]) -> np.ndarray:
        return embed_utterances(encoder_embedder(encoder, fbank), share, sample_rate, accelerator.device)

    return cluster_round(accelerator, embed, utterances, n_clusters, labels_path, seed, iterations)


def cluster_round(
    accelerator: Accelerator,
    embed: Embed,
    utterances: Sequence[Utterance],
    n_clusters: int,
    labels_path: Path,
    seed: int,
    iterations: int,
) -> tuple[np.ndarray, dict | None]:
    """Cluster labels (one per utterance, in ``utterances`` order) written to / read back from ``labels_path``.

    A round whose labels file exists is not recomputed (a resumed run reuses it). Returns the labels
    and, on the main process when a new round was computed, its report (also written next to the
    labels as ``.json``).
    """
    report = None
    if not labels_path.is_file():
        labels_path.parent.mkdir(parents=True, exist_ok=True)
        rank, world = accelerator.process_index, accelerator.num_processes
        share = list(range(rank, len(utterances), world))
        embeddings = embed([utterances[i] for i in share])
        save_embeddings(_shard_path(labels_path, rank), [utterances[i].key for i in share], embeddings)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            labels, report = _cluster_shards(utterances, labels_path, world, n_clusters, seed, iterations)
            write_pseudo_labels(labels_path, [u.key for u in utterances], labels)
            atomic_write_json(labels_path.with_suffix(".json"), report)
        accelerator.wait_for_everyone()
        _shard_path(labels_path, rank).unlink(missing_ok=True)
    return labels_in_order(labels_path, [u.key for u in utterances]), report


def given_clusters(labels_path: Path, utterances: Sequence[Utterance]) -> np.ndarray:
    """One cluster per utterance (in ``utterances`` order) from a key -> cluster file of another run."""
    if not labels_path.is_file():
        raise ConfigError(f"config key 'cluster_aware.labels': {labels_path} does not exist (give a clusters/"
                          "epochNNNN.tsv of a cluster-aware run or a stage-II round's labels.tsv)")
    labels = labels_in_order(labels_path, [u.key for u in utterances], "cluster_aware.labels")
    log.info("clusters from %s (cluster_aware.labels): %d utterances, %d clusters", labels_path, len(utterances),
             len(np.unique(labels)))
    return labels


def _shard_path(labels_path: Path, rank: int) -> Path:
    return labels_path.with_suffix(f".rank{rank}.npz")


def _cluster_shards(
    utterances: Sequence[Utterance], labels_path: Path, world: int, n_clusters: int, seed: int, iterations: int
) -> tuple[np.ndarray, dict]:
    """Merge the ranks' embedding shards, cluster them, and describe the result."""
    rows: dict[str, np.ndarray] = {}
    for rank in range(world):
        keys, embeddings = load_embeddings(_shard_path(labels_path, rank))
        rows.update(zip(keys, embeddings, strict=True))
    keys = [u.key for u in utterances]
    matrix = np.stack([rows[k] for k in keys])
    k = min(n_clusters, len(keys))
    result = cluster_embeddings(matrix, k, seed=seed, iterations=iterations)
    report = cluster_report(result, keys, speakers_if_known(keys))
    diagnostics = report.get("diagnostics")
    log.info(
        "clustering %s: %d utterances into %d clusters%s",
        labels_path.name, len(keys), k,
        f" (diagnostic only: NMI {diagnostics['nmi']:.3f}, purity {diagnostics['purity']:.3f})" if diagnostics else "",
    )
    return result.labels, report
