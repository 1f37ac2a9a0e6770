"""Cluster fusion across modalities: one pseudo-label per utterance from its voice AND its face.

In the multi-modal extension both encoders train on one shared set of pseudo-labels, so the audio and
face embeddings of each utterance must be clustered together. Each modality confuses different
speakers (two similar voices, two similar faces); a clustering that sees both can separate pairs that
either alone merges.

Both methods here compare utterances by the same fused similarity, the weighted sum of the
per-modality cosines ``w cos_audio + (1 - w) cos_face`` (``w = audio_weight``). Scaling the unit audio
and face rows by ``sqrt(w)`` and ``sqrt(1 - w)`` and concatenating them gives unit vectors whose inner
product is exactly that sum, so one cosine in the concatenated space is the fused similarity:

- :func:`fuse_by_concatenation`: spherical k-means (faiss, :func:`cluster_embeddings`) on those rows.
  Scales to the full corpus (about 1 M utterances, K in the thousands), like audio-only clustering.
- :func:`fuse_by_affinity`: the k-nearest-neighbour graph of the fused similarity, clustered by
  scikit-learn's average-linkage :class:`~sklearn.cluster.AgglomerativeClustering` restricted to the
  graph's edges. Deterministic, no seed, and clusters need not be round. Agglomerative clustering was
  chosen over spectral clustering because, on a sparse graph, its memory is linear in the number of
  edges and its merge loop is O(E log E) whatever K is, while spectral clustering needs K eigenvectors
  (N x K memory, and a slow eigen-solve when K is in the hundreds or thousands). The graph is found by
  exact search, quadratic in time, so the method refuses more than ``max_utterances`` utterances
  (:data:`AFFINITY_MAX_UTTERANCES` by default). Measured on 2 shared CPU cores: 20,000 utterances
  (192-d audio, 512-d face, K = 200) took 9 s, 8 of them in the search, with no memory beyond the
  inputs; k-means took 1 s.

Utterances without a usable face (``has_face`` False: no face track, or the detector failed) cannot be
compared in the fused space. They are left out of the clustering, which therefore only sees complete
evidence, and then each is placed by its audio alone into the fused cluster whose members' mean audio
direction is closest in cosine (:func:`_place_by_audio`). That is the assignment step of spherical
k-means in the audio space, with the clusters that the fused clustering found; giving them a zero face
half instead would make a missing face look like a face unlike every other and drag centroids towards
the origin. Their face rows are never read, so they may hold anything, NaN included.

Ground truth only ever enters :func:`fusion_report`, a diagnostic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import AgglomerativeClustering

from avssl.errors import ConfigError, DataError
from avssl.pseudo.diagnostics import cluster_diagnostics
from avssl.pseudo.kmeans import cluster_embeddings, normalised_rows

# Exact neighbour search costs N^2 inner products: 20,000 utterances took 8 s on 2 CPU cores, so this many
# take a few minutes there. Above it, use fuse_by_concatenation.
AFFINITY_MAX_UTTERANCES = 100_000


@dataclass(frozen=True)
class FusionResult:
    """One pseudo-label per utterance from a cross-modal clustering.

    ``placed_by_audio`` marks the utterances without a usable face, which were labelled from their
    audio embedding alone after the clustering (see the module docstring).
    """

    labels: np.ndarray  # (N,) int64 in [0, K)
    sizes: np.ndarray  # (K,) int64; k-means may leave a cluster empty
    method: str  # "concatenation" or "affinity"
    audio_weight: float
    placed_by_audio: np.ndarray  # (N,) bool

    @property
    def n_without_face(self) -> int:
        return int(self.placed_by_audio.sum())


@dataclass(frozen=True)
class FusionReport:
    """How the fused labels compare with single-modality k-means, against true speakers (diagnostics only).

    Each entry is a :func:`cluster_diagnostics` dict. ``face`` covers only the utterances with a face
    (the only ones face-only clustering can label; None when fewer than K have one), so compare it with
    ``fused_with_face``, the fused labels of the same utterances. ``fused_without_face`` shows how well
    the audio-only placement did (None when every utterance has a face).
    """

    n_utterances: int
    n_without_face: int
    audio: dict
    face: dict | None
    fused: dict
    fused_with_face: dict
    fused_without_face: dict | None


def fuse_by_concatenation(
    audio: np.ndarray,
    face: np.ndarray,
    n_clusters: int,
    *,
    has_face: np.ndarray | None = None,
    audio_weight: float = 0.5,
    seed: int = 0,
    iterations: int = 20,
) -> FusionResult:
    """Spherical k-means on ``[sqrt(w) audio, sqrt(1 - w) face]`` of the utterances with a face.

    ``audio`` is (N, d_audio), ``face`` (N, d_face) in the same utterance order, ``has_face`` an (N,)
    bool mask (None: every utterance has a face). Utterances without a face are placed by audio. The
    same inputs and ``seed`` give the same labels.
    """
    audio_unit, fused, has = _fusion_inputs(audio, face, n_clusters, has_face, audio_weight)
    result = cluster_embeddings(fused, n_clusters, seed=seed, iterations=iterations)
    return _complete(result.labels, audio_unit, has, n_clusters, "concatenation", audio_weight)


def fuse_by_affinity(
    audio: np.ndarray,
    face: np.ndarray,
    n_clusters: int,
    *,
    has_face: np.ndarray | None = None,
    audio_weight: float = 0.5,
    n_neighbors: int = 10,
    max_utterances: int = AFFINITY_MAX_UTTERANCES,
) -> FusionResult:
    """Average-linkage clustering of the fused-similarity k-nearest-neighbour graph.

    Every utterance with a face is linked to its ``n_neighbors`` most similar ones (exact search with
    faiss, memory linear in N). If the graph falls apart into several pieces, each piece is linked to
    its nearest other piece (:func:`_connect_components`), so scikit-learn never has to complete it with
    its dense pairwise distances between components. Average linkage then merges, along graph edges
    only, the two groups of smallest mean cosine distance until ``n_clusters`` remain. Deterministic.

    Raises:
        ConfigError: ``n_neighbors`` is not in [1, number of utterances with a face), or there are more
            than ``max_utterances`` utterances (use :func:`fuse_by_concatenation` for those).
    """
    n_rows = len(np.asarray(audio))
    if n_rows > max_utterances:
        raise ConfigError(
            f"fuse_by_affinity got {n_rows} utterances, more than max_utterances={max_utterances}: its exact "
            "neighbour search grows with the square of N; use fuse_by_concatenation (k-means) at this size, "
            "or raise max_utterances if the time is acceptable"
        )
    audio_unit, fused, has = _fusion_inputs(audio, face, n_clusters, has_face, audio_weight)
    if (
        isinstance(n_neighbors, bool)
        or not isinstance(n_neighbors, (int, np.integer))
        or not (1 <= n_neighbors < len(fused))
    ):
        raise ConfigError(
            f"n_neighbors must be an integer in [1, {len(fused)}) (the number of utterances with a face), "
            f"got {n_neighbors!r}"
        )
    graph = _connect_components(_knn_graph(fused, int(n_neighbors)), fused)
    # scikit-learn computes each edge's distance from copies of both end rows of every edge (E x d
    # floats: 3 GB at 20,000 utterances of 704-d fused rows, 10 neighbours). Handing it each row's index
    # as its only "feature", with a metric that looks the rows up, keeps memory at O(E).
    clustering = AgglomerativeClustering(
        n_clusters=n_clusters, metric=_FusedCosineDistance(fused), linkage="average", connectivity=graph
    )
    labels = clustering.fit_predict(np.arange(len(fused), dtype=np.float64)[:, None]).astype(np.int64)
    return _complete(labels, audio_unit, has, n_clusters, "affinity", audio_weight)


def fusion_report(
    result: FusionResult,
    audio: np.ndarray,
    face: np.ndarray,
    truth: Sequence,
    seed: int = 0,
    iterations: int = 20,
) -> FusionReport:
    """Diagnostics of ``result`` next to audio-only and face-only spherical k-means with the same K.

    ``truth`` holds one true speaker per utterance. Never feed anything from here back into training.
    """
    n_clusters = len(result.sizes)
    has = ~result.placed_by_audio
    if len(truth) != len(has):
        raise DataError(f"truth has {len(truth)} entries but the fusion labelled {len(has)} utterances")
    audio_labels = cluster_embeddings(audio, n_clusters, seed=seed, iterations=iterations).labels
    with_face = np.flatnonzero(has)
    truth_with_face = [truth[i] for i in with_face]
    face_diagnostics = None
    if len(with_face) >= n_clusters:
        face_labels = cluster_embeddings(
            np.asarray(face)[with_face], n_clusters, seed=seed, iterations=iterations
        )
        face_diagnostics = cluster_diagnostics(face_labels.labels, truth_with_face)
    without_face = np.flatnonzero(~has)
    return FusionReport(
        n_utterances=len(has),
        n_without_face=result.n_without_face,
        audio=cluster_diagnostics(audio_labels, truth),
        face=face_diagnostics,
        fused=cluster_diagnostics(result.labels, truth),
        fused_with_face=cluster_diagnostics(result.labels[with_face], truth_with_face),
        fused_without_face=(
            cluster_diagnostics(result.labels[without_face], [truth[i] for i in without_face])
            if len(without_face)
            else None
        ),
    )


def _fusion_inputs(
    audio: np.ndarray, face: np.ndarray, n_clusters: int, has_face: np.ndarray | None, audio_weight: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the inputs; return the unit audio rows, the fused rows of the utterances with a face, the mask."""
    audio = np.asarray(audio)
    face = np.asarray(face)
    if audio.ndim != 2 or face.ndim != 2:
        raise DataError(
            f"audio and face must be 2-D (utterances, dim) matrices, got shapes {audio.shape} and {face.shape}"
        )
    n_rows = len(audio)
    if len(face) != n_rows:
        raise DataError(
            f"face has {len(face)} rows but audio has {n_rows}; both need one row per utterance, in the "
            "same order (give utterances without a face any row and has_face=False)"
        )
    has = np.ones(n_rows, dtype=bool) if has_face is None else np.asarray(has_face)
    if has.dtype != np.bool_ or has.shape != (n_rows,):
        raise DataError(f"has_face must be a bool array of shape ({n_rows},), got {has.dtype} {has.shape}")
    if not 0.0 <= audio_weight <= 1.0:  # also rejects NaN
        raise ConfigError(
            f"audio_weight must be in [0, 1] (the face gets 1 - audio_weight), got {audio_weight}"
        )
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ConfigError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if n_clusters > n_rows:
        raise DataError(
            f"cannot make n_clusters={n_clusters} clusters from {n_rows} utterances; lower n_clusters"
        )
    n_with_face = int(has.sum())
    if n_clusters > n_with_face:
        raise DataError(
            f"only {n_with_face} of {n_rows} utterances have has_face=True, fewer than n_clusters={n_clusters}; "
            "the fused clustering runs on those: lower n_clusters or cluster the audio alone"
        )
    audio_unit = _unit_rows("audio", audio)
    # Rows without a face are replaced by ones so that the checks report row numbers of `face` itself.
    face_unit = _unit_rows("face", np.where(has[:, None], face, 1.0))
    fused = np.hstack(
        [np.sqrt(audio_weight) * audio_unit[has], np.sqrt(1.0 - audio_weight) * face_unit[has]]
    ).astype(np.float32)
    return audio_unit, np.ascontiguousarray(fused), has


