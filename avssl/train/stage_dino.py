"""Stage I: DINO self-distillation of a speaker or face encoder, on one process or many (HF Accelerate).

With ``cluster_aware.enabled`` the same loop is cluster-aware DINO: at each clustering round the
teacher embeds every training utterance, k-means groups them into pseudo speakers, and from then on
some crops of every sample come from another utterance of its cluster.

``modality`` (audio or face) is a plug-in (:mod:`avssl.train.modality`): it supplies the views, their
features, the encoder, the clustering embeddings and the encoder file; everything else is shared.

Read top to bottom: data -> models -> optimiser and schedules -> resume -> the loop -> outputs.
The same function runs under ``python -m avssl.cli train`` and ``accelerate launch ... -m avssl.cli
train``; Accelerate decides the device and wraps the student in DDP when there are several processes.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from tqdm.auto import tqdm

from avssl.config import DinoTrainConfig, as_dict, save_config
from avssl.data.featurise import keyed_generator
from avssl.data.manifest import read_manifest
from avssl.data.training_data import epoch_batches
from avssl.errors import AvsslError, ConfigError
from avssl.models.dino_head import DinoHead, EncoderWithHead
from avssl.ssl.dino import DinoLoss, cosine_schedule, ema_update, teacher_temperature_schedule
from avssl.train.checkpoint import load_checkpoint, save_checkpoint
from avssl.train.cluster_rounds import ClusterSchedule, cluster_round, given_clusters
from avssl.train.encoder_file import average_encoder_files
from avssl.train.modality import build_modality
from avssl.train.monitor import CollapseWatch, ScalarLog
from avssl.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
ENCODER = "encoder.pt"
DATA_REPORT = "excluded_utterances.json"


class TrainingDiverged(AvsslError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


@dataclass
class DinoResult:
    """What a finished run leaves behind (paths) and its final monitors."""

    output_dir: Path
    encoder_path: Path
    student: nn.Module
    teacher: nn.Module
    final_loss: float
    seconds: float


def train_dino(config: DinoTrainConfig, resume: bool = False, stop_after_epochs: int | None = None) -> DinoResult:
    """Train student and teacher with DINO; write checkpoints, logs and the teacher encoder.

    ``resume`` continues from ``run.output_dir/checkpoint.pt`` when it exists. ``stop_after_epochs``
    ends this invocation after that many epochs (a job with a wall-time limit); the next call with
    ``resume=True`` continues exactly where it stopped.
    """
    started = time.time()
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.run.mixed_precision)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    set_seed(config.run.seed)
    out = Path(config.run.output_dir)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")

    # ---- data: each rank reads (files or shards) and crops its share; the modality places augmentation ----
    device = accelerator.device
    modality = build_modality(config, read_manifest(config.data.train_manifest), device,
                              accelerator.process_index, accelerator.num_processes)
    dataset = modality.dataset
    report = modality.data_report()
    if report is not None and accelerator.is_main_process:
        atomic_write_json(out / DATA_REPORT, report)
    global_batch = config.optim.batch_size * accelerator.num_processes
    batches = epoch_batches(
        dataset, config.optim.batch_size, config.optim.steps_per_epoch, config.data.num_workers, modality.collate_fn,
        config.run.seed, accelerator.process_index, accelerator.num_processes, config.optim.epochs,
    )
    steps_per_epoch = batches.steps_per_epoch

    # ---- models: the teacher starts as a copy of the student and never receives gradients ----
    student = EncoderWithHead(modality.build_encoder(), DinoHead(modality.embedding_dim, config.dino))
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad = False
    n_crops = modality.num_global + modality.num_local
    dino_loss = DinoLoss(
        config.dino.out_dim,
        modality.num_global,
        n_crops,
        teacher_temperature_schedule(
            config.dino.warmup_teacher_temp,
            config.dino.teacher_temp,
            config.dino.warmup_teacher_temp_epochs,
            config.optim.epochs,
        ),
        config.dino.student_temp,
        config.dino.center_momentum,
    ).to(device)

    # ---- optimiser: no weight decay on biases and norm parameters; per-step schedules ----
    optimizer = torch.optim.SGD(_parameter_groups(student), lr=0.0, momentum=config.optim.momentum)
    epochs = config.optim.epochs
    lr_schedule = cosine_schedule(
        config.optim.lr * global_batch / 256, config.optim.min_lr, epochs, steps_per_epoch, config.optim.warmup_epochs
    )
    wd_schedule = cosine_schedule(config.optim.weight_decay, config.optim.weight_decay_end, epochs, steps_per_epoch)
    momentum_schedule = cosine_schedule(
        config.dino.momentum_teacher, config.dino.momentum_teacher_end, epochs, steps_per_epoch
    )

    # ---- resume: the checkpoint holds the state after its last finished epoch ----
    start_epoch = 0
    checkpoint_path = out / CHECKPOINT
    cluster_aware = config.cluster_aware
    resuming = resume and checkpoint_path.is_file()
    if config.run.init_checkpoint and not resuming:
        # A continuation stage (e.g. cluster-aware DINO after DINO): weights and centre, fresh optimiser.
        state = load_checkpoint(config.run.init_checkpoint)
        _check_modality(state, config.modality, config.run.init_checkpoint, "run.init_checkpoint")
        student.load_state_dict(state["student"])
        teacher.load_state_dict(state["teacher"])
        dino_loss.center.copy_(state["dino_loss"]["center"])
        log.info("starting from the weights of %s", config.run.init_checkpoint)
    if resuming:
        state = load_checkpoint(checkpoint_path)
        _check_modality(state, config.modality, checkpoint_path, "modality")
        student.load_state_dict(state["student"])
        teacher.load_state_dict(state["teacher"])
        optimizer.load_state_dict(state["optimizer"])
        dino_loss.load_state_dict(state["dino_loss"])
        start_epoch = int(state["epoch"])
        log.info("resumed from %s after epoch %d", checkpoint_path, start_epoch)
    if config.run.sync_batchnorm and accelerator.num_processes > 1:
        if device.type == "cuda":
            student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
            teacher = nn.SyncBatchNorm.convert_sync_batchnorm(teacher)
        else:
            log.warning("run.sync_batchnorm needs GPUs; keeping per-process batch norm on %s", device.type)
    student, optimizer = accelerator.prepare(student, optimizer)
    teacher.to(device)

    scalars = ScalarLog(out, accelerator.is_main_process)
    watch = CollapseWatch(config.dino.out_dim)
    ln_k = math.log(config.dino.out_dim)
    last_loss = float("nan")
    schedule = ClusterSchedule(cluster_aware.n_clusters, cluster_aware.recluster_every_epochs)
    end_epoch = epochs if stop_after_epochs is None else min(epochs, start_epoch + stop_after_epochs)
    for epoch in range(start_epoch, end_epoch):
        if cluster_aware.enabled and (epoch == start_epoch or schedule.latest_round(epoch) == epoch):
            round_epoch = schedule.latest_round(epoch)
            if cluster_aware.labels is not None:  # another run's clusters (for faces: the audio model's)
                labels, cluster_report = given_clusters(Path(cluster_aware.labels), modality.utterances), None
            else:
                labels, cluster_report = cluster_round(
                    accelerator, lambda share: modality.embed(teacher.encoder, share, device), modality.utterances,
                    schedule.clusters_at(round_epoch), out / "clusters" / f"epoch{round_epoch:04d}.tsv",
                    config.run.seed + round_epoch, cluster_aware.kmeans_iterations,
                )
            dataset.set_clusters(labels, cluster_aware.global_from_partner, cluster_aware.local_from_partner)
            if cluster_report and "diagnostics" in cluster_report:
                diagnostics = cluster_report["diagnostics"]
                scalars.write(epoch * steps_per_epoch, {
                    "clusters/nmi_diagnostic": diagnostics["nmi"], "clusters/purity_diagnostic": diagnostics["purity"],
                })
        batches.set_epoch(epoch)
        student.train()
        teacher.train()
        bar = tqdm(
            batches,
            desc=f"DINO epoch {epoch + 1}/{epochs}",
            disable=not (config.run.progress and accelerator.is_main_process),
            leave=False,
        )
        for step_in_epoch, batch in enumerate(bar):
            step = epoch * steps_per_epoch + step_in_epoch
            for group in optimizer.param_groups:
                group["lr"] = float(lr_schedule[step])
                if group["weight_decay_enabled"]:
                    group["weight_decay"] = float(wd_schedule[step])
            global_feats, local_feats = modality.features(
                batch, keyed_generator(config.run.seed, accelerator.process_index, step), device
            )

            with accelerator.autocast():
                teacher_out = teacher([global_feats])
                student_out = student([global_feats, local_feats] if local_feats is not None else [global_feats])
                loss, stats = dino_loss(student_out.float(), teacher_out.float(), epoch)
            # Every rank must agree to stop, or the others would hang in the next all-reduce.
            if accelerator.gather(torch.isfinite(loss).float().reshape(1)).min() < 1:
                raise TrainingDiverged(
                    f"non-finite DINO loss (rank {accelerator.process_index}: {loss.item()}) at epoch {epoch + 1}, step {step}: stopping. "
                    f"The last good checkpoint ({checkpoint_path}) is intact; lower optim.lr or use "
                    "run.mixed_precision=bf16 instead of fp16."
                )
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if config.optim.clip_grad > 0:
                accelerator.clip_grad_norm_(student.parameters(), config.optim.clip_grad)
            if epoch < config.dino.freeze_last_layer_epochs:
                for p in accelerator.unwrap_model(student).head.last_layer_parameters():
                    p.grad = None
            optimizer.step()
            ema_update(accelerator.unwrap_model(student), teacher, float(momentum_schedule[step]))

            last_loss = loss.item()
            watch.update(stats["teacher_entropy"], step)
            if step % config.run.log_every == 0 or step_in_epoch == steps_per_epoch - 1:
                values = {
                    "loss": last_loss,
                    "teacher_entropy": stats["teacher_entropy"],
                    "student_entropy": stats["student_entropy"],
                    "ln_k": ln_k,
                    "teacher_temp": stats["teacher_temp"],
                    "lr": float(lr_schedule[step]),
                    "weight_decay": float(wd_schedule[step]),
                    "teacher_momentum": float(momentum_schedule[step]),
                    "center_norm": float(dino_loss.center.norm()),
                    "epoch": epoch + 1,
                }
                if cluster_aware.enabled:  # the share of samples with partner crops; 0: all alone in their cluster
                    values["clusters/partner_fraction"] = (batch["partner"] != batch["index"]).float().mean().item()
                scalars.write(step, values)
            bar.set_postfix(loss=f"{last_loss:.3f}", H_t=f"{stats['teacher_entropy']:.2f}")

        _average_buffers(teacher, accelerator)
        _average_buffers(accelerator.unwrap_model(student), accelerator)
        if accelerator.is_main_process and (
            (epoch + 1) % config.run.save_every_epochs == 0 or epoch + 1 in (epochs, end_epoch)
        ):
            save_checkpoint(
                checkpoint_path,
                {
                    "student": accelerator.unwrap_model(student).state_dict(),
                    "teacher": teacher.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "dino_loss": dino_loss.state_dict(),
                    "epoch": epoch + 1,
                    "step": (epoch + 1) * steps_per_epoch,
                    "config": as_dict(config),
                },
            )
            log.info("epoch %d/%d: loss %.4f, teacher entropy %.3f (ln K = %.3f)",
                     epoch + 1, epochs, last_loss, stats["teacher_entropy"], ln_k)
        if accelerator.is_main_process and config.run.average_last_epochs > 1 and epoch + 1 > epochs - config.run.average_last_epochs:
            modality.save_encoder(_snapshot(out, epoch + 1), teacher.encoder)
        accelerator.wait_for_everyone()

    encoder_path = out / ENCODER
    if accelerator.is_main_process and end_epoch == epochs:
        if config.run.average_last_epochs > 1:
            first = epochs - config.run.average_last_epochs + 1
            average_encoder_files([_snapshot(out, e) for e in range(first, epochs + 1)], encoder_path)
        else:
            modality.save_encoder(encoder_path, teacher.encoder)
    scalars.close()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return DinoResult(
        out, encoder_path, accelerator.unwrap_model(student), teacher, last_loss, time.time() - started
    )


def _snapshot(out: Path, epoch: int) -> Path:
    """Where the teacher encoder after ``epoch`` is kept for averaging."""
    return out / "teacher_snapshots" / f"epoch{epoch:04d}.safetensors"


@torch.no_grad()
def _average_buffers(model: nn.Module, accelerator: Accelerator) -> None:
    """Average floating-point buffers (batch-norm statistics) over processes.

    Each rank's running statistics follow its own batches (the teacher is not wrapped in DDP, and
    DDP only broadcasts the student's buffers before a forward pass); averaging them once per epoch
    keeps both models identical on every rank and makes the statistics reflect all the data.
    """
    if accelerator.num_processes == 1:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            buffer.copy_(accelerator.reduce(buffer, reduction="mean"))


def _check_modality(state: dict, modality: str, path: str | Path, key: str) -> None:
    """Refuse to load a checkpoint of the other modality (its weights would not fit the encoder)."""
    trained = state.get("config", {}).get("modality", "audio")  # checkpoints from before modalities: audio
    if trained != modality:
        raise ConfigError(
            f"config key '{key}': {path} holds a {trained} model, but this run's modality is {modality}; "
            f"give a checkpoint trained with modality={modality}, or a new run.output_dir"
        )


def _parameter_groups(model: nn.Module) -> list[dict]:
    """Weight decay on weights only: biases and 1-D (norm) parameters are not regularised."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    return [
        {"params": decay, "weight_decay_enabled": True, "weight_decay": 0.0},
        {"params": no_decay, "weight_decay_enabled": False, "weight_decay": 0.0},
    ]
