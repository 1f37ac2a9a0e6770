"""Evaluation at scale: bucketed extraction, 2 processes, the embedding cache, skipped audio, `avssl eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avssl.cli import main
from avssl.config import EncoderConfig, FeatureConfig
from avssl.data.audio import load_audio
from avssl.data.manifest import Utterance, read_manifest, write_manifest
from avssl.errors import ConfigError
from avssl.eval.asnorm import cluster_mean_cohort
from avssl.eval.buckets import plan_batches, share_batches
from avssl.eval.evaluate import EvalRequest, evaluate
from avssl.eval.extract import (
    ExtractionSettings,
    centre_crop,
    embed_utterances,
    load_embedding_meta,
    load_embeddings,
    save_embeddings,
)
from avssl.eval.extract_job import extract_to_file
from avssl.eval.fusion import fit_fusion_weight
from avssl.eval.trials import read_trials
from avssl.models import build_encoder
from avssl.models.waveform import WaveformEncoder
from avssl.pseudo.kmeans import cluster_embeddings
from avssl.train.encoder_file import load_encoder, save_encoder
from tests.test_eval_extras import _asnorm_loop

RATE = 16000
# Four equal lengths, two equal ones plus one within 1 %, and a loner: bucketing has something to do.
LENGTHS = [24000, 24000, 24000, 24000, 22000, 22000, 21800, 20000]


def _encoder(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    config = EncoderConfig(channels=16, embedding_dim=8)
    encoder = build_encoder(config, 80)
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode differs from identity
        for module in encoder.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return save_encoder(path, encoder, config, FeatureConfig(), RATE)


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _encoder(tmp_path_factory.mktemp("enc") / "encoder.pt", seed=0)


@pytest.fixture(scope="module")
def clips(tiny_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Utterance]:
    """Real corpus audio cut to LENGTHS, one clip per tiny-corpus test utterance."""
    folder = tmp_path_factory.mktemp("clips")
    sources = read_manifest(tiny_prepared / "manifests" / "test.tsv")
    clips = []
    for i, (length, source) in enumerate(zip(LENGTHS, sources, strict=False)):
        path = folder / f"clip{i}.wav"
        sf.write(path, load_audio(source.audio, RATE)[:length], RATE)
        clips.append(Utterance(f"spk{i % 4}/s{i}/00001", str(path), None, length / RATE, RATE))
    return clips


@pytest.fixture(scope="module")
def manifest_with_bad_audio(clips: list[Utterance], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clips plus one corrupt and one missing audio file."""
    folder = tmp_path_factory.mktemp("bad")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00 this is not audio")
    bad = [
        Utterance("spk9/bad/corrupt", str(folder / "corrupt.wav"), None, 1.5, RATE),
        Utterance("spk9/bad/missing", str(folder / "missing.wav"), None, 1.5, RATE),
    ]
    return write_manifest(folder / "manifest.tsv", [*clips, *bad])


def _model(encoder_file: Path) -> WaveformEncoder:
    encoder, fbank, _ = load_encoder(encoder_file)
    return WaveformEncoder(encoder, fbank).eval()


def test_plan_batches_tolerance_and_cap() -> None:
    assert plan_batches(LENGTHS, 0.0, 10**9) == [[0, 1, 2, 3], [4, 5], [6], [7]]
    assert plan_batches(LENGTHS, 0.02, 10**9) == [[0, 1, 2, 3], [4, 5, 6], [7]]
    assert plan_batches(LENGTHS, 0.2, 10**9) == [[0, 1, 2, 3, 4, 5, 6, 7]]
    # The cap counts cropped samples: two 24000-sample clips fit in 50000, three do not.
    assert plan_batches(LENGTHS, 0.0, 50000) == [[0, 1], [2, 3], [4, 5], [6], [7]]
    assert plan_batches([50000], 0.0, 1000) == [[0]]  # a long utterance still gets its own batch
    batches = plan_batches(LENGTHS, 0.0, 50000)
    shares = share_batches(batches, LENGTHS, 2)
    assert sorted(b for share in shares for b in share) == list(range(len(batches)))
    with pytest.raises(ConfigError, match="--bucket-tolerance"):
        plan_batches(LENGTHS, 1.0, 100)


