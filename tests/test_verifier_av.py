"""The Verifier with faces: audio, face and fused modes on the tiny corpus, with tiny (untrained) encoders.

Files and arrays give the same embeddings, scores are symmetric, calibration on a development list
made from the corpus's dev split (never its test trials) sets every mode's threshold and the fusion,
fused scoring before calibration is refused, and unusable inputs are errors that name the file.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import avssl
from avssl.cli import main
from avssl.config import EncoderConfig, FaceEncoderConfig, FeatureConfig
from avssl.data.audio import load_audio
from avssl.errors import ConfigError, DataError
from avssl.eval.extract import save_embeddings
from avssl.faces.frames import FrameSampling, extract_frames
from avssl.inference import Recording
from avssl.models import build_encoder
from avssl.models.face_resnet import build_face_encoder
from avssl.synth.media import write_mp4
from avssl.train.encoder_file import save_encoder, save_face_encoder

SAMPLING = FrameSampling(size=32)  # the tiny corpus's videos are 64 x 64


@dataclass(frozen=True)
class Setup:
    audio_encoder: Path
    face_encoder: Path
    dev_trials: Path
    wav: Path  # the dev split's audio folder
    mp4: Path  # its face tracks (with an AAC audio track)


@pytest.fixture(scope="module")
def setup(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    out = tmp_path_factory.mktemp("verifier_av")
    torch.manual_seed(0)
    audio_config = EncoderConfig(channels=16, embedding_dim=8)
    audio = save_encoder(out / "audio.pt", build_encoder(audio_config, 80).eval(), audio_config, FeatureConfig(), 16000)
    face_config = FaceEncoderConfig(width=4, embedding_dim=8)
    face_model = build_face_encoder(face_config.name, face_config.embedding_dim, face_config.width).eval()
    face = save_face_encoder(out / "face.pt", face_model, face_config, SAMPLING.size, SAMPLING)
    # A development list from the dev split (labels from the speaker folder): every pair of its utterances.
    wav = tiny_corpus / "dev" / "wav"
    keys = sorted(str(p.relative_to(wav).with_suffix("")) for p in wav.rglob("*.wav"))
    lines = [f"{int(a.split('/')[0] == b.split('/')[0])} {a}.wav {b}.wav" for a, b in itertools.combinations(keys, 2)]
    dev_trials = out / "dev_trials.txt"
    dev_trials.write_text("\n".join(lines) + "\n")
    return Setup(audio, face, dev_trials, wav, tiny_corpus / "dev" / "mp4")


@pytest.fixture(scope="module")
def calibrated(setup: Setup) -> avssl.Verifier:
    verifier = avssl.Verifier.load(setup.audio_encoder, setup.face_encoder)
    verifier.calibrate(setup.dev_trials, setup.wav, setup.mp4)
    return verifier


def pair(root: Path, suffix: str) -> tuple[Path, Path]:
    """Two recordings of different speakers."""
    first, second = sorted(root.rglob(f"*{suffix}"))[:6:5]
    return first, second


def test_a_file_and_its_array_give_the_same_embedding(setup: Setup) -> None:
    verifier = avssl.Verifier.load(setup.audio_encoder, setup.face_encoder)
    wav, _ = pair(setup.wav, ".wav")
    mp4, _ = pair(setup.mp4, ".mp4")
    np.testing.assert_allclose(verifier.embed(wav), verifier.embed(load_audio(wav, 16000)), atol=1e-6)
    face = verifier.embed_face(mp4)
    assert face.shape == (8,) and np.linalg.norm(face) == pytest.approx(1.0)
    np.testing.assert_allclose(face, verifier.embed_face(extract_frames(mp4, SAMPLING).frames), atol=1e-6)
    # One .mp4 gives both tracks; its AAC audio is embedded like any audio file.
    assert Recording.of(mp4) == Recording(mp4, mp4) and Recording.of(wav) == Recording(audio=wav)
    assert np.linalg.norm(verifier.embed(mp4)) == pytest.approx(1.0)
    with pytest.raises(DataError, match="square RGB crops"):
        verifier.embed_face(np.zeros((3, 32, 40, 3), np.uint8))


def test_scores_are_symmetric_in_every_mode(calibrated: avssl.Verifier, setup: Setup) -> None:
    first, second = pair(setup.mp4, ".mp4")
    for mode in ("audio", "face", "fused"):
        assert calibrated.score(first, second, mode) == pytest.approx(calibrated.score(second, first, mode))
    frames = extract_frames(first, SAMPLING).frames
    assert calibrated.score(first, frames, "face") == pytest.approx(1.0)


def test_calibration_on_a_dev_list_sets_every_mode(calibrated: avssl.Verifier, setup: Setup) -> None:
    calibration = calibrated.calibration
    assert set(calibration.thresholds) == set(calibration.dev_eer) == {"audio", "face", "fused"}
    assert calibration.n_trials == 276 and 0.0 <= calibration.fusion.weight <= 1.0
    first, second = pair(setup.mp4, ".mp4")
    decision = calibrated.verify(first, second)  # both encoders: fused by default
    assert decision.mode == "fused" and set(decision.scores) == {"audio", "face", "fused"}
    assert decision.same_speaker == (decision.score >= calibration.thresholds["fused"])
    audio_z, face_z, weight = calibration.fusion.audio, calibration.fusion.face, calibration.fusion.weight
    expected = (1 - weight) * audio_z(decision.scores["audio"]) + weight * face_z(decision.scores["face"])
    assert decision.score == pytest.approx(float(expected))


def test_fused_scores_need_calibration_and_both_encoders(setup: Setup) -> None:
    first, second = pair(setup.mp4, ".mp4")
    verifier = avssl.Verifier.load(setup.audio_encoder, setup.face_encoder)
    with pytest.raises(ConfigError, match="fused scores need calibration"):
        verifier.verify(first, second)
    assert verifier.verify(first, second, "audio").same_speaker is None  # one modality needs no calibration
    face_only = avssl.Verifier.load(face_encoder_path=setup.face_encoder)
    assert face_only.default_mode == "face"
    with pytest.raises(ConfigError, match="no audio encoder loaded: give encoder_path"):
        face_only.score(first, second, "audio")
    with pytest.raises(ConfigError, match="video_root, --dev-video-root"):
        face_only.calibrate(setup.dev_trials, setup.wav)


def test_loading_errors_say_what_to_do(setup: Setup, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a face encoder file: give it as face_encoder_path"):
        avssl.Verifier.load(setup.face_encoder)
    with pytest.raises(DataError, match="is a speaker encoder file: give it as encoder_path"):
        avssl.Verifier.load(face_encoder_path=setup.audio_encoder)
    other = save_embeddings(tmp_path / "other.npz", ["a", "b"], np.ones((2, 5), np.float32))
    with pytest.raises(DataError, match="shape \\(2, 5\\), but the encoder gives dimension 8"):
        avssl.Verifier.load(face_encoder_path=setup.face_encoder, face_train_embeddings=other)
    with pytest.raises(ConfigError, match="training embeddings need the encoder"):
        avssl.Verifier.load(setup.audio_encoder, face_train_embeddings=other)


def test_unusable_inputs_name_the_file(calibrated: avssl.Verifier, setup: Setup, tmp_path: Path) -> None:
    good, _ = pair(setup.mp4, ".mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(DataError, match=f"{re.escape(str(broken))}: unreadable"):
        calibrated.score(good, broken, "face")
    with pytest.raises(DataError, match=f"cannot decode audio file {re.escape(str(broken))}"):
        calibrated.score(good, broken, "audio")
    silent = tmp_path / "silent.mp4"  # a face track without its audio stream
    write_mp4(silent, extract_frames(good, FrameSampling(size=64)).frames, None, 16000, 25)
    with pytest.raises(DataError, match=f"{re.escape(str(silent))}: the file has no audio stream"):
        calibrated.score(good, silent, "fused")
    wav, _ = pair(setup.wav, ".wav")
    with pytest.raises(DataError, match=f"needs a face .* {re.escape(str(wav))} has none"):
        calibrated.score(good, wav, "face")
    with pytest.raises(DataError, match=f"{re.escape(str(wav))}: no_video_stream"):
        calibrated.score(good, Recording(face=wav), "face")


def test_the_cli_prints_scores_and_the_decision(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = pair(setup.mp4, ".mp4")
    argv = ["verify", str(first), str(second), "--encoder", str(setup.audio_encoder),
            "--face-encoder", str(setup.face_encoder)]
    calibration = ["--dev-trials", str(setup.dev_trials), "--dev-root", str(setup.wav),
                   "--dev-video-root", str(setup.mp4)]
    assert main([*argv, *calibration]) == 0
    out = capsys.readouterr().out
    assert "calibrated on" in out and "face weight" in out and "decision (fused):" in out
    assert all(f"{mode:<5} score" in out and "threshold" in out for mode in ("audio", "face", "fused"))
    assert main(argv) == 2
    assert "fused scores need calibration" in capsys.readouterr().err
    assert main([*argv, "--mode", "face"]) == 0
    assert "decision (face): no decision (give --dev-trials)" in capsys.readouterr().out
    assert main(["verify", str(first), str(second)]) == 2
    assert "needs an audio encoder (encoder_path, --encoder)" in capsys.readouterr().err
