"""Cross-modal stage II at several fusion weights, from finished demo runs: the speaker encoder per seed.

The demo's cross-modal run fuses audio and face clusters with ``cross_modal.audio_weight``. This script
retrains only that stage for each weight, from the same CA-DINO and visual DINO encoder files and with
the exact config the demo wrote (``stage2/crossmodal/config.yaml``, only the weight and the output folder
changed), and scores the speaker encoder of the last round on the run's trial lists next to the run's
audio-only DLG-LC encoder. The weight is a training choice: pick it on some seeds and check it on
others that were not looked at (docs/concepts/multimodal.md, "Choosing the fusion weight").

    python benchmarks/bench_demo_seeds.py --seeds 0 1 2 3 4 --out-dir runs/seeds
    python benchmarks/bench_fusion_weight.py --runs runs/seeds --seeds 0 1 2 3 4 --weights 0.5 0.7 1.0

Each (seed, weight) trains in RUNS/seed<N>/fusion_weight/w<W>; finished ones are reused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from avssl.config import PseudoTrainConfig, load_config
from avssl.data.manifest import read_manifest
from avssl.demo import cross_modal_title, pseudo_title, trial_lists
from avssl.errors import DataError
from avssl.eval.evaluate import evaluate_trials, mean_embedding
from avssl.eval.extract import embed_utterances, encoder_embedder
from avssl.train.encoder_file import load_encoder
from avssl.train.stage_pseudo import train_pseudo_labels
from avssl.utils.atomic import atomic_write_json

DEMO_CONFIG = Path("stage2") / "crossmodal" / "config.yaml"  # in a demo run's folder


def speaker_encoder_eer(run: Path, weight: float) -> dict[str, float]:
    """EER (%) per trial list of the last round's speaker encoder, cross-modal stage II at ``weight``."""
    folder = run / "fusion_weight" / f"w{weight:g}"
    done = folder / "eer.json"
    if done.is_file():
        return json.loads(done.read_text())
    demo = _demo_config(run)
    if demo.cross_modal.audio_weight == weight:  # the demo trained this weight: read its row
        return _demo_row(run, cross_modal_title("audio encoder", demo.rounds.count))
    config = load_config(PseudoTrainConfig, run / DEMO_CONFIG, [
        f"run.output_dir={folder}", f"cross_modal.audio_weight={weight}", "run.progress=false"])
    result = train_pseudo_labels(config, resume=True)
    eer = _score(run, result.round_encoders[-1], config.data.sample_rate)
    atomic_write_json(done, eer)
    return eer


def _demo_config(run: Path) -> PseudoTrainConfig:
    """The config the demo's cross-modal stage ran with."""
    if not (run / DEMO_CONFIG).is_file():
        raise DataError(f"{run / DEMO_CONFIG} is missing: run the demo (benchmarks/bench_demo_seeds.py) into {run} first")
    return load_config(PseudoTrainConfig, run / DEMO_CONFIG)


def _score(run: Path, encoder_path: Path, sample_rate: int) -> dict[str, float]:
    """As the demo scores a speaker encoder: full utterances, cosine after subtracting the mean training embedding."""
    data = run / "data"
    dev, test = (read_manifest(data / "manifests" / f"{split}.tsv") for split in ("dev", "test"))
    encoder, fbank, _ = load_encoder(encoder_path)
    embed = encoder_embedder(encoder, fbank)
    dev_emb, test_emb = embed_utterances(embed, dev, sample_rate), embed_utterances(embed, test, sample_rate)
    results = evaluate_trials(trial_lists(data), [u.key for u in test], test_emb, mean_embedding(dev_emb), None)
    return {name: 100 * report["eer"] for name, report in results.items()}


def _demo_row(run: Path, title: str) -> dict[str, float]:
    """EER (%) per trial list of the row ``title`` of the run's results."""
    results = json.loads((run / "results.json").read_text())["results"]
    if title not in results:
        raise DataError(f"{run / 'results.json'} has no row {title!r}: is it a finished demo run?")
    return {name: 100 * report["eer"] for name, report in results[title].items()}


def _audio_only_eer(run: Path) -> dict[str, float]:
    """The run's audio-only DLG-LC speaker encoder after its last round (the row the weight must beat)."""
    return _demo_row(run, pseudo_title("dlglc", _demo_config(run).rounds.count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/seeds", help="the --out-dir of bench_demo_seeds.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.7, 1.0])
    args = parser.parse_args()
    if any(not 0.0 <= w <= 1.0 for w in args.weights):
        parser.error(f"--weights must lie in [0, 1], got {args.weights}")

    runs = {seed: Path(args.runs) / f"seed{seed}" for seed in args.seeds}
    reference = {seed: _audio_only_eer(run) for seed, run in runs.items()}
    rows = {w: {seed: speaker_encoder_eer(run, w) for seed, run in runs.items()} for w in args.weights}
    lists = list(reference[args.seeds[0]])
    seeds = " / ".join(str(s) for s in args.seeds)
    print("| speaker encoder after the last round | "
          + " | ".join(f"{name} seeds {seeds} | median | better in" for name in lists) + " |")
    print("|---|" + "---|---:|---:|" * len(lists))
    table = {"audio-only DLG-LC (reference)": reference, **{f"cross-modal, audio_weight {w:g}": r for w, r in rows.items()}}
    for label, eers in table.items():
        cells = [label]
        for name in lists:
            values = [eers[s][name] for s in args.seeds]
            better = sum(eers[s][name] < reference[s][name] for s in args.seeds)
            cells += [" / ".join(f"{v:.2f}" for v in values), f"{float(np.median(values)):.2f}",
                      "" if eers is reference else f"{better} of {len(args.seeds)}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
