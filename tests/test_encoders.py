"""Speaker encoders (ECAPA-TDNN, ResNet34): shapes, reference sizes, gradients, batch-1 inference."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from avssl.config import EncoderConfig
from avssl.models import build_encoder
from avssl.models.ecapa import EcapaTdnn
from avssl.models.resnet import ResNetSpeakerEncoder

# Small widths keep the tests fast; each factory takes (n_mels, embedding_dim).
SMALL: dict[str, Callable[[int, int], nn.Module]] = {
    "ecapa": lambda mels, dim: EcapaTdnn(n_mels=mels, channels=32, embedding_dim=dim, se_channels=8,
                                         attention_channels=8),
    "ecapa-no-context": lambda mels, dim: EcapaTdnn(n_mels=mels, channels=32, embedding_dim=dim,
                                                    global_context=False),
    "resnet34": lambda mels, dim: ResNetSpeakerEncoder(n_mels=mels, channels=8, embedding_dim=dim),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize(("batch", "n_mels", "frames"), [(2, 40, 20), (3, 40, 57), (2, 37, 130)])
def test_output_shape(name: str, batch: int, n_mels: int, frames: int) -> None:
    torch.manual_seed(0)
    model = SMALL[name](n_mels, 32)
    assert model.embedding_dim == 32
    out = model(torch.randn(batch, n_mels, frames))
    assert out.shape == (batch, 32) and torch.isfinite(out).all()


def test_resnet_handles_crops_shorter_than_its_stride() -> None:
    # 8 frames leave one frame after the stride-2 stages: the std pooling must stay finite.
    out = SMALL["resnet34"](40, 16)(torch.randn(1, 40, 8))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (EncoderConfig(name="ecapa", channels=512, embedding_dim=192), 6.2e6),  # WeSpeaker ECAPA_TDNN_GLOB_c512
        (EncoderConfig(name="resnet34", channels=32, embedding_dim=256), 6.6e6),  # WeSpeaker ResNet34
    ],
)
def test_reference_sizes_match_wespeaker(config: EncoderConfig, expected: float) -> None:
    assert n_params(build_encoder(config, 80)) == pytest.approx(expected, rel=0.05)


def test_resnet34_has_its_stage_depths() -> None:
    model = build_encoder(EncoderConfig(name="resnet34", channels=32, embedding_dim=256), 80)
    assert [len(stage) for stage in model.stages] == [3, 4, 6, 3]


@pytest.mark.parametrize("name", SMALL)
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = SMALL[name](24, 16)
    model(torch.randn(4, 24, 30)).square().sum().backward()
    for param_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), param_name
        assert parameter.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", SMALL)
def test_eval_mode_batch_of_one_matches_batched(name: str) -> None:
    torch.manual_seed(0)
    model = SMALL[name](40, 32)
    model(torch.randn(4, 40, 50))  # one training step's worth of batch-norm statistics
    model.eval()
    features = torch.randn(3, 40, 80)
    with torch.no_grad():
        batched = model(features)
        single = model(features[1:2])
    torch.testing.assert_close(single, batched[1:2], rtol=1e-4, atol=1e-5)