def _unit_rows(name: str, matrix: np.ndarray) -> np.ndarray:
    """:func:`normalised_rows`, with the argument's name in front of any error."""
    try:
        return normalised_rows(matrix)
    except DataError as err:
        hint = (
            " (only rows with has_face=True are checked; mark unusable faces False)" if name == "face" else ""
        )
        raise DataError(f"{name}: {err}{hint}") from err


def _complete(
    labels_with_face: np.ndarray,
    audio_unit: np.ndarray,
    has: np.ndarray,
    n_clusters: int,
    method: str,
    audio_weight: float,
) -> FusionResult:
    """All N labels: the clustering's for utterances with a face, audio placement for the rest."""
    labels = np.empty(len(has), dtype=np.int64)
    labels[has] = labels_with_face
    if not has.all():
        labels[~has] = _place_by_audio(audio_unit[has], labels_with_face, audio_unit[~has], n_clusters)
    return FusionResult(
        labels=labels,
        sizes=np.bincount(labels, minlength=n_clusters).astype(np.int64),
        method=method,
        audio_weight=float(audio_weight),
        placed_by_audio=~has,
    )


def _place_by_audio(
    member_audio: np.ndarray, member_labels: np.ndarray, query_audio: np.ndarray, n_clusters: int
) -> np.ndarray:
    """The cluster whose members' mean audio direction is most cosine-similar to each query row.

    Empty clusters take no new members (they have no audio direction). Works for any audio_weight,
    also 0, where the fused centroids themselves carry no audio.
    """
    sums = np.zeros((n_clusters, member_audio.shape[1]), dtype=np.float64)
    np.add.at(sums, member_labels, member_audio)
    used = np.flatnonzero(np.bincount(member_labels, minlength=n_clusters) > 0)
    centres = sums[used]
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    index = faiss.IndexFlatIP(centres.shape[1])
    index.add(np.ascontiguousarray(centres, dtype=np.float32))
    _, nearest = index.search(np.ascontiguousarray(query_audio, dtype=np.float32), 1)
    return used[nearest[:, 0]].astype(np.int64)


