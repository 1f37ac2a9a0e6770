"""Stage II: iterative pseudo-label training with a dynamic loss gate and label correction (DLG-LC).

Each round: embed every training utterance with the current encoder, k-means them into pseudo
speakers, then train the encoder with an AAM-softmax classifier over those clusters for
``rounds.epochs`` epochs. Wrong pseudo-labels are the enemy, so each epoch asks a gate which samples
to trust (:mod:`avssl.pseudo.epoch_gate`): none (all samples), a fixed loss threshold (Loss-Gated
Learning), or DLG, a two-Gaussian mixture fitted to the previous epoch's per-sample losses. With label
correction, a sample above the gate trains with the model's own confident prediction on its clean
segment instead of being dropped (:mod:`avssl.pseudo.correction`).

With ``cross_modal.enabled``, a face encoder trains beside the speaker encoder on labels fused from
both modalities, with a cross-modal gate and correction; :mod:`avssl.train.cross_modal_round` holds
that half, and the loop below only asks it for the face side at each step.

Read top to bottom: data -> the rounds loop (labels -> models -> optimiser -> resume -> epochs) ->
outputs. Runs on one process or many under ``accelerate launch``; the per-sample losses the gate
fits are gathered from every process, so all ranks use the same threshold.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from tqdm.auto import tqdm

from avssl.config import CropConfig, PseudoTrainConfig, as_dict, save_config
from avssl.data.augment import WaveAugment, load_augment_sources
from avssl.data.featurise import CropFeaturiser, FeaturiseInWorkers, keyed_generator
from avssl.data.manifest import read_manifest
from avssl.data.training_data import audio_views, epoch_batches
from avssl.errors import DataError
from avssl.features import Fbank
from avssl.models.aam import AamSoftmax
from avssl.pseudo.correction import correct_labels, masked_mean_loss
from avssl.pseudo.cross_modal import CrossModalGate
from avssl.pseudo.cross_modal_epoch_gate import CrossModalEpochGate, EpochLosses, cross_modal_gate_for_epoch
from avssl.pseudo.diagnostics import LabelAudit, cluster_diagnostics, speakers_if_known, true_speaker_labels
from avssl.pseudo.epoch_gate import EpochGate, gate_for_epoch
from avssl.pseudo.labels import write_pseudo_labels
from avssl.ssl.dino import cosine_schedule
from avssl.train.checkpoint import load_checkpoint, save_checkpoint
from avssl.train.cluster_rounds import clustering_round
from avssl.train.cross_modal_round import (
    FACE_ENCODER,
    AudioVisualClassifiers,
    FaceTally,
    FaceTraining,
    StepOutcome,
    cross_modal_step,
)
from avssl.train.encoder_file import load_encoder, read_encoder_configs, save_encoder
from avssl.train.epoch_records import StepRecords
from avssl.train.face_batches import FacesInWorkers
from avssl.train.fused_labels import fused_round_labels
from avssl.train.monitor import ScalarLog
from avssl.train.stage_dino import TrainingDiverged
from avssl.utils.atomic import atomic_write, atomic_write_json

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
ENCODER = "encoder.safetensors"
# Checkpoint entries of the trained modules, in the order the round builds them.
MODULE_NAMES = ("encoder", "classifier", "face_encoder", "face_classifier")


@dataclass
class PseudoResult:
    """What a finished run leaves behind: one encoder file per round (and one face encoder file per
    round with ``cross_modal.enabled``), and the round summaries."""

    output_dir: Path
    round_encoders: list[Path]
    rounds: list[dict]
    seconds: float
    round_face_encoders: list[Path] = field(default_factory=list)


def round_dir(output_dir: str | Path, round_index: int) -> Path:
    return Path(output_dir) / f"round{round_index + 1}"


def train_pseudo_labels(
    config: PseudoTrainConfig, resume: bool = False, stop_after_epochs: int | None = None
) -> PseudoResult:
    """Run every round; finished rounds (their encoder file exists) are skipped on a resume.

    ``stop_after_epochs`` ends this invocation after that many training epochs (a job with a wall-time
    limit); the next call with ``resume=True`` continues exactly where it stopped.
    """
    started = time.time()
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.run.mixed_precision)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    out = Path(config.run.output_dir)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
    encoder_config, feature_config, sample_rate = read_encoder_configs(config.init_encoder)
    if sample_rate != config.data.sample_rate:
        raise DataError(
            f"{config.init_encoder} was trained at {sample_rate} Hz but data.sample_rate is "
            f"{config.data.sample_rate}; set data.sample_rate={sample_rate}"
        )

    # ---- data: one random segment per utterance per epoch, augmented; its clean copy for LC ----
    utterances = read_manifest(config.data.train_manifest)
    truth = speakers_if_known([u.key for u in utterances])
    segment = CropConfig(num_global=1, global_seconds=config.segment_seconds, num_local=0)
    dataset = audio_views(config.data, utterances, segment, config.run.seed, accelerator.process_index,
                          accelerator.num_processes)
    device = accelerator.device
    sources = load_augment_sources(config.data.noise_list, config.data.rir_list, sample_rate)
    in_workers = config.data.featurise_in == "workers" or (config.data.featurise_in == "auto" and device.type != "cuda")
    where = torch.device("cpu") if in_workers else device
    fbank = Fbank(feature_config, sample_rate).to(device)
    featuriser = CropFeaturiser(
        WaveAugment(sources.to(where), config.augment), Fbank(feature_config, sample_rate) if in_workers else fbank, where
    )
    audio_collate = FeaturiseInWorkers(dataset, featuriser, config.run.seed, clean=True) if in_workers else None
    faces = FaceTraining(config, utterances) if config.cross_modal.enabled else None
    face_collate = FacesInWorkers(audio_collate, faces.crops) if faces is not None else None
    batches = epoch_batches(
        dataset, config.optim.batch_size, config.optim.steps_per_epoch, config.data.num_workers,
        face_collate or audio_collate, config.run.seed, accelerator.process_index, accelerator.num_processes,
        config.rounds.count * config.rounds.epochs,
    )
    steps_per_epoch = batches.steps_per_epoch
    scalars = ScalarLog(out, accelerator.is_main_process)
    epochs = config.rounds.epochs
    summaries: list[dict] = []
    encoders: list[Path] = []
    face_encoders: list[Path] = []
    epochs_run = 0

    for round_index in range(config.rounds.count):
        folder = round_dir(out, round_index)
        encoder_path = folder / ENCODER
        if encoder_path.is_file():  # a finished round: nothing to redo
            encoders.append(encoder_path)
            face_encoders.extend([folder / FACE_ENCODER] if faces is not None else [])
            summaries.append(_read_summary(folder))
            continue
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            break

        # ---- models: the encoder continues from the previous round (or stage I); a new classifier ----
        set_seed(config.run.seed + round_index)
        start = encoders[-1] if encoders and config.rounds.start_from == "previous" else Path(config.init_encoder)
        encoder, _, _ = load_encoder(start, device)
        face_encoder = None
        if faces is not None:
            face_start = face_encoders[-1] if face_encoders and config.rounds.start_from == "previous" else faces.init_path
            face_encoder = faces.load_encoder(face_start, device)

        # ---- labels: cluster the current encoder's embeddings of the clean, full utterances ----
        has_face = None  # with faces: which utterances have a usable face this round
        if faces is not None and face_encoder is not None:  # both modalities' embeddings, fused
            fused = fused_round_labels(
                accelerator, encoder, fbank, face_encoder, faces.source, faces.info.image_size, utterances,
                sample_rate, config.labels, config.cross_modal, folder, config.run.seed + 1000 * round_index, truth,
            )
            labels, has_face, label_report = fused.labels, fused.has_face, fused.report
            n_classes = int(labels.max()) + 1
        elif config.labels.source == "true_speakers":
            labels = true_speaker_labels([u.key for u in utterances])
            if accelerator.is_main_process:
                folder.mkdir(parents=True, exist_ok=True)
                write_pseudo_labels(folder / "labels.tsv", [u.key for u in utterances], labels)
            n_classes = int(labels.max()) + 1
            label_report = {"source": "true_speakers (supervised upper-bound reference)", "n_clusters": n_classes}
        else:
            labels, _ = clustering_round(
                accelerator, encoder.eval(), fbank, utterances, sample_rate, config.labels.n_clusters,
                folder / "labels.tsv", config.run.seed + 1000 * round_index, config.labels.kmeans_iterations,
            )
            n_classes = int(labels.max()) + 1
            label_report = json.loads((folder / "labels.json").read_text())
        label_nmi = cluster_diagnostics(labels, truth)["nmi"] if truth is not None else None
        audit = LabelAudit(labels, truth) if truth is not None else None
        labels_on_device = torch.as_tensor(labels, dtype=torch.long, device=device)
        classifier = AamSoftmax(
            encoder_config.embedding_dim, n_classes, config.classifier.margin, config.classifier.scale
        ).to(device)
        trained = [encoder, classifier]
        if faces is not None and face_encoder is not None:  # the face encoder's own head on the same classes
            face_classifier = AamSoftmax(
                faces.info.encoder.embedding_dim, n_classes, config.classifier.margin, config.classifier.scale
            ).to(device)
            trained += [face_encoder, face_classifier]
            model_module: nn.Module = AudioVisualClassifiers(encoder, classifier, face_encoder, face_classifier)
        else:
            model_module = _EncoderWithClassifier(encoder, classifier)

        # ---- optimiser: AdamW, cosine learning rate with warm-up, restarted every round ----
        optimizer = torch.optim.AdamW(
            [p for module in trained for p in module.parameters()], lr=0.0, weight_decay=config.optim.weight_decay
        )
        lr_schedule = cosine_schedule(
            config.optim.lr, config.optim.min_lr, epochs, steps_per_epoch, config.optim.warmup_epochs
        )

        # ---- resume: the checkpoint holds the state after its last finished epoch of this round ----
        checkpoint_path = folder / CHECKPOINT
        start_epoch, previous_losses, threshold, history = 0, None, math.inf, []
        previous_av: EpochLosses | None = None  # with faces: the last epoch's losses of both modalities
        cross_gate: CrossModalGate | None = None  # with faces: the gate the last epoch used
        if resume and checkpoint_path.is_file():
            state = load_checkpoint(checkpoint_path)
            for name, module in zip(MODULE_NAMES, trained, strict=False):  # the face pair only with faces
                module.load_state_dict(state[name])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, threshold = int(state["epoch"]), float(state["threshold"])
            previous_losses = state["losses"].numpy() if state["losses"] is not None else None
            if faces is not None:
                cross_gate = CrossModalGate(config.cross_modal.gate, dict(state["gate_thresholds"]))
                previous_av = EpochLosses(previous_losses, state["face_losses"].numpy(), state["has_face"].numpy())
            history = list(state["history"])
            log.info("round %d: resumed from %s after epoch %d", round_index + 1, checkpoint_path, start_epoch)
        model, optimizer = accelerator.prepare(model_module, optimizer)

        for epoch in range(start_epoch, epochs):
            if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
                break
            gate: EpochGate | CrossModalEpochGate
            if faces is None:
                gate = gate_for_epoch(epoch, config.gate, config.correction, previous_losses, threshold, config.run.seed)
            else:
                gate = cross_modal_gate_for_epoch(epoch, config, previous_av, cross_gate, config.run.seed)
                cross_gate = gate.gate
            threshold = gate.threshold
            global_epoch = round_index * epochs + epoch
            batches.set_epoch(global_epoch)
            if face_collate is not None and has_face is not None:
                face_collate.prepare(global_epoch, has_face, gate.correct)
            model.train()
            tally, face_tally = _EpochTally(), FaceTally()
            bar = tqdm(
                batches, desc=f"round {round_index + 1}/{config.rounds.count} epoch {epoch + 1}/{epochs}",
                disable=not (config.run.progress and accelerator.is_main_process), leave=False,
            )
            for step_in_epoch, batch in enumerate(bar):
                step = epoch * steps_per_epoch + step_in_epoch
                for group in optimizer.param_groups:
                    group["lr"] = float(lr_schedule[step])
                indices = batch["index"].to(device)
                features = _segment_features(
                    batch, featuriser, fbank, keyed_generator(config.run.seed, accelerator.process_index, global_epoch, step),
                    device, clean_needed=gate.correct,
                )
                targets = labels_on_device[indices]
                if isinstance(gate, CrossModalEpochGate) and faces is not None and has_face is not None:
                    face_batch = batch["faces"].to(device)
                    outcome = cross_modal_step(
                        model, accelerator, (classifier, face_classifier), features, face_batch, targets, gate,
                        config.correction, config.cross_modal.face_weight,
                    )
                    face_tally.add(indices, outcome.face_losses, face_batch.has_face)
                else:
                    outcome = _audio_step(model, accelerator, classifier, features, targets, gate, config)
                if accelerator.gather(outcome.finite().float().reshape(1)).min() < 1:
                    raise TrainingDiverged(
                        f"non-finite classification loss in round {round_index + 1}, epoch {epoch + 1}, step {step}: "
                        f"stopping. The last good checkpoint ({checkpoint_path}) is intact; lower optim.lr."
                    )
                loss, losses, kept, corrected, trained_labels = (
                    outcome.loss, outcome.audio_losses, outcome.kept, outcome.corrected, outcome.trained_labels
                )
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                if config.optim.clip_grad > 0:
                    accelerator.clip_grad_norm_(model.parameters(), config.optim.clip_grad)
                optimizer.step()
                tally.add(indices, losses, kept, corrected, targets, trained_labels)
                if step % config.run.log_every == 0:
                    scalars.write(global_epoch * steps_per_epoch + step_in_epoch,
                                  {"stage2/loss": loss.item(), "stage2/lr": float(lr_schedule[step])})
                bar.set_postfix(loss=f"{loss.item():.3f}")

            tally.finish(accelerator)
            epoch_losses = tally.losses_in_sample_order()
            summary = tally.summary(gate, round_index, epoch, audit)
            face_record: dict[str, np.ndarray] = {}
            if isinstance(gate, CrossModalEpochGate):
                face_tally.finish(accelerator)
                face_losses, face_present = face_tally.in_sample_order()
                previous_av = EpochLosses(epoch_losses, face_losses, face_present)
                face_record = {"face_losses": face_losses, "has_face": face_present}
                summary.update(cross_modal_gate=gate.gate.mode, thresholds=gate.thresholds(), **face_tally.summary())
            history.append(summary)
            if accelerator.is_main_process:
                _log_epoch(scalars, summary, epoch_losses, gate, (global_epoch + 1) * steps_per_epoch)
                _save_gate_record(folder / "gate" / f"epoch{epoch + 1:03d}.npz", epoch_losses, gate,
                                  config.gate.use_log_loss, face_record)
                state = {
                    "encoder": encoder.state_dict(),
                    "classifier": classifier.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "threshold": threshold,
                    "losses": torch.from_numpy(epoch_losses),
                    "history": history,
                    "config": as_dict(config),
                }
                if isinstance(gate, CrossModalEpochGate) and face_encoder is not None:
                    state.update({
                        "face_encoder": face_encoder.state_dict(),
                        "face_classifier": face_classifier.state_dict(),
                        "gate_thresholds": dict(gate.gate.thresholds),
                        "face_losses": torch.from_numpy(face_record["face_losses"]),
                        "has_face": torch.from_numpy(face_record["has_face"]),
                    })
                save_checkpoint(checkpoint_path, state)
            previous_losses = epoch_losses
            epochs_run += 1
            accelerator.wait_for_everyone()
        if len(history) < epochs:
            break  # stopped inside this round (stop_after_epochs): the resume continues it

        # ---- the round is complete: its encoder file is what the next round and evaluation read ----
        summary = {
            "round": round_index + 1,
            "n_classes": n_classes,
            "label_source": config.labels.source,
            "label_nmi_diagnostic": label_nmi,
            "label_report": label_report,
            "epochs": history,
        }
        if has_face is not None:  # the headline numbers of the audio-visual round
            summary["cross_modal"] = {
                "fusion": config.cross_modal.fusion,
                "gate": config.cross_modal.gate,
                "nmi_diagnostic": label_report.get("nmi"),
                "utterances_without_face": int((~has_face).sum()),
            }
        if accelerator.is_main_process:
            if faces is not None and face_encoder is not None:  # before the audio file, which marks the round done
                faces.save_encoder(folder / FACE_ENCODER, face_encoder)
            save_encoder(encoder_path, encoder, encoder_config, feature_config, sample_rate)
            atomic_write_json(folder / "summary.json", summary)
        accelerator.wait_for_everyone()
        encoders.append(encoder_path)
        face_encoders.extend([folder / FACE_ENCODER] if faces is not None else [])
        summaries.append(summary)

    scalars.close()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return PseudoResult(out, encoders, summaries, time.time() - started, face_encoders)


class _EncoderWithClassifier(nn.Module):
    """One module for Accelerate/DDP: features -> embedding -> cosine to every class centre.

    The margin and the loss are applied outside (:meth:`AamSoftmax.loss_from_cosine`), so that the
    gate's loss and the corrected labels' loss come from one pass.
    """

    def __init__(self, encoder: nn.Module, classifier: AamSoftmax) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = classifier

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.cosine(self.encoder(features))


def _audio_step(
    model: nn.Module,
    accelerator: Accelerator,
    classifier: AamSoftmax,
    features: tuple[torch.Tensor, torch.Tensor | None],
    targets: torch.Tensor,
    gate: EpochGate,
    config: PseudoTrainConfig,
) -> StepOutcome:
    """One audio-only batch: gate the pseudo-labels' losses, correct (LC) from the clean segment, combine."""
    noisy, clean = features
    cosine_clean = _clean_cosine(model, clean) if gate.correct and clean is not None else None
    with accelerator.autocast():
        cosine = model(noisy).float()
    losses = classifier.loss_from_cosine(cosine, targets)  # the pseudo-labels' losses: what the gate sees
    kept = losses.detach() <= gate.threshold
    if cosine_clean is not None:
        decision = correct_labels(
            cosine_clean, targets, kept, config.correction.temperature, config.correction.confidence
        )
        use, trained_labels, corrected = decision.use, decision.labels, decision.corrected
        trained_losses = classifier.loss_from_cosine(cosine, trained_labels)
    else:
        use, trained_labels, corrected = kept, targets, torch.zeros_like(kept)
        trained_losses = losses
    return StepOutcome(masked_mean_loss(trained_losses, use), losses, None, kept, corrected, trained_labels)


