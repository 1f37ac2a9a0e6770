"""Full-utterance embeddings from a trained encoder, in length-bucketed batches, saved as ``.npz``.

Utterances are batched only with others of (nearly) the same length and each batch is centre-cropped
to its shortest member (:mod:`avssl.eval.buckets`): no padding, so statistics pooling sees only real
audio. With tolerance 0 only equal lengths share a batch and the result is the one-at-a-time result.
The manifest's durations plan the batches; the audio actually read decides the crop, so a manifest
duration that is slightly off can never stretch a batch beyond the tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from avssl.data.audio import load_audio
from avssl.data.manifest import Utterance
from avssl.errors import DataError
from avssl.eval.buckets import check_bucketing, plan_batches
from avssl.features import Fbank
from avssl.models.waveform import WaveformEncoder
from avssl.utils.atomic import atomic_write

_SHOW = 5


@dataclass(frozen=True)
class ExtractionSettings:
    """How utterances are batched (the ``--bucket-tolerance`` and ``--max-batch-seconds`` options).

    ``bucket_tolerance``: utterances share a batch when the shortest is at least ``1 - tolerance``
    times the longest, so none loses more than that fraction to the crop. ``max_batch_seconds``: the
    audio one cropped batch may hold, which bounds memory on the device.
    """

    bucket_tolerance: float = 0.02
    max_batch_seconds: float = 300.0

    def max_samples(self, sample_rate: int) -> int:
        return int(self.max_batch_seconds * sample_rate)

    def check(self, sample_rate: int) -> None:
        check_bucketing(self.bucket_tolerance, self.max_samples(sample_rate))


# The command-line defaults, and the settings of library callers that must match one-at-a-time
# extraction (clustering rounds, the demo).
DEFAULT_SETTINGS = ExtractionSettings()
EXACT = ExtractionSettings(bucket_tolerance=0.0)


def centre_crop(wave: np.ndarray, length: int) -> np.ndarray:
    """The middle ``length`` samples: the ends of a recording are the likeliest to hold silence."""
    start = (wave.shape[0] - length) // 2
    return wave[start : start + length]


@torch.inference_mode()
def embed_batches(
    embed: Callable[[torch.Tensor], torch.Tensor],
    utterances: Sequence[Utterance],
    batches: Sequence[Sequence[int]],
    sample_rate: int,
    settings: ExtractionSettings,
    device: str | torch.device = "cpu",
    progress: bool = False,
    desc: str = "embedding",
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Embed the planned ``batches`` (indices into ``utterances``).

    Returns ``({index: embedding}, {index: why it was skipped})``: an unreadable or corrupt audio file
    is skipped and reported instead of ending a run that may have hours of work behind it.
    """
    rows: dict[int, np.ndarray] = {}
    failed: dict[int, str] = {}
    with tqdm(total=sum(map(len, batches)), desc=desc, disable=not progress, leave=False) as bar:
        for batch in batches:
            waves: dict[int, np.ndarray] = {}
            for index in batch:
                try:
                    waves[index] = load_audio(utterances[index].audio, sample_rate)
                except DataError as err:
                    failed[index] = str(err)
            loaded = list(waves)
            groups = plan_batches([waves[i].shape[0] for i in loaded], settings.bucket_tolerance,
                                  settings.max_samples(sample_rate))
            for group in groups:
                members = [loaded[g] for g in group]
                crop = min(waves[i].shape[0] for i in members)
                stacked = np.stack([centre_crop(waves[i], crop) for i in members])
                out = embed(torch.from_numpy(stacked).to(device)).float().cpu().numpy()
                rows.update(zip(members, out, strict=True))
            bar.update(len(batch))
    return rows, failed


def embed_utterances(
    embed: Callable[[torch.Tensor], torch.Tensor],
    utterances: Sequence[Utterance],
    sample_rate: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
    desc: str = "embedding",
    settings: ExtractionSettings = EXACT,
) -> np.ndarray:
    """``embed`` maps a (batch, samples) waveform batch to (batch, dim); returns (N, dim) in manifest order.

    Every utterance must be readable (DataError lists those that are not): callers such as clustering
    need one embedding per utterance. :func:`avssl.eval.extract_job.extract_to_file` skips instead.
    """
    settings.check(sample_rate)
    lengths = [round(u.duration * sample_rate) for u in utterances]
    batches = plan_batches(lengths, settings.bucket_tolerance, settings.max_samples(sample_rate))
    rows, failed = embed_batches(embed, utterances, batches, sample_rate, settings, device, progress, desc)
    if failed:
        reasons = [failed[i] for i in sorted(failed)[:_SHOW]]
        raise DataError(f"{len(failed)} of {len(utterances)} audio files could not be read: {reasons}")
    return np.stack([rows[i] for i in range(len(utterances))])


def encoder_embedder(encoder: nn.Module, fbank: Fbank) -> Callable[[torch.Tensor], torch.Tensor]:
    """Waveform -> fbank -> encoder, in eval mode."""
    return WaveformEncoder(encoder, fbank).eval()


def save_embeddings(
    path: str | Path, keys: Sequence[str], embeddings: np.ndarray, meta: dict[str, Any] | None = None
) -> Path:
    """Write keys, the embedding matrix and optional JSON metadata together, atomically."""
    if len(keys) != len(embeddings):
        raise ValueError(f"{len(keys)} keys for {len(embeddings)} embeddings")
    arrays = {"keys": np.asarray(keys, dtype=str), "embeddings": np.asarray(embeddings, dtype=np.float32)}
    if meta is not None:
        arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))

    def write(handle) -> None:
        np.savez(handle, **arrays)

    return atomic_write(path, write)


def load_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read the keys and matrix that :func:`save_embeddings` wrote."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"embedding file not found: {path} (run `avssl extract` first)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["keys"].tolist(), data["embeddings"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path} is not a readable embedding file ({err}); run `avssl extract` again") from err


def load_mean_embedding(path: str | Path, dim: int) -> np.ndarray:
    """The mean of an embedding file's rows (float64), checked to have the encoder's dimension ``dim``.

    A file extracted with another encoder would otherwise fail later as an opaque shape error.
    """
    embeddings = load_embeddings(path)[1]
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] != dim:
        raise DataError(
            f"{path}: embeddings of shape {embeddings.shape}, but the encoder gives dimension {dim}; "
            "extract them with this encoder"
        )
    return np.asarray(embeddings, dtype=np.float64).mean(axis=0)


def load_embedding_meta(path: str | Path) -> dict[str, Any]:
    """The metadata stored with an embedding file (``{}`` when it has none); DataError if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"])) if "meta" in data.files else {}
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is not a readable embedding file ({err}); run `avssl extract` again") from err

