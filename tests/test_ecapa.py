"""ECAPA-TDNN: shapes, size of the reference configuration, gradients and single-utterance inference."""

from __future__ import annotations

import pytest
import torch

from avssl.models.ecapa import EcapaTdnn


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("batch", "frames"), [(2, 20), (3, 57), (2, 200)])
def test_output_shape(batch: int, frames: int) -> None:
    torch.manual_seed(0)
    model = EcapaTdnn(n_mels=40, channels=64, embedding_dim=32)
    assert model.embedding_dim == 32
    out = model(torch.randn(batch, 40, frames))
    assert out.shape == (batch, 32)
    assert torch.isfinite(out).all()


def test_reference_size_matches_wespeaker() -> None:
    # WeSpeaker's ECAPA_TDNN_GLOB_c512 (192-d embedding) has about 6.2 M parameters.
    assert _n_params(EcapaTdnn(channels=512, embedding_dim=192)) == pytest.approx(6.2e6, rel=0.05)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = EcapaTdnn(n_mels=24, channels=32, embedding_dim=16, se_channels=8, attention_channels=8)
    model(torch.randn(4, 24, 30)).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("global_context", [True, False])
def test_eval_mode_batch_of_one_matches_batched(global_context: bool) -> None:
    torch.manual_seed(0)
    model = EcapaTdnn(n_mels=40, channels=64, embedding_dim=32, global_context=global_context)
    model(torch.randn(4, 40, 50))  # one training step's worth of BatchNorm statistics
    model.eval()
    features = torch.randn(3, 40, 80)
    with torch.no_grad():
        batched = model(features)
        single = model(features[1:2])
    assert single.shape == (1, 32)
    torch.testing.assert_close(single, batched[1:2], rtol=1e-4, atol=1e-5)
