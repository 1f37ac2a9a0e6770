"""Command-line entries of the VoxCeleb preparation: ``avssl voxceleb <step>`` and ``avssl shards``.

Kept out of :mod:`avssl.cli` so that module only registers them; heavy imports happen when a step
runs, so ``avssl --help`` stays fast. Each step prints one summary line naming its JSON report.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

SHARD_HELP = "do slice i of n (0-based) of the work, for array jobs; each slice writes its own report"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``voxceleb`` (with one sub-command per step) and ``shards`` on the main parser."""
    voxceleb = sub.add_parser("voxceleb", help="VoxCeleb at scale: archives, m4a conversion, layout, meta, MUSAN/RIRs")
    steps = voxceleb.add_subparsers(dest="step", required=True)

    p = steps.add_parser("fixture", help="write a miniature VoxCeleb download (real encodings) for trying the steps")
    p.add_argument("out_dir")
    p.add_argument("--bad", action="store_true", help="add truncated, corrupt, empty, silent and mis-sampled files")
    p.add_argument("--extracted", action="store_true", help="write the unzipped tree instead of the archives")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_fixture)

    p = steps.add_parser("archives", help="verify (md5) and extract downloaded archives, split parts included")
    p.add_argument("downloads", help="folder with vox1_dev_wav_partaa ..., *.zip, musan.tar.gz, ...")
    p.add_argument("out_dir")
    p.add_argument("--md5", help="md5 list (md5sum format) of the downloaded files")
    _add_common(p)
    p.set_defaults(func=_archives)

    p = steps.add_parser("convert", help="m4a (or any audio) tree -> 16 kHz mono 16-bit wav/flac tree")
    p.add_argument("source", help="e.g. EXTRACTED/vox2/dev/aac")
    p.add_argument("out_dir")
    p.add_argument("--format", choices=("wav", "flac"), default="wav")
    p.add_argument("--report", help="report path (default: <out_dir>.convert_report[.shard-i-of-n].json)")
    _add_common(p)
    p.set_defaults(func=_convert)

    p = steps.add_parser("layout", help="link the corpora into the ROOT layout `avssl prepare` reads")
    p.add_argument("root")
    p.add_argument("--vox1", help="extracted VoxCeleb1 folder (holds wav/)")
    p.add_argument("--vox2", help="extracted VoxCeleb2 folder (holds dev/aac, dev/mp4)")
    p.add_argument("--vox2-audio", help="converted VoxCeleb2 dev audio; without it m4a is decoded on the fly")
    p.add_argument("--trials", nargs="+", default=[], help="trial-list files, or folders holding the official ones")
    p.add_argument("--allow-partial", action="store_true", help="accept a conversion that is not finished")
    p.set_defaults(func=_layout)

    p = steps.add_parser("meta", help="speaker metadata vs manifests (diagnostics; training never reads it)")
    p.add_argument("out_dir")
    p.add_argument("--vox1-meta")
    p.add_argument("--vox2-meta")
    p.add_argument("--manifests", nargs="*", default=[], help="manifests written by `avssl prepare`")
    p.set_defaults(func=_meta)

    p = steps.add_parser("augment", help="MUSAN pieces and RIRs as 16 kHz mono files + noise.tsv / rir.tsv")
    p.add_argument("out_dir")
    p.add_argument("--musan", help="extracted musan/ folder")
    p.add_argument("--rirs", help="extracted RIRS_NOISES/ folder")
    p.add_argument("--chunk-seconds", type=float, default=6.0)
    p.add_argument("--min-seconds", type=float, default=1.0, help="drop noise pieces shorter than this")
    p.add_argument("--max-per-category", type=int, help="list at most this many noise pieces per category")
    _add_common(p)
    p.set_defaults(func=_augment)

    p = sub.add_parser("shards", help="pack a manifest's audio into tar shards for sequential training reads")
    p.add_argument("manifest")
    p.add_argument("out_dir")
    p.add_argument("--utterances-per-shard", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)
    p.set_defaults(func=_shards)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all usable cores)")
    parser.add_argument("--shard", default="0/1", help=SHARD_HELP)


