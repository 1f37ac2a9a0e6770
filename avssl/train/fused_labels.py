"""The labels of an audio-visual stage-II round: one pseudo-label per utterance from its voice and its face.

Every process embeds a disjoint share of the training utterances with both current encoders (clean,
whole utterances; every sampled frame of the face track), as audio-only clustering does
(:mod:`avssl.train.cluster_rounds`); the main process merges the shares, fuses the two clusterings
(:mod:`avssl.pseudo.fusion`) and writes ``labels.tsv`` with a ``labels.json`` report; every process
then reads those files, so all ranks train on the same labels and a resumed run reuses them. Utterances whose video cannot be used
(none in the manifest, a missing or unreadable file) are placed by their audio alone; the report
counts and names them, and ``has_face`` tells training to mask their face loss out.

With true speakers known (VoxCeleb-style keys), the report also gives the NMI of audio-only,
face-only and fused clusterings (:func:`avssl.pseudo.fusion.fusion_report`): diagnostics only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn

from avssl.config import CrossModalConfig, PseudoLabelConfig
from avssl.data.manifest import Utterance
from avssl.errors import DataError
from avssl.eval.extract import embed_utterances, encoder_embedder
from avssl.faces.embed import embed_faces
from avssl.faces.sources import FaceSource
from avssl.pseudo.diagnostics import true_speaker_labels
from avssl.pseudo.fusion import FusionResult, fuse_by_affinity, fuse_by_concatenation, fusion_report
from avssl.pseudo.labels import labels_in_order, write_pseudo_labels
from avssl.utils.atomic import atomic_write, atomic_write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundLabels:
    """The round's label per utterance, which utterances have a usable face, and the JSON report."""

    labels: np.ndarray  # (N,) int64
    has_face: np.ndarray  # (N,) bool
    report: dict

    @property
    def n_without_face(self) -> int:
        return int((~self.has_face).sum())


