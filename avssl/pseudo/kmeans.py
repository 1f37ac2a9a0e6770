"""Spherical k-means over utterance embeddings with faiss, the clustering step of CA-DINO and Stage II.

Speaker embeddings are compared by cosine, so the rows are L2-normalised first and, by default, the
clustering is spherical: centroids are renormalised every iteration and points go to the centroid of
highest cosine similarity. faiss is the tool the method names; it runs on a GPU as well, and its
result does not depend on the number of CPU threads (scikit-learn's does), so a fixed seed reproduces
the same pseudo-labels however many threads a run gets.

Two faiss defaults are overridden on purpose. faiss trains on a random subsample of at most 256 points
per centroid; here every row takes part, so the centroids do not depend on which rows were sampled.
faiss also prints a warning to stderr when there are fewer than 39 points per centroid, which is the
normal case for pseudo-labelling (a few utterances per speaker); the minimum is lowered to one, so the
warning stays quiet while input that faiss cannot cluster still raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from avssl.errors import ConfigError, DataError


@dataclass(frozen=True)
class ClusterResult:
    """One clustering of N rows into K clusters.

    ``objective`` is measured on the final assignment: the summed cosine similarity of each row to its
    centroid when spherical (higher is better), the summed squared L2 distance (inertia) otherwise
    (lower is better). ``sizes`` has one entry per cluster, so empty clusters show up as zeros.
    """

    labels: np.ndarray  # (N,) int64 in [0, K)
    centroids: np.ndarray  # (K, dim) float32, unit rows when spherical
    objective: float
    sizes: np.ndarray  # (K,) int64
    spherical: bool


def cluster_embeddings(
    embeddings: np.ndarray,
    n_clusters: int,
    seed: int = 0,
    iterations: int = 20,
    spherical: bool = True,
    gpu: bool = False,
) -> ClusterResult:
    """Cluster the L2-normalised rows of ``embeddings`` into ``n_clusters`` clusters.

    The initial centroids are ``n_clusters`` rows drawn with ``seed`` (faiss's default), so the same
    input and seed give the same labels and centroids. ``spherical=False`` runs Euclidean k-means on the
    same normalised rows. ``gpu=True`` needs a faiss build with GPU support.
    """
    _check_settings(n_clusters, iterations, seed)
    n_gpus = _gpus_to_use(gpu)
    points = normalised_rows(embeddings)
    if len(points) < n_clusters:
        raise DataError(
            f"cannot make {n_clusters} clusters from {len(points)} embeddings; "
            "lower n_clusters or embed more utterances"
        )
    kmeans = faiss.Kmeans(
        points.shape[1],
        int(n_clusters),
        niter=int(iterations),
        seed=int(seed),
        spherical=spherical,
        min_points_per_centroid=1,
        max_points_per_centroid=-(-len(points) // n_clusters),
        gpu=n_gpus,
    )
    kmeans.train(points)
    scores, labels = kmeans.assign(points)
    labels = labels.astype(np.int64)
    return ClusterResult(
        labels=labels,
        centroids=np.ascontiguousarray(kmeans.centroids, dtype=np.float32),
        objective=float(scores.astype(np.float64).sum()),
        sizes=np.bincount(labels, minlength=n_clusters).astype(np.int64),
        spherical=spherical,
    )


def normalised_rows(embeddings: np.ndarray) -> np.ndarray:
    """A float32 copy of ``embeddings`` with unit-length rows, after checking it is a finite matrix."""
    matrix = np.asarray(embeddings)
    if matrix.ndim != 2:
        raise DataError(f"embeddings must be a 2-D (utterances, dim) matrix, got shape {matrix.shape}")
    if matrix.shape[1] == 0:
        raise DataError("embeddings have zero columns; extract them again with a trained encoder")
    if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise DataError(f"embeddings must be real numbers, got dtype {matrix.dtype}")
    matrix = np.array(matrix, dtype=np.float32, order="C")  # a copy: the caller's array is left alone
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise DataError(
            f"{bad.size} embedding rows contain NaN or inf (first rows {bad[:5].tolist()}); "
            "the encoder diverged or the embedding file is corrupt: extract the embeddings again"
        )
    with np.errstate(over="ignore"):  # an overflowing norm is reported just below
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    degenerate = np.flatnonzero(~(np.isfinite(norms[:, 0]) & (norms[:, 0] > 0)))
    if degenerate.size:
        raise DataError(
            f"{degenerate.size} embedding rows are all zeros or too large to normalise in float32 (first "
            f"rows {degenerate[:5].tolist()}); check the audio of those utterances and extract again"
        )
    matrix /= norms
    return matrix


def _check_settings(n_clusters: int, iterations: int, seed: int) -> None:
    """Reject settings faiss would crash on or silently misread (its C ints), before any heavy work."""
    for name, value, low in (("n_clusters", n_clusters, 1), ("iterations", iterations, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value < 2**31:
            raise ConfigError(f"{name} must be an integer in [{low}, 2**31), got {value!r}")


def _gpus_to_use(gpu: bool) -> int | bool:
    """faiss's ``gpu`` argument: all visible GPUs when asked for, or a ConfigError when there are none."""
    if not gpu:
        return False
    n_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if n_gpus < 1:
        raise ConfigError(
            "gpu=True but this faiss build sees no GPU (faiss-cpu is installed, or no CUDA device is "
            "visible); install faiss-gpu on a machine with a GPU, or cluster with gpu=False"
        )
    return n_gpus
