"""DINO's multi-crop views of an utterance: a few long (global) and several short (local) crops.

The dataset only reads and crops; augmentation and fbank run batched on the training device
(:mod:`avssl.data.augment`, :mod:`avssl.features`), so data-loader workers stay cheap.
Randomness comes from a generator keyed by (seed, epoch, index): the crops of a sample do not depend
on the number of workers or processes, which makes runs reproducible and resumable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from avssl.config import CropConfig
from avssl.data.audio import load_audio, random_crop
from avssl.data.manifest import Utterance


class AudioMultiCropDataset(Dataset):
    """Item ``i`` -> ``{"global": (n_global, Tg), "local": (n_local, Tl), "index": i}`` float32 crops."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        crops: CropConfig,
        sample_rate: int,
        seed: int = 0,
        cache_audio: bool = True,
    ) -> None:
        if not utterances:
            raise ValueError("the training manifest holds no utterances")
        self.utterances = list(utterances)
        self.crops = crops
        self.sample_rate = sample_rate
        self.seed = seed
        self.epoch = 0
        self.global_len = round(crops.global_seconds * sample_rate)
        self.local_len = round(crops.local_seconds * sample_rate)
        # int16 halves the memory of a float cache and is exactly what 16-bit PCM files hold.
        self._cache: list[np.ndarray] | None = None
        if cache_audio:
            self._cache = [_to_int16(load_audio(u.audio, sample_rate)) for u in self.utterances]

    def set_epoch(self, epoch: int) -> None:
        """New crops every epoch, reproducibly."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def waveform(self, index: int) -> np.ndarray:
        if self._cache is not None:
            return self._cache[index].astype(np.float32) / 32768.0
        return load_audio(self.utterances[index].audio, self.sample_rate)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        wave = self.waveform(index)
        global_crops = np.stack([random_crop(wave, self.global_len, rng) for _ in range(self.crops.num_global)])
        item: dict[str, torch.Tensor | int] = {"global": torch.from_numpy(global_crops), "index": index}
        if self.crops.num_local:
            local_crops = np.stack([random_crop(wave, self.local_len, rng) for _ in range(self.crops.num_local)])
            item["local"] = torch.from_numpy(local_crops)
        return item


def _to_int16(wave: np.ndarray) -> np.ndarray:
    return np.clip(np.round(wave * 32768.0), -32768, 32767).astype(np.int16)
