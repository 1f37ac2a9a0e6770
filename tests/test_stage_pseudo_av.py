"""Audio-visual stage II (``cross_modal.enabled``): both encoders on fused labels, with a cross-modal gate.

A tiny run on the tiny corpus trains both encoders, reports the fused, audio-only and face-only NMI and
the utterances without a usable face (no video, a missing file, an unreadable stored file), which still
train the audio side; an interrupted run resumes to the same files; bad settings name their key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avssl.config import EncoderConfig, FaceEncoderConfig, FeatureConfig, PseudoTrainConfig, load_config
from avssl.data.manifest import read_manifest, write_manifest
from avssl.errors import ConfigError
from avssl.faces.frames import FrameSampling
from avssl.models import build_encoder
from avssl.models.face_resnet import build_face_encoder
from avssl.prep.faces import prepare_faces
from avssl.pseudo.cross_modal import fit_cross_modal_gate
from avssl.pseudo.cross_modal_epoch_gate import EpochLosses, cross_modal_gate_for_epoch
from avssl.train.encoder_file import load_face_encoder, save_encoder, save_face_encoder
from avssl.train.stage_pseudo import round_dir, train_pseudo_labels
from tests.conftest import tiny_pseudo_overrides

FRAME_SIZE = 32
HELPER = Path(__file__).parent / "helpers" / "ddp_pseudo.py"


@dataclasses.dataclass(frozen=True)
class AvData:
    """The tiny corpus's dev manifest with three utterances lacking a usable face, its face store, encoders."""

    manifest: Path
    store: Path
    audio_encoder: Path
    face_encoder: Path
    faceless: tuple[str, ...]


