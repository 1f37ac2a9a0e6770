"""Cross-modal cluster fusion: fused labels beat each modality, faceless utterances, the report, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from avssl.errors import ConfigError, DataError
from avssl.pseudo.diagnostics import cluster_diagnostics
from avssl.pseudo.fusion import _knn_graph, fuse_by_affinity, fuse_by_concatenation, fusion_report

N_SPEAKERS = 12


def confusable_speakers(
    n_speakers: int = N_SPEAKERS,
    per_speaker: int = 20,
    dim: int = 32,
    spread: float = 0.06,
    seed: int = 0,
    missing: float = 0.15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Audio and face embeddings where each modality alone confuses different pairs of speakers.

    Speakers 2j and 2j+1 share one voice (the same audio centre); speakers 2j+1 and 2j+2 (mod n) share
    one face. No pair shares both, so only the two together tell every speaker apart. A fraction
    ``missing`` of the utterances has no face: its face row is NaN and has_face is False.
    """
    rng = np.random.default_rng(seed)

    def directions(n: int) -> np.ndarray:
        centres = rng.standard_normal((n, dim))
        return centres / np.linalg.norm(centres, axis=1, keepdims=True)

    speakers = np.arange(n_speakers)
    audio_centres = directions(n_speakers // 2)[speakers // 2]
    face_centres = directions(n_speakers // 2)[((speakers + 1) % n_speakers) // 2]
    truth = np.repeat(speakers, per_speaker)
    audio = audio_centres[truth] + spread * rng.standard_normal((len(truth), dim))
    face = face_centres[truth] + spread * rng.standard_normal((len(truth), dim))
    has_face = rng.random(len(truth)) >= missing
    face[~has_face] = np.nan
    return audio.astype(np.float32), face.astype(np.float32), has_face, truth


@pytest.fixture(scope="module")
def data():
    return confusable_speakers()


@pytest.mark.parametrize("fuse", [fuse_by_concatenation, fuse_by_affinity])
def test_fusion_resolves_what_each_modality_confuses(data, fuse) -> None:
    audio, face, has_face, truth = data
    result = fuse(audio, face, N_SPEAKERS, has_face=has_face)
    report = fusion_report(result, audio, face, truth)
    # Each modality alone merges pairs of speakers; the fusion separates them where it sees a face. Over 20
    # draws of the data x 3 k-means seeds the margins over the better single modality were at worst
    # 0.08 (concatenation) and 0.22 (affinity) on utterances with a face, 0.02 and 0.09 on all of them
    # (the faceless ones can only be placed within their voice's pair).
    single = max(report.audio["nmi"], report.face["nmi"])
    assert single < 0.8
    assert report.fused_with_face["nmi"] > single + 0.05
    assert report.fused["nmi"] > single
    assert report.n_utterances == len(truth)
    assert report.fused_without_face is not None and report.fused_without_face["n_items"] == (~has_face).sum()
    again = fuse(audio, face, N_SPEAKERS, has_face=has_face)
    np.testing.assert_array_equal(again.labels, result.labels)


def test_utterances_without_face_are_placed_by_audio_and_counted(data) -> None:
    audio, face, has_face, truth = data
    result = fuse_by_concatenation(audio, face, N_SPEAKERS, has_face=has_face, seed=3)
    assert result.n_without_face == int((~has_face).sum()) > 0
    np.testing.assert_array_equal(result.placed_by_audio, ~has_face)
    assert result.sizes.sum() == len(truth) and result.labels.min() >= 0 and result.labels.max() < N_SPEAKERS

    # The rule: the cluster whose members' mean audio direction is most cosine-similar, by hand.
    unit = audio / np.linalg.norm(audio, axis=1, keepdims=True)
    members = result.labels[has_face]
    centres = np.stack([unit[has_face][members == k].mean(axis=0) for k in range(N_SPEAKERS)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    np.testing.assert_array_equal(result.labels[~has_face], (unit[~has_face] @ centres.T).argmax(axis=1))

    # Audio cannot tell 2j from 2j+1, but a faceless utterance always lands in its voice's pair.
    majority = np.array([np.bincount(truth[has_face][members == k]).argmax() for k in range(N_SPEAKERS)])
    assert (majority[result.labels[~has_face]] // 2 == truth[~has_face] // 2).all()

    # Their face rows are never read: any content gives the same labels.
    filled = face.copy()
    filled[~has_face] = np.random.default_rng(9).standard_normal(((~has_face).sum(), face.shape[1]))
    same = fuse_by_concatenation(audio, filled, N_SPEAKERS, has_face=has_face, seed=3)
    np.testing.assert_array_equal(same.labels, result.labels)


def test_every_utterance_with_a_face_is_the_default(data) -> None:
    audio, face, has_face, truth = data
    complete = np.where(has_face[:, None], face, audio)  # any finite rows will do
    result = fuse_by_concatenation(audio, complete, N_SPEAKERS)
    assert result.n_without_face == 0
    assert fusion_report(result, audio, complete, truth).fused_without_face is None


def test_weight_one_is_audio_alone(data) -> None:
    audio, face, has_face, truth = data
    audio_only = fuse_by_affinity(audio, face, N_SPEAKERS, has_face=has_face, audio_weight=1.0)
    fused = fuse_by_affinity(audio, face, N_SPEAKERS, has_face=has_face, audio_weight=0.5)
    assert (
        cluster_diagnostics(audio_only.labels, truth)["nmi"] < cluster_diagnostics(fused.labels, truth)["nmi"]
    )
    assert audio_only.audio_weight == 1.0 and audio_only.method == "affinity"


def test_affinity_connects_a_graph_that_falls_apart() -> None:
    # Two neighbours per utterance inside tight speaker groups: the kNN graph falls into many pieces.
    audio, face, _, truth = confusable_speakers(spread=0.01, missing=0.0, seed=1)
    unit = np.hstack([audio, face]) / np.linalg.norm(np.hstack([audio, face]), axis=1, keepdims=True)
    pieces, _ = connected_components(
        _knn_graph(np.ascontiguousarray(unit, dtype=np.float32), 2), connection="weak"
    )
    assert pieces > 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's own (dense) completion of the graph would warn
        result = fuse_by_affinity(audio, face, 3, n_neighbors=2)
    assert sorted(np.unique(result.labels).tolist()) == [0, 1, 2]
    diagnostics = cluster_diagnostics(result.labels, truth)
    assert diagnostics["inverse_purity"] == 1.0  # whole speakers are merged, never split


def test_bad_inputs_name_the_argument(data) -> None:
    audio, face, has_face, _ = data
    with pytest.raises(DataError, match="face has"):
        fuse_by_concatenation(audio, face[:-1], 4, has_face=has_face)
    with pytest.raises(DataError, match="has_face"):
        fuse_by_concatenation(audio, face, 4, has_face=has_face[:-1])
    with pytest.raises(DataError, match="has_face"):
        fuse_by_concatenation(audio, face, 4, has_face=has_face.astype(int))
    for weight in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="audio_weight"):
            fuse_by_concatenation(audio, face, 4, has_face=has_face, audio_weight=weight)
    with pytest.raises(DataError, match="n_clusters"):
        fuse_by_concatenation(audio, face, len(audio) + 1, has_face=has_face)
    with pytest.raises(DataError, match="n_clusters"):  # more clusters than utterances with a face
        fuse_by_concatenation(audio, face, int(has_face.sum()) + 1, has_face=has_face)
    with pytest.raises(ConfigError, match="n_clusters"):
        fuse_by_concatenation(audio, face, 0, has_face=has_face)
    nan_audio = audio.copy()
    nan_audio[5] = np.nan
    with pytest.raises(DataError, match=r"^audio: .*NaN.*\[5\]"):
        fuse_by_concatenation(nan_audio, face, 4, has_face=has_face)
    marked = has_face.copy()
    marked[np.flatnonzero(~has_face)[0]] = True  # a NaN face row now claims to be usable
    with pytest.raises(DataError, match=r"^face: .*NaN.*has_face=True"):
        fuse_by_concatenation(audio, face, 4, has_face=marked)
    with pytest.raises(ConfigError, match="max_utterances"):
        fuse_by_affinity(audio, face, 4, has_face=has_face, max_utterances=100)
    with pytest.raises(ConfigError, match="n_neighbors"):
        fuse_by_affinity(audio, face, 4, has_face=has_face, n_neighbors=int(has_face.sum()))
