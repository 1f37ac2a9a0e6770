"""The Verifier: embeddings are normalised, scores are cosines, the threshold comes from a dev list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import avssl
from avssl.cli import main
from avssl.config import EncoderConfig, FeatureConfig
from avssl.data.audio import load_audio
from avssl.data.manifest import read_manifest
from avssl.errors import DataError
from avssl.eval.extract import save_embeddings
from avssl.models import build_encoder
from avssl.train.encoder_file import save_encoder


@pytest.fixture()
def encoder_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    config = EncoderConfig(channels=16, embedding_dim=8)
    return save_encoder(tmp_path / "encoder.pt", build_encoder(config, 80).eval(), config, FeatureConfig(), 16000)


def test_scores_are_cosines_of_normalised_embeddings(encoder_file: Path, tiny_prepared: Path) -> None:
    verifier = avssl.Verifier.load(encoder_file)
    first, second = (u.audio for u in read_manifest(tiny_prepared / "manifests" / "test.tsv")[:2])
    a, b = verifier.embed(first), verifier.embed(second)
    assert a.shape == (8,) and np.linalg.norm(a) == pytest.approx(1.0)
    assert verifier.score(first, second) == pytest.approx(float(a @ b))
    assert verifier.score(first, load_audio(first, 16000)) == pytest.approx(1.0)  # a path or an array
    assert verifier.verify(first, second).same_speaker is None  # no threshold yet
    with pytest.raises(DataError, match="mono waveform"):
        verifier.embed(np.zeros((2, 16000), dtype=np.float32))


def test_threshold_from_a_dev_list_and_the_cli(encoder_file: Path, tiny_corpus: Path, tmp_path: Path,
                                               capsys) -> None:
    trials = tiny_corpus / "trials" / "synth-O.txt"
    verifier = avssl.Verifier.load(encoder_file)
    threshold = verifier.calibrate(trials, tiny_corpus / "test" / "wav")["audio"]
    assert -1.0 <= threshold <= 1.0
    enrol, test = trials.read_text().split("\n")[0].split()[1:]
    decision = verifier.verify(tiny_corpus / "test" / "wav" / enrol, tiny_corpus / "test" / "wav" / test)
    assert decision.same_speaker == (decision.score >= threshold)

    dev = tmp_path / "dev.npz"
    save_embeddings(dev, ["a", "b"], np.ones((2, 8), dtype=np.float32))
    argv = ["verify", str(tiny_corpus / "test" / "wav" / enrol), str(tiny_corpus / "test" / "wav" / test),
            "--encoder", str(encoder_file), "--train-embeddings", str(dev), "--dev-trials", str(trials),
            "--dev-root", str(tiny_corpus / "test" / "wav")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "threshold" in out and "score" in out
    assert main(["verify", "a.wav", "b.wav", "--encoder", str(tmp_path / "missing.pt")]) == 2
    assert "encoder file not found" in capsys.readouterr().err