def _knn_graph(points: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """Directed k-nearest-neighbour connectivity of unit rows by inner product (self excluded)."""
    n_points = len(points)
    index = faiss.IndexFlatIP(points.shape[1])
    index.add(points)
    _, found = index.search(points, n_neighbors + 1)
    not_self = found != np.arange(n_points)[:, None]
    # A row with exact duplicates may not find itself first (or at all): then drop its last hit instead.
    not_self[not_self.all(axis=1), -1] = False
    columns = found[not_self].reshape(n_points, n_neighbors)
    rows = np.repeat(np.arange(n_points), n_neighbors)
    return sparse.csr_matrix(
        (np.ones(rows.size, dtype=np.float64), (rows, columns.ravel())), shape=(n_points, n_points)
    )


class _FusedCosineDistance:
    """Cosine distance between two unit fused rows, named by their row index (see :func:`fuse_by_affinity`)."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points

    def __call__(self, first: np.ndarray, second: np.ndarray) -> float:
        return 1.0 - float(self.points[int(first[0])] @ self.points[int(second[0])])


def _connect_components(graph: sparse.csr_matrix, points: np.ndarray) -> sparse.csr_matrix:
    """Add edges until the graph is connected, each piece linked to its most similar other piece.

    Each round, every connected component (its direction: the normalised mean of its rows) is linked to
    the nearest other component, through each side's member closest to its own component's direction.
    Every round at least halves the number of components, and memory stays linear in N.
    """
    graph = graph.tocsr()
    while True:
        n_components, component = connected_components(graph, directed=True, connection="weak")
        if n_components == 1:
            return graph
        directions = np.zeros((n_components, points.shape[1]), dtype=np.float64)
        np.add.at(directions, component, points)
        directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        closeness = np.einsum("ij,ij->i", points, directions[component])
        order = np.lexsort((-closeness, component))
        first = np.flatnonzero(np.r_[True, component[order][1:] != component[order][:-1]])
        representative = order[first]  # per component, in component order
        index = faiss.IndexFlatIP(points.shape[1])
        index.add(np.ascontiguousarray(directions, dtype=np.float32))
        _, nearest = index.search(np.ascontiguousarray(directions, dtype=np.float32), 2)
        own = np.arange(n_components)
        other = np.where(nearest[:, 0] == own, nearest[:, 1], nearest[:, 0])
        bridges = sparse.csr_matrix(
            (np.ones(n_components), (representative, representative[other])), shape=graph.shape
        )
        graph = (graph + bridges).tocsr()
