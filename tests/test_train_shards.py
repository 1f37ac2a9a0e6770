"""Training from shards (data.shards): the same views as the files, equal steps on every rank, both stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avssl.config import CropConfig, DinoTrainConfig, PseudoTrainConfig, load_config
from avssl.data.manifest import read_manifest
from avssl.data.shard_views import ShardMultiCropDataset
from avssl.data.shards import ShardDataset
from avssl.data.views import AudioMultiCropDataset
from avssl.errors import ConfigError, DataError
from avssl.prep.pack_shards import pack_shards
from avssl.train.checkpoint import load_checkpoint
from avssl.train.stage_dino import train_dino
from avssl.train.stage_pseudo import round_dir, train_pseudo_labels
from tests.conftest import tiny_dino_overrides, tiny_pseudo_overrides
from tests.test_train import assert_same_state

HELPER = Path(__file__).parent / "helpers" / "ddp_train.py"
PER_SHARD = 5  # the tiny dev manifest's 24 utterances: shards of 5, 5, 5, 5, 4
BATCH = 4  # tiny_dino_overrides' optim.batch_size
CROPS = CropConfig(num_global=2, global_seconds=1.0, num_local=2, local_seconds=0.5)


@pytest.fixture(scope="module")
def shards(tiny_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dev manifest packed by the real packer; the shard index's path."""
    out = tmp_path_factory.mktemp("shards")
    pack_shards(tiny_prepared / "manifests" / "dev.tsv", out, utterances_per_shard=PER_SHARD, workers=1)
    return out / "shards.tsv"


def dino_config(prepared: Path, shards: Path, out: Path, *extra: str) -> DinoTrainConfig:
    return load_config(DinoTrainConfig, None, [*tiny_dino_overrides(prepared, out), f"data.shards={shards}", *extra])


def steps_in_log(out: Path) -> dict[int, int]:
    """Logged steps per epoch (run.log_every=1 logs every step)."""
    counts: dict[int, int] = {}
    for line in (out / "train_log.jsonl").read_text().splitlines():
        epoch = json.loads(line)["epoch"]
        counts[epoch] = counts.get(epoch, 0) + 1
    return counts


def test_shard_items_are_the_manifest_items(tiny_prepared: Path, shards: Path) -> None:
    utterances = read_manifest(tiny_prepared / "manifests" / "dev.tsv")
    streamed = ShardMultiCropDataset(shards, utterances, CROPS, 16000, seed=3, buffer_size=4, rank=0, world_size=1)
    files = AudioMultiCropDataset(utterances, CROPS, 16000, seed=3)
    streamed.set_epoch(2)
    files.set_epoch(2)
    items = list(streamed)
    assert sorted(item["index"] for item in items) == list(range(len(utterances)))
    for item in items:  # the same crops, whatever order the shards deliver them in
        expected = files[item["index"]]
        assert item["partner"] == item["index"]
        assert torch.equal(item["global"], expected["global"]) and torch.equal(item["local"], expected["local"])


def test_every_rank_assembles_the_guaranteed_batches(tiny_prepared: Path, shards: Path) -> None:
    utterances = read_manifest(tiny_prepared / "manifests" / "dev.tsv")
    ranks = [ShardMultiCropDataset(shards, utterances, CROPS, 16000, 0, 4, rank, 2) for rank in range(2)]
    counts = []
    for epoch in range(2):
        seen = []
        for dataset in ranks:
            dataset.set_epoch(epoch)
            batches = list(DataLoader(dataset, batch_size=BATCH, num_workers=2, drop_last=True))
            counts.append(len(batches))
            seen += [int(i) for batch in batches for i in batch["index"]]
        assert len(seen) == len(set(seen))  # no utterance twice in an epoch
    # Each loader stream drops its own short last batch: the guarantee is the smallest real count.
    assert ranks[0].guaranteed_batches(BATCH, 2, range(2)) == min(counts) > 0


