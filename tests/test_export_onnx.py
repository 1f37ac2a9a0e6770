"""ONNX export of the waveform -> embedding encoder: onnxruntime reproduces PyTorch at any length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.cli import main
from avssl.models.waveform import WaveformEncoder
from avssl.train.encoder_file import load_encoder

onnxruntime = pytest.importorskip("onnxruntime", reason="the `export` extra (onnx, onnxscript, onnxruntime)")



def test_onnxruntime_matches_pytorch_at_two_lengths(encoder_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "deploy" / "encoder.onnx"
    assert main(["export", str(encoder_file), str(out), "--format", "onnx"]) == 0  # the CLI path
    assert "onnx model" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["waveforms"]
    encoder, fbank, _ = load_encoder(encoder_file)
    model = WaveformEncoder(encoder, fbank).eval()
    generator = torch.Generator().manual_seed(5)
    for batch, samples in ((1, 12000), (3, 28800)):  # neither is the export's example shape
        waveforms = 0.1 * torch.randn(batch, samples, generator=generator)
        with torch.no_grad():
            expected = model(waveforms).numpy()
        got = session.run(["embeddings"], {"waveforms": waveforms.numpy()})[0]
        assert got.shape == (batch, 8)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
