"""Scoring a set of test embeddings on trial lists: cosine after mean subtraction -> EER, minDCF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avssl.eval.metrics import verification_metrics
from avssl.eval.scoring import cosine_scores
from avssl.eval.trials import TrialList, read_trials
from avssl.utils.atomic import atomic_write_text


def evaluate_trials(
    trial_files: Sequence[str | Path],
    keys: list[str],
    embeddings: np.ndarray,
    train_mean: np.ndarray | None,
    score_dir: str | Path | None = None,
) -> dict[str, dict[str, float | int]]:
    """Metrics per trial list (named after the file stem); optionally write one score file per list.

    ``train_mean`` is the mean embedding of the TRAINING utterances (never of the test set, which
    would let test statistics into the system).
    """
    results: dict[str, dict[str, float | int]] = {}
    for trial_file in trial_files:
        trials = read_trials(trial_file)
        scores = cosine_scores(trials, keys, embeddings, train_mean)
        results[trials.name] = verification_metrics(scores, trials.labels)
        if score_dir is not None:
            _write_scores(Path(score_dir) / f"{trials.name}.scores.txt", trials, scores)
    return results


def _write_scores(path: Path, trials: TrialList, scores: np.ndarray) -> None:
    """One line per trial: enrol key, test key, score, label (the format other tools read)."""
    lines = (f"{e} {t} {s:.6f} {lab}" for e, t, s, lab in zip(trials.enrol, trials.test, scores, trials.labels, strict=True))
    atomic_write_text(path, "\n".join(lines) + "\n")


def mean_embedding(embeddings: np.ndarray) -> np.ndarray:
    """The mean of a set of embeddings (the training set's, for mean subtraction)."""
    return np.asarray(embeddings, dtype=np.float64).mean(axis=0)


def format_table(rows: Mapping[str, Mapping[str, Mapping[str, float | int]]], lists: Sequence[str]) -> str:
    """A markdown table: one row per system, EER (%) and minDCF at both p_target per trial list."""
    header = ["system"]
    for name in lists:
        header += [f"{name} EER%", f"{name} minDCF@0.01", f"{name} minDCF@0.05"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for system, results in rows.items():
        cells = [system]
        for name in lists:
            metrics = results[name]
            cells += [f"{100 * metrics['eer']:.2f}", f"{metrics['min_dcf@0.01']:.3f}", f"{metrics['min_dcf@0.05']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
