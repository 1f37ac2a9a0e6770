"""The trained-encoder file: weights in safetensors, the architecture and front end in its metadata.

Why safetensors: loading a model someone sent you must never execute code (a pickled ``.pt`` can).
The metadata carries the encoder and feature configs, so the file alone rebuilds the model that
produced it — no need to find the training config again.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from avssl.config import EncoderConfig, FeatureConfig, as_dict
from avssl.errors import DataError
from avssl.features import Fbank
from avssl.models import build_encoder
from avssl.utils.atomic import atomic_write

FORMAT = "avssl-encoder/1"


def save_encoder(
    path: str | Path, encoder: nn.Module, encoder_config: EncoderConfig, features: FeatureConfig, sample_rate: int
) -> Path:
    """Write the encoder's weights and the configs that rebuild it, atomically."""
    metadata = {
        "format": FORMAT,
        "encoder": json.dumps(as_dict(encoder_config)),
        "features": json.dumps(as_dict(features)),
        "sample_rate": str(sample_rate),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    payload = save(tensors, metadata=metadata)
    return atomic_write(path, lambda handle: handle.write(payload))


def average_encoder_files(paths: list[Path], out_path: str | Path) -> Path:
    """Write the parameter-wise average of several encoder files of one architecture.

    Averaging the teacher over its last epochs smooths the end of training (WeSpeaker's recipe does
    the same); integer buffers such as batch-norm step counters are taken from the last file.
    """
    from safetensors import safe_open

    if not paths:
        raise DataError("no encoder files to average")
    with safe_open(str(paths[-1]), framework="pt") as handle:
        metadata = handle.metadata()
    states = [load_file(str(p)) for p in paths]
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            averaged[key] = torch.stack([state[key] for state in states]).mean(dim=0)
        else:
            averaged[key] = last
    payload = save(averaged, metadata=metadata)
    return atomic_write(out_path, lambda handle: handle.write(payload))


def read_encoder_configs(path: str | Path) -> tuple[EncoderConfig, FeatureConfig, int]:
    """The ``(encoder config, feature config, sample rate)`` an encoder file was saved with."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"encoder file not found: {path} (train one with `avssl train`)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:
        raise DataError(f"{path} is not a safetensors encoder file: {err}") from err
    if metadata.get("format") != FORMAT:
        raise DataError(f"{path}: not an avssl encoder file (format {metadata.get('format')!r}, expected {FORMAT})")
    return (
        EncoderConfig(**json.loads(metadata["encoder"])),
        FeatureConfig(**json.loads(metadata["features"])),
        int(metadata["sample_rate"]),
    )


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Fbank, int]:
    """Rebuild ``(encoder in eval mode, its fbank front end, sample rate)`` from an encoder file."""
    encoder_config, feature_config, sample_rate = read_encoder_configs(path)
    encoder = build_encoder(encoder_config, feature_config.n_mels)
    encoder.load_state_dict(load_file(str(path)))
    fbank = Fbank(feature_config, sample_rate)
    return encoder.to(device).eval(), fbank.to(device), sample_rate
