"""Pseudo-label files (``key<TAB>cluster``) and the per-clustering report written next to them.

The file is the hand-off between clustering and training: Stage I' groups utterances by it and Stage II
uses the cluster as the class. Reading validates every line, because a file truncated by a crash or
edited by hand would otherwise surface much later as a wrong class count or a missing key in a loader.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avssl.errors import DataError
from avssl.pseudo.diagnostics import cluster_diagnostics, size_summary
from avssl.pseudo.kmeans import ClusterResult
from avssl.utils.atomic import atomic_write_text
from avssl.utils.tsv import read_tsv_lines

HEADER_LINE = "key\tcluster"
_REMEDY = "run the clustering step again to regenerate it"
_LARGEST_SHOWN = 5
_KEYS_SHOWN = 3


def write_pseudo_labels(path: str | os.PathLike, keys: Sequence[str], labels: np.ndarray) -> Path:
    """Write one ``key<TAB>cluster`` row per utterance, in the given order, atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(keys):
        raise DataError(
            f"{path}: {len(keys)} keys but cluster labels of shape {labels.shape}; they must pair up"
        )
    if len(keys) == 0:
        raise DataError(f"{path}: no utterances to label; cluster at least one embedding first")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DataError(f"{path}: cluster labels must be non-negative integers, got dtype {labels.dtype}")
    lines = [HEADER_LINE]
    seen: set[str] = set()
    for key, label in zip(keys, labels.tolist(), strict=True):
        if not key or any(char in key for char in "\t\n\r"):
            raise DataError(f"{path}: key {key!r} is empty or contains a tab or newline; fix the manifest")
        if key in seen:
            raise DataError(f"{path}: duplicate key {key!r}; each utterance may be labelled once")
        seen.add(key)
        lines.append(f"{key}\t{label}")
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_pseudo_labels(path: str | os.PathLike) -> dict[str, int]:
    """Read what :func:`write_pseudo_labels` wrote, as key -> cluster in file order."""
    path = Path(path)
    lines = read_tsv_lines(path, HEADER_LINE, "pseudo-label file", _REMEDY)
    if not lines:
        raise DataError(f"{path}: the file has a header but no labels; {_REMEDY}")
    labels: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=2):
        key, label = _parse_line(path, lineno, line)
        if key in labels:
            raise DataError(
                f"{path}:{lineno}: duplicate key {key!r} (first on line {first_line[key]}); {_REMEDY}"
            )
        labels[key] = label
        first_line[key] = lineno
    return labels


def labels_in_order(path: str | os.PathLike, keys: Sequence[str], source: str = "") -> np.ndarray:
    """The labels of ``keys``, in that order, from a pseudo-label file that must cover every one of them.

    ``source`` names where the file came from (e.g. a config key) in the error about missing keys.
    """
    by_key = read_pseudo_labels(path)
    missing = [key for key in keys if key not in by_key]
    if missing:
        where = f" ({source})" if source else ""
        raise DataError(f"{path}{where} has no cluster for {len(missing)} of the {len(keys)} training utterances "
                        f"(first: {missing[:_KEYS_SHOWN]}); it must come from a run on the same training manifest")
    return np.array([by_key[key] for key in keys], dtype=np.int64)


def cluster_report(result: ClusterResult, keys: Sequence[str], truth: Sequence | None = None) -> dict:
    """A JSON-ready summary of one clustering: sizes, objective, the largest clusters, and diagnostics.

    ``truth`` (true class per key, same order) is optional and only ever feeds the diagnostics block.
    The largest clusters are listed with a few member keys because an oversized cluster is the usual
    sign of a collapsed encoder, and its keys are what a person inspects next.
    """
    if len(keys) != len(result.labels):
        raise DataError(f"{len(keys)} keys for {len(result.labels)} cluster labels; they must pair up")
    largest = np.argsort(-result.sizes, kind="stable")[:_LARGEST_SHOWN]
    report = {
        "n_items": len(keys),
        "n_clusters": len(result.sizes),
        "spherical": result.spherical,
        "objective": result.objective,
        "sizes": size_summary(result.sizes),
        "largest_clusters": [
            {
                "cluster": int(cluster),
                "size": int(result.sizes[cluster]),
                "keys": [keys[i] for i in np.flatnonzero(result.labels == cluster)[:_KEYS_SHOWN]],
            }
            for cluster in largest
        ],
    }
    if truth is not None:
        report["diagnostics"] = cluster_diagnostics(result.labels, truth)
    return report


def _parse_line(path: Path, lineno: int, line: str) -> tuple[str, int]:
    """Split one row into key and cluster, or say exactly what is wrong with it."""
    fields = line.split("\t")
    if len(fields) != 2:
        raise DataError(f"{path}:{lineno}: expected 2 tab-separated fields, found {len(fields)}; {_REMEDY}")
    key, label_text = fields
    if not key:
        raise DataError(f"{path}:{lineno}: the key is empty; {_REMEDY}")
    if not label_text.isascii() or not label_text.isdigit():
        raise DataError(f"{path}:{lineno}: cluster {label_text!r} is not a non-negative integer; {_REMEDY}")
    return key, int(label_text)
