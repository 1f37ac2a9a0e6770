"""The `avssl` command line: one sub-command per pipeline stage, plus `demo`.

Bad input (a config key, a missing file) ends with a one-line message and exit status 2, not a
traceback: the message says what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from avssl.errors import AvsslError

if TYPE_CHECKING:
    from avssl.eval.extract import ExtractionSettings
    from avssl.eval.extract_job import ExtractionSummary


def _synth(args: argparse.Namespace) -> None:
    from avssl.synth.corpus import generate_corpus

    summary = generate_corpus(args.out_dir, size=args.size, seed=args.seed, workers=args.workers, progress=True)
    print(f"corpus '{summary['size']}' (seed {summary['seed']}) in {args.out_dir}: {summary['counts']}")


def _prepare(args: argparse.Namespace) -> None:
    from avssl.prep.corpus_parts import main

    main(args)


def _prepare_faces(args: argparse.Namespace) -> None:
    from avssl.prep.faces import main

    main(args)


def _train(args: argparse.Namespace) -> None:
    from avssl.config import DinoTrainConfig, load_config
    from avssl.train.stage_dino import train_dino

    config = load_config(DinoTrainConfig, args.config, args.overrides)
    result = train_dino(config, resume=args.resume)
    print(f"trained in {result.seconds:.0f} s; teacher encoder: {result.encoder_path}")


def _train_pseudo(args: argparse.Namespace) -> None:
    from avssl.config import PseudoTrainConfig, load_config
    from avssl.train.stage_pseudo import train_pseudo_labels

    config = load_config(PseudoTrainConfig, args.config, args.overrides)
    result = train_pseudo_labels(config, resume=args.resume)
    for path, summary in zip(result.round_encoders, result.rounds, strict=True):
        nmi = summary["label_nmi_diagnostic"]
        print(f"round {summary['round']}: {summary['n_classes']} classes"
              + (f" (label NMI {nmi:.3f}, diagnostic only)" if nmi is not None else "") + f"; encoder: {path}")
        if "cross_modal" in summary:
            print(f"  {summary['cross_modal']['utterances_without_face']} utterances without a usable face "
                  "trained audio only")
    for path in result.round_face_encoders:
        print(f"face encoder: {path}")
    print(f"trained in {result.seconds:.0f} s")


def _extraction_settings(args: argparse.Namespace) -> ExtractionSettings:
    from avssl.eval.extract import ExtractionSettings

    return ExtractionSettings(bucket_tolerance=args.bucket_tolerance, max_batch_seconds=args.max_batch_seconds)


def _report_extraction(summary: ExtractionSummary) -> None:
    how = "reused (fingerprint matches)" if summary.reused else (
        f"computed in {summary.seconds:.1f} s by {summary.processes} process(es)")
    print(f"{summary.n_embeddings} embeddings of dimension {summary.dim} -> {summary.path}: {how}")
    if summary.skipped:
        first = "; ".join(list(summary.skipped.values())[:3])
        print(f"skipped {len(summary.skipped)} unreadable audio file(s) (listed in the file's metadata): {first}")


def _extract(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from avssl.eval.extract_job import extract_to_file

    summary = extract_to_file(args.encoder, args.manifest, args.out, _extraction_settings(args), force=args.force,
                              progress=True)
    if PartialState().is_main_process:
        _report_extraction(summary)


def _extract_faces(args: argparse.Namespace) -> None:
    from avssl.eval.extract_faces import extract_faces_to_file

    summary = extract_faces_to_file(args.encoder, args.manifest, args.out, store=args.store,
                                    batch_frames=args.batch_frames, progress=True)
    print(f"{summary.n_embeddings} face embeddings of dimension {summary.dim} -> {summary.path}: "
          f"computed in {summary.seconds:.1f} s")
    if summary.skipped:
        first = "; ".join(f"{key}: {why}" for key, why in list(summary.skipped.items())[:3])
        print(f"skipped {len(summary.skipped)} utterance(s) without usable video (listed in the file's metadata): "
              f"{first}")


def _eval(args: argparse.Namespace) -> None:
    from avssl.errors import ConfigError
    from avssl.eval.evaluate import EvalRequest, evaluate, format_table
    from avssl.eval.report import SYSTEM_TITLES, by_system, write_report

    if (args.encoder is None) != (args.manifest is None):
        raise ConfigError("--encoder and --manifest go together: they (re)extract the embeddings file when stale")
    if args.encoder is not None:
        from accelerate import PartialState

        from avssl.eval.extract_job import extract_to_file

        summary = extract_to_file(args.encoder, args.manifest, args.embeddings, _extraction_settings(args),
                                  progress=True)
        if not PartialState().is_main_process:
            return  # extraction was shared out; scoring is one process's job
        _report_extraction(summary)
    request = EvalRequest(
        trial_files=[Path(t) for t in args.trials], embeddings=Path(args.embeddings),
        train_embeddings=_path(args.train_embeddings), cohort_embeddings=_path(args.cohort_embeddings),
        asnorm_clusters=args.asnorm_clusters, asnorm_top_n=args.asnorm_top_n,
        face_embeddings=_path(args.face_embeddings), face_cohort_embeddings=_path(args.face_cohort_embeddings),
        fusion_weight=args.fusion_weight, fusion_dev_trials=_path(args.fusion_dev_trials), seed=args.seed,
    )
    evaluation = evaluate(request)
    rows = {SYSTEM_TITLES[s]: per_list for s, per_list in by_system(evaluation).items()}
    print(format_table(rows, list(evaluation.metrics)))
    if args.out_dir:
        written = write_report(args.out_dir, evaluation)
        print(f"written: {written[0]}, results.json, score files in scores/ and figures in plots/ beside it")


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _verify(args: argparse.Namespace) -> None:
    from avssl.inference import Verifier

    verifier = Verifier.load(args.encoder, args.face_encoder, args.train_embeddings, args.face_train_embeddings)
    mode = args.mode or verifier.default_mode
    if args.dev_trials:
        verifier.calibrate(args.dev_trials, args.dev_root, args.dev_video_root)
        calibration = verifier.calibration
        eers = ", ".join(f"{m} {100 * eer:.2f} %" for m, eer in calibration.dev_eer.items())
        weight = f"; face weight {calibration.fusion.weight:.2f}" if calibration.fusion else ""
        print(f"calibrated on {args.dev_trials} ({calibration.n_trials} trials): EER {eers}{weight}")
    decision = verifier.verify(args.first, args.second, mode)
    thresholds = verifier.calibration.thresholds if verifier.calibration else {}
    for name, score in decision.scores.items():
        at = f"  (threshold {thresholds[name]:.4f})" if name in thresholds else ""
        print(f"{name:<5} score {score:.4f}{at}")
    verdict = {True: "same speaker", False: "different speakers", None: "no decision (give --dev-trials)"}
    print(f"decision ({mode}): {verdict[decision.same_speaker]}")


def _export(args: argparse.Namespace) -> None:
    from avssl.export import export_onnx, export_torchscript

    exporter = export_torchscript if args.format == "torchscript" else export_onnx
    print(f"{args.format} model (waveform in, embedding out) -> {exporter(args.encoder, args.out)}")


def _demo(args: argparse.Namespace) -> None:
    from avssl.demo import run_demo

    run_demo(args.out_dir, seed=args.seed, profile="quick" if args.quick else "full", workers=args.workers,
             overrides=tuple(args.overrides), jobs=args.jobs)


def _add_extraction_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bucket-tolerance", type=float, default=0.02,
                   help="batch utterances whose lengths differ by at most this fraction (0: equal only)")
    p.add_argument("--max-batch-seconds", type=float, default=300.0, help="audio per cropped batch (memory cap)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avssl", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the embedded audio-visual corpus")
    p.add_argument("out_dir")
    p.add_argument("--size", default="demo", help="tiny | demo | large")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=_synth)

    p = sub.add_parser("prepare", help="VoxCeleb-layout tree -> manifests, trial lists, augmentation lists")
    p.add_argument("root")
    p.add_argument("out_dir")
    p.add_argument("--workers", type=int, default=None)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--shard", help="I/N: probe only slice I (0-based) of N into OUT/parts, for array jobs")
    mode.add_argument("--merge", action="store_true", help="write the outputs from the parts of every slice")
    p.set_defaults(func=_prepare)

    p = sub.add_parser("prepare-faces", help="face frames of every utterance's video -> a frame store")
    p.add_argument("manifest", help="a manifest written by `avssl prepare` (its video column)")
    p.add_argument("out_dir")
    p.add_argument("--rate", type=float, default=2.5, help="frames per second (centre of each 1/rate interval)")
    p.add_argument("--size", type=int, default=112, help="side of the square face crops")
    p.add_argument("--crop", type=float, default=1.0, help="centre square as a fraction of the shorter side")
    p.add_argument("--detect", action="store_true", help="refine crops with OpenCV's Haar face detector")
    p.add_argument("--format", choices=("jpg", "npy"), default="jpg", help="film-strip JPEG or raw uint8")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality")
    p.add_argument("--shard", default="0/1", help="I/N: this job's share of an array job (0-based)")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=_prepare_faces)

    p = sub.add_parser("train", help="stage I: DINO on audio or faces (config YAML + key=value overrides)")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. optim.epochs=10")
    p.add_argument("--resume", action="store_true", help="continue from run.output_dir/checkpoint.pt")
    p.set_defaults(func=_train)

    p = sub.add_parser("train-pseudo", help="stage II: pseudo-label rounds with DLG-LC (config YAML + key=value overrides)")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. gate.mode=fixed rounds.count=3")
    p.add_argument("--resume", action="store_true", help="continue the unfinished round from its checkpoint.pt")
    p.set_defaults(func=_train_pseudo)

    p = sub.add_parser("extract", help="full-utterance embeddings of a manifest with a trained encoder")
    p.add_argument("encoder", help="encoder.pt written by `avssl train`")
    p.add_argument("manifest")
    p.add_argument("out", help="output .npz (reused when encoder, manifest and settings are unchanged)")
    _add_extraction_options(p)
    p.add_argument("--force", action="store_true", help="recompute even when the cached file matches")
    p.set_defaults(func=_extract)

    p = sub.add_parser("extract-faces", help="utterance face embeddings of a manifest with a trained face encoder")
    p.add_argument("encoder", help="encoder.pt written by `avssl train` with modality: face")
    p.add_argument("manifest")
    p.add_argument("out", help="output .npz (the format `avssl eval --face-embeddings` reads)")
    p.add_argument("--store", help="face store written by `avssl prepare-faces` (default: decode the videos)")
    p.add_argument("--batch-frames", type=int, default=256, help="frames per encoder batch (memory cap)")
    p.set_defaults(func=_extract_faces)

    p = sub.add_parser("eval", help="score trial lists (cosine, AS-norm, audio+face fusion) -> EER, minDCF")
    p.add_argument("embeddings", help=".npz of the test utterances (with --encoder/--manifest: made if stale)")
    p.add_argument("--trials", nargs="+", required=True)
    p.add_argument("--encoder", help="extract EMBEDDINGS with this encoder unless its cache is up to date")
    p.add_argument("--manifest", help="the test manifest to extract from (with --encoder)")
    _add_extraction_options(p)
    p.add_argument("--train-embeddings", help=".npz of label-free training utterances: their mean is subtracted")
    p.add_argument("--cohort-embeddings", help=".npz of training utterances: the AS-norm cohort source")
    p.add_argument("--asnorm-clusters", type=int, help="AS-norm cohort = means of K k-means clusters of the cohort")
    p.add_argument("--asnorm-top-n", type=int, default=300, help="cohort scores kept per utterance (default 300)")
    p.add_argument("--face-embeddings", help=".npz of face embeddings of the test utterances: adds face + fused")
    p.add_argument("--face-cohort-embeddings", help=".npz of training face embeddings (face mean, cohort z-norm)")
    p.add_argument("--fusion-weight", type=float, help="face weight in [0, 1] of the fused score")
    p.add_argument("--fusion-dev-trials", help="development trial list: z-norm statistics, and the weight if not given")
    p.add_argument("--seed", type=int, default=0, help="k-means and cohort-pair sampling seed")
    p.add_argument("--out-dir", help="write results.md/json, score files and figures here")
    p.set_defaults(func=_eval)

    p = sub.add_parser("verify", help="score two recordings by audio, face or both (and decide)")
    p.add_argument("first", help="audio file (wav, flac, m4a), or an .mp4 face track with or without audio")
    p.add_argument("second")
    p.add_argument("--encoder", help="speaker encoder.pt written by `avssl train`")
    p.add_argument("--face-encoder", help="face encoder.pt written by `avssl train` with modality: face")
    p.add_argument("--mode", choices=("audio", "face", "fused"),
                   help="default: fused with both encoders, else the one given (fused needs --dev-trials)")
    p.add_argument("--train-embeddings", help=".npz of training utterances (their mean is subtracted)")
    p.add_argument("--face-train-embeddings", help=".npz of training face embeddings (their mean is subtracted)")
    p.add_argument("--dev-trials", help="a development trial list: thresholds at its EER points, fusion fitted on it")
    p.add_argument("--dev-root", help="folder of the dev list's audio (.wav, .flac, .m4a or .mp4)")
    p.add_argument("--dev-video-root", help="folder of the dev list's .mp4 face tracks (may be --dev-root)")
    p.set_defaults(func=_verify)

    p = sub.add_parser("export", help="a deployable audio encoder with its fbank front end")
    p.add_argument("encoder", help="encoder.pt written by `avssl train`")
    p.add_argument("out")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    p.set_defaults(func=_export)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded corpus")
    p.add_argument("--out-dir", default="runs/demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny corpus and 2 epochs: a smoke run")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--jobs", type=int, default=None,
                   help="trainings side by side after the first DINO, one torch thread each (default: 2, --quick: 1)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the DINO config")
    p.set_defaults(func=_demo)

    from avssl.prep.voxceleb_cli import add_parsers as add_voxceleb_parsers  # `voxceleb <step>`, `shards`

    add_voxceleb_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # faiss reports at INFO which CPU build it fell back to: noise in every clustering command's output.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        args.func(args)
    except AvsslError as err:
        print(f"avssl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
