"""Crops -> corrupted, log-Mel features: on the training device, or in the data-loader workers.

Where this runs is a throughput decision (`data.featurise_in`): on a GPU, batched augmentation and
fbank cost almost nothing next to the encoder, and workers then only read and crop; on a CPU-only
machine the workers can do it in parallel with the training step. Both places use the same code and
draw their randomness from keys, not from a global RNG, so the choice never changes reproducibility.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from avssl.data.augment import WaveAugment
from avssl.data.shard_views import ShardMultiCropDataset
from avssl.data.views import AudioMultiCropDataset
from avssl.features import Fbank


def keyed_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded from a tuple of integers (seed, epoch, step, ...)."""
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0])
    return torch.Generator().manual_seed(seed)


class CropFeaturiser:
    """``(batch, n_crops, samples)`` crops -> ``(n_crops * batch, n_mels, frames)``, crop-major."""

    def __init__(self, augment: WaveAugment, fbank: Fbank, device: torch.device | str) -> None:
        self.augment = augment
        self.fbank = fbank
        self.device = torch.device(device)

    def __call__(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        waves = crops.to(self.device).transpose(0, 1).reshape(-1, crops.shape[-1])
        return self.fbank(self.augment(waves, generator))


class FeaturiseInWorkers:
    """A ``collate_fn`` that featurises each batch inside the worker that assembled it.

    The generator is keyed by the seed, the epoch and the batch's sample indices, which identify the
    batch whatever worker builds it. With ``clean`` the un-augmented features of the global crops come
    along too (``global_clean_feats``; stage II's label correction predicts from them).
    """

    def __init__(
        self,
        dataset: AudioMultiCropDataset | ShardMultiCropDataset,
        featuriser: CropFeaturiser,
        seed: int,
        clean: bool = False,
    ) -> None:
        self.dataset = dataset
        self.featuriser = featuriser
        self.seed = seed
        self.clean = clean

    def __call__(self, items: list[dict]) -> dict:
        batch = default_collate(items)
        generator = keyed_generator(self.seed, self.dataset.epoch, *batch["index"].tolist())
        if self.clean:
            crops = batch["global"]
            batch["global_clean_feats"] = self.featuriser.fbank(crops.transpose(0, 1).reshape(-1, crops.shape[-1]))
        batch["global_feats"] = self.featuriser(batch.pop("global"), generator)
        if "local" in batch:
            batch["local_feats"] = self.featuriser(batch.pop("local"), generator)
        return batch
