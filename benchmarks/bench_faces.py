"""Face data path: extraction speed, training-read speed from the store vs decoding on the fly, and
what both mean for VoxCeleb2 dev (1,092,009 videos) on 16 and 64 cores.

Measures, in one process with one thread (that is, per core) unless a row says otherwise, best of
``--repeats`` runs because a shared machine measures its neighbours too:

* extraction (`avssl prepare-faces`): videos/s, per store format, with and without the Haar detector,
  on the synthetic corpus and optionally on real clips (``--videos``, e.g. /work/shared/data/av_grid);
  one row runs the command line with ``--workers`` processes, start-up included;
* training reads: samples/s of the visual multi-crop views (2 x 112 + 4 x 64 crops, augmented), and
  frame reads/s alone, from the jpg store, the npy store and decoding on the fly;
* bytes per stored frame.

Then it projects to VoxCeleb2 dev, stating its assumptions: decoding cost scales with pixels x seconds
of video (VoxCeleb2: 224 x 224, 7.8 s on average), reading a jpg strip with its frame count, reading
an npy file not at all; augmentation costs the same. Prints markdown tables:

    python benchmarks/bench_faces.py --data runs/demo/data --videos /work/shared/data/av_grid
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from avssl.data.manifest import Utterance, read_manifest, write_manifest
from avssl.faces.frames import FrameSampling, frame_count
from avssl.faces.sources import DecodedFaces, FaceSource
from avssl.faces.store import FaceStore
from avssl.faces.views import FaceMultiCropDataset
from avssl.prep.corpus import prepare_corpus
from avssl.prep.faces import prepare_faces
from avssl.synth.corpus import generate_corpus

VOX2_DEV_VIDEOS = 1_092_009
VOX2_MEAN_SECONDS = 7.8  # 2,442 h over the 1,128,246 VoxCeleb2 utterances (dev + test)
VOX2_PIXELS = 224 * 224
VOX2_FRAMES = frame_count(VOX2_MEAN_SECONDS, 2.5)


def probe(utterances: list[Utterance]) -> tuple[float, float]:
    """Mean seconds and mean pixels per frame of the utterances' videos."""
    import decord

    seconds, pixels = [], []
    for utt in utterances:
        reader = decord.VideoReader(utt.video, num_threads=1)
        seconds.append(len(reader) / reader.get_avg_fps())
        pixels.append(reader[0].shape[0] * reader[0].shape[1])
    return float(np.mean(seconds)), float(np.mean(pixels))


def extract(manifest: Path, work: Path, fmt: str, detect: bool, repeats: int) -> tuple[dict, Path]:
    """The fastest of ``repeats`` in-process extractions into fresh stores: (its report, its store)."""
    best: tuple[dict, Path] | None = None
    for k in range(repeats):
        store = work / f"store-{manifest.stem}-{fmt}-{'haar' if detect else 'centre'}-{k}"
        report = prepare_faces(manifest, store, FrameSampling(detect=detect), fmt=fmt, workers=1)
        if best is None or report["videos_per_s"] > best[0]["videos_per_s"]:
            best = (report, store)
    assert best is not None
    return best


def extract_cli(manifest: Path, store: Path, workers: int) -> dict:
    """`avssl prepare-faces` as a user runs it, with ``workers`` processes; its report."""
    command = [
        sys.executable,
        "-m",
        "avssl.cli",
        "prepare-faces",
        str(manifest),
        str(store),
        "--workers",
        str(workers),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return json.loads((store / "reports" / "prepare_faces.json").read_text())


def bytes_per_frame(store: Path, report: dict) -> float:
    files = (store / "frames").rglob(f"*.{report['settings']['format']}")
    return sum(f.stat().st_size for f in files) / max(report["frames"], 1)


def read_rates(
    source: FaceSource, utterances: list[Utterance], samples: int, repeats: int
) -> tuple[float, float]:
    """Best (multi-crop samples/s, frame reads/s) over random utterances, after a short warm-up."""
    dataset = FaceMultiCropDataset(utterances, source, seed=0)
    order = np.random.default_rng(0).integers(len(dataset), size=samples).tolist()
    for index in order[:5]:
        dataset[index]
    views = reads = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for index in order:
            dataset[index]
        views = max(views, samples / (time.perf_counter() - started))
        started = time.perf_counter()
        for index in order:
            np.asarray(dataset.frames(index)[:6]).sum()  # touch the pixels a sample uses
        reads = max(reads, samples / (time.perf_counter() - started))
    return views, reads


def synthetic(data: Path) -> Path:
    """``data`` as `avssl prepare` wrote it; if it is missing, the demo corpus is generated beside it
    (``data/../corpus``, the layout `avssl demo` uses) and prepared into it."""
    if not (data / "manifests" / "dev.tsv").is_file():
        generate_corpus(data.parent / "corpus", size="demo", seed=0)
        prepare_corpus(data.parent / "corpus", data)
    return data


def real_manifest(folder: Path, out: Path) -> Path:
    """A manifest of the video files in ``folder`` (the audio column is not used here)."""
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".mp4", ".mpg", ".avi", ".mkv"))
    rows = [Utterance(f"real/{p.stem}/00001", "unused.wav", str(p), 1.0, 16000) for p in videos]
    return write_manifest(out, rows)