def test_tolerance_zero_equals_one_at_a_time(encoder_file: Path, clips: list[Utterance]) -> None:
    model = _model(encoder_file)
    bucketed = embed_utterances(model, clips, RATE, settings=ExtractionSettings(bucket_tolerance=0.0))
    with torch.no_grad():
        single = np.stack([model(torch.from_numpy(load_audio(u.audio, RATE))[None])[0].numpy() for u in clips])
    np.testing.assert_allclose(bucketed, single, atol=1e-5, rtol=0)
    # With 2 % tolerance the 22000-sample clips share a batch with the 21800 one, centre-cropped to it.
    loose = embed_utterances(model, clips, RATE, settings=ExtractionSettings(bucket_tolerance=0.02))
    cropped = centre_crop(load_audio(clips[4].audio, RATE), 21800)
    with torch.no_grad():
        expected = model(torch.from_numpy(cropped)[None])[0].numpy()
    np.testing.assert_allclose(loose[4], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(loose[:4], single[:4], atol=1e-5, rtol=0)


def test_two_processes_equal_one_and_skip_bad_audio(
    encoder_file: Path, manifest_with_bad_audio: Path, tmp_path: Path, capsys
) -> None:
    one = tmp_path / "one.npz"
    assert main(["extract", str(encoder_file), str(manifest_with_bad_audio), str(one)]) == 0
    out = capsys.readouterr().out
    assert "8 embeddings of dimension 8" in out and "skipped 2 unreadable audio file(s)" in out
    assert set(load_embedding_meta(one)["skipped"]) == {"spk9/bad/corrupt", "spk9/bad/missing"}

    two = tmp_path / "two.npz"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "avssl.cli", "extract", str(encoder_file), str(manifest_with_bad_audio), str(two),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert two.is_file(), completed.stderr[-3000:]
    meta = load_embedding_meta(two)
    assert meta["processes"] == 2 and set(meta["skipped"]) == {"spk9/bad/corrupt", "spk9/bad/missing"}
    keys_one, emb_one = load_embeddings(one)
    keys_two, emb_two = load_embeddings(two)
    assert keys_two == keys_one
    np.testing.assert_allclose(emb_two, emb_one, atol=1e-5, rtol=0)

    # A trial that needs a skipped utterance ends with the missing-key error, not a crash.
    trials = tmp_path / "trials.txt"
    trials.write_text("1 spk0/s0/00001.wav spk0/s4/00001.wav\n0 spk0/s0/00001.wav spk9/bad/corrupt.wav\n")
    assert main(["eval", str(one), "--trials", str(trials)]) == 2
    err = capsys.readouterr().err
    assert "no embedding" in err and "spk9/bad/corrupt" in err


def test_cache_is_reused_and_invalidated(encoder_file: Path, clips: list[Utterance], tmp_path: Path,
                                         capsys) -> None:
    manifest = write_manifest(tmp_path / "manifest.tsv", clips)
    encoder = tmp_path / "encoder.pt"
    encoder.write_bytes(encoder_file.read_bytes())
    out = tmp_path / "emb.npz"
    settings = ExtractionSettings()
    assert not extract_to_file(encoder, manifest, out, settings).reused
    stamp = out.stat().st_mtime_ns
    assert extract_to_file(encoder, manifest, out, settings).reused
    assert out.stat().st_mtime_ns == stamp
    fingerprint = load_embedding_meta(out)["fingerprint"]

    assert not extract_to_file(encoder, manifest, out, ExtractionSettings(bucket_tolerance=0.0)).reused
    assert load_embedding_meta(out)["fingerprint"] != fingerprint
    write_manifest(manifest, clips[:-1])
    summary = extract_to_file(encoder, manifest, out, settings)
    assert not summary.reused and summary.n_embeddings == len(clips) - 1
    _encoder(encoder, seed=1)  # retrained: same path, new weights
    assert not extract_to_file(encoder, manifest, out, settings).reused

    # `avssl eval --encoder --manifest` reuses the up-to-date file and recomputes a stale one.
    trials = tmp_path / "trials.txt"
    trials.write_text("1 spk0/s0/00001.wav spk0/s4/00001.wav\n0 spk0/s0/00001.wav spk1/s1/00001.wav\n")
    stamp = out.stat().st_mtime_ns
    argv = ["eval", str(out), "--trials", str(trials), "--encoder", str(encoder), "--manifest", str(manifest)]
    assert main(argv) == 0
    assert "reused (fingerprint matches)" in capsys.readouterr().out
    assert out.stat().st_mtime_ns == stamp
    write_manifest(manifest, clips[:-2])
    assert main(argv) == 0
    assert f"{len(clips) - 2} embeddings of dimension 8" in capsys.readouterr().out
    assert load_embeddings(out)[1].shape == (len(clips) - 2, 8)


# ---- `avssl eval` on synthetic embeddings -------------------------------------------------------------

DIM = 16


def _speakers(rng: np.random.Generator, prefix: str, n_speakers: int, per_speaker: int,
              noise: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys ``prefix<spk>/<utt>``, embeddings around one random direction per speaker, and the speaker ids."""
    centres = rng.normal(size=(n_speakers, DIM))
    speaker = np.repeat(np.arange(n_speakers), per_speaker)
    keys = [f"{prefix}{s}/{u}" for s in range(n_speakers) for u in range(per_speaker)]
    return keys, centres[speaker] + noise * rng.normal(size=(len(keys), DIM)), speaker


def _write_trials(path: Path, keys: list[str], speaker: np.ndarray, rng: np.random.Generator, n: int) -> Path:
    lines = []
    for _ in range(n):
        a = int(rng.integers(len(keys)))
        same = np.flatnonzero((speaker == speaker[a]) & (np.arange(len(keys)) != a))
        b = int(rng.choice(same)) if rng.random() < 0.5 else int(rng.integers(len(keys)))
        lines.append(f"{int(speaker[a] == speaker[b])} {keys[a]}.wav {keys[b]}.wav")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def eval_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Test + dev embeddings in one file, label-free training embeddings, and face embeddings.

    The face embeddings carry the speaker on the DEV utterances only, so a fusion weight fitted on the
    dev list is high, while one fitted on the test list would be near 0.
    """
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("eval")
    test_keys, test_audio, test_spk = _speakers(rng, "t", 12, 6, noise=1.2)
    dev_keys, dev_audio, dev_spk = _speakers(rng, "d", 12, 6, noise=1.2)
    train_keys, train_audio, _ = _speakers(rng, "r", 30, 5, noise=1.0)
    _, dev_face, _ = _speakers(rng, "d", 12, 6, noise=0.3)
    test_face = rng.normal(size=(len(test_keys), DIM))
    train_face = rng.normal(size=(len(train_keys), DIM))
    return {
        "test": save_embeddings(folder / "test.npz", test_keys + dev_keys, np.vstack([test_audio, dev_audio])),
        "train": save_embeddings(folder / "train.npz", train_keys, train_audio),
        "face": save_embeddings(folder / "face.npz", test_keys + dev_keys, np.vstack([test_face, dev_face])),
        "face_cohort": save_embeddings(folder / "face_train.npz", train_keys, train_face),
        "O": _write_trials(folder / "O.txt", test_keys, test_spk, rng, 300),
        "H": _write_trials(folder / "H.txt", test_keys, test_spk, rng, 200),
        "dev": _write_trials(folder / "dev.txt", dev_keys, dev_spk, rng, 300),
    }


def test_asnorm_system_uses_kmeans_cluster_means(eval_files: dict[str, Path]) -> None:
    request = EvalRequest(trial_files=[eval_files["O"]], embeddings=eval_files["test"],
                          train_embeddings=eval_files["train"], cohort_embeddings=eval_files["train"],
                          asnorm_clusters=10, asnorm_top_n=4, seed=3)
    evaluation = evaluate(request)
    keys, test = load_embeddings(eval_files["test"])
    train = load_embeddings(eval_files["train"])[1].astype(np.float64)
    mean = train.mean(axis=0)
    cohort = cluster_mean_cohort(train, cluster_embeddings(train - mean, 10, seed=3).labels, mean)
    assert cohort.shape == (10, DIM) and evaluation.settings["asnorm"]["cohort_size"] == 10
    trials = read_trials(eval_files["O"])
    table = {key: test[i].astype(np.float64) for i, key in enumerate(keys)}
    expected = _asnorm_loop(trials, table, cohort, 4, mean)
    np.testing.assert_allclose(evaluation.scores["O"]["asnorm"], expected, rtol=1e-5, atol=1e-5)


def test_fusion_weight_is_fitted_on_the_dev_list_only(eval_files: dict[str, Path]) -> None:
    request = EvalRequest(trial_files=[eval_files["O"]], embeddings=eval_files["test"],
                          train_embeddings=eval_files["train"], face_embeddings=eval_files["face"],
                          fusion_dev_trials=eval_files["dev"])
    evaluation = evaluate(request)
    fusion = evaluation.settings["fusion"]
    assert fusion["weight"] > 0.5  # the face is informative on dev ...
    z = fusion["znorm"]
    trials = evaluation.trials["O"]
    audio_z = (evaluation.scores["O"]["raw"] - z["audio"]["mean"]) / z["audio"]["std"]
    face_z = (evaluation.scores["O"]["face"] - z["face"]["mean"]) / z["face"]["std"]
    on_test, _ = fit_fusion_weight(audio_z, face_z, trials.labels)
    assert on_test < 0.3  # ... and useless on test: fitting there would have chosen another weight
    np.testing.assert_allclose(evaluation.scores["O"]["fused"],
                               (1 - fusion["weight"]) * audio_z + fusion["weight"] * face_z)
    assert "dev.txt" in fusion["weight_source"]

    with pytest.raises(ConfigError, match="never from test trials"):
        evaluate(EvalRequest(trial_files=[eval_files["O"]], embeddings=eval_files["test"],
                             face_embeddings=eval_files["face"], fusion_dev_trials=eval_files["O"]))
    with pytest.raises(ConfigError, match="--fusion-weight W, or --fusion-dev-trials"):
        evaluate(EvalRequest(trial_files=[eval_files["O"]], embeddings=eval_files["test"],
                             face_embeddings=eval_files["face"]))


def test_cohort_must_not_hold_test_utterances(eval_files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="never from the test set"):
        evaluate(EvalRequest(trial_files=[eval_files["O"]], embeddings=eval_files["test"],
                             cohort_embeddings=eval_files["test"], asnorm_clusters=4))


def test_eval_cli_writes_results_scores_and_figures(eval_files: dict[str, Path], tmp_path: Path,
                                                    capsys) -> None:
    out = tmp_path / "report"
    argv = ["eval", str(eval_files["test"]), "--trials", str(eval_files["O"]), str(eval_files["H"]),
            "--train-embeddings", str(eval_files["train"]), "--cohort-embeddings", str(eval_files["train"]),
            "--asnorm-clusters", "10", "--asnorm-top-n", "4", "--face-embeddings", str(eval_files["face"]),
            "--fusion-weight", "0.3", "--face-cohort-embeddings", str(eval_files["face_cohort"]),
            "--out-dir", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cosine + AS-norm" in printed and "audio + face fused" in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["lists"]) == {"O", "H"}
    systems = {"raw", "asnorm", "face", "fused"}
    for name in ("O", "H"):
        assert set(results["lists"][name]) == systems
        for metrics in results["lists"][name].values():
            assert {"eer", "min_dcf@0.01", "min_dcf@0.05"} <= set(metrics)
        for system in systems:
            lines = (out / "scores" / f"{name}.{system}.txt").read_text().splitlines()
            assert len(lines) == len(read_trials(eval_files[name]))
            assert (out / "plots" / f"{name}.{system}.hist.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "plots" / f"{name}.det.png").read_bytes()[:4] == b"\x89PNG"
    assert results["settings"]["fusion"]["znorm"]["face"]["source"] == "random pairs of the face cohort"
    markdown = (out / "results.md").read_text()
    assert "| audio + face fused |" in markdown and "![O.det](plots/O.det.png)" in markdown
