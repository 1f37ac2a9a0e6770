"""Waveform -> embedding: an encoder with its own front end, the one form every consumer uses.

Extraction, the Verifier and the exported deployment model all go through this module, so the
front end that produced the training features is the one applied at inference, everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from avssl.features import Fbank


class WaveformEncoder(nn.Module):
    """Waveforms ``(batch, samples)`` at the encoder's sample rate -> embeddings ``(batch, dim)``."""

    def __init__(self, encoder: nn.Module, fbank: Fbank) -> None:
        super().__init__()
        self.fbank = fbank
        self.encoder = encoder

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.fbank(waveforms))