def _fixture(args: argparse.Namespace) -> None:
    from avssl.prep.fixture import build_voxceleb_fixture, pack_downloads

    out = Path(args.out_dir)
    if args.extracted:
        fixture = build_voxceleb_fixture(out, bad=args.bad, seed=args.seed)
        print(f"unzipped miniature VoxCeleb in {out}: {len(fixture.vox1_keys)} vox1 + {len(fixture.vox2_keys)} "
              f"vox2 utterances, {len(fixture.bad)} broken file(s)")
        return
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tree:
        fixture = build_voxceleb_fixture(tree, bad=args.bad, seed=args.seed)
        sums = pack_downloads(tree, out / "downloads")
    print(f"miniature VoxCeleb download in {out / 'downloads'}: {len(sums)} archive file(s), md5sums.txt, "
          f"meta and trial lists; {len(fixture.bad)} broken file(s) inside")


def _archives(args: argparse.Namespace) -> None:
    from avssl.prep.archives import prepare_archives
    from avssl.prep.parallel import parse_shard

    report = prepare_archives(args.downloads, args.out_dir, args.md5, args.workers, parse_shard(args.shard), True)
    done = sum(entry["status"] == "already_done" for entry in report["archives"].values())
    extracted = sum(entry.get("extracted", 0) for entry in report["archives"].values())
    print(f"{len(report['archives'])} archive(s) ({done} done earlier), {extracted} member(s) extracted, "
          f"{len(report['unverified'])} file(s) without md5; report: {Path(args.out_dir) / 'archives_report.json'}")


def _convert(args: argparse.Namespace) -> None:
    from avssl.prep.convert import convert_tree, report_file
    from avssl.prep.parallel import parse_shard

    shard = parse_shard(args.shard)
    report = convert_tree(args.source, args.out_dir, args.format, workers=args.workers, shard=shard,
                          progress=True, report_path=args.report)
    where = args.report or report_file(Path(args.out_dir).resolve(), shard)
    print(f"converted {report['converted']} ({report['resampled']} resampled), {report['already_done']} already "
          f"done, {report['skipped']} skipped {report['skipped_by_reason'] or ''}; report: {where}")


def _layout(args: argparse.Namespace) -> None:
    from avssl.prep.layout import build_layout

    report = build_layout(args.root, args.vox1, args.vox2, args.vox2_audio, args.trials, args.allow_partial)
    print(f"{len(report['links'])} link(s) in {report['root']}; next: avssl prepare {args.root} OUT")


def _meta(args: argparse.Namespace) -> None:
    from avssl.prep.meta import read_vox1_meta, read_vox2_meta, speaker_report

    meta = ([read_vox1_meta(args.vox1_meta)] if args.vox1_meta else []) + (
        [read_vox2_meta(args.vox2_meta)] if args.vox2_meta else []
    )
    report = speaker_report(meta, args.manifests, args.out_dir)
    print(f"{report['speakers']} speakers {report['by_corpus_and_set']}, {len(report['problems'])} problem line(s); "
          f"report: {Path(args.out_dir) / 'meta_report.json'}")


def _augment(args: argparse.Namespace) -> None:
    from avssl.prep.augment_corpora import prepare_augment_corpora
    from avssl.prep.parallel import parse_shard

    report = prepare_augment_corpora(
        args.out_dir, args.musan, args.rirs, args.chunk_seconds, args.min_seconds,
        max_per_category=args.max_per_category, workers=args.workers, shard=parse_shard(args.shard), progress=True,
    )  # fmt: skip
    print(f"{report['processed']} source file(s) processed, {report['already_done']} already done, "
          f"{report['skipped']} skipped; lists {report['lists']['status']}; report in {args.out_dir}")


def _shards(args: argparse.Namespace) -> None:
    from avssl.prep.pack_shards import pack_shards
    from avssl.prep.parallel import parse_shard

    report = pack_shards(args.manifest, args.out_dir, args.utterances_per_shard, args.seed, args.workers,
                         parse_shard(args.shard), progress=True)
    print(f"{report['written']} shard(s) written, {report['already_done']} already there, of {report['shards']}; "
          f"index: {report['index']}")
