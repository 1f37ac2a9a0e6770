"""Full-utterance embeddings from a trained encoder, saved as ``.npz`` (keys + matrix).

Utterances are embedded one at a time at their full length: padding to batch different lengths
would change what the statistics pooling sees. They are visited longest first so a memory problem
shows up at once, not at the end of a long run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from avssl.data.audio import load_audio
from avssl.data.manifest import Utterance
from avssl.errors import DataError
from avssl.features import Fbank
from avssl.models.waveform import WaveformEncoder
from avssl.utils.atomic import atomic_write


@torch.inference_mode()
def embed_utterances(
    embed: Callable[[torch.Tensor], torch.Tensor],
    utterances: Sequence[Utterance],
    sample_rate: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
    desc: str = "embedding",
) -> np.ndarray:
    """``embed`` maps a (1, samples) waveform batch to (1, dim); returns (N, dim) in manifest order."""
    order = sorted(range(len(utterances)), key=lambda i: -utterances[i].duration)
    rows: dict[int, np.ndarray] = {}
    for index in tqdm(order, desc=desc, disable=not progress, leave=False):
        wave = torch.from_numpy(load_audio(utterances[index].audio, sample_rate)).to(device)
        rows[index] = embed(wave.unsqueeze(0)).float().cpu().numpy()[0]
    return np.stack([rows[i] for i in range(len(utterances))])


def encoder_embedder(encoder: nn.Module, fbank: Fbank) -> Callable[[torch.Tensor], torch.Tensor]:
    """Waveform -> fbank -> encoder, in eval mode."""
    return WaveformEncoder(encoder, fbank).eval()


def save_embeddings(path: str | Path, keys: Sequence[str], embeddings: np.ndarray) -> Path:
    """Write keys and the embedding matrix together, atomically."""
    if len(keys) != len(embeddings):
        raise ValueError(f"{len(keys)} keys for {len(embeddings)} embeddings")

    def write(handle) -> None:
        np.savez(handle, keys=np.asarray(keys, dtype=str), embeddings=embeddings.astype(np.float32))

    return atomic_write(path, write)


def load_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read what :func:`save_embeddings` wrote."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"embedding file not found: {path} (run `avssl extract` first)")
    with np.load(path, allow_pickle=False) as data:
        return data["keys"].tolist(), data["embeddings"]