@pytest.fixture(scope="module")
def av(tiny_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> AvData:
    root = tmp_path_factory.mktemp("pseudo_av")
    utterances = read_manifest(tiny_prepared / "manifests" / "dev.tsv")
    # No video in the manifest; a video file that is gone; a stored frames file that is garbage.
    utterances[0] = dataclasses.replace(utterances[0], video=None)
    utterances[5] = dataclasses.replace(utterances[5], video=str(root / "gone.mp4"))
    manifest = write_manifest(root / "dev.tsv", utterances)
    store = root / "faces"
    prepare_faces(manifest, store, FrameSampling(size=FRAME_SIZE), fmt="npy", workers=1)
    (store / "frames" / f"{utterances[11].key}.npy").write_bytes(b"not frames")
    torch.manual_seed(0)
    audio_config = EncoderConfig(name="ecapa", channels=16, embedding_dim=16)
    audio = save_encoder(root / "audio.safetensors", build_encoder(audio_config, 80), audio_config,
                         FeatureConfig(), 16000)
    face_config = FaceEncoderConfig(width=4, embedding_dim=16)
    face = save_face_encoder(root / "face.safetensors", build_face_encoder(face_config.name, 16, 4), face_config,
                             FRAME_SIZE, FrameSampling(size=FRAME_SIZE))
    return AvData(manifest, store, audio, face, tuple(utterances[i].key for i in (0, 5, 11)))


def _overrides(av: AvData, prepared: Path, out: Path, *extra: str) -> list[str]:
    return [
        *tiny_pseudo_overrides(prepared, av.audio_encoder, out, av.manifest),
        "cross_modal.enabled=true",
        f"cross_modal.init_face_encoder={av.face_encoder}",
        f"cross_modal.frames.store={av.store}",
        "rounds.epochs=2",
        *extra,
    ]


def test_cross_modal_gate_follows_the_audio_schedule() -> None:
    def config(*extra: str) -> PseudoTrainConfig:
        return load_config(PseudoTrainConfig, None, ["init_encoder=x", "data.train_manifest=x", "run.output_dir=x",
                                                     "cross_modal.enabled=true", "cross_modal.init_face_encoder=x",
                                                     *extra])

    rng = np.random.default_rng(0)
    right = rng.random(1000) < 0.7
    audio, face = (np.exp(np.where(right, rng.normal(-3, 1, 1000), rng.normal(0.5, 1, 1000))) for _ in range(2))
    losses = EpochLosses(audio, face, rng.random(1000) < 0.8)
    warm = cross_modal_gate_for_epoch(0, config(), losses, None, 0)
    assert warm.thresholds() == {"joint": None} and not warm.correct and "warm-up" in warm.note
    fitted = cross_modal_gate_for_epoch(2, config("cross_modal.gate=and"), losses, None, 0)
    assert fitted.correct and fitted.gate.thresholds == fit_cross_modal_gate(audio, face, losses.has_face, "and").thresholds
    assert fitted.threshold == fitted.gate.thresholds["audio"]  # the headline threshold of and / or is the audio one
    fixed = cross_modal_gate_for_epoch(1, config("gate.mode=fixed", "cross_modal.gate=or"), None, None, 0)
    assert fixed.thresholds() == {"audio": 5.0, "face": 5.0} and not fixed.correct  # LC starts at epoch 2
    assert cross_modal_gate_for_epoch(3, config("gate.mode=none"), losses, None, 0).thresholds() == {"joint": None}


def _same_files(a: Path, b: Path) -> bool:
    first, second = load_file(str(a)), load_file(str(b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_av_rounds_train_both_encoders_then_resume_exactly(av: AvData, tiny_prepared: Path, tmp_path: Path) -> None:
    config = load_config(PseudoTrainConfig, None, _overrides(av, tiny_prepared, tmp_path / "full"))
    full = train_pseudo_labels(config)
    assert [p.name for p in full.round_encoders] == ["encoder.safetensors"] * 2
    assert [p.name for p in full.round_face_encoders] == ["face_encoder.safetensors"] * 2
    face, info = load_face_encoder(full.round_face_encoders[-1])
    assert (info.image_size, info.encoder.embedding_dim) == (FRAME_SIZE, 16)
    assert not _same_files(full.round_face_encoders[0], av.face_encoder)  # the face encoder trained
    for summary in full.rounds:
        headline = summary["cross_modal"]
        assert headline["utterances_without_face"] == 3
        nmi = headline["nmi_diagnostic"]
        assert all(0.0 <= nmi[k] <= 1.0 for k in ("audio", "face", "fused"))
        assert sorted(summary["label_report"]["without_face_keys"]) == sorted(av.faceless)
        for epoch in summary["epochs"]:
            assert epoch["samples_without_face"] == 3 and np.isfinite(epoch["mean_face_loss"])
            assert epoch["fraction_kept"] + epoch["fraction_corrected"] + epoch["fraction_dropped"] == pytest.approx(1)
        assert summary["epochs"][1]["thresholds"].keys() == {"joint"}
    # The faceless utterances trained their audio: finite audio losses, face losses recorded as NaN.
    record = np.load(round_dir(tmp_path / "full", 0) / "gate" / "epoch002.npz")
    assert np.isfinite(record["losses"]).all() and record["losses"].shape == (24,)
    assert (~record["has_face"]).sum() == 3 and np.isnan(record["face_losses"][~record["has_face"]]).all()
    assert np.isfinite(record["face_losses"][record["has_face"]]).all()

    # Interrupted inside round 2, then resumed: the same encoder files and summaries.
    interrupted = load_config(PseudoTrainConfig, None, _overrides(av, tiny_prepared, tmp_path / "resumed"))
    assert len(train_pseudo_labels(interrupted, stop_after_epochs=3).round_encoders) == 1
    resumed = train_pseudo_labels(interrupted, resume=True)
    assert _same_files(resumed.round_encoders[-1], full.round_encoders[-1])
    assert _same_files(resumed.round_face_encoders[-1], full.round_face_encoders[-1])
    assert json.dumps(resumed.rounds) == json.dumps(full.rounds)


def test_face_crops_made_in_loader_workers_train_the_same_encoders(
    av: AvData, tiny_prepared: Path, tmp_path: Path
) -> None:
    """Two data-loader worker processes read, crop and augment the faces (and the audio): same result."""
    runs = {
        workers: train_pseudo_labels(load_config(PseudoTrainConfig, None, _overrides(
            av, tiny_prepared, tmp_path / f"workers{workers}", "rounds.count=1", f"data.num_workers={workers}")))
        for workers in (0, 2)
    }
    assert _same_files(runs[0].round_encoders[0], runs[2].round_encoders[0])
    assert _same_files(runs[0].round_face_encoders[0], runs[2].round_face_encoders[0])
    assert runs[2].rounds[0]["epochs"][1]["samples_without_face"] == 3


@pytest.mark.parametrize("mode", ["and", "or"])
def test_per_modality_gates_with_affinity_fusion(av: AvData, tiny_prepared: Path, tmp_path: Path, mode: str) -> None:
    result = train_pseudo_labels(load_config(PseudoTrainConfig, None, _overrides(
        av, tiny_prepared, tmp_path, f"cross_modal.gate={mode}", "cross_modal.fusion=affinity",
        "cross_modal.n_neighbors=3", "rounds.count=1")))
    summary = result.rounds[0]
    assert summary["cross_modal"]["gate"] == mode and summary["label_report"]["source"] == "fused affinity"
    assert summary["epochs"][1]["thresholds"].keys() == {"audio", "face"}


def test_two_processes_share_the_cross_modal_gate(av: AvData, tiny_prepared: Path, tmp_path: Path) -> None:
    """Both ranks fit the same per-modality thresholds on the face and audio losses of both ranks."""
    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        str(HELPER), *_overrides(av, tiny_prepared, out, "rounds.count=1", "rounds.epochs=3", "optim.batch_size=2",
                                 "cross_modal.gate=or", "gate.min_reliable_weight=0"),  # a threshold in every fit
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    files = [out / f"rank{r}_thresholds.json" for r in range(2)]
    assert all(p.is_file() for p in files), completed.stderr[-3000:]
    assert json.loads(files[0].read_text()) == json.loads(files[1].read_text())
    record = np.load(round_dir(out, 0) / "gate" / "epoch002.npz")
    assert record["has_face"].shape == (24,) and (~record["has_face"]).sum() == 3
    summary = json.loads((round_dir(out, 0) / "summary.json").read_text())
    assert summary["cross_modal"]["utterances_without_face"] == 3
    # Each rank embedded half of the utterances for the fused labels; the merged report names all three
    # faceless utterances (they fall to both ranks), and the shares are gone.
    assert sorted(summary["label_report"]["without_face_keys"]) == sorted(av.faceless)
    assert not list(round_dir(out, 0).glob("embeddings.rank*.npz"))
    assert all(e["thresholds"]["face"] is not None for e in summary["epochs"][1:])


def test_cross_modal_config_errors_name_their_key(av: AvData, tiny_prepared: Path, tmp_path: Path) -> None:
    base = [k for k in _overrides(av, tiny_prepared, tmp_path) if not k.startswith("cross_modal.init_face_encoder")]
    with pytest.raises(ConfigError, match="cross_modal.init_face_encoder"):
        load_config(PseudoTrainConfig, None, base)
    for bad, key in (("cross_modal.gate=xor", "cross_modal.gate"), ("cross_modal.fusion=spectral", "cross_modal.fusion"),
                     ("cross_modal.audio_weight=1.5", "cross_modal.audio_weight"),
                     ("cross_modal.crop_scale=[0.5,2.0]", "cross_modal.crop_scale")):
        with pytest.raises(ConfigError, match=key):
            load_config(PseudoTrainConfig, None, [*_overrides(av, tiny_prepared, tmp_path), bad])