def test_dino_from_shards_runs_one_pass_per_epoch_and_resumes_exactly(
    tiny_prepared: Path, shards: Path, tmp_path: Path
) -> None:
    straight = train_dino(dino_config(tiny_prepared, shards, tmp_path / "straight"))
    assert np.isfinite(straight.final_loss)
    # One process, one stream: every utterance but the batch's remainder, every epoch.
    steps = len(read_manifest(tiny_prepared / "manifests" / "dev.tsv")) // BATCH
    assert steps_in_log(tmp_path / "straight") == {1: steps, 2: steps}
    assert load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["step"] == 2 * steps
    # A checkpoint ends an epoch, and an epoch's shard order, buffer and crops are keyed by (seed, epoch):
    # a resumed run reads exactly what the uninterrupted one read.
    interrupted = dino_config(tiny_prepared, shards, tmp_path / "resumed")
    train_dino(interrupted, stop_after_epochs=1)
    resumed = train_dino(interrupted, resume=True)
    assert_same_state(straight.teacher.state_dict(), resumed.teacher.state_dict())
    assert_same_state(straight.student.state_dict(), resumed.student.state_dict())


def test_two_processes_from_shards_end_with_identical_weights(tiny_prepared: Path, shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        str(HELPER), *tiny_dino_overrides(tiny_prepared, out), f"data.shards={shards}",
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    ranks = [out / f"rank{r}_weights.pt" for r in range(2)]
    assert all(p.is_file() for p in ranks), completed.stderr[-3000:]
    first, second = (torch.load(p, weights_only=True) for p in ranks)
    assert_same_state(first["student"], second["student"])
    assert_same_state(first["teacher"], second["teacher"])
    # The ranks' shares differ by up to a shard; every rank ran the smallest share's full batches.
    shares = []
    for epoch in range(2):
        reader = ShardDataset(shards, seed=0, world_size=2, rank=0)
        reader.set_epoch(epoch)
        shares += [reader.utterances_for_rank(rank) for rank in range(2)]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2 * (min(shares) // BATCH)


def test_stage_two_from_shards(tiny_prepared: Path, shards: Path, encoder_file: Path, tmp_path: Path) -> None:
    config = load_config(PseudoTrainConfig, None, [
        *tiny_pseudo_overrides(tiny_prepared, encoder_file, tmp_path), f"data.shards={shards}",
        "rounds.count=1", "rounds.epochs=2", f"optim.batch_size={BATCH}",
    ])
    result = train_pseudo_labels(config)
    assert len(result.round_encoders) == 1 and [e["epoch"] for e in result.rounds[0]["epochs"]] == [1, 2]
    losses = np.load(round_dir(tmp_path, 0) / "gate" / "epoch002.npz")["losses"]
    # Each sample's loss is booked under its manifest index: one per utterance of the 6 full batches.
    assert losses.shape == (24,) and np.isfinite(losses).all()


def test_what_shards_cannot_serve_is_refused(tiny_prepared: Path, shards: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'data.shards' cannot be used with cluster_aware.enabled=true.*data.shards=null"):
        dino_config(tiny_prepared, shards, tmp_path, "cluster_aware.enabled=true", "run.init_checkpoint=x.pt")
    with pytest.raises(ConfigError, match=r"'data.shards' holds audio only .* modality=face"):
        dino_config(tiny_prepared, shards, tmp_path, "modality=face")
    with pytest.raises(ConfigError, match=r"'optim.steps_per_epoch' asks for 7 steps, .* only 6 full batches"):
        train_dino(dino_config(tiny_prepared, shards, tmp_path / "long", "optim.steps_per_epoch=7"))
    other = pack_shards(tiny_prepared / "manifests" / "test.tsv", tmp_path / "test_shards", workers=1)
    with pytest.raises(DataError, match=r"holds \d+ utterances but data.train_manifest lists 24.*avssl shards"):
        train_dino(dino_config(tiny_prepared, Path(other["out_dir"]) / "shards.tsv", tmp_path / "other"))
