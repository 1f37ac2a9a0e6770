"""Where training reads an utterance's face frames from: the store, or the video decoded on the fly.

Both sources answer the same two questions, so the views (:mod:`avssl.faces.views`) do not care which
one they get: is there usable video for this utterance, and what are its frames ((T, S, S, 3) uint8
RGB). :class:`avssl.faces.store.FaceStore` reads what ``avssl prepare-faces`` wrote (the default, see
docs/concepts/faces.md for the measurements); :class:`DecodedFaces` needs no preparation but decodes
every video each time it is used, and it only learns that a video is corrupt when it reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from avssl.data.manifest import Utterance
from avssl.errors import ConfigError
from avssl.faces.frames import FrameSampling, extract_frames


class FaceSource(Protocol):
    """What the face views need from a source of frames."""

    def available(self, utterance: Utterance) -> bool:
        """Whether the utterance has frames to read (cheap: no decoding)."""
        ...

    def frames(self, utterance: Utterance) -> np.ndarray:
        """The utterance's frames, (T, S, S, 3) uint8 RGB; raises DataError naming the file if unusable."""
        ...


class DecodedFaces:
    """Frames decoded from each utterance's video at every read, with ``sampling`` (no Haar detection:
    the detector costs more than the decoding, so detection belongs to the one-off extraction)."""

    def __init__(self, sampling: FrameSampling | None = None) -> None:
        sampling = sampling or FrameSampling()
        if sampling.detect:
            raise ConfigError(
                "on-the-fly face decoding does not detect faces; run `avssl prepare-faces --detect`"
            )
        self.sampling = sampling

    def available(self, utterance: Utterance) -> bool:
        return utterance.video is not None and Path(utterance.video).is_file()

    def frames(self, utterance: Utterance) -> np.ndarray:
        if utterance.video is None:
            raise ConfigError(f"utterance {utterance.key} has no video; filter it with available() first")
        return extract_frames(utterance.video, self.sampling).frames
