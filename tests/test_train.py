"""Stage-I training on the tiny corpus: it runs, resumes exactly, and agrees across 2 processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avssl.config import DinoTrainConfig, load_config
from avssl.data.manifest import read_manifest
from avssl.eval.extract import embed_utterances, encoder_embedder
from avssl.train.encoder_file import load_encoder
from avssl.train.stage_dino import TrainingDiverged, train_dino
from tests.conftest import tiny_dino_overrides

HELPER = Path(__file__).parent / "helpers" / "ddp_train.py"


def config_for(prepared: Path, out: Path, *extra: str) -> DinoTrainConfig:
    return load_config(DinoTrainConfig, None, [*tiny_dino_overrides(prepared, out), *extra])


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{key} differs")


def test_training_writes_outputs_and_a_usable_encoder(tiny_prepared: Path, tmp_path: Path) -> None:
    result = train_dino(config_for(tiny_prepared, tmp_path / "run"))
    out = tmp_path / "run"
    for name in ("config.yaml", "checkpoint.pt", "encoder.pt", "train_log.jsonl"):
        assert (out / name).is_file(), name
    assert any((out / "tensorboard").iterdir())
    assert result.final_loss == result.final_loss  # finite, not NaN
    encoder, fbank, sample_rate = load_encoder(result.encoder_path)
    utterances = read_manifest(tiny_prepared / "manifests" / "test.tsv")[:3]
    embeddings = embed_utterances(encoder_embedder(encoder, fbank), utterances, sample_rate)
    assert embeddings.shape == (3, 16)
    # The saved encoder is the teacher's.
    assert_same_state(encoder.state_dict(), result.teacher.encoder.state_dict())


def test_resume_after_interruption_equals_uninterrupted_run(tiny_prepared: Path, tmp_path: Path) -> None:
    straight = train_dino(config_for(tiny_prepared, tmp_path / "straight"))
    interrupted = config_for(tiny_prepared, tmp_path / "resumed")
    train_dino(interrupted, stop_after_epochs=1)
    resumed = train_dino(interrupted, resume=True)
    assert_same_state(straight.teacher.state_dict(), resumed.teacher.state_dict())
    assert_same_state(straight.student.state_dict(), resumed.student.state_dict())


def test_non_finite_loss_stops_and_keeps_the_checkpoint(tiny_prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_dino(config_for(tiny_prepared, out, "optim.epochs=1"))
    before = (out / "checkpoint.pt").read_bytes()
    # An absurd learning rate with no clipping makes the weights, then the loss, overflow.
    diverging = config_for(tiny_prepared, out, "optim.epochs=3", "optim.lr=1e30", "optim.warmup_epochs=0",
                           "optim.clip_grad=0")
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train_dino(diverging, resume=True)
    assert (out / "checkpoint.pt").read_bytes() == before


def test_two_processes_end_with_identical_weights(tiny_prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        str(HELPER), *tiny_dino_overrides(tiny_prepared, out),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    ranks = [out / f"rank{r}_weights.pt" for r in range(2)]
    # A rank may rarely abort at interpreter exit after finishing (gloo teardown): judge the results.
    assert all(p.is_file() for p in ranks), completed.stderr[-3000:]
    first, second = (torch.load(p, weights_only=True) for p in ranks)
    assert_same_state(first["student"], second["student"])
    assert_same_state(first["teacher"], second["teacher"])
    assert (out / "encoder.pt").is_file()


def test_encoder_is_the_average_of_the_last_teachers(tiny_prepared: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "avg"
    train_dino(config_for(tiny_prepared, out, "optim.epochs=3", "run.average_last_epochs=2"))
    snapshots = [load_file(str(out / "teacher_snapshots" / f"epoch{e:04d}.safetensors")) for e in (2, 3)]
    averaged = load_file(str(out / "encoder.pt"))
    for key, value in averaged.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (snapshots[0][key] + snapshots[1][key]) / 2)
    assert not (out / "teacher_snapshots" / "epoch0001.safetensors").exists()


def test_last_layer_is_frozen_during_the_first_epoch(tiny_prepared: Path, tmp_path: Path) -> None:
    from accelerate.utils import set_seed

    from avssl.models import build_encoder
    from avssl.models.dino_head import DinoHead

    config = config_for(tiny_prepared, tmp_path / "unused")
    set_seed(config.run.seed)  # train_dino builds its models right after seeding: the same initial weights
    build_encoder(config.encoder, config.features.n_mels)
    initial = DinoHead(config.encoder.embedding_dim, config.dino).last_layer.parametrizations.weight.original1

    def last_layer_after_one_epoch(freeze: int) -> torch.Tensor:
        run = config_for(tiny_prepared, tmp_path / f"freeze{freeze}", f"dino.freeze_last_layer_epochs={freeze}")
        result = train_dino(run, stop_after_epochs=1)
        return result.student.head.last_layer.parametrizations.weight.original1.detach()

    torch.testing.assert_close(last_layer_after_one_epoch(1), initial.detach(), rtol=0, atol=0)
    assert not torch.equal(last_layer_after_one_epoch(0), initial.detach())


def test_worker_count_does_not_change_training(tiny_prepared: Path, tmp_path: Path) -> None:
    runs = {
        workers: train_dino(config_for(tiny_prepared, tmp_path / f"w{workers}", "optim.epochs=1",
                                       "data.featurise_in=workers", f"data.num_workers={workers}"))
        for workers in (0, 2)
    }
    assert_same_state(runs[0].teacher.state_dict(), runs[2].teacher.state_dict())
    on_device = train_dino(config_for(tiny_prepared, tmp_path / "device", "optim.epochs=1", "data.featurise_in=device"))
    assert on_device.final_loss == on_device.final_loss  # the device path trains too (finite loss)
