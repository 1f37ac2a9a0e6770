"""Shared fixtures: every test generates its own tiny data; nothing here needs ../shared or a network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Deterministic, quiet, two-core friendly test runs.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded audio-visual corpus at `tiny` size (seed 0), generated once per test session."""
    from avssl.synth.corpus import generate_corpus

    root = tmp_path_factory.mktemp("tiny_corpus")
    generate_corpus(root, size="tiny", seed=0, workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_prepared(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`avssl prepare` output (manifests, trials, augmentation lists) of the tiny corpus."""
    from avssl.prep.corpus import prepare_corpus

    out = tmp_path_factory.mktemp("tiny_prepared")
    prepare_corpus(tiny_corpus, out, workers=1)
    return out


@pytest.fixture(scope="session")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ECAPA encoder file with non-trivial batch-norm statistics (eval mode differs from identity)."""
    import torch

    from avssl.config import EncoderConfig, FeatureConfig
    from avssl.models import build_encoder
    from avssl.train.encoder_file import save_encoder

    torch.manual_seed(0)
    config = EncoderConfig(channels=16, embedding_dim=8)
    encoder = build_encoder(config, 80)
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return save_encoder(tmp_path_factory.mktemp("enc") / "encoder.pt", encoder, config, FeatureConfig(), 16000)


def tiny_dino_overrides(prepared: Path, output_dir: Path) -> list[str]:
    """A DINO config small enough to train for a few steps in seconds on one CPU core."""
    return [
        f"data.train_manifest={prepared / 'manifests' / 'dev.tsv'}",
        f"data.noise_list={prepared / 'augment' / 'noise.tsv'}",
        f"data.rir_list={prepared / 'augment' / 'rir.tsv'}",
        f"run.output_dir={output_dir}",
        "crops.global_seconds=1.0",
        "crops.local_seconds=0.5",
        "crops.num_local=2",
        "encoder.channels=16",
        "encoder.embedding_dim=16",
        "dino.out_dim=64",
        "dino.hidden_dim=32",
        "dino.bottleneck_dim=16",
        "optim.epochs=2",
        "optim.batch_size=4",
        "optim.warmup_epochs=1",
        "run.progress=false",
        "run.log_every=1",
        "run.threads=1",
    ]


def tiny_pseudo_overrides(prepared: Path, encoder: Path, output_dir: Path, manifest: Path | None = None) -> list[str]:
    """A stage-II config small enough for 2 rounds x 3 epochs in seconds (the gate can fit 24 losses)."""
    return [
        f"init_encoder={encoder}",
        f"data.train_manifest={manifest or prepared / 'manifests' / 'dev.tsv'}",
        f"data.noise_list={prepared / 'augment' / 'noise.tsv'}",
        f"data.rir_list={prepared / 'augment' / 'rir.tsv'}",
        f"run.output_dir={output_dir}",
        "segment_seconds=1.0",
        "labels.n_clusters=4",
        "rounds.count=2",
        "rounds.epochs=3",
        "gate.min_samples=4",
        "gate.min_separation=0.5",
        "correction.start_epoch=1",
        "optim.batch_size=4",
        "optim.warmup_epochs=0",
        "run.progress=false",
        "run.threads=1",
    ]
