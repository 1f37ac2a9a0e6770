"""Evaluation at VoxCeleb1-E scale, and bucketed vs one-at-a-time extraction. Prints markdown tables.

(1) Scoring: 145k random 192-d utterance embeddings (1,251 speakers, as in VoxCeleb1) and a
    579,818-trial list (half targets). Each row times reading the list, cosine scoring with the mean
    subtracted, and each of the three metric implementations of ``bench_metrics.py`` (avssl's sorted
    scores, scikit-learn's ``roc_curve``, a 1000-threshold sweep) alone and after scoring. AS-norm with a
    6000-entry cohort (VoxCeleb2-scale k-means) is timed once.
(2) Extraction: utterances/s of a small ECAPA-TDNN on CPU, one utterance at a time vs length-bucketed
    batches, audio read from wav files included, and how far the cropped embeddings move (cosine to the
    one-at-a-time embedding). Best of 3 interleaved rounds, since the machine may be shared.

Run: ``.venv/bin/python benchmarks/bench_eval_scale.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bench_metrics import measure, naive_sweep, ours, with_sklearn

from avssl.config import EncoderConfig, FeatureConfig
from avssl.data.manifest import Utterance
from avssl.eval.asnorm import asnorm_scores
from avssl.eval.extract import ExtractionSettings, embed_utterances
from avssl.eval.scoring import cosine_scores, unit_rows
from avssl.eval.trials import read_trials
from avssl.features import Fbank
from avssl.models import build_encoder
from avssl.models.waveform import WaveformEncoder

UTTERANCES = 145_375
SPEAKERS = 1_251
TRIALS = 579_818
DIM = 192
COHORT = 6_000
TOP_N = 300

RATE = 16_000
EXTRACT_UTTERANCES = 96
ROUNDS = 3
EXTRACT_SECONDS = (4.0, 8.0)
ENCODER = EncoderConfig(channels=128, embedding_dim=192)


def _vox1e_like(rng: np.random.Generator, folder: Path) -> tuple[list[str], np.ndarray, np.ndarray, Path]:
    """Keys, embeddings, the mean of other (training-like) embeddings, and a written trial list."""
    speaker = rng.integers(0, SPEAKERS, UTTERANCES)
    centres = rng.normal(size=(SPEAKERS, DIM)).astype(np.float32)
    embeddings = centres[speaker] + 1.5 * rng.normal(size=(UTTERANCES, DIM)).astype(np.float32)
    keys = [f"id{s:05d}/v/{i:06d}" for i, s in enumerate(speaker)]
    by_speaker = np.argsort(speaker, kind="stable")
    starts = np.searchsorted(speaker[by_speaker], np.arange(SPEAKERS))
    counts = np.bincount(speaker, minlength=SPEAKERS)
    enrol = rng.integers(0, UTTERANCES, TRIALS)
    target = rng.random(TRIALS) < 0.5
    same = by_speaker[starts[speaker[enrol]] + rng.integers(0, counts[speaker[enrol]])]
    test = np.where(target, same, rng.integers(0, UTTERANCES, TRIALS))
    labels = (speaker[enrol] == speaker[test]).astype(int)
    path = folder / "vox1e_like.txt"
    path.write_text("".join(f"{lab} {keys[e]}.wav {keys[t]}.wav\n" for lab, e, t in zip(labels, enrol, test, strict=True)))
    mean = embeddings[: UTTERANCES // 2].mean(axis=0)
    return keys, embeddings, mean, path


def scoring_table(folder: Path) -> None:
    rng = np.random.default_rng(0)
    keys, embeddings, mean, trial_file = _vox1e_like(rng, folder)
    seconds, mib, trials = measure(lambda path, _: read_trials(path), trial_file, None)
    print(f"| read trial list | {seconds:.2f} | | {mib:.0f} | |")
    seconds, mib, scores = measure(lambda t, _: cosine_scores(t, keys, embeddings, mean), trials, None)
    print(f"| cosine scoring (mean subtracted) | {seconds:.2f} | | {mib:.0f} | |")
    methods = {"avssl (sort + cumsum)": ours, "scikit-learn roc_curve": with_sklearn,
               "threshold sweep (1000)": naive_sweep}
    for name, method in methods.items():
        alone, _, (eer, _) = measure(method, scores, trials.labels)
        seconds, mib, _ = measure(
            lambda t, labels, m=method: m(cosine_scores(t, keys, embeddings, mean), labels), trials, trials.labels
        )
        print(f"| EER + minDCF: {name} | {alone:.2f} | {seconds:.2f} | {mib:.0f} | {100 * eer:.3f} |")
    cohort = unit_rows(rng.normal(size=(COHORT, DIM)))
    started = time.perf_counter()
    asnorm_scores(trials, keys, embeddings, cohort, TOP_N, mean)
    print(f"| AS-norm, cohort {COHORT:,}, top {TOP_N} (one run) | | {time.perf_counter() - started:.2f} | | |")


def _utterances(folder: Path) -> list[Utterance]:
    rng = np.random.default_rng(1)
    utterances = []
    for i in range(EXTRACT_UTTERANCES):
        samples = int(rng.uniform(*EXTRACT_SECONDS) * RATE)
        path = folder / f"u{i:04d}.wav"
        sf.write(path, (0.1 * rng.normal(size=samples)).astype(np.float32), RATE)
        utterances.append(Utterance(f"u{i:04d}", str(path), None, samples / RATE, RATE))
    return utterances


def extraction_table(folder: Path) -> None:
    torch.manual_seed(0)
    model = WaveformEncoder(build_encoder(ENCODER, 80), Fbank(FeatureConfig(), RATE)).eval()
    utterances = _utterances(folder)
    modes = {
        "one at a time": ExtractionSettings(bucket_tolerance=0.0, max_batch_seconds=1e-3),
        "bucketed, tolerance 0": ExtractionSettings(bucket_tolerance=0.0),
        "bucketed, tolerance 0.02": ExtractionSettings(bucket_tolerance=0.02),
        "bucketed, tolerance 0.05": ExtractionSettings(bucket_tolerance=0.05),
    }
    best = dict.fromkeys(modes, np.inf)
    results: dict[str, np.ndarray] = {}
    for _ in range(ROUNDS):  # interleaved rounds, best of each: the machine is shared
        for name, settings in modes.items():
            started = time.perf_counter()
            results[name] = embed_utterances(model, utterances, RATE, settings=settings)
            best[name] = min(best[name], time.perf_counter() - started)
    reference = unit_rows(results["one at a time"])
    for name, seconds in best.items():
        cosine = np.einsum("ij,ij->i", unit_rows(results[name]), reference)
        print(f"| {name} | {EXTRACT_UTTERANCES / seconds:.1f} | {seconds:.1f} | {cosine.min():.5f} |")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"Scoring a {TRIALS:,}-trial list over {UTTERANCES:,} utterances ({DIM}-d); "
              "time = median of 3 runs, peak = tracemalloc")
        print("\n| step | alone (s) | with scoring (s) | peak mem (MiB) | EER (%) |\n|---|---:|---:|---:|---:|")
        scoring_table(folder)
        print(f"\nExtraction: {EXTRACT_UTTERANCES} utterances of {EXTRACT_SECONDS[0]:g}-{EXTRACT_SECONDS[1]:g} s, "
              f"ECAPA-TDNN C={ENCODER.channels}, CPU, {torch.get_num_threads()} torch threads, best of {ROUNDS}")
        print("\n| mode | utterances/s | wall (s) | min cosine to one-at-a-time |\n|---|---:|---:|---:|")
        extraction_table(folder)


if __name__ == "__main__":
    main()
