"""Scoring test embeddings on trial lists, per system: raw cosine, AS-norm, face, audio+face fused.

No test-set statistic ever enters a system. The mean subtracted before cosine scoring comes from a
training (or other label-free) embedding file; the AS-norm cohort is the k-means cluster means of
training embeddings (pseudo-speakers, never true labels); fusion statistics and the fusion weight come
from a development trial list or the cohort. Files that share utterances or trials with the test lists
are refused, so a mix-up of paths cannot leak the test set silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avssl.errors import ConfigError
from avssl.eval.asnorm import asnorm_scores, cluster_mean_cohort
from avssl.eval.extract import load_embedding_meta, load_embeddings
from avssl.eval.fusion import check_weight, fit_fusion_weight, fuse, znorm_from_cohort, znorm_from_trials
from avssl.eval.metrics import verification_metrics
from avssl.eval.scoring import cosine_scores
from avssl.eval.trials import TrialList, read_trials
from avssl.pseudo.kmeans import cluster_embeddings
from avssl.utils.atomic import atomic_write_text

_SHOW = 5


@dataclass(frozen=True)
class EvalRequest:
    """What `avssl eval` was asked to do; option names in errors are the command-line flags."""

    trial_files: Sequence[Path]
    embeddings: Path
    train_embeddings: Path | None = None  # its mean is subtracted
    cohort_embeddings: Path | None = None  # AS-norm cohort source (and audio z-norm without a dev list)
    asnorm_clusters: int | None = None
    asnorm_top_n: int = 300
    face_embeddings: Path | None = None
    face_cohort_embeddings: Path | None = None
    fusion_weight: float | None = None
    fusion_dev_trials: Path | None = None
    seed: int = 0


@dataclass
class Evaluation:
    """Scores and metrics per trial list and system, and the settings that produced them."""

    trials: dict[str, TrialList]
    scores: dict[str, dict[str, np.ndarray]]  # list -> system -> scores in trial order
    metrics: dict[str, dict[str, dict[str, float | int]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def evaluate(request: EvalRequest) -> Evaluation:
    """Score every trial list with every requested system and compute EER and minDCF."""
    _check_request(request)
    lists = [read_trials(path) for path in request.trial_files]
    names = [trials.name for trials in lists]
    if len(set(names)) != len(names):
        raise ConfigError(f"--trials: two trial lists share a file name stem ({names}); outputs are named by it")
    needed = set().union(*(trials.keys() for trials in lists))
    keys, embeddings = load_embeddings(request.embeddings)
    meta = load_embedding_meta(request.embeddings)
    settings: dict[str, Any] = {
        "embeddings": {"file": str(request.embeddings), "utterances": len(keys),
                       "skipped_at_extraction": len(meta.get("skipped", {}))},
    }
    train = mean = None
    if request.train_embeddings is not None:
        train = _label_free(request.train_embeddings, "--train-embeddings", needed)[1]
        mean = mean_embedding(train)
    settings["mean_subtraction"] = str(request.train_embeddings) if request.train_embeddings else None
    cohort = None
    if request.cohort_embeddings is not None:
        cohort = _label_free(request.cohort_embeddings, "--cohort-embeddings", needed)[1]
    evaluation = Evaluation(
        trials={t.name: t for t in lists},
        scores={t.name: {"raw": cosine_scores(t, keys, embeddings, mean)} for t in lists},
        settings=settings,
    )
    settings["asnorm"] = None
    if request.asnorm_clusters is not None:  # _check_request made sure a cohort was given
        settings["asnorm"] = _add_asnorm(request, lists, (keys, embeddings), mean, cohort, evaluation.scores)
    settings["fusion"] = None
    if request.face_embeddings is not None:
        audio_cohort = cohort if cohort is not None else train
        settings["fusion"] = _add_fusion(request, lists, needed, (keys, embeddings), mean, audio_cohort,
                                         evaluation.scores)
    evaluation.metrics = {
        name: {system: verification_metrics(scores, evaluation.trials[name].labels)
               for system, scores in systems.items()}
        for name, systems in evaluation.scores.items()
    }
    return evaluation


def _check_request(request: EvalRequest) -> None:
    """Refuse option combinations that would silently do less than asked."""
    if request.asnorm_clusters is not None:
        if request.cohort_embeddings is None:
            raise ConfigError("--asnorm-clusters needs --cohort-embeddings (label-free training embeddings)")
        if request.asnorm_clusters < 2 or request.asnorm_top_n < 2:
            raise ConfigError(
                f"--asnorm-clusters and --asnorm-top-n must be at least 2 (the std of one score is 0), got "
                f"{request.asnorm_clusters} and {request.asnorm_top_n}"
            )
    if request.face_embeddings is None:
        if request.fusion_weight is not None or request.fusion_dev_trials is not None:
            raise ConfigError("--fusion-weight / --fusion-dev-trials need --face-embeddings")
        return
    if request.fusion_weight is None and request.fusion_dev_trials is None:
        raise ConfigError("--face-embeddings needs --fusion-weight W, or --fusion-dev-trials DEV to fit W on")
    if request.fusion_weight is not None:
        check_weight(request.fusion_weight)
    if request.fusion_dev_trials is None and (
        request.face_cohort_embeddings is None or (request.cohort_embeddings or request.train_embeddings) is None
    ):
        raise ConfigError(
            "without --fusion-dev-trials, fusion z-normalises scores with cohort statistics: give "
            "--face-cohort-embeddings and --cohort-embeddings (or --train-embeddings)"
        )


def _label_free(path: Path, option: str, test_keys: set[str]) -> tuple[list[str], np.ndarray]:
    """Load an embedding file that must not hold any utterance of the test trial lists."""
    keys, embeddings = load_embeddings(path)
    shared = sorted(test_keys.intersection(keys))
    if shared:
        raise ConfigError(
            f"{option} {path} holds {len(shared)} utterances of the test trial lists (first: {shared[:_SHOW]}); "
            "it must come from training data, never from the test set"
        )
    return keys, embeddings


def mean_embedding(embeddings: np.ndarray) -> np.ndarray:
    """The mean of a set of embeddings (the training set's, for mean subtraction)."""
    return np.asarray(embeddings, dtype=np.float64).mean(axis=0)


def _pseudo_speaker_cohort(cohort: np.ndarray, mean: np.ndarray | None, clusters: int, seed: int) -> np.ndarray:
    """AS-norm cohort: one mean per k-means cluster of the (mean-subtracted) cohort embeddings."""
    centred = cohort if mean is None else np.asarray(cohort, dtype=np.float64) - mean
    labels = cluster_embeddings(centred, clusters, seed=seed).labels
    return cluster_mean_cohort(cohort, labels, mean)


def _add_asnorm(
    request: EvalRequest,
    lists: Sequence[TrialList],
    audio: tuple[list[str], np.ndarray],
    mean: np.ndarray | None,
    cohort: np.ndarray,
    scores: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    """Add the "asnorm" system to ``scores``; return its settings for the report."""
    cohort_means = _pseudo_speaker_cohort(cohort, mean, request.asnorm_clusters, request.seed)
    for trials in lists:
        scores[trials.name]["asnorm"] = asnorm_scores(trials, *audio, cohort_means, request.asnorm_top_n, mean)
    return {"cohort_file": str(request.cohort_embeddings), "cohort_utterances": len(cohort),
            "clusters": request.asnorm_clusters, "cohort_size": len(cohort_means),
            "top_n": min(request.asnorm_top_n, len(cohort_means)), "seed": request.seed}


def _check_dev_list(dev: TrialList, path: Path, lists: Sequence[TrialList], test_files: Sequence[Path]) -> None:
    """The fusion development list must share no trial with any test list (fitting on test leaks it)."""
    dev_pairs = {frozenset(pair) for pair in zip(dev.enrol, dev.test, strict=True)}
    for trials, test_file in zip(lists, test_files, strict=True):
        same_file = Path(test_file).resolve() == Path(path).resolve()
        shared = sum(frozenset(pair) in dev_pairs for pair in zip(trials.enrol, trials.test, strict=True))
        if same_file or shared:
            raise ConfigError(
                f"--fusion-dev-trials {path} shares {shared} trials with the test list {test_file}: the fusion "
                "weight and statistics must come from a separate development list, never from test trials"
            )


def _add_fusion(
    request: EvalRequest,
    lists: Sequence[TrialList],
    needed: set[str],
    audio: tuple[list[str], np.ndarray],
    mean: np.ndarray | None,
    audio_cohort: np.ndarray | None,
    scores: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    """Add the "face" and "fused" systems to ``scores``; return the fusion settings for the report."""
    face_keys, face = load_embeddings(request.face_embeddings)
    face_cohort = face_mean = None
    if request.face_cohort_embeddings is not None:
        face_cohort = _label_free(request.face_cohort_embeddings, "--face-cohort-embeddings", needed)[1]
        face_mean = mean_embedding(face_cohort)
    for trials in lists:
        scores[trials.name]["face"] = cosine_scores(trials, face_keys, face, face_mean)
    info: dict[str, Any] = {"face_embeddings": str(request.face_embeddings), "dev_trials": None, "dev_eer": None}
    if request.fusion_dev_trials is not None:
        dev = read_trials(request.fusion_dev_trials)
        _check_dev_list(dev, request.fusion_dev_trials, lists, request.trial_files)
        audio_dev = cosine_scores(dev, *audio, mean)
        face_dev = cosine_scores(dev, face_keys, face, face_mean)
        audio_z = znorm_from_trials(audio_dev, dev.labels, f"non-target trials of {request.fusion_dev_trials}")
        face_z = znorm_from_trials(face_dev, dev.labels, f"non-target trials of {request.fusion_dev_trials}")
        info["dev_trials"] = str(request.fusion_dev_trials)
    else:
        audio_z = znorm_from_cohort(audio_cohort, mean, request.seed, "random pairs of the audio cohort")
        face_z = znorm_from_cohort(face_cohort, face_mean, request.seed, "random pairs of the face cohort")
    if request.fusion_weight is not None:
        weight, info["weight_source"] = check_weight(request.fusion_weight), "given (--fusion-weight)"
    else:
        weight, info["dev_eer"] = fit_fusion_weight(audio_z(audio_dev), face_z(face_dev), dev.labels)
        info["weight_source"] = f"fitted on {request.fusion_dev_trials} (lowest EER)"
    for trials in lists:
        scores[trials.name]["fused"] = fuse(audio_z(scores[trials.name]["raw"]), face_z(scores[trials.name]["face"]),
                                            weight)
    info["weight"] = weight
    info["znorm"] = {name: {"mean": z.mean, "std": z.std, "source": z.source}
                     for name, z in (("audio", audio_z), ("face", face_z))}
    return info


def evaluate_trials(
    trial_files: Sequence[str | Path],
    keys: list[str],
    embeddings: np.ndarray,
    train_mean: np.ndarray | None,
    score_dir: str | Path | None = None,
) -> dict[str, dict[str, float | int]]:
    """Raw cosine metrics per trial list (named after the file stem); optionally one score file per list.

    ``train_mean`` is the mean embedding of the TRAINING utterances (never of the test set, which
    would let test statistics into the system).
    """
    results: dict[str, dict[str, float | int]] = {}
    for trial_file in trial_files:
        trials = read_trials(trial_file)
        scores = cosine_scores(trials, keys, embeddings, train_mean)
        results[trials.name] = verification_metrics(scores, trials.labels)
        if score_dir is not None:
            write_scores(Path(score_dir) / f"{trials.name}.scores.txt", trials, scores)
    return results


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


def write_scores(path: Path, trials: TrialList, scores: np.ndarray) -> Path:
    """One line per trial: enrol key, test key, score, label (the format other tools read)."""
    lines = (f"{e} {t} {s:.6f} {lab}" for e, t, s, lab in zip(trials.enrol, trials.test, scores, trials.labels, strict=True))
    return atomic_write_text(path, "\n".join(lines) + "\n")