def fused_round_labels(
    accelerator: Accelerator,
    audio_encoder: nn.Module,
    fbank: nn.Module,
    face_encoder: nn.Module,
    face_source: FaceSource,
    image_size: int,
    utterances: Sequence[Utterance],
    sample_rate: int,
    labels_config: PseudoLabelConfig,
    cross_modal: CrossModalConfig,
    folder: Path,
    seed: int,
    truth: Sequence[str] | None,
) -> RoundLabels:
    """Compute (every process embeds, the main one fuses) or reuse the round's labels; all return the same."""
    labels_path, report_path = folder / "labels.tsv", folder / "labels.json"
    if not (labels_path.is_file() and report_path.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        rank, world = accelerator.process_index, accelerator.num_processes
        share = list(range(rank, len(utterances), world))
        _embed_share(audio_encoder, fbank, face_encoder, face_source, image_size, utterances, share, sample_rate,
                     accelerator.device, _shard_path(folder, rank))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            audio, face, failed = _merge_shares(folder, world, len(utterances))
            has_face = np.array([i not in failed for i in range(len(utterances))], dtype=bool)
            keys = [u.key for u in utterances]
            labels, report = _labels_and_report(audio, face, has_face, keys, labels_config, cross_modal, seed, truth)
            report["without_face_keys"] = [utterances[i].key for i in sorted(failed)]
            report["without_face_reasons"] = sorted(set(failed.values()))
            write_pseudo_labels(labels_path, keys, labels)
            atomic_write_json(report_path, report)
            log.info("fused labels %s: %d utterances, %d without a usable face (trained on audio only)%s",
                     folder.name, len(utterances), len(failed),
                     f"; diagnostic NMI audio {report['nmi']['audio']:.3f}, face {report['nmi']['face']}, "
                     f"fused {report['nmi']['fused']:.3f}" if report.get("nmi") else "")
        accelerator.wait_for_everyone()
        _shard_path(folder, rank).unlink(missing_ok=True)
    return _read_round(labels_path, report_path, utterances)


def _shard_path(folder: Path, rank: int) -> Path:
    return folder / f"embeddings.rank{rank}.npz"


def _embed_share(
    audio_encoder: nn.Module, fbank: nn.Module, face_encoder: nn.Module, face_source: FaceSource, image_size: int,
    utterances: Sequence[Utterance], share: list[int], sample_rate: int, device: torch.device, path: Path,
) -> None:
    """One process's utterances (indices ``share``): audio and face embeddings, and why faces are missing."""
    chosen = [utterances[i] for i in share]
    audio = embed_utterances(encoder_embedder(audio_encoder.eval(), fbank), chosen, sample_rate, device)
    rows, failed = embed_faces(face_encoder, chosen, face_source, image_size, device)
    width = len(next(iter(rows.values()))) if rows else 0
    face = np.zeros((len(chosen), width), dtype=np.float32)
    for local, row in rows.items():
        face[local] = row
    reasons = np.array([failed.get(local, "") for local in range(len(chosen))], dtype=str)
    atomic_write(path, lambda handle: np.savez(handle, index=np.array(share, dtype=np.int64), audio=audio,
                                               face=face, reasons=reasons))


def _merge_shares(folder: Path, world: int, count: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """All processes' shares in utterance order: audio (N, da), face (N, df; zeros without a face), failures."""
    shares = [np.load(_shard_path(folder, rank)) for rank in range(world)]
    width = max(share["face"].shape[1] for share in shares)
    if width == 0:
        raise DataError(
            "no training utterance has readable face frames: check the manifest's video column or "
            "cross_modal.frames.store, or set cross_modal.enabled=false"
        )
    audio = np.zeros((count, shares[0]["audio"].shape[1]), dtype=np.float32)
    face = np.zeros((count, width), dtype=np.float32)
    failed: dict[int, str] = {}
    for share in shares:
        index, reasons = share["index"], share["reasons"]
        audio[index] = share["audio"]
        has = reasons == ""
        if share["face"].shape[1]:
            face[index[has]] = share["face"][has]
        failed.update({int(i): str(r) for i, r in zip(index[~has], reasons[~has], strict=True)})
    return audio, face, failed


def _labels_and_report(
    audio: np.ndarray,
    face: np.ndarray,
    has_face: np.ndarray,
    keys: Sequence[str],
    labels_config: PseudoLabelConfig,
    cross_modal: CrossModalConfig,
    seed: int,
    truth: Sequence[str] | None,
) -> tuple[np.ndarray, dict]:
    """Labels from ``labels.source``; the fusion's report, with the diagnostic NMIs when ``truth`` is known."""
    n_without = int((~has_face).sum())
    if labels_config.source == "true_speakers":
        labels = true_speaker_labels(keys)
        return labels, {"source": "true_speakers (supervised upper-bound reference)",
                        "n_clusters": int(labels.max()) + 1, "n_without_face": n_without}
    result = _fuse(audio, face, has_face, labels_config, cross_modal, seed)
    report: dict = {
        "source": f"fused k-means ({result.method})" if result.method == "concatenation" else "fused affinity",
        "n_clusters": len(result.sizes),
        "audio_weight": result.audio_weight,
        "n_without_face": result.n_without_face,
        "cluster_sizes": {"min": int(result.sizes.min()), "max": int(result.sizes.max()),
                          "empty": int((result.sizes == 0).sum())},
    }
    if truth is not None:
        diagnostics = fusion_report(result, audio, face, truth, seed, labels_config.kmeans_iterations)
        report["nmi"] = {
            "audio": diagnostics.audio["nmi"],
            "face": diagnostics.face["nmi"] if diagnostics.face is not None else None,
            "fused": diagnostics.fused["nmi"],
        }
        report["diagnostics"] = {k: v for k, v in asdict(diagnostics).items() if k not in ("n_utterances",)}
    return result.labels, report


def _fuse(
    audio: np.ndarray,
    face: np.ndarray,
    has_face: np.ndarray,
    labels_config: PseudoLabelConfig,
    cross_modal: CrossModalConfig,
    seed: int,
) -> FusionResult:
    """The fusion ``cross_modal.fusion`` names, with ``labels.n_clusters`` clusters."""
    if cross_modal.fusion == "affinity":
        return fuse_by_affinity(audio, face, labels_config.n_clusters, has_face=has_face,
                                audio_weight=cross_modal.audio_weight, n_neighbors=cross_modal.n_neighbors)
    return fuse_by_concatenation(audio, face, labels_config.n_clusters, has_face=has_face,
                                 audio_weight=cross_modal.audio_weight, seed=seed,
                                 iterations=labels_config.kmeans_iterations)


def _read_round(labels_path: Path, report_path: Path, utterances: Sequence[Utterance]) -> RoundLabels:
    """What the main process wrote (or an earlier run did), in ``utterances`` order."""
    labels = labels_in_order(labels_path, [u.key for u in utterances])
    report = json.loads(report_path.read_text())
    without = set(report["without_face_keys"])
    return RoundLabels(
        labels,
        np.array([u.key not in without for u in utterances], dtype=bool),
        report,
    )
