"""The `avssl` command line: one sub-command per pipeline stage, plus `demo`.

Bad input (a config key, a missing file) ends with a one-line message and exit status 2, not a
traceback: the message says what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from avssl.errors import AvsslError


def _synth(args: argparse.Namespace) -> None:
    from avssl.synth.corpus import generate_corpus

    summary = generate_corpus(args.out_dir, size=args.size, seed=args.seed, workers=args.workers, progress=True)
    print(f"corpus '{summary['size']}' (seed {summary['seed']}) in {args.out_dir}: {summary['counts']}")


def _prepare(args: argparse.Namespace) -> None:
    from avssl.prep.corpus import prepare_corpus

    report = prepare_corpus(args.root, args.out_dir, workers=args.workers, progress=True)
    print(f"prepared {args.root} -> {args.out_dir}; problems reported: {report['problems']} "
          f"(details in {Path(args.out_dir) / 'prepare_report.json'})")


def _train(args: argparse.Namespace) -> None:
    from avssl.config import DinoTrainConfig, load_config
    from avssl.train.stage_dino import train_dino

    config = load_config(DinoTrainConfig, args.config, args.overrides)
    result = train_dino(config, resume=args.resume)
    print(f"trained in {result.seconds:.0f} s; teacher encoder: {result.encoder_path}")


def _extract(args: argparse.Namespace) -> None:
    from avssl.data.manifest import read_manifest
    from avssl.eval.extract import embed_utterances, encoder_embedder, save_embeddings
    from avssl.train.encoder_file import load_encoder

    encoder, fbank, sample_rate = load_encoder(args.encoder)
    utterances = read_manifest(args.manifest)
    embeddings = embed_utterances(encoder_embedder(encoder, fbank), utterances, sample_rate, progress=True)
    save_embeddings(args.out, [u.key for u in utterances], embeddings)
    print(f"{len(utterances)} embeddings of dimension {embeddings.shape[1]} -> {args.out}")


def _eval(args: argparse.Namespace) -> None:
    from avssl.eval.evaluate import evaluate_trials, format_table, mean_embedding
    from avssl.eval.extract import load_embeddings
    from avssl.utils.atomic import atomic_write_json

    keys, embeddings = load_embeddings(args.embeddings)
    mean = mean_embedding(load_embeddings(args.train_embeddings)[1]) if args.train_embeddings else None
    results = evaluate_trials(args.trials, keys, embeddings, mean, args.score_dir)
    print(format_table({Path(args.embeddings).stem: results}, list(results)))
    if args.out:
        atomic_write_json(args.out, results)


def _verify(args: argparse.Namespace) -> None:
    from avssl.inference import Verifier

    verifier = Verifier.load(args.encoder, args.train_embeddings)
    if args.dev_trials:
        threshold = verifier.calibrate(args.dev_trials, args.dev_root)
        print(f"threshold {threshold:.4f} (EER point of {args.dev_trials})")
    decision = verifier.verify(args.first, args.second)
    verdict = {True: "same speaker", False: "different speakers", None: "no decision (give --dev-trials)"}
    print(f"score {decision.score:.4f}: {verdict[decision.same_speaker]}")


def _export(args: argparse.Namespace) -> None:
    from avssl.export import export_onnx, export_torchscript

    exporter = export_torchscript if args.format == "torchscript" else export_onnx
    print(f"{args.format} model (waveform in, embedding out) -> {exporter(args.encoder, args.out)}")


def _demo(args: argparse.Namespace) -> None:
    from avssl.demo import run_demo

    run_demo(args.out_dir, seed=args.seed, profile="quick" if args.quick else "full", workers=args.workers,
             overrides=tuple(args.overrides))


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
    p.set_defaults(func=_prepare)

    p = sub.add_parser("train", help="stage I: DINO (config YAML + key=value overrides)")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. optim.epochs=10")
    p.add_argument("--resume", action="store_true", help="continue from run.output_dir/checkpoint.pt")
    p.set_defaults(func=_train)

    p = sub.add_parser("extract", help="full-utterance embeddings of a manifest with a trained encoder")
    p.add_argument("encoder", help="encoder.pt written by `avssl train`")
    p.add_argument("manifest")
    p.add_argument("out", help="output .npz")
    p.set_defaults(func=_extract)

    p = sub.add_parser("eval", help="cosine scoring of trial lists -> EER, minDCF")
    p.add_argument("embeddings", help=".npz of the test utterances")
    p.add_argument("--trials", nargs="+", required=True)
    p.add_argument("--train-embeddings", help=".npz of training utterances (their mean is subtracted)")
    p.add_argument("--score-dir")
    p.add_argument("--out", help="write the metrics as JSON")
    p.set_defaults(func=_eval)

    p = sub.add_parser("verify", help="score two recordings with a trained encoder (and decide)")
    p.add_argument("encoder", help="encoder.pt written by `avssl train`")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--train-embeddings", help=".npz of training utterances (their mean is subtracted)")
    p.add_argument("--dev-trials", help="a development trial list: the threshold is its EER point")
    p.add_argument("--dev-root", default=".", help="folder the dev trial paths are relative to")
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
    p.add_argument("overrides", nargs="*", help="key=value overrides of the DINO config")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        args.func(args)
    except AvsslError as err:
        print(f"avssl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
