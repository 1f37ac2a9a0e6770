"""What stage I's DINO loop needs from a modality: views, their features, the encoder and its file.

DINO itself (head, loss, centring, teacher momentum, schedules, checkpoints, clustering rounds) does
not care whether the crops are speech or faces; only five things do, and they live here so that
:func:`avssl.train.stage_dino.train_dino` stays one loop for both:

* the multi-crop **dataset** (and the data loader's collate function); audio can stream from shards,
* the **features** of a batch, crop-major, on the training device,
* the **encoder** built from the config (its embedding size sizes the DINO head),
* the **embedding** of whole, clean utterances for clustering rounds,
* the **encoder file** written at the end (what ``avssl extract`` / ``extract-faces`` read).

:class:`AudioModality` is exactly what stage I did before modalities existed (its randomness and order
of construction are unchanged, so audio runs reproduce bit for bit). :class:`FaceModality` trains on
face frames from a store written by ``avssl prepare-faces`` or decoded on the fly; utterances without
usable video are left out and reported (:meth:`FaceModality.data_report`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from avssl.config import DinoTrainConfig, FaceAugmentSettings, FaceConfig, FaceFramesConfig
from avssl.data.augment import WaveAugment, load_augment_sources
from avssl.data.featurise import CropFeaturiser, FeaturiseInWorkers
from avssl.data.manifest import Utterance
from avssl.data.shard_views import ShardMultiCropDataset
from avssl.data.training_data import audio_views
from avssl.data.views import AudioMultiCropDataset
from avssl.eval.extract import embed_utterances, encoder_embedder
from avssl.faces.augment import FaceAugmentConfig
from avssl.faces.embed import embed_all_faces
from avssl.faces.frames import FrameSampling
from avssl.faces.sources import DecodedFaces, FaceSource
from avssl.faces.store import FaceStore
from avssl.faces.views import FaceCropConfig, FaceMultiCropDataset
from avssl.features import Fbank
from avssl.models import build_encoder
from avssl.models.face_resnet import build_face_encoder
from avssl.train.encoder_file import save_encoder, save_face_encoder

log = logging.getLogger(__name__)

Batch = dict[str, Any]


class Modality(Protocol):
    """The modality-specific half of stage I (see the module docstring)."""

    dataset: AudioMultiCropDataset | ShardMultiCropDataset | FaceMultiCropDataset
    collate_fn: Callable[[list[dict]], Batch] | None
    num_global: int
    num_local: int
    embedding_dim: int

    @property
    def utterances(self) -> list[Utterance]:
        """The training utterances in dataset order (clustering labels follow this order)."""
        ...

    def build_encoder(self) -> nn.Module: ...

    def features(
        self, batch: Batch, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Global and local encoder inputs, crop-major (rows [c*B:(c+1)*B] are crop c of every sample)."""
        ...

    def embed(self, encoder: nn.Module, utterances: Sequence[Utterance], device: torch.device) -> np.ndarray:
        """Embeddings of whole, clean utterances, (N, dim) in order (clustering rounds)."""
        ...

    def save_encoder(self, path: Path, encoder: nn.Module) -> Path: ...

    def data_report(self) -> dict[str, Any] | None:
        """What the run folder should record about the training data (None: nothing to say)."""
        ...


def build_modality(
    config: DinoTrainConfig, utterances: Sequence[Utterance], device: torch.device, rank: int, world_size: int
) -> Modality:
    """The modality ``config.modality`` names, with its dataset built from ``utterances``.

    ``rank`` of ``world_size`` processes decides which shards this process streams (``data.shards``).
    """
    if config.modality == "face":
        return FaceModality(config, utterances)
    return AudioModality(config, utterances, device, rank, world_size)


