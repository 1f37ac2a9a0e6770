"""Cluster-aware DINO: partner crops come from another utterance of the cluster; rounds run and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avssl.config import CropConfig, DinoTrainConfig, load_config
from avssl.data.manifest import read_manifest
from avssl.data.views import AudioMultiCropDataset
from avssl.pseudo.labels import read_pseudo_labels
from avssl.train.cluster_rounds import ClusterSchedule
from avssl.train.stage_dino import train_dino
from tests.conftest import tiny_dino_overrides


@pytest.fixture()
def dataset(tiny_prepared: Path) -> AudioMultiCropDataset:
    utterances = read_manifest(tiny_prepared / "manifests" / "dev.tsv")
    crops = CropConfig(num_global=2, global_seconds=0.5, num_local=4, local_seconds=0.25)
    return AudioMultiCropDataset(utterances, crops, 16000, seed=3)


def contains(wave: np.ndarray, crop: np.ndarray) -> bool:
    """Whether ``crop`` is a contiguous window of ``wave``."""
    windows = np.lib.stride_tricks.sliding_window_view(wave, crop.shape[0])
    return bool(np.any(np.all(windows == crop, axis=1)))


def test_partner_crops_come_from_another_member_of_the_cluster(dataset: AudioMultiCropDataset) -> None:
    n = len(dataset)
    labels = np.arange(n) % 3  # three clusters, several members each
    labels[0] = 99  # ... and one singleton
    dataset.set_clusters(labels, global_from_partner=1, local_from_partner=2)
    for index in range(1, n):
        item = dataset[index]
        partner = item["partner"]
        assert partner != index and labels[partner] == labels[index]
        anchor_wave, partner_wave = dataset.waveform(index), dataset.waveform(partner)
        assert contains(anchor_wave, item["global"][0].numpy())
        assert contains(partner_wave, item["global"][1].numpy())
        assert all(contains(anchor_wave, c.numpy()) for c in item["local"][:2])
        assert all(contains(partner_wave, c.numpy()) for c in item["local"][2:])
    singleton = dataset[0]
    assert singleton["partner"] == 0
    assert all(contains(dataset.waveform(0), c.numpy()) for c in singleton["global"])


def test_partners_are_deterministic_by_seed_and_change_with_epoch(dataset: AudioMultiCropDataset) -> None:
    dataset.set_clusters(np.zeros(len(dataset), dtype=int))
    first = [dataset[i]["partner"] for i in range(len(dataset))]
    assert first == [dataset[i]["partner"] for i in range(len(dataset))]
    dataset.set_epoch(1)
    assert first != [dataset[i]["partner"] for i in range(len(dataset))]
    dataset.set_clusters(None)
    dataset.set_epoch(0)
    assert all(dataset[i]["partner"] == i for i in range(len(dataset)))


def test_bad_cluster_labels_are_refused(dataset: AudioMultiCropDataset) -> None:
    with pytest.raises(ValueError, match="cluster labels"):
        dataset.set_clusters(np.zeros(len(dataset) + 1, dtype=int))
    with pytest.raises(ValueError, match="anchor"):
        dataset.set_clusters(np.zeros(len(dataset), dtype=int), global_from_partner=2)


def test_schedule_fixed_and_progressive() -> None:
    fixed = ClusterSchedule([50], every=0)
    assert [fixed.latest_round(e) for e in range(4)] == [0, 0, 0, 0] and fixed.clusters_at(0) == 50
    progressive = ClusterSchedule([8, 6, 4], every=2)
    assert [progressive.latest_round(e) for e in range(7)] == [0, 0, 2, 2, 4, 4, 6]
    assert [progressive.clusters_at(r) for r in (0, 2, 4, 6)] == [8, 6, 4, 4]


def test_progressive_cluster_aware_run_from_a_dino_checkpoint(tiny_prepared: Path, tmp_path: Path) -> None:
    dino = load_config(DinoTrainConfig, None, [*tiny_dino_overrides(tiny_prepared, tmp_path / "dino"), "optim.epochs=1"])
    train_dino(dino)
    overrides = [
        *tiny_dino_overrides(tiny_prepared, tmp_path / "ca"),
        "cluster_aware.enabled=true",
        f"run.init_checkpoint={tmp_path / 'dino' / 'checkpoint.pt'}",
        "cluster_aware.n_clusters=[4,3]",
        "cluster_aware.recluster_every_epochs=1",
    ]
    config = load_config(DinoTrainConfig, None, overrides)
    train_dino(config, stop_after_epochs=1)
    resumed = train_dino(config, resume=True)
    clusters = tmp_path / "ca" / "clusters"
    utterances = read_manifest(tiny_prepared / "manifests" / "dev.tsv")
    for round_epoch, k in ((0, 4), (1, 3)):
        labels = read_pseudo_labels(clusters / f"epoch{round_epoch:04d}.tsv")
        assert set(labels) == {u.key for u in utterances}
        assert len(set(labels.values())) <= k
        report = json.loads((clusters / f"epoch{round_epoch:04d}.json").read_text())
        assert report["n_clusters"] == k and 0.0 <= report["diagnostics"]["nmi"] <= 1.0
    assert not list(clusters.glob("*.npz"))  # embedding shards are cleaned up
    assert np.isfinite(resumed.final_loss)
