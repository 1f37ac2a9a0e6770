"""DINO's multi-crop views: a few long (global) and several short (local) crops.

Plain DINO cuts every crop of a sample from one utterance. Cluster-aware DINO (after
:meth:`AudioMultiCropDataset.set_clusters`) cuts some of them from a *partner*: another utterance of
the same pseudo-speaker cluster, so that the crops share the voice but not the session.

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
from avssl.data.partners import PartnerViews


class AudioMultiCropDataset(PartnerViews, Dataset):
    """Item ``i`` -> ``{"global": (n_global, Tg), "local": (n_local, Tl), "index": i, "partner": j}``.

    ``partner`` is the utterance the partner crops came from (``i`` itself in plain DINO and for an
    utterance alone in its cluster).
    """

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
        return self.views_of(index, self.waveform(index))

    def views_of(self, index: int, anchor: np.ndarray) -> dict[str, torch.Tensor | int]:
        """Item ``index`` cut from ``anchor``, its audio however it was read (file, cache or training shard).

        The crops depend only on (seed, epoch, index) and the audio, not on the order items are read in,
        which is what lets :class:`avssl.data.shard_views.ShardMultiCropDataset` stream the same views.
        """
        rng = np.random.default_rng([self.seed, self.epoch, index])
        partner_index = self.partner_of(index, rng)
        partner = anchor if partner_index == index else self.waveform(partner_index)
        n_global, n_local = self.crops.num_global, self.crops.num_local
        sources = [anchor] * (n_global - self.global_from_partner) + [partner] * self.global_from_partner
        global_crops = np.stack([random_crop(wave, self.global_len, rng) for wave in sources])
        item: dict[str, torch.Tensor | int] = {
            "global": torch.from_numpy(global_crops),
            "index": index,
            "partner": partner_index,
        }
        if n_local:
            sources = [anchor] * (n_local - self.local_from_partner) + [partner] * self.local_from_partner
            local_crops = np.stack([random_crop(wave, self.local_len, rng) for wave in sources])
            item["local"] = torch.from_numpy(local_crops)
        return item


def _to_int16(wave: np.ndarray) -> np.ndarray:
    return np.clip(np.round(wave * 32768.0), -32768, 32767).astype(np.int16)
