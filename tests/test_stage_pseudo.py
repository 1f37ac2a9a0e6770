"""Stage II: the per-epoch gate decisions, the label audit, and real runs at tiny size (1 and 2 processes)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avssl.config import (
    CorrectionConfig,
    EncoderConfig,
    FeatureConfig,
    GateConfig,
    PseudoTrainConfig,
    load_config,
)
from avssl.errors import ConfigError
from avssl.models import build_encoder
from avssl.models.aam import AamSoftmax
from avssl.pseudo.diagnostics import LabelAudit
from avssl.pseudo.epoch_gate import gate_for_epoch
from avssl.pseudo.gate import fit_dynamic_gate
from avssl.train.encoder_file import save_encoder
from avssl.train.stage_pseudo import round_dir, train_pseudo_labels
from tests.conftest import tiny_pseudo_overrides

HELPER = Path(__file__).parent / "helpers" / "ddp_pseudo.py"


def _bimodal(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.exp(np.concatenate([rng.normal(-2.0, 0.5, 700), rng.normal(1.5, 0.5, 300)]))


def test_gate_rules_per_epoch() -> None:
    correction = CorrectionConfig(enabled=True, start_epoch=2)
    losses = _bimodal()
    assert gate_for_epoch(5, GateConfig(mode="none"), correction, losses, 1.0, 0).threshold == math.inf
    warm = gate_for_epoch(0, GateConfig(mode="dlg", warmup_epochs=1), correction, None, math.inf, 0)
    assert warm.threshold == math.inf and not warm.correct and "warm-up" in warm.note
    fixed = gate_for_epoch(1, GateConfig(mode="fixed", fixed_threshold=3.0), correction, losses, math.inf, 0)
    assert fixed.threshold == 3.0 and not fixed.correct
    dlg = gate_for_epoch(2, GateConfig(mode="dlg"), correction, losses, math.inf, 0)
    assert dlg.correct and dlg.fit is not None and not dlg.fit.degenerate
    assert math.exp(-2.0) < dlg.threshold < math.exp(1.5)
    assert dlg.threshold == fit_dynamic_gate(losses).threshold
    # One population: the fit is degenerate and the previous threshold stays.
    flat = np.exp(np.random.default_rng(1).normal(0.0, 0.3, 1000))
    kept = gate_for_epoch(3, GateConfig(mode="dlg"), correction, flat, 0.7, 0)
    assert kept.threshold == 0.7 and kept.fit is not None and kept.fit.degenerate and "degenerate" in kept.note
    no_lc = gate_for_epoch(3, GateConfig(mode="dlg"), CorrectionConfig(enabled=False), losses, math.inf, 0)
    assert not no_lc.correct


def test_label_audit_uses_cluster_majority() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    labels = np.array([0, 0, 1, 1, 1, 2])  # cluster 0 = a, cluster 1 = b (2 of 3), cluster 2 = c
    audit = LabelAudit(labels, truth)
    assert audit.is_right(labels, np.arange(6)).tolist() == [True, True, False, True, True, True]
    # Relabelling utterance 2 (an "a") with cluster 0 fixes it.
    assert audit.is_right(np.array([0]), np.array([2])).tolist() == [True]


def test_aam_loss_from_cosine_matches_forward() -> None:
    torch.manual_seed(0)
    aam = AamSoftmax(8, 5)
    embeddings, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 4, 0])
    assert torch.allclose(aam(embeddings, labels), aam.loss_from_cosine(aam.cosine(embeddings), labels))


def test_config_rejects_correction_before_gate() -> None:
    with pytest.raises(ConfigError, match="correction.start_epoch"):
        load_config(PseudoTrainConfig, None, ["init_encoder=x", "data.train_manifest=x", "run.output_dir=x",
                                              "gate.warmup_epochs=3", "correction.start_epoch=1"])
    with pytest.raises(ConfigError, match="gate.mode"):
        load_config(PseudoTrainConfig, None, ["init_encoder=x", "data.train_manifest=x", "run.output_dir=x",
                                              "gate.mode=sometimes"])


@pytest.fixture(scope="module")
def stage1_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained encoder file standing in for a stage-I model."""
    torch.manual_seed(0)
    config = EncoderConfig(name="ecapa", channels=16, embedding_dim=16)
    path = tmp_path_factory.mktemp("stage1") / "encoder.safetensors"
    return save_encoder(path, build_encoder(config, 80), config, FeatureConfig(), 16000)