@torch.no_grad()
def _clean_cosine(model: nn.Module, clean: torch.Tensor) -> torch.Tensor:
    """Cosines of the clean segments to every class (LC's logits, see :mod:`avssl.pseudo.correction`),
    in eval mode so batch-norm statistics stay untouched."""
    model.eval()
    try:
        return model(clean).float()
    finally:
        model.train()


def _segment_features(
    batch: dict, featuriser: CropFeaturiser, fbank: Fbank, generator: torch.Generator, device: torch.device,
    clean_needed: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augmented features of the batch's segments and, when label correction needs them, clean ones."""
    if "global_feats" in batch:  # featurised in the loader workers
        return batch["global_feats"].to(device), batch["global_clean_feats"].to(device) if clean_needed else None
    segments = batch["global"]
    clean = fbank(segments[:, 0].to(device)) if clean_needed else None
    return featuriser(segments, generator), clean


class _EpochTally:
    """Per-sample losses and gate decisions of one epoch; :meth:`finish` gathers them from every process."""

    def __init__(self) -> None:
        self.records = StepRecords("index", "loss", "kept", "corrected", "target", "trained")
        self.epoch: dict[str, np.ndarray] = {}

    def add(self, indices: torch.Tensor, losses: torch.Tensor, kept: torch.Tensor, corrected: torch.Tensor,
            targets: torch.Tensor, trained: torch.Tensor) -> None:
        self.records.append(index=indices, loss=losses.float(), kept=kept, corrected=corrected, target=targets,
                            trained=trained)

    def finish(self, accelerator: Accelerator) -> None:
        """Gather the epoch from every process (a collective: every rank calls it)."""
        self.epoch = self.records.gather(accelerator)

    def losses_in_sample_order(self) -> np.ndarray:
        """This epoch's per-sample losses from all processes (the DLG fit input of the next epoch)."""
        order = np.argsort(self.epoch["index"], kind="stable")
        return self.epoch["loss"][order].astype(np.float32)

    def summary(self, gate: EpochGate | CrossModalEpochGate, round_index: int, epoch: int,
                audit: LabelAudit | None) -> dict:
        kept, corrected = self.epoch["kept"], self.epoch["corrected"]
        dropped = ~kept & ~corrected
        n = max(len(kept), 1)
        summary = {
            "round": round_index + 1,
            "epoch": epoch + 1,
            "threshold": gate.threshold if math.isfinite(gate.threshold) else None,
            "gate_note": gate.note,
            "label_correction": gate.correct,
            "mean_loss": float(self.epoch["loss"].mean()),
            "fraction_kept": float(kept.sum() / n),
            "fraction_corrected": float(corrected.sum() / n),
            "fraction_dropped": float(dropped.sum() / n),
        }
        if audit is not None:
            index, target, trained = self.epoch["index"], self.epoch["target"], self.epoch["trained"]
            right_before, right_after = audit.is_right(target, index), audit.is_right(trained, index)
            summary["diagnostic_labels_right_all"] = float(right_before.mean())
            summary["diagnostic_labels_right_kept"] = float(right_before[kept].mean()) if kept.any() else None
            summary["diagnostic_labels_right_dropped"] = float(right_before[dropped].mean()) if dropped.any() else None
            changed = corrected & (trained != target)
            summary["diagnostic_corrections_fixed"] = int((changed & ~right_before & right_after).sum())
            summary["diagnostic_corrections_broke"] = int((changed & right_before & ~right_after).sum())
            summary["diagnostic_corrections_changed"] = int(changed.sum())
        return summary


def _log_epoch(
    scalars: ScalarLog, summary: dict, losses: np.ndarray, gate: EpochGate | CrossModalEpochGate, step: int
) -> None:
    """Epoch-level scalars and the loss histogram, at the global step that ends the epoch."""
    values = {f"stage2/{k}": float(v) for k, v in summary.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("round", "epoch")}
    scalars.write(step, values)
    if scalars.writer is not None:
        scalars.writer.add_histogram("stage2/per_sample_loss", losses, step)
    log.info(
        "round %d epoch %d: threshold %s (%s), kept %.3f, corrected %.3f, dropped %.3f%s",
        summary["round"], summary["epoch"], f"{gate.threshold:.3f}" if math.isfinite(gate.threshold) else "none",
        gate.note, summary["fraction_kept"], summary["fraction_corrected"], summary["fraction_dropped"],
        f", diagnostic: labels right {summary['diagnostic_labels_right_all']:.3f}"
        if "diagnostic_labels_right_all" in summary else "",
    )


def _save_gate_record(
    path: Path, losses: np.ndarray, gate: EpochGate | CrossModalEpochGate, log_space: bool,
    extra: dict[str, np.ndarray],
) -> None:
    """The epoch's losses with the threshold (and DLG fit) used in it, for plots of the gate; ``extra``
    adds the face losses and masks of an audio-visual epoch."""
    fit = gate.fit
    record = {
        "losses": losses,
        "threshold": np.float64(gate.threshold),
        "means": np.asarray(fit.means if fit else ()),
        "stds": np.asarray(fit.stds if fit else ()),
        "weights": np.asarray(fit.weights if fit else ()),
        "log_space": np.bool_(log_space),
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(handle) -> None:
        np.savez(handle, **record)

    atomic_write(path, write)


def _read_summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())
