"""`avssl demo`: the whole pipeline on the embedded corpus, and what each stage bought.

synth (demo size) -> prepare -> baselines -> DINO -> extract -> score, then one table of EER and
minDCF for: a no-learning baseline (MFCC mean + std), the untrained encoder, and the DINO teacher.
Every stage writes into its own folder of the run directory; re-running the same command skips what
is done (the corpus and preparation are idempotent, DINO resumes from its checkpoint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from avssl.config import DinoTrainConfig, load_config
from avssl.data.manifest import Utterance, read_manifest
from avssl.errors import ConfigError
from avssl.eval.baselines import mfcc_stats_embedding
from avssl.eval.evaluate import evaluate_trials, format_table, mean_embedding
from avssl.eval.extract import embed_utterances, encoder_embedder, save_embeddings
from avssl.eval.plots import plot_dino_training
from avssl.features import Fbank
from avssl.models import build_encoder
from avssl.prep.corpus import prepare_corpus
from avssl.synth.corpus import generate_corpus
from avssl.train.encoder_file import load_encoder
from avssl.train.stage_dino import train_dino
from avssl.utils.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "demo"


@dataclass(frozen=True)
class DemoProfile:
    """Corpus size and training config of a demo flavour."""

    corpus_size: str
    config: str
    overrides: tuple[str, ...] = ()


PROFILES = {
    "full": DemoProfile("demo", "dino.yaml"),
    "quick": DemoProfile("tiny", "dino.yaml", ("optim.epochs=2", "optim.batch_size=4")),
}


def run_demo(out_dir: str | Path, seed: int = 0, profile: str = "full", workers: int | None = None,
             overrides: tuple[str, ...] = ()) -> dict:
    """Run every stage; return (and write as JSON and markdown) the results table."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown demo profile '{profile}' (choose from {', '.join(PROFILES)})")
    chosen = PROFILES[profile]
    out = Path(out_dir).resolve()
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def timed(stage: str, work: Callable[[], object]) -> object:
        tick = time.perf_counter()
        result = work()
        timings[stage] = round(time.perf_counter() - tick, 1)
        print(f"[demo] {stage}: {timings[stage]:.1f} s", flush=True)
        return result

    corpus, data = out / "corpus", out / "data"
    timed("synth", lambda: generate_corpus(corpus, size=chosen.corpus_size, seed=seed, workers=workers, progress=True))
    timed("prepare", lambda: prepare_corpus(corpus, data, workers=workers))
    dev = read_manifest(data / "manifests" / "dev.tsv")
    test = read_manifest(data / "manifests" / "test.tsv")
    # Balanced list first, then the hard one (the O / H order of the VoxCeleb protocol).
    trial_files = sorted((data / "trials").glob("*.txt"), key=lambda p: (not p.stem.endswith("-O"), p.stem))
    lists = [path.stem for path in trial_files]

    config = load_config(
        DinoTrainConfig,
        CONFIG_DIR / chosen.config,
        [
            f"data.train_manifest={data / 'manifests' / 'dev.tsv'}",
            f"data.noise_list={data / 'augment' / 'noise.tsv'}",
            f"data.rir_list={data / 'augment' / 'rir.tsv'}",
            f"run.output_dir={out / 'dino'}",
            f"run.seed={seed}",
            *chosen.overrides,
            *overrides,
        ],
    )
    sample_rate = config.data.sample_rate
    results: dict[str, dict] = {}

    def score(system: str, slug: str, embed: Callable[[torch.Tensor], torch.Tensor]) -> None:
        dev_emb = embed_utterances(embed, dev, sample_rate, progress=True, desc=f"{slug} dev")
        test_emb = embed_utterances(embed, test, sample_rate, progress=True, desc=f"{slug} test")
        save_embeddings(out / "embeddings" / f"{slug}_dev.npz", _keys(dev), dev_emb)
        save_embeddings(out / "embeddings" / f"{slug}_test.npz", _keys(test), test_emb)
        results[system] = evaluate_trials(
            trial_files, _keys(test), test_emb, mean_embedding(dev_emb), out / "scores" / slug
        )

    timed("baseline: MFCC mean+std", lambda: score(
        "MFCC mean+std (no learning)", "mfcc", lambda wave: mfcc_stats_embedding(wave, sample_rate)))
    torch.manual_seed(seed)
    untrained = build_encoder(config.encoder, config.features.n_mels)
    fbank = Fbank(config.features, sample_rate)
    timed("baseline: untrained encoder", lambda: score(
        "untrained encoder", "untrained", encoder_embedder(untrained, fbank)))
    dino = timed("train: DINO", lambda: train_dino(config, resume=True))
    plot_dino_training(dino.output_dir / "train_log.jsonl", out / "dino_training.png")
    teacher, teacher_fbank, _ = load_encoder(dino.encoder_path)
    timed("extract+score: DINO", lambda: score("DINO (teacher)", "dino", encoder_embedder(teacher, teacher_fbank)))

    timings["total"] = round(time.perf_counter() - started, 1)
    table = format_table(results, lists)
    report = {"profile": profile, "seed": seed, "trial_lists": lists, "results": results, "timings_s": timings,
              "train_utterances": len(dev), "test_utterances": len(test)}
    atomic_write_json(out / "results.json", report)
    atomic_write_text(out / "results.md", _markdown(report, table))
    print("\n" + table + "\n")
    print("stage times (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    print(f"written: {out / 'results.md'}, {out / 'results.json'}")
    return report


def _keys(utterances: list[Utterance]) -> list[str]:
    return [u.key for u in utterances]


def _markdown(report: dict, table: str) -> str:
    times = "\n".join(f"| {stage} | {seconds} |" for stage, seconds in report["timings_s"].items())
    return (
        f"# avssl demo (profile {report['profile']}, seed {report['seed']})\n\n"
        f"{report['train_utterances']} unlabelled training utterances, {report['test_utterances']} test "
        f"utterances; trial lists: {', '.join(report['trial_lists'])}.\n\n{table}\n\n"
        f"| stage | seconds |\n|---|---|\n{times}\n"
    )

