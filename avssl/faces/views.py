"""DINO's multi-crop views of faces: a few large (global) and several small (local) crops per utterance.

The visual counterpart of :class:`avssl.data.views.AudioMultiCropDataset`, with the same interface
(``set_epoch``, ``set_clusters``, ``partner_of``; items with ``global``, ``local``, ``index``,
``partner``), so visual DINO and cluster-aware visual DINO train like the audio ones:

* each crop comes from a different frame of the utterance (while it has enough frames), so the views
  differ in pose and expression as well as in augmentation, as audio crops differ in content;
* every crop is augmented independently (:mod:`avssl.faces.augment`);
* local crops are 64 x 64, not 112 upsampled: DINO's local crops are small in pixels too (96 vs 224
  in FAIR DINO), which makes the four of them together cost about as much as one global crop; the
  face encoder pools globally, so it takes any input size;
* after :meth:`set_clusters`, some crops come from a *partner*: another utterance of the same
  pseudo-speaker cluster, so that the crops share the face but not the session (cluster-aware DINO).

Randomness comes from a generator keyed by (seed, epoch, index): the views of a sample do not depend
on the number of workers or processes. Utterances without usable video (none in the manifest, or no
frames in the source) are left out and counted; ``keys`` maps dataset indices back to utterances.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from avssl.data.manifest import Utterance
from avssl.data.partners import PartnerViews
from avssl.errors import ConfigError, DataError
from avssl.faces.augment import FaceAugment, FaceAugmentConfig
from avssl.faces.sources import FaceSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceCropConfig:
    """Visual multi-crop: the teacher sees the global crops, the student all of them."""

    num_global: int = 2
    num_local: int = 4
    global_view: FaceAugmentConfig = field(default_factory=lambda: FaceAugmentConfig(size=112, scale_min=0.5))
    local_view: FaceAugmentConfig = field(
        default_factory=lambda: FaceAugmentConfig(size=64, scale_min=0.2, scale_max=0.5)
    )

    def __post_init__(self) -> None:
        if self.num_global < 2 or self.num_local < 0:
            raise ConfigError("face crops: DINO needs num_global >= 2 and num_local >= 0")


class FaceMultiCropDataset(PartnerViews, Dataset):
    """Item ``i`` -> ``{"global": (G, 3, 112, 112), "local": (L, 3, 64, 64), "index": i, "partner": j}``,
    uint8 RGB; ``partner`` is the utterance the partner crops came from (``i`` in plain DINO)."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        source: FaceSource,
        crops: FaceCropConfig | None = None,
        seed: int = 0,
    ) -> None:
        crops = crops or FaceCropConfig()
        usable = [source.available(u) for u in utterances]
        self.utterances = [u for u, ok in zip(utterances, usable, strict=True) if ok]
        self.excluded_keys = [u.key for u, ok in zip(utterances, usable, strict=True) if not ok]
        if not self.utterances:
            raise DataError(
                f"none of the {len(utterances)} utterances has face frames ({type(source).__name__}); check the "
                "manifest's video column, or run `avssl prepare-faces MANIFEST STORE` and pass the store"
            )
        if self.excluded_keys:
            log.warning(
                "face views: %d of %d utterances have no usable video and are left out (e.g. %s)",
                self.excluded,
                len(utterances),
                self.excluded_keys[0],
            )
        self.source = source
        self.crops = crops
        self.seed = seed
        self.epoch = 0
        self._global = FaceAugment(crops.global_view)
        self._local = FaceAugment(crops.local_view)

    @property
    def excluded(self) -> int:
        """How many of the given utterances were left out for lack of usable video."""
        return len(self.excluded_keys)

    @property
    def keys(self) -> list[str]:
        return [u.key for u in self.utterances]

    def set_epoch(self, epoch: int) -> None:
        """New views every epoch, reproducibly."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def frames(self, index: int) -> np.ndarray:
        """All frames of utterance ``index``, (T, S, S, 3) uint8."""
        return self.source.frames(self.utterances[index])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        partner_index = self.partner_of(index, rng)
        n_global, n_local = self.crops.num_global, self.crops.num_local
        g_partner = self.global_from_partner if partner_index != index else 0
        l_partner = self.local_from_partner if partner_index != index else 0
        anchor = _pick(self.frames(index), n_global - g_partner + n_local - l_partner, rng)
        partner = (
            _pick(self.frames(partner_index), g_partner + l_partner, rng)
            if g_partner + l_partner
            else anchor[:0]
        )
        # Globals first from each source, then locals: anchor crops lead, as in the audio views.
        global_frames = torch.cat([anchor[: n_global - g_partner], partner[:g_partner]])
        local_frames = torch.cat([anchor[n_global - g_partner :], partner[g_partner:]])
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        item: dict[str, torch.Tensor | int] = {
            "global": self._global(global_frames, generator),
            "index": index,
            "partner": partner_index,
        }
        if n_local:
            item["local"] = self._local(local_frames, generator)
        return item


def _pick(frames: np.ndarray, count: int, rng: np.random.Generator) -> torch.Tensor:
    """``count`` frames as (count, 3, S, S) uint8: all different while the utterance has enough of them."""
    chosen = rng.permutation(len(frames))[np.arange(count) % len(frames)]
    return torch.from_numpy(np.ascontiguousarray(frames[chosen])).permute(0, 3, 1, 2)
