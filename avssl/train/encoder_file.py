"""The trained-encoder file: weights in safetensors, the architecture and front end in its metadata.

Why safetensors: loading a model someone sent you must never execute code (a pickled ``.pt`` can).
The metadata carries the encoder and feature configs, so the file alone rebuilds the model that
produced it — no need to find the training config again.

Two kinds share the container and differ in the metadata's ``format``: the speaker encoder
(``avssl-encoder/1``, fbank front end and sample rate) and the face encoder (``avssl-face-encoder/1``,
the input size and how frames were sampled). Each loader names the other kind when given it, so a face
file passed to ``avssl extract`` says to use ``avssl extract-faces`` instead.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save
from torch import nn

from avssl.config import EncoderConfig, FaceEncoderConfig, FeatureConfig, as_dict
from avssl.errors import DataError
from avssl.features import Fbank
from avssl.models import build_encoder
from avssl.utils.atomic import atomic_write

if TYPE_CHECKING:  # the face modules import OpenCV, which audio users of this module never need
    from avssl.faces.frames import FrameSampling

FORMAT = "avssl-encoder/1"
FACE_FORMAT = "avssl-face-encoder/1"
_USE = {FORMAT: "`avssl extract`", FACE_FORMAT: "`avssl extract-faces`"}


@dataclass(frozen=True)
class FaceEncoderInfo:
    """What a face encoder file says besides its weights.

    ``image_size``: the side whole frames are resized to before embedding (the global crops' size in
    training). ``frames``: how the training frames were sampled, so embedding decodes videos the same way.
    """

    encoder: FaceEncoderConfig
    image_size: int
    frames: FrameSampling


def _write(path: str | Path, encoder: nn.Module, metadata: dict[str, str]) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    payload = save(tensors, metadata=metadata)
    return atomic_write(path, lambda handle: handle.write(payload))


def _metadata(path: str | Path, expected: str) -> dict[str, str]:
    """The metadata of an encoder file of format ``expected``, or DataError saying what the file is."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"encoder file not found: {path} (train one with `avssl train`)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:
        raise DataError(f"{path} is not a safetensors encoder file: {err}") from err
    found = metadata.get("format")
    if found != expected:
        hint = f"; it is a {found} file: use {_USE[found]}" if found in _USE else ""
        raise DataError(f"{path}: not an avssl encoder file of format {expected} (format {found!r}){hint}")
    return metadata


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
    return _write(path, encoder, metadata)


def save_face_encoder(
    path: str | Path, encoder: nn.Module, encoder_config: FaceEncoderConfig, image_size: int, frames: FrameSampling
) -> Path:
    """Write a face encoder's weights, its config, input size and frame sampling, atomically."""
    metadata = {
        "format": FACE_FORMAT,
        "encoder": json.dumps(as_dict(encoder_config)),
        "image_size": str(image_size),
        "frames": json.dumps(asdict(frames)),
    }
    return _write(path, encoder, metadata)


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
    metadata = _metadata(path, FORMAT)
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


def read_face_encoder_info(path: str | Path) -> FaceEncoderInfo:
    """The config, input size and frame sampling a face encoder file was saved with."""
    from avssl.faces.frames import FrameSampling

    metadata = _metadata(path, FACE_FORMAT)
    return FaceEncoderInfo(
        FaceEncoderConfig(**json.loads(metadata["encoder"])),
        int(metadata["image_size"]),
        FrameSampling(**json.loads(metadata["frames"])),
    )


def load_face_encoder(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, FaceEncoderInfo]:
    """Rebuild ``(face encoder in eval mode, what its file says)`` from a face encoder file."""
    from avssl.models.face_resnet import build_face_encoder

    info = read_face_encoder_info(path)
    encoder = build_face_encoder(info.encoder.name, info.encoder.embedding_dim, info.encoder.width)
    encoder.load_state_dict(load_file(str(path)))
    return encoder.to(device).eval(), info