class AudioModality:
    """Waveform crops; reverb / noise and fbank on the device or in the loader workers (data.featurise_in)."""

    def __init__(
        self, config: DinoTrainConfig, utterances: Sequence[Utterance], device: torch.device, rank: int, world_size: int
    ) -> None:
        self.config = config
        sample_rate = config.data.sample_rate
        self.dataset = audio_views(config.data, utterances, config.crops, config.run.seed, rank, world_size)
        sources = load_augment_sources(config.data.noise_list, config.data.rir_list, sample_rate)
        in_workers = config.data.featurise_in == "workers" or (
            config.data.featurise_in == "auto" and device.type != "cuda"
        )
        where = torch.device("cpu") if in_workers else device
        # The fbank on the device also embeds whole utterances for clustering rounds.
        self.fbank = Fbank(config.features, sample_rate).to(device)
        featuriser_fbank = Fbank(config.features, sample_rate) if in_workers else self.fbank
        self.featuriser = CropFeaturiser(WaveAugment(sources.to(where), config.augment), featuriser_fbank, where)
        self.collate_fn = FeaturiseInWorkers(self.dataset, self.featuriser, config.run.seed) if in_workers else None
        self.num_global, self.num_local = config.crops.num_global, config.crops.num_local
        self.embedding_dim = config.encoder.embedding_dim

    @property
    def utterances(self) -> list[Utterance]:
        return self.dataset.utterances

    def build_encoder(self) -> nn.Module:
        return build_encoder(self.config.encoder, self.config.features.n_mels)

    def features(
        self, batch: Batch, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Batches featurised by the workers arrive ready; otherwise the crops are featurised here."""
        if "global_feats" in batch:
            local = batch.get("local_feats")
            return batch["global_feats"].to(device), (local.to(device) if local is not None else None)
        local = batch.get("local")
        featurise = self.featuriser
        return featurise(batch["global"], generator), (featurise(local, generator) if local is not None else None)

    def embed(self, encoder: nn.Module, utterances: Sequence[Utterance], device: torch.device) -> np.ndarray:
        return embed_utterances(encoder_embedder(encoder, self.fbank), utterances, self.config.data.sample_rate, device)

    def save_encoder(self, path: Path, encoder: nn.Module) -> Path:
        return save_encoder(path, encoder, self.config.encoder, self.config.features, self.config.data.sample_rate)

    def data_report(self) -> dict[str, Any] | None:
        return None


class FaceModality:
    """Face crops, augmented per sample where the dataset is read (the loader workers, or the main process)."""

    def __init__(self, config: DinoTrainConfig, utterances: Sequence[Utterance]) -> None:
        self.face = config.face
        self.source, self.sampling = face_source(config.face.frames)
        self.dataset = FaceMultiCropDataset(utterances, self.source, face_crop_config(config.face), config.run.seed)
        self.collate_fn = None  # default collation: the crops are already augmented uint8 images
        self.num_global, self.num_local = config.face.crops.num_global, config.face.crops.num_local
        self.embedding_dim = config.face.encoder.embedding_dim
        self.manifest_size = len(utterances)
        log.info("visual DINO on %d of %d utterances (%d without usable video); frames %s",
                 len(self.dataset), len(utterances), self.dataset.excluded, self.describe_source())

    @property
    def utterances(self) -> list[Utterance]:
        return self.dataset.utterances

    def describe_source(self) -> str:
        store = self.face.frames.store
        return f"from the store {store}" if store else "decoded from the videos on the fly"

    def build_encoder(self) -> nn.Module:
        encoder = self.face.encoder
        return build_face_encoder(encoder.name, encoder.embedding_dim, encoder.width)

    def features(
        self, batch: Batch, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 images, crop-major; the encoder scales them (uint8 keeps host-to-device traffic small)."""
        local = batch.get("local")
        return _crop_major(batch["global"], device), (_crop_major(local, device) if local is not None else None)

    def embed(self, encoder: nn.Module, utterances: Sequence[Utterance], device: torch.device) -> np.ndarray:
        return embed_all_faces(encoder, utterances, self.source, self.face.crops.global_size, device)

    def save_encoder(self, path: Path, encoder: nn.Module) -> Path:
        return save_face_encoder(path, encoder, self.face.encoder, self.face.crops.global_size, self.sampling)

    def data_report(self) -> dict[str, Any]:
        return {
            "modality": "face",
            "frames": self.describe_source(),
            "manifest_utterances": self.manifest_size,
            "used": len(self.dataset),
            "excluded": self.dataset.excluded,
            "excluded_reason": "no usable video: none in the manifest, a missing file, or no frames in the store",
            "excluded_keys": self.dataset.excluded_keys,
        }


def _crop_major(crops: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, n_crops, 3, S, S) -> (n_crops * B, 3, S, S) on ``device``."""
    return crops.transpose(0, 1).reshape(-1, *crops.shape[2:]).to(device)


def face_source(frames: FaceFramesConfig) -> tuple[FaceSource, FrameSampling]:
    """The frame source ``face.frames`` names, and the sampling its frames were (or are) made with."""
    if frames.store:
        store = FaceStore(frames.store)
        names = {f.name for f in fields(FrameSampling)}
        return store, FrameSampling(**{k: v for k, v in store.settings.items() if k in names})
    sampling = FrameSampling(rate=frames.rate, size=frames.size, crop=frames.crop)
    return DecodedFaces(sampling), sampling


def face_crop_config(face: FaceConfig) -> FaceCropConfig:
    """The views' crop and augmentation settings from the config's face section."""
    crops = face.crops
    return FaceCropConfig(
        num_global=crops.num_global,
        num_local=crops.num_local,
        global_view=face_augment_config(face.augment, crops.global_size, crops.global_scale),
        local_view=face_augment_config(face.augment, crops.local_size, crops.local_scale),
    )


def face_augment_config(augment: FaceAugmentSettings, size: int, scale: list[float]) -> FaceAugmentConfig:
    """One view's augmentation: crops of ``scale`` (area fractions) resized to ``size``, corrupted per ``augment``."""
    a = augment
    return FaceAugmentConfig(
        size=size, scale_min=scale[0], scale_max=scale[1], ratio_min=a.ratio[0], ratio_max=a.ratio[1],
        flip_p=a.flip_p, jitter_p=a.jitter_p, brightness=a.brightness, contrast=a.contrast,
        saturation=a.saturation, hue=a.hue, blur_p=a.blur_p, blur_sigma_min=a.blur_sigma[0],
        blur_sigma_max=a.blur_sigma[1], grey_p=a.grey_p,
    )
