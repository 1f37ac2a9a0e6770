"""Cosine scoring of a trial list against a table of utterance embeddings.

Following the evaluation protocol, the mean TRAINING embedding is subtracted before length
normalisation (a label-free correction of the embedding space's offset). Trials are scored with index
arrays and row-wise dot products in fixed-size chunks, so memory stays linear in the number of trials
and never holds a (trials x dim) copy of the embeddings.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from avssl.errors import DataError
from avssl.eval.trials import TrialList

_CHUNK = 65536
_SHOW = 5


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; an all-zero row (no direction) stays zero and scores 0."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, np.finfo(matrix.dtype).tiny)


def centred_unit(embedding: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
    """One embedding as :func:`cosine_scores` treats table rows: ``mean`` subtracted, then unit length."""
    vector = np.asarray(embedding, dtype=np.float64)
    if mean is not None:
        vector = vector - mean
    return unit_rows(vector[None])[0]


def _row_index(trials: TrialList, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Embedding row of each trial's enrol and test utterance; DataError lists any that are missing."""
    row = {key: i for i, key in enumerate(keys)}
    if len(row) != len(keys):
        duplicates = sorted(key for key, count in Counter(keys).items() if count > 1)
        raise DataError(
            f"{len(keys) - len(row)} duplicate embedding keys (first: {duplicates[:_SHOW]}); "
            "each utterance must be embedded once"
        )
    missing = [key for key in trials.keys() if key not in row]
    if missing:
        raise DataError(
            f"trial list '{trials.name}' needs {len(missing)} utterances with no embedding "
            f"(first: {missing[:_SHOW]}); extract embeddings for every key in the trial list"
        )
    enrol = np.fromiter((row[key] for key in trials.enrol), dtype=np.int64, count=len(trials.enrol))
    test = np.fromiter((row[key] for key in trials.test), dtype=np.int64, count=len(trials.test))
    return enrol, test


def cosine_scores(
    trials: TrialList,
    keys: list[str],
    embeddings: np.ndarray,
    mean: np.ndarray | None = None,
) -> np.ndarray:
    """Cosine similarity of each trial's enrol and test embedding (row ``i`` of ``embeddings`` is ``keys[i]``).

    ``mean`` is the mean training embedding, subtracted before L2 normalisation when given.
    Returns float64 scores in trial order.
    """
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(keys):
        raise DataError(
            f"embeddings must be a (len(keys), dim) = ({len(keys)}, dim) matrix, got shape {embeddings.shape}"
        )
    enrol, test = _row_index(trials, keys)
    table = embeddings.astype(np.result_type(embeddings.dtype, np.float32), copy=True)
    if mean is not None:
        mean = np.asarray(mean).ravel()
        if mean.size != table.shape[1]:
            raise DataError(f"mean embedding has {mean.size} dims but embeddings have {table.shape[1]}")
        table -= mean.astype(table.dtype)
    used = np.unique(np.concatenate([enrol, test]))
    bad_rows = used[~np.isfinite(table[used]).all(axis=1)]
    if bad_rows.size:
        raise DataError(
            f"{bad_rows.size} embeddings contain NaN or infinite values "
            f"(first: {[keys[i] for i in bad_rows[:_SHOW]]}); re-extract them"
        )
    table = unit_rows(table)
    scores = np.empty(len(trials), dtype=np.float64)
    for start in range(0, len(trials), _CHUNK):
        stop = start + _CHUNK
        scores[start:stop] = np.einsum("ij,ij->i", table[enrol[start:stop]], table[test[start:stop]])
    return scores