def _overrides(prepared: Path, encoder: Path, out: Path, *extra: str) -> list[str]:
    return [*tiny_pseudo_overrides(prepared, encoder, out), *extra]


def test_two_rounds_then_exact_resume(tiny_prepared: Path, stage1_encoder: Path, tmp_path: Path) -> None:
    full = train_pseudo_labels(load_config(PseudoTrainConfig, None, _overrides(tiny_prepared, stage1_encoder, tmp_path / "a")))
    assert [p.name for p in full.round_encoders] == ["encoder.safetensors"] * 2
    for summary in full.rounds:
        assert 0.0 <= summary["label_nmi_diagnostic"] <= 1.0
        for epoch in summary["epochs"]:
            fractions = epoch["fraction_kept"] + epoch["fraction_corrected"] + epoch["fraction_dropped"]
            assert fractions == pytest.approx(1.0)
        assert summary["epochs"][0]["threshold"] is None  # warm-up epoch: no gate
    record = np.load(round_dir(tmp_path / "a", 0) / "gate" / "epoch002.npz")
    assert record["losses"].shape == (24,) and np.isfinite(record["losses"]).all()

    # Interrupted after 4 epochs (inside round 2), then resumed: bit-identical final encoder.
    config = load_config(PseudoTrainConfig, None, _overrides(tiny_prepared, stage1_encoder, tmp_path / "b"))
    partial = train_pseudo_labels(config, stop_after_epochs=4)
    assert len(partial.round_encoders) == 1
    resumed = train_pseudo_labels(config, resume=True)
    final, reference = (load_file(str(r.round_encoders[-1])) for r in (resumed, full))
    assert final.keys() == reference.keys() and all(torch.equal(final[k], reference[k]) for k in final)
    assert json.dumps(resumed.rounds) == json.dumps(full.rounds)


def test_upper_bound_reference_trains_on_true_speakers(tiny_prepared: Path, stage1_encoder: Path, tmp_path: Path) -> None:
    result = train_pseudo_labels(load_config(PseudoTrainConfig, None, _overrides(
        tiny_prepared, stage1_encoder, tmp_path, "labels.source=true_speakers", "gate.mode=none", "rounds.count=1")))
    summary = result.rounds[0]
    assert summary["label_nmi_diagnostic"] == pytest.approx(1.0)
    assert all(e["diagnostic_labels_right_all"] == 1.0 for e in summary["epochs"])


def test_two_processes_share_one_threshold(tiny_prepared: Path, stage1_encoder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        # min_reliable_weight 0: a threshold in every fit of these tiny losses, so there is one to compare
        str(HELPER), *_overrides(tiny_prepared, stage1_encoder, out, "rounds.count=1", "optim.batch_size=2",
                                 "gate.min_reliable_weight=0"),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    files = [out / f"rank{r}_thresholds.json" for r in range(2)]
    assert all(p.is_file() for p in files), completed.stderr[-3000:]
    per_rank = [json.loads(p.read_text()) for p in files]
    assert per_rank[0] == per_rank[1]
    # The threshold of epoch 3 is the one-process fit on the union of both ranks' epoch-2 losses.
    losses = np.load(round_dir(out, 0) / "gate" / "epoch002.npz")["losses"]
    assert losses.shape == (24,)
    fit = fit_dynamic_gate(losses, True, per_rank[0][0][1], 0, 4, 0.5, min_reliable_weight=0.0)
    assert per_rank[0][0][2] == pytest.approx(fit.threshold)
