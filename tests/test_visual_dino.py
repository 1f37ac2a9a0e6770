"""Visual DINO: the stage-I loop on face crops, on the tiny corpus's face tracks.

It trains end to end and writes a face encoder file, resumes exactly, runs cluster-aware with partner
crops from other utterances, leaves out (and counts) utterances without usable video, and its face
embeddings feed the face and fused systems of `avssl eval`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.cli import main as cli_main
from avssl.config import DinoTrainConfig, load_config
from avssl.data.manifest import read_manifest, write_manifest
from avssl.errors import ConfigError, DataError
from avssl.eval.evaluate import EvalRequest, evaluate
from avssl.eval.extract import load_embedding_meta, load_embeddings
from avssl.eval.extract_job import extract_to_file
from avssl.faces.embed import frames_to_input
from avssl.faces.frames import FrameSampling
from avssl.faces.store import FaceStore
from avssl.models import build_encoder
from avssl.prep.faces import prepare_faces
from avssl.pseudo.labels import read_pseudo_labels, write_pseudo_labels
from avssl.train.checkpoint import save_checkpoint
from avssl.train.encoder_file import load_face_encoder, read_encoder_configs, save_encoder
from avssl.train.stage_dino import DinoResult, train_dino
from tests.test_train import assert_same_state

FRAME_SIZE = 32  # stored frames; the tiny corpus's videos are 64 x 64
DEMO_CONFIG = Path(__file__).parents[1] / "configs" / "demo" / "face_dino.yaml"


@dataclasses.dataclass(frozen=True)
class FaceData:
    """A training manifest with two video-less utterances, the test manifest, and a store for each."""

    train_manifest: Path
    train_store: Path
    test_manifest: Path
    test_store: Path
    videoless: tuple[str, ...]


@pytest.fixture(scope="module")
def faces(tiny_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> FaceData:
    root = tmp_path_factory.mktemp("visual_dino")
    utterances = read_manifest(tiny_prepared / "manifests" / "dev.tsv")
    # One utterance without a video in the manifest, one whose video file is gone.
    utterances[0] = dataclasses.replace(utterances[0], video=None)
    utterances[5] = dataclasses.replace(utterances[5], video=str(root / "gone.mp4"))
    train_manifest = write_manifest(root / "dev.tsv", utterances)
    test_manifest = tiny_prepared / "manifests" / "test.tsv"
    sampling = FrameSampling(size=FRAME_SIZE)
    for manifest, store in ((train_manifest, root / "dev_faces"), (test_manifest, root / "test_faces")):
        prepare_faces(manifest, store, sampling, fmt="npy", workers=1)
    return FaceData(train_manifest, root / "dev_faces", test_manifest, root / "test_faces",
                    (utterances[0].key, utterances[5].key))


def face_overrides(faces: FaceData, out: Path) -> list[str]:
    """Visual DINO small enough to train a few steps in seconds on one CPU core."""
    return [
        "modality=face",
        f"data.train_manifest={faces.train_manifest}",
        f"face.frames.store={faces.train_store}",
        f"run.output_dir={out}",
        f"face.crops.global_size={FRAME_SIZE}",
        "face.crops.local_size=16",
        "face.crops.num_local=2",
        "face.encoder.width=4",
        "face.encoder.embedding_dim=16",
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


def face_config(faces: FaceData, out: Path, *extra: str) -> DinoTrainConfig:
    return load_config(DinoTrainConfig, None, [*face_overrides(faces, out), *extra])


@pytest.fixture(scope="module")
def face_run(faces: FaceData, tmp_path_factory: pytest.TempPathFactory) -> DinoResult:
    """Two epochs of visual DINO, shared by the tests that need a trained face model."""
    return train_dino(face_config(faces, tmp_path_factory.mktemp("face_run") / "run"))


def log_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def test_face_dino_trains_and_writes_a_face_encoder(face_run: DinoResult, faces: FaceData) -> None:
    out = face_run.output_dir
    for name in ("config.yaml", "checkpoint.pt", "encoder.pt", "train_log.jsonl", "excluded_utterances.json"):
        assert (out / name).is_file(), name
    assert np.isfinite(face_run.final_loss)
    steps = log_lines(out)
    assert len(steps) == 2 * (22 // 4) and all(np.isfinite(s["loss"]) for s in steps)  # 24 - 2 video-less
    encoder, info = load_face_encoder(face_run.encoder_path)
    assert (info.image_size, info.encoder.width, info.encoder.embedding_dim) == (FRAME_SIZE, 4, 16)
    assert info.frames == FrameSampling(size=FRAME_SIZE)  # the store's sampling travels with the encoder
    assert_same_state(encoder.state_dict(), face_run.teacher.encoder.state_dict())  # the teacher's
    with pytest.raises(DataError, match="extract-faces"):
        read_encoder_configs(face_run.encoder_path)  # a face encoder is not a speaker encoder


def test_videoless_utterances_are_excluded_and_counted(
    face_run: DinoResult, faces: FaceData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = json.loads((face_run.output_dir / "excluded_utterances.json").read_text())
    assert (report["manifest_utterances"], report["used"], report["excluded"]) == (24, 22, 2)
    assert sorted(report["excluded_keys"]) == sorted(faces.videoless)
    # `avssl train` with the demo face config, decoding the videos on the fly: the same two are left out.
    out = tmp_path / "decoded"
    argv = ["train", str(DEMO_CONFIG), *face_overrides(faces, out), "face.frames.store=null",
            f"face.frames.size={FRAME_SIZE}", "optim.epochs=1", "optim.steps_per_epoch=1", "face.crops.num_local=4"]
    assert cli_main(argv) == 0
    assert "teacher encoder" in capsys.readouterr().out
    report = json.loads((out / "excluded_utterances.json").read_text())
    assert report["excluded"] == 2 and "on the fly" in report["frames"]
    assert load_face_encoder(out / "encoder.pt")[1].frames == FrameSampling(size=FRAME_SIZE)


def test_resume_after_interruption_equals_uninterrupted_run(
    face_run: DinoResult, faces: FaceData, tmp_path: Path
) -> None:
    interrupted = face_config(faces, tmp_path / "resumed")
    train_dino(interrupted, stop_after_epochs=1)
    resumed = train_dino(interrupted, resume=True)
    assert_same_state(face_run.teacher.state_dict(), resumed.teacher.state_dict())
    assert_same_state(face_run.student.state_dict(), resumed.student.state_dict())


def test_cluster_aware_face_dino_draws_partner_crops(face_run: DinoResult, faces: FaceData, tmp_path: Path) -> None:
    config = face_config(faces, tmp_path / "ca", "cluster_aware.enabled=true", "cluster_aware.n_clusters=[3]",
                         f"run.init_checkpoint={face_run.output_dir / 'checkpoint.pt'}", "optim.epochs=1")
    result = train_dino(config)
    labels = read_pseudo_labels(tmp_path / "ca" / "clusters" / "epoch0000.tsv")
    used = {u.key for u in read_manifest(faces.train_manifest)} - set(faces.videoless)
    assert set(labels) == used and len(set(labels.values())) <= 3  # faces embedded, video-less left out
    fractions = [line["clusters/partner_fraction"] for line in log_lines(tmp_path / "ca") if "loss" in line]
    assert len(fractions) == 22 // 4 and min(fractions) > 0  # every batch trained with partner crops
    assert np.isfinite(result.final_loss)


def test_face_dino_takes_its_clusters_from_another_run(faces: FaceData, tmp_path: Path) -> None:
    """cluster_aware.labels: partners from a given key -> cluster file (e.g. the audio model's), no k-means."""
    keys = [u.key for u in read_manifest(faces.train_manifest)]
    given = tmp_path / "audio_clusters.tsv"
    write_pseudo_labels(given, keys, np.arange(len(keys)) % 2)  # two clusters, every utterance has a partner
    config = face_config(faces, tmp_path / "given", "cluster_aware.enabled=true", f"cluster_aware.labels={given}",
                         "optim.epochs=1")
    result = train_dino(config)  # from scratch: no run.init_checkpoint needed when the clusters are given
    assert not (tmp_path / "given" / "clusters").exists()  # nothing was clustered
    fractions = [line["clusters/partner_fraction"] for line in log_lines(tmp_path / "given") if "loss" in line]
    assert fractions and min(fractions) == 1.0 and np.isfinite(result.final_loss)

    write_pseudo_labels(given, keys[:5], np.zeros(5, dtype=np.int64))
    with pytest.raises(DataError, match=r"cluster_aware.labels.*no cluster for"):
        train_dino(face_config(faces, tmp_path / "short", "cluster_aware.enabled=true", f"cluster_aware.labels={given}"))
    with pytest.raises(ConfigError, match="cluster_aware.labels"):
        train_dino(face_config(faces, tmp_path / "none", "cluster_aware.enabled=true",
                               f"cluster_aware.labels={tmp_path / 'missing.tsv'}"))
    with pytest.raises(ConfigError, match="recluster_every_epochs"):
        face_config(faces, tmp_path / "x", "cluster_aware.enabled=true", f"cluster_aware.labels={given}",
                    "cluster_aware.recluster_every_epochs=2")


def test_a_checkpoint_of_the_other_modality_is_refused(faces: FaceData, tmp_path: Path) -> None:
    audio_checkpoint = save_checkpoint(tmp_path / "audio.pt", {"config": {"modality": "audio"}})
    config = face_config(faces, tmp_path / "ca", "cluster_aware.enabled=true",
                         f"run.init_checkpoint={audio_checkpoint}")
    with pytest.raises(ConfigError, match="run.init_checkpoint.*audio model"):
        train_dino(config)


def test_face_config_errors_name_the_key(faces: FaceData, tmp_path: Path) -> None:
    cases = {
        "modality=video": "'modality'",
        "face.crops.num_global=1": "'face.crops.num_global'",
        "face.crops.local_scale=[0.5,0.2]": "'face.crops.local_scale'",
        "face.encoder.name=face_resnet50": "'face.encoder.name'",
        "face.augment.flip_p=2": "'face.augment.flip_p'",
        "cluster_aware.global_from_partner=2": "face.crops.num_global",
    }
    for override, key in cases.items():
        with pytest.raises(ConfigError, match=key):
            face_config(faces, tmp_path, override)
    config = load_config(DinoTrainConfig, DEMO_CONFIG,
                         ["data.train_manifest=m.tsv", "face.frames.store=s", "run.output_dir=o"])
    assert (config.modality, config.face.frames.store) == ("face", "s")


def test_face_embeddings_round_trip_into_eval(
    face_run: DinoResult, faces: FaceData, tiny_prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder_path = str(face_run.encoder_path)
    test_faces, dev_faces = tmp_path / "test_faces.npz", tmp_path / "dev_faces.npz"
    assert cli_main(["extract-faces", encoder_path, str(faces.test_manifest), str(test_faces),
                     "--store", str(faces.test_store)]) == 0
    assert cli_main(["extract-faces", encoder_path, str(faces.train_manifest), str(dev_faces),
                     "--store", str(faces.train_store), "--batch-frames", "7"]) == 0
    assert "skipped 2 utterance(s) without usable video" in capsys.readouterr().out
    keys, embeddings = load_embeddings(test_faces)
    test_utterances = read_manifest(faces.test_manifest)
    assert keys == [u.key for u in test_utterances] and embeddings.shape == (len(keys), 16)
    assert sorted(load_embedding_meta(dev_faces)["skipped"]) == sorted(faces.videoless)

    # An utterance's embedding is the mean of its frames' embeddings (eval mode: batching does not matter).
    encoder, info = load_face_encoder(encoder_path)
    with torch.no_grad():
        frames = frames_to_input(FaceStore(faces.test_store).frames(test_utterances[2]), info.image_size)
        expected = encoder(frames).mean(dim=0).numpy()
    np.testing.assert_allclose(embeddings[2], expected, rtol=1e-4, atol=1e-5)
    # Decoding the videos with the encoder's recorded sampling gives what the (lossless) store gave.
    decoded = tmp_path / "decoded.npz"
    assert cli_main(["extract-faces", encoder_path, str(faces.test_manifest), str(decoded)]) == 0
    np.testing.assert_allclose(load_embeddings(decoded)[1], embeddings, rtol=1e-4, atol=1e-5)

    # Audio embeddings from a (randomly initialised) speaker encoder: eval needs both modalities.
    from avssl.config import EncoderConfig, FeatureConfig

    audio_encoder = save_encoder(tmp_path / "audio.safetensors", build_encoder(EncoderConfig("ecapa", 16, 16), 80),
                                 EncoderConfig("ecapa", 16, 16), FeatureConfig(), 16000)
    audio_test, audio_dev = tmp_path / "audio_test.npz", tmp_path / "audio_dev.npz"
    extract_to_file(audio_encoder, faces.test_manifest, audio_test)
    extract_to_file(audio_encoder, tiny_prepared / "manifests" / "dev.tsv", audio_dev)
    trials = sorted((tiny_prepared / "trials").glob("*.txt"))[:1]
    evaluation = evaluate(EvalRequest(trial_files=trials, embeddings=audio_test, train_embeddings=audio_dev,
                                      face_embeddings=test_faces, face_cohort_embeddings=dev_faces,
                                      fusion_weight=0.5))
    metrics = evaluation.metrics[trials[0].stem]
    assert {"raw", "face", "fused"} <= set(metrics)
    assert all(0.0 <= metrics[system]["eer"] <= 1.0 for system in ("face", "fused"))
    assert evaluation.settings["fusion"]["face_embeddings"] == str(test_faces)
