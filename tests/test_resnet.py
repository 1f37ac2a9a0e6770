"""ResNet34 speaker encoder: shapes, size of the reference configuration, gradients, batch-1 inference."""

from __future__ import annotations

import pytest
import torch

from avssl.config import EncoderConfig
from avssl.models import build_encoder
from avssl.models.resnet import ResNetSpeakerEncoder


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("batch", "n_mels", "frames"), [(1, 40, 8), (2, 40, 20), (3, 40, 57), (2, 37, 130)])
def test_output_shape(batch: int, n_mels: int, frames: int) -> None:
    # 8 frames leave one frame after the stride-2 stages; 37 mels is not a multiple of 8.
    torch.manual_seed(0)
    model = ResNetSpeakerEncoder(n_mels=n_mels, channels=8, embedding_dim=32)
    assert model.embedding_dim == 32
    out = model(torch.randn(batch, n_mels, frames))
    assert out.shape == (batch, 32)
    assert torch.isfinite(out).all()


def test_reference_size_matches_wespeaker() -> None:
    # WeSpeaker's ResNet34 (32 base channels, 80 mels, 256-d embedding) has about 6.6 M parameters.
    assert _n_params(ResNetSpeakerEncoder(channels=32, embedding_dim=256)) == pytest.approx(6.6e6, rel=0.05)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = ResNetSpeakerEncoder(n_mels=24, channels=8, embedding_dim=16)
    model(torch.randn(4, 24, 30)).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_eval_mode_batch_of_one_matches_batched() -> None:
    torch.manual_seed(0)
    model = ResNetSpeakerEncoder(n_mels=40, channels=8, embedding_dim=32)
    model(torch.randn(4, 40, 50))  # one training step's worth of BatchNorm statistics
    model.eval()
    features = torch.randn(3, 40, 80)
    with torch.no_grad():
        batched = model(features)
        single = model(features[1:2])
    assert single.shape == (1, 32)
    torch.testing.assert_close(single, batched[1:2], rtol=1e-4, atol=1e-5)


def test_build_encoder_makes_resnet34() -> None:
    model = build_encoder(EncoderConfig(name="resnet34", channels=32, embedding_dim=256), 80)
    assert isinstance(model, ResNetSpeakerEncoder)
    assert model.embedding_dim == 256
    assert [len(stage) for stage in model.stages] == [3, 4, 6, 3]
    assert _n_params(model) == _n_params(ResNetSpeakerEncoder())
