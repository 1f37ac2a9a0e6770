"""`avssl demo`: the whole pipeline on the embedded corpus, and what each stage bought.

synth (demo size) -> prepare -> baselines -> stage I: DINO, then at equal budget either more DINO or
cluster-aware DINO -> stage II from CA-DINO: pseudo-label rounds without gate, with a fixed gate, with
DLG and with DLG-LC, next to the same training on the corpus's TRUE labels (a clearly labelled
supervised upper bound, the only place the demo trains on identities) -> faces: visual DINO, then
cross-modal DLG-LC (fused audio + face clusters, both encoders) -> one table of EER and minDCF per
system (audio, face, and audio + face fused with equal weights after z-norm), one of the clusterings
(NMI / purity against the truth, diagnostics only) and one of what each stage-II gate did (how many
samples it kept or corrected, and how many kept labels were right).

Every stage writes into its own folder of the run directory; re-running the same command skips what
is done (the corpus and preparation are idempotent, training resumes from its checkpoints).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from avssl.config import DinoTrainConfig, PseudoTrainConfig, load_config
from avssl.data.manifest import Utterance, read_manifest
from avssl.errors import ConfigError
from avssl.eval.baselines import mfcc_stats_embedding
from avssl.eval.evaluate import EvalRequest, evaluate, evaluate_trials, format_table, mean_embedding
from avssl.eval.extract import embed_utterances, encoder_embedder, load_embeddings, save_embeddings
from avssl.eval.extract_faces import extract_faces_to_file
from avssl.eval.gains import Comparison, format_gains, stage_gains
from avssl.eval.plots import plot_dino_training, plot_loss_gate
from avssl.faces.frames import FrameSampling
from avssl.features import Fbank
from avssl.models import build_encoder
from avssl.prep.corpus import prepare_corpus
from avssl.prep.faces import prepare_faces
from avssl.pseudo.diagnostics import LabelAudit, speaker_of_key
from avssl.pseudo.labels import read_pseudo_labels
from avssl.synth.corpus import generate_corpus
from avssl.train.encoder_file import load_encoder
from avssl.train.stage_dino import CHECKPOINT, ENCODER, train_dino
from avssl.train.stage_pseudo import PseudoResult, round_dir, train_pseudo_labels
from avssl.utils.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "demo"
# Audio + face score fusion: equal weights after z-normalisation, a label-free choice (no dev trials).
FUSION_FACE_WEIGHT = 0.5
# Face frames for the demo's face encoders: the centre 60 % of the frame (the face, little of the
# background and clothing that every frame of a video shares and DINO would match instead), stored at
# the 64-pixel size the demo's face encoders read.
FACE_SAMPLING = FrameSampling(size=64, crop=0.6)

# Row titles that the results table and the "what each stage bought" comparisons (_comparisons) share.
MFCC_TITLE = "MFCC mean+std (no learning)"
FUSED_STAGE_ONE_TITLE = "audio + face fused: CA-DINO + visual DINO"

# Stage II variants: (row title, overrides). The last one is the supervised reference, not the method.
PSEUDO_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nogate": ("pseudo-labels, no gate", ("gate.mode=none", "correction.enabled=false")),
    "fixed": ("pseudo-labels, fixed gate (LGL)", ("gate.mode=fixed", "correction.enabled=false")),
    "dlg": ("pseudo-labels, DLG", ("gate.mode=dlg", "correction.enabled=false")),
    "dlglc": ("pseudo-labels, DLG-LC", ("gate.mode=dlg", "correction.enabled=true")),
    "truth": ("TRUE labels (supervised upper bound, reference only)",
              ("labels.source=true_speakers", "gate.mode=none", "correction.enabled=false")),
}


@dataclass(frozen=True)
class DemoProfile:
    """Corpus size and the training budget of every stage of a demo flavour."""

    corpus_size: str
    dino_overrides: tuple[str, ...]  # stage I (on top of configs/demo/dino.yaml)
    continue_overrides: tuple[str, ...]  # the equal-budget continuation: more DINO, or CA-DINO
    ca_overrides: tuple[str, ...]
    pseudo_overrides: tuple[str, ...]  # stage II (on top of configs/demo/pseudo.yaml)
    face_overrides: tuple[str, ...]  # visual DINO (on top of configs/demo/face_dino.yaml)
    # Trainings side by side after the first DINO. On 2 cores two one-thread processes trained stage II
    # 1.4 times faster than one two-thread process (small convolutions keep a second thread idle).
    jobs: int


PROFILES = {
    "full": DemoProfile(
        "demo",
        dino_overrides=(),
        continue_overrides=("optim.epochs=5", "optim.warmup_epochs=1"),
        ca_overrides=("cluster_aware.enabled=true", "cluster_aware.n_clusters=[64]"),
        pseudo_overrides=(),
        face_overrides=(),
        jobs=2,
    ),
    "quick": DemoProfile(
        "tiny",
        dino_overrides=("optim.epochs=2", "optim.batch_size=4"),
        continue_overrides=("optim.epochs=1", "optim.batch_size=4", "optim.warmup_epochs=0"),
        ca_overrides=("cluster_aware.enabled=true", "cluster_aware.n_clusters=[4]"),
        pseudo_overrides=("labels.n_clusters=4", "rounds.epochs=2", "optim.batch_size=4", "segment_seconds=1.0",
                          "gate.min_samples=4", "correction.start_epoch=1"),
        face_overrides=("optim.epochs=1", "optim.batch_size=4", "optim.warmup_epochs=0"),
        jobs=1,
    ),
}


def run_demo(out_dir: str | Path, seed: int = 0, profile: str = "full", workers: int | None = None,
             overrides: tuple[str, ...] = (), jobs: int | None = None) -> dict:
    """Run every stage; return (and write as JSON and markdown) the results tables.

    ``overrides`` (key=value) apply to every training stage that has the key (e.g. run.progress=false).
    ``jobs``: trainings run side by side after the first DINO, each in its own process with one torch
    thread (None: the profile's choice, 2 for the full demo; 1 runs them one after another in this
    process with torch's default threads).
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown demo profile '{profile}' (choose from {', '.join(PROFILES)})")
    chosen = PROFILES[profile]
    jobs = chosen.jobs if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"demo jobs must be at least 1, got {jobs}")
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
    trial_files = trial_lists(data)
    lists = [path.stem for path in trial_files]
    paths = (
        f"data.train_manifest={data / 'manifests' / 'dev.tsv'}",
        f"data.noise_list={data / 'augment' / 'noise.tsv'}",
        f"data.rir_list={data / 'augment' / 'rir.tsv'}",
        f"run.seed={seed}",
    )

    def dino_config(folder: str, *extra: str) -> DinoTrainConfig:
        return load_config(DinoTrainConfig, CONFIG_DIR / "dino.yaml",
                           [*paths, f"run.output_dir={out / folder}", *chosen.dino_overrides, *extra, *overrides])

    config = dino_config("dino")
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

    def score_encoder(system: str, slug: str, encoder_path: Path) -> None:
        encoder, fbank, _ = load_encoder(encoder_path)
        timed(f"extract+score: {slug}", lambda: score(system, slug, encoder_embedder(encoder, fbank)))

    # ---- baselines: no learning at all ----
    timed("baseline: MFCC mean+std", lambda: score(
        MFCC_TITLE, "mfcc", lambda wave: mfcc_stats_embedding(wave, sample_rate)))
    torch.manual_seed(seed)
    untrained = build_encoder(config.encoder, config.features.n_mels)
    fbank = Fbank(config.features, sample_rate)
    timed("baseline: untrained encoder", lambda: score(
        "untrained encoder", "untrained", encoder_embedder(untrained, fbank)))

    # ---- stage I: DINO, then the same extra budget as more DINO or as cluster-aware DINO ----
    dino = timed("train: DINO", lambda: train_dino(config, resume=True))
    plot_dino_training(dino.output_dir / "train_log.jsonl", out / "dino_training.png")
    dino_title = f"DINO ({config.optim.epochs} epochs)"
    score_encoder(dino_title, "dino", dino.encoder_path)
    stores = {split: out / "faces" / split for split in ("dev", "test")}
    for split, store in stores.items():
        timed(f"prepare faces: {split}", lambda split=split, store=store: prepare_faces(
            data / "manifests" / f"{split}.tsv", store, FACE_SAMPLING, workers=workers))

    # ---- every later training: stage I continuations, visual DINO, stage II (audio-only and cross-modal) ----
    # Independent ones run side by side (jobs > 1), one torch thread each, as soon as what they start from
    # is trained; their output files are known in advance, so their configs are too.
    one_thread = ("run.threads=1",) if jobs > 1 else ()
    init = f"run.init_checkpoint={dino.output_dir / CHECKPOINT}"
    more = dino_config("dino_more", init, *chosen.continue_overrides, *one_thread)
    ca = dino_config("ca_dino", init, *chosen.continue_overrides, *chosen.ca_overrides, *one_thread)
    face_config = load_config(DinoTrainConfig, CONFIG_DIR / "face_dino.yaml", [
        f"data.train_manifest={data / 'manifests' / 'dev.tsv'}", f"face.frames.store={stores['dev']}",
        f"run.output_dir={out / 'face_dino'}", f"run.seed={seed}", *chosen.face_overrides, *one_thread, *overrides])
    ca_dino, face_dino = Path(ca.run.output_dir) / ENCODER, Path(face_config.run.output_dir) / ENCODER

    def pseudo_config(name: str, *extra: str) -> PseudoTrainConfig:
        return load_config(PseudoTrainConfig, CONFIG_DIR / "pseudo.yaml", [
            f"init_encoder={ca_dino}", *paths, f"run.output_dir={out / 'stage2' / name}",
            *chosen.pseudo_overrides, *extra, *one_thread, *_known(PseudoTrainConfig, overrides)])

    # Listed in the order they start when a process is free: the longest chains first.
    work = {
        "train: CA-DINO": Job(train_dino_job, ca),
        "train: visual DINO": Job(train_dino_job, face_config),
        "train: DINO, more epochs": Job(train_dino_job, more),
        "train: stage II crossmodal": Job(train_pseudo_job, pseudo_config(
            "crossmodal", "cross_modal.enabled=true", f"cross_modal.init_face_encoder={face_dino}",
            f"cross_modal.frames.store={stores['dev']}", *PSEUDO_VARIANTS["dlglc"][1]),
            after=("train: CA-DINO", "train: visual DINO")),
        **{f"train: stage II {name}": Job(train_pseudo_job, pseudo_config(name, *variant), after=("train: CA-DINO",))
           for name, (_, variant) in PSEUDO_VARIANTS.items()},
    }
    trained = timed(f"trainings after DINO ({jobs} side by side)", lambda: run_jobs(work, jobs, timings))

    budget = f"{config.optim.epochs} + {more.optim.epochs} epochs"
    more_title, ca_title = f"DINO ({budget})", f"CA-DINO ({budget})"
    score_encoder(more_title, "dino_more", trained["train: DINO, more epochs"])
    score_encoder(ca_title, "ca_dino", ca_dino)
    clusterings = [_clustering_row("CA-DINO", path) for path in sorted((out / "ca_dino" / "clusters").glob("*.json"))]
    gates: list[dict] = []
    for name in PSEUDO_VARIANTS:
        run = trained[f"train: stage II {name}"]
        for round_index, encoder_path in enumerate(run.round_encoders):
            score_encoder(pseudo_title(name, round_index + 1), f"stage2_{name}_round{round_index + 1}", encoder_path)
            if name != "truth":
                gates.append(_gate_row(name, run.rounds[round_index]))
                clusterings.append(_clustering_row(f"stage II {name}", round_dir(run.output_dir, round_index) / "labels.json",
                                                   round_index + 1))
    plot_gate_figure(out / "stage2" / "dlglc", out / "dlg_gate.png")

    def score_faces(system: str, slug: str, encoder_path: Path) -> None:
        def work() -> None:
            for split, store in stores.items():
                extract_faces_to_file(encoder_path, data / "manifests" / f"{split}.tsv",
                                      out / "embeddings" / f"{slug}_{split}.npz", store=store)
            keys, test_emb = load_embeddings(out / "embeddings" / f"{slug}_test.npz")
            dev_mean = mean_embedding(load_embeddings(out / "embeddings" / f"{slug}_dev.npz")[1])
            results[system] = evaluate_trials(trial_files, keys, test_emb, dev_mean, out / "scores" / slug)
        timed(f"extract+score: {slug}", work)

    def score_fused(system: str, audio_slug: str, face_slug: str) -> None:
        """Audio + face with equal weights after z-norm from label-free cohorts: nothing fitted on trials."""
        embeddings = out / "embeddings"
        evaluation = evaluate(EvalRequest(
            trial_files, embeddings / f"{audio_slug}_test.npz", train_embeddings=embeddings / f"{audio_slug}_dev.npz",
            cohort_embeddings=embeddings / f"{audio_slug}_dev.npz", face_embeddings=embeddings / f"{face_slug}_test.npz",
            face_cohort_embeddings=embeddings / f"{face_slug}_dev.npz", fusion_weight=FUSION_FACE_WEIGHT, seed=seed))
        results[system] = {name: evaluation.metrics[name]["fused"] for name in lists}

    face_title = f"face: visual DINO ({face_config.optim.epochs} epochs)"
    score_faces(face_title, "face_dino", face_dino)
    score_fused(FUSED_STAGE_ONE_TITLE, "ca_dino", "face_dino")
    cross = trained["train: stage II crossmodal"]
    for round_index, (audio_path, face_path) in enumerate(zip(cross.round_encoders, cross.round_face_encoders,
                                                              strict=True)):
        slug = f"stage2_crossmodal_round{round_index + 1}"
        score_encoder(cross_modal_title("audio encoder", round_index + 1), slug, audio_path)
        score_faces(cross_modal_title("face encoder", round_index + 1), f"{slug}_face", face_path)
        score_fused(cross_modal_title("audio + face fused", round_index + 1), slug, f"{slug}_face")
        gates.append(_gate_row("crossmodal", cross.rounds[round_index]))
        clusterings += _fusion_rows(round_dir(cross.output_dir, round_index) / "labels.json", round_index + 1)

    timings["total"] = round(time.perf_counter() - started, 1)
    gains = stage_gains(results, _comparisons(dino_title, more_title, ca_title, face_title, len(cross.round_encoders)),
                        lists)
    table = format_table(results, lists)
    gains_table = format_gains(gains, lists)
    cluster_table = _cluster_table(clusterings) + "\n\n" + _gate_table(gates)
    report = {"profile": profile, "seed": seed, "trial_lists": lists, "results": results, "gains": gains,
              "clusterings": clusterings, "gates": gates,
              "timings_s": timings, "train_utterances": len(dev), "test_utterances": len(test)}
    atomic_write_json(out / "results.json", report)
    atomic_write_text(out / "results.md", _markdown(report, table, gains_table, cluster_table))
    print("\n" + table + "\n")
    print(gains_table + "\n")
    print(cluster_table + "\n")
    print("stage times (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    print(f"written: {out / 'results.md'}, {out / 'results.json'}")
    return report


def train_dino_job(config: DinoTrainConfig) -> Path:
    """One stage-I training (resumed if it was interrupted); returns the teacher's encoder file."""
    return train_dino(config, resume=True).encoder_path


def train_pseudo_job(config: PseudoTrainConfig) -> PseudoResult:
    """One stage-II training (resumed if it was interrupted)."""
    return train_pseudo_labels(config, resume=True)


@dataclass(frozen=True)
class Job:
    """One training: ``function(argument)``, started once the jobs named in ``after`` have finished."""

    function: Callable[[Any], Any]
    argument: Any
    after: tuple[str, ...] = ()


def run_jobs(work: dict[str, Job], jobs: int, timings: dict[str, float]) -> dict[str, Any]:
    """Run trainings, each once its ``after`` jobs are done: ``jobs`` at a time in spawned processes, or
    one after another here (``jobs`` 1; ``work`` must then list every job after those it waits for).

    Each training's own wall time goes into ``timings`` under its name. A failing training stops new
    ones from starting; those already running finish (their checkpoints complete for a re-run), then the
    error is raised.
    """
    results: dict[str, Any] = {}

    def finished(name: str, result: Any, seconds: float) -> None:
        results[name], timings[name] = result, seconds
        print(f"[demo] {name}: {seconds:.1f} s", flush=True)

    if jobs == 1:
        for name, job in work.items():
            if not set(job.after) <= set(results):
                raise ValueError(f"job {name!r} is listed before {set(job.after) - set(results)}, which it waits for")
            finished(name, *_timed(job.function, job.argument))
        return results
    pending, running = dict(work), {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while pending or running:
            for name in [n for n, job in pending.items() if set(job.after) <= set(results)][: jobs - len(running)]:
                job = pending.pop(name)
                running[pool.submit(_timed, job.function, job.argument)] = name
            if not running:
                raise ValueError(f"jobs {sorted(pending)} wait for jobs that are not in the work list")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                finished(running.pop(future), *future.result())
    return results


def _timed(function: Callable[[T], R], argument: T) -> tuple[R, float]:
    tick = time.perf_counter()
    result = function(argument)
    return result, round(time.perf_counter() - tick, 1)


def _keys(utterances: list[Utterance]) -> list[str]:
    return [u.key for u in utterances]


def _known(schema: type, overrides: tuple[str, ...]) -> list[str]:
    """The overrides whose section exists in ``schema`` (run.progress=false applies to both stages)."""
    sections = set(schema.__dataclass_fields__)
    return [item for item in overrides if item.split("=", 1)[0].split(".", 1)[0] in sections]


def _clustering_row(stage: str, report_path: Path, round_number: int | None = None) -> dict:
    report = json.loads(report_path.read_text())
    diagnostics = report.get("diagnostics", {})
    return {
        "stage": stage,
        "round": round_number if round_number is not None else report_path.stem,
        "clusters": report.get("n_clusters"),
        "nmi": diagnostics.get("nmi"),
        "purity": diagnostics.get("purity"),
    }


def _fusion_rows(report_path: Path, round_number: int) -> list[dict]:
    """A cross-modal round's clusterings: audio-only, face-only and fused k-means at the same K."""
    report = json.loads(report_path.read_text())
    diagnostics = report.get("diagnostics") or {}
    return [{"stage": f"cross-modal: {name}", "round": round_number, "clusters": report.get("n_clusters"),
             "nmi": diagnostics[key]["nmi"], "purity": diagnostics[key]["purity"]}
            for name, key in (("audio-only k-means", "audio"), ("face-only k-means", "face"), ("fused labels", "fused"))
            if diagnostics.get(key)]


def _gate_row(name: str, summary: dict) -> dict:
    """What the gate did in one round: epochs with a threshold, and mean fractions over those epochs."""
    gated = [e for e in summary["epochs"] if e["threshold"] is not None]

    def mean(key: str) -> float | None:
        values = [e[key] for e in gated if e.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {
        "variant": name,
        "round": summary["round"],
        "epochs": len(summary["epochs"]),
        "gated_epochs": len(gated),
        "kept": mean("fraction_kept"),
        "corrected": mean("fraction_corrected"),
        "right_all": summary["epochs"][-1].get("diagnostic_labels_right_all"),
        "right_kept": mean("diagnostic_labels_right_kept"),
    }


def _gate_table(rows: list[dict]) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    lines = ["| stage II gate | round | epochs with a threshold | kept | corrected | right labels: all / kept (diagnostic) |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['round']} | {row['gated_epochs']} of {row['epochs']} | {cell(row['kept'])} "
                     f"| {cell(row['corrected'])} | {cell(row['right_all'])} / {cell(row['right_kept'])} |")
    return "\n".join(lines)


def _cluster_table(rows: list[dict]) -> str:
    lines = ["| clustering (diagnostic only) | round | K | NMI | purity |", "|---|---|---|---|---|"]
    for row in rows:
        nmi = f"{row['nmi']:.3f}" if row["nmi"] is not None else "-"
        purity = f"{row['purity']:.3f}" if row["purity"] is not None else "-"
        lines.append(f"| {row['stage']} | {row['round']} | {row['clusters']} | {nmi} | {purity} |")
    return "\n".join(lines)


def plot_gate_figure(run_dir: Path, out_png: Path, round_index: int = 0) -> None:
    """The last DLG fit of a round (made on epoch e's losses, used in epoch e + 1) over those losses,
    with the samples split by whether their pseudo-label was right (diagnostic)."""
    gate_dir = round_dir(run_dir, round_index) / "gate"
    records = sorted(gate_dir.glob("epoch*.npz"))
    fitted = [(before, after) for before, after in zip(records, records[1:], strict=False) if np.load(after)["means"].size]
    if not fitted:
        log.info("no DLG fit in %s to plot", gate_dir)
        return
    before, after = fitted[-1]
    losses, fit = np.load(before)["losses"], np.load(after)
    labels = read_pseudo_labels(round_dir(run_dir, round_index) / "labels.tsv")
    keys = list(labels)
    codes = np.array([labels[k] for k in keys])
    right = LabelAudit(codes, [speaker_of_key(k) for k in keys]).is_right(codes, np.arange(len(keys)))
    threshold = float(fit["threshold"])
    status = f"threshold {threshold:.2f}" if np.isfinite(threshold) else "degenerate: no threshold"
    plot_loss_gate(losses, threshold, fit["means"], fit["stds"], fit["weights"], out_png, right,
                   f"round {round_index + 1}, {before.stem}: losses and the mixture fitted on them ({status})")


def trial_lists(data: Path) -> list[Path]:
    """The prepared corpus's trial lists: the balanced one first, then the hard one (VoxCeleb's O / H order)."""
    return sorted((data / "trials").glob("*.txt"), key=lambda p: (not p.stem.endswith("-O"), p.stem))


def pseudo_title(variant: str, round_number: int) -> str:
    """The row of an audio-only stage-II variant (a key of :data:`PSEUDO_VARIANTS`) after a round."""
    return f"{PSEUDO_VARIANTS[variant][0]}, round {round_number}"


def cross_modal_title(part: str, round_number: int) -> str:
    """The row of one system of cross-modal DLG-LC: the audio encoder, the face encoder, or their fusion."""
    return f"{part}, cross-modal DLG-LC, round {round_number}"


def _comparisons(dino: str, more_dino: str, ca_dino: str, face: str, rounds: int) -> list[Comparison]:
    """The comparisons the method's claims rest on, between rows of the demo's table (titles as scored)."""
    no_gate, fixed, dlg_lc, truth = (pseudo_title(name, rounds) for name in ("nogate", "fixed", "dlglc", "truth"))
    cross = {part: cross_modal_title(part, rounds) for part in ("audio encoder", "face encoder", "audio + face fused")}
    return [
        Comparison(f"stage I: {dino} vs no learning (MFCC)", dino, (MFCC_TITLE,)),
        Comparison("cluster-aware DINO vs plain DINO, same budget", ca_dino, (more_dino,)),
        Comparison(f"stage II: pseudo-labels, {rounds} rounds, no gate vs its start (CA-DINO)", no_gate, (ca_dino,)),
        Comparison("stage II: the last round vs the first (no gate)", no_gate, (pseudo_title("nogate", 1),)),
        Comparison("DLG-LC vs no gate", dlg_lc, (no_gate,)),
        Comparison("DLG-LC vs the fixed gate (LGL)", dlg_lc, (fixed,)),
        Comparison("TRUE labels vs DLG-LC (the gap to supervision; reference only)", truth, (dlg_lc,)),
        Comparison("audio + face scores vs the better modality alone (stage I encoders)", FUSED_STAGE_ONE_TITLE,
                   (ca_dino, face)),
        Comparison("speaker encoder: cross-modal vs audio-only DLG-LC", cross["audio encoder"], (dlg_lc,)),
        Comparison("audio + face scores vs the better modality alone (cross-modal encoders)",
                   cross["audio + face fused"], (cross["audio encoder"], cross["face encoder"])),
    ]


def _markdown(report: dict, table: str, gains_table: str, cluster_table: str) -> str:
    times = "\n".join(f"| {stage} | {seconds} |" for stage, seconds in report["timings_s"].items())
    return (
        f"# avssl demo (profile {report['profile']}, seed {report['seed']})\n\n"
        f"{report['train_utterances']} unlabelled training utterances, {report['test_utterances']} test "
        f"utterances; trial lists: {', '.join(report['trial_lists'])}.\n\n{table}\n\n{gains_table}\n\n"
        f"{cluster_table}\n\n"
        f"| stage | seconds |\n|---|---|\n{times}\n"
    )