def hours(per_core: float, cores: int, items: int = VOX2_DEV_VIDEOS) -> str:
    return f"{items / (per_core * cores) / 3600:.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path("runs/demo/data"), help="output folder of `avssl prepare`"
    )
    parser.add_argument("--videos", type=Path, help="a folder of real face videos for extraction speed")
    parser.add_argument("--limit", type=int, default=300, help="synthetic videos per extraction run")
    parser.add_argument("--samples", type=int, default=300, help="samples per training-read run")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes for the command-line extraction row"
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data = synthetic(args.data)
    with tempfile.TemporaryDirectory(prefix="bench_faces_") as tmp:
        run(data, Path(tmp), args)


def run(data: Path, work: Path, args: argparse.Namespace) -> None:
    utterances = [u for u in read_manifest(data / "manifests" / "dev.tsv") if u.video][: args.limit]
    sets = {"synthetic": write_manifest(work / "synthetic.tsv", utterances)}
    if args.videos is not None:
        sets["real"] = real_manifest(args.videos, work / "real.tsv")
    shape = {name: probe(read_manifest(manifest)) for name, manifest in sets.items()}
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f} at start")
    for name, manifest in sets.items():
        seconds, pixels = shape[name]
        print(
            f"{name}: {len(read_manifest(manifest))} videos, {seconds:.2f} s mean, {pixels**0.5:.0f}^2 pixels mean"
        )

    print(
        "\n| videos | store | detector | processes | videos/s | videos/s per process | frames detected | bytes/frame |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    rates: dict[tuple[str, str, bool], float] = {}
    sizes: dict[tuple[str, str], float] = {}
    stores: dict[str, Path] = {}
    cases = [("synthetic", "jpg", False), ("synthetic", "npy", False), ("synthetic", "jpg", True)]
    cases += [("real", "jpg", False), ("real", "npy", False), ("real", "jpg", True)] if "real" in sets else []
    for name, fmt, detect in cases:
        report, store = extract(sets[name], work, fmt, detect, args.repeats)
        rates[name, fmt, detect] = report["videos_per_s"]
        if not detect:
            sizes[name, fmt] = bytes_per_frame(store, report)
            stores.setdefault(f"{name}-{fmt}", store)
        found = f"{report['detected_frames']}/{report['frames']}" if detect else "-"
        print(
            f"| {name} | {fmt} | {'haar' if detect else 'off'} | 1 | {report['videos_per_s']:.1f} | "
            f"{report['videos_per_s']:.1f} | {found} | {bytes_per_frame(store, report):,.0f} |",
            flush=True,
        )
    report = extract_cli(sets["synthetic"], work / "store-cli", args.workers)
    print(
        f"| synthetic, `avssl prepare-faces` | jpg | off | {report['workers']} | {report['videos_per_s']:.1f} | "
        f"{report['videos_per_s_per_worker']:.1f} | - | {bytes_per_frame(work / 'store-cli', report):,.0f} |"
    )

    print(
        f"\nTraining reads, one process, {args.samples} random samples; a sample is 2 x 112 + 4 x 64 augmented crops"
    )
    print("\n| source | samples/s | frame reads/s | reading's share of a sample |")
    print("|---|---:|---:|---:|")
    sources = {
        "store, jpg": FaceStore(stores["synthetic-jpg"]),
        "store, npy": FaceStore(stores["synthetic-npy"]),
        "decoded on the fly": DecodedFaces(),
    }
    read_cost: dict[str, tuple[float, float]] = {}
    for name, source in sources.items():
        views, reads = read_rates(source, utterances, args.samples, args.repeats)
        read_cost[name] = (1 / reads, max(1 / views - 1 / reads, 0.0))  # seconds to read, for the rest
        print(f"| {name} | {views:.1f} | {reads:.1f} | {min(views / reads, 1):.0%} |", flush=True)

    seconds, pixels = shape["synthetic"]
    decode_scale = VOX2_MEAN_SECONDS * VOX2_PIXELS / (seconds * pixels)
    scales = {
        "store, jpg": VOX2_FRAMES / frame_count(seconds, 2.5),
        "store, npy": 1.0,
        "decoded on the fly": decode_scale,
    }
    print(
        f"\nProjection to VoxCeleb2 dev ({VOX2_DEV_VIDEOS:,} videos, {VOX2_MEAN_SECONDS} s at 224^2 on average, "
        f"{VOX2_FRAMES} frames each): decoding costs x{decode_scale:.1f} the synthetic video's"
    )
    print("\n| step | per core | 16 cores | 64 cores |")
    print("|---|---:|---:|---:|")
    for name, detect in [(name, detect) for name in sets for detect in (False, True)]:
        set_seconds, set_pixels = shape[name]
        rate = rates[name, "jpg", detect] * (set_seconds * set_pixels) / (VOX2_MEAN_SECONDS * VOX2_PIXELS)
        what = f"extraction{' + Haar' if detect else ''}, scaled from the {name} videos"
        print(f"| {what} | {rate:.1f} videos/s | {hours(rate, 16)} | {hours(rate, 64)} |")
    for name, (read_s, rest_s) in read_cost.items():
        rate = 1 / (read_s * scales[name] + rest_s)
        print(
            f"| one epoch of training reads, {name} | {rate:.1f} samples/s | {hours(rate, 16)} | {hours(rate, 64)} |"
        )
    for (name, fmt), per_frame in sizes.items():
        size = per_frame * VOX2_FRAMES * VOX2_DEV_VIDEOS / 1e9
        print(f"| store size, {fmt} ({name} bytes/frame) | {per_frame:,.0f} B/frame | {size:,.0f} GB | |")


if __name__ == "__main__":
    main()
