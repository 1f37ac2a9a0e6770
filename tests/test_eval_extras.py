"""AS-norm against a loop-by-loop computation, report plots, and the TorchScript encoder export."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.errors import AvsslError, ConfigError, DataError
from avssl.eval.asnorm import asnorm_scores, cluster_mean_cohort
from avssl.eval.report_plots import plot_det, plot_score_histograms
from avssl.eval.trials import TrialList
from avssl.export import export_onnx, export_torchscript
from avssl.features import Fbank


def _trials(pairs: list[tuple[int, str, str]]) -> TrialList:
    return TrialList(
        name="tiny",
        labels=np.asarray([p[0] for p in pairs], dtype=np.int8),
        enrol=[p[1] for p in pairs],
        test=[p[2] for p in pairs],
    )


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _asnorm_loop(
    trials: TrialList, table: dict[str, np.ndarray], cohort: np.ndarray, k: int, mean: np.ndarray
) -> np.ndarray:
    """The textbook definition, one trial and one cohort entry at a time."""
    cohort_unit = [_unit(c) for c in cohort]
    out = []
    for enrol, test in zip(trials.enrol, trials.test, strict=True):
        e, t = _unit(table[enrol] - mean), _unit(table[test] - mean)
        s = float(e @ t)
        normalised = []
        for side in (e, t):
            top = sorted((float(side @ c) for c in cohort_unit), reverse=True)[:k]
            normalised.append((s - np.mean(top)) / np.std(top))
        out.append(0.5 * sum(normalised))
    return np.asarray(out)


def test_asnorm_matches_loop() -> None:
    rng = np.random.default_rng(0)
    keys = [f"u{i}" for i in range(6)]
    embeddings = rng.normal(size=(6, 8)).astype(np.float32)
    cohort = rng.normal(size=(20, 8))
    mean = rng.normal(size=8) * 0.1
    trials = _trials([(1, "u0", "u1"), (0, "u0", "u2"), (0, "u3", "u4"), (1, "u5", "u3"), (0, "u1", "u1")])
    got = asnorm_scores(trials, keys, embeddings, cohort, top_k=5, mean=mean)
    table = {key: embeddings[i].astype(np.float64) for i, key in enumerate(keys)}
    np.testing.assert_allclose(got, _asnorm_loop(trials, table, cohort, 5, mean), rtol=1e-5, atol=1e-5)
    # top_k beyond the cohort size is clamped to the whole cohort.
    clamped = asnorm_scores(trials, keys, embeddings, cohort, top_k=1000, mean=mean)
    np.testing.assert_allclose(clamped, _asnorm_loop(trials, table, cohort, 20, mean), rtol=1e-5, atol=1e-5)


def test_cluster_mean_cohort() -> None:
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(30, 8))
    labels = rng.integers(0, 4, size=30)
    labels[:3] = -1  # unclustered points are left out
    cohort = cluster_mean_cohort(embeddings, labels, mean=embeddings.mean(axis=0))
    assert cohort.shape == (np.unique(labels[labels >= 0]).size, 8)
    np.testing.assert_allclose(np.linalg.norm(cohort, axis=1), 1.0, atol=1e-12)
    members = embeddings[labels == 0] - embeddings.mean(axis=0)
    direction = _unit((members / np.linalg.norm(members, axis=1, keepdims=True)).mean(axis=0))
    np.testing.assert_allclose(cohort[0], direction, atol=1e-12)
    with pytest.raises(DataError, match="cluster_labels"):
        cluster_mean_cohort(embeddings, labels[:-1])


def test_asnorm_bad_inputs() -> None:
    rng = np.random.default_rng(2)
    keys = ["a", "b"]
    embeddings = rng.normal(size=(2, 4))
    cohort = rng.normal(size=(10, 4))
    trials = _trials([(1, "a", "b")])
    with pytest.raises(ConfigError, match="top_k"):
        asnorm_scores(trials, keys, embeddings, cohort, top_k=0)
    with pytest.raises(ConfigError, match="top_k"):  # one score has no spread to normalise by
        asnorm_scores(trials, keys, embeddings, cohort, top_k=1)
    with pytest.raises(DataError, match="missing_key"):
        asnorm_scores(_trials([(1, "a", "missing_key")]), keys, embeddings, cohort, top_k=3)
    with pytest.raises(DataError, match="cohort"):
        asnorm_scores(trials, keys, embeddings, rng.normal(size=(10, 5)), top_k=3)
    bad = cohort.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        asnorm_scores(trials, keys, embeddings, bad, top_k=3)


def test_plots_write_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat([1, 0], 200)
    good = np.concatenate([rng.normal(1.0, 1.0, 200), rng.normal(-1.0, 1.0, 200)])
    weak = np.concatenate([rng.normal(0.3, 1.0, 200), rng.normal(-0.3, 1.0, 200)])
    det = plot_det({"good": (good, labels), "weak": (weak, labels)}, tmp_path / "figs" / "det.png")
    hist = plot_score_histograms(good, labels, tmp_path / "figs" / "hist.png", "good system")
    for path in (det, hist):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 1000



def test_torchscript_export_matches_pytorch(encoder_file: Path, tmp_path: Path) -> None:
    from avssl.train.encoder_file import load_encoder

    out = export_torchscript(encoder_file, tmp_path / "deploy" / "encoder.pt")
    scripted = torch.jit.load(str(out))
    encoder, fbank, _ = load_encoder(encoder_file)
    assert isinstance(fbank, Fbank)
    generator = torch.Generator().manual_seed(5)
    for samples in (12000, 28800):
        waveform = 0.1 * torch.randn(1, samples, generator=generator)
        with torch.no_grad():
            expected = encoder(fbank(waveform))
            got = scripted(waveform)
        assert got.shape == (1, 8)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_onnx_export_names_missing_package(encoder_file: Path, tmp_path: Path, monkeypatch) -> None:
    # A None entry in sys.modules makes `import onnxruntime` fail exactly as on a machine without it.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(AvsslError, match="pip install"):
        export_onnx(encoder_file, tmp_path / "encoder.onnx")
    assert not (tmp_path / "encoder.onnx").exists()
