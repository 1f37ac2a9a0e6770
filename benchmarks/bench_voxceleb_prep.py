"""VoxCeleb preparation cost: m4a conversion per core, decode-on-the-fly cost, projected to VoxCeleb2 dev.

Writes ``--utterances`` AAC m4a files of ``--seconds`` (VoxCeleb2 dev averages 2,360 h / 1,092,009 =
7.8 s) with the fixture's encoder, converts them with ``avssl voxceleb convert`` at several worker
counts, times the per-utterance reads a data loader would do (whole file, or a 2 s crop) from m4a,
wav, flac and training shards, and the probe that ``avssl prepare`` runs on every file (wav, m4a and
224x224 25 fps mp4 face tracks). Prints markdown
tables; the projections assume throughput per worker stays as measured on every core:

    python benchmarks/bench_voxceleb_prep.py --utterances 200 --workers 1 2

Face extraction (videos/s) is measured by the face-extraction benchmark, not here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from avssl.data.audio import load_audio
from avssl.data.manifest import Utterance, write_manifest
from avssl.data.shards import ShardDataset
from avssl.prep.convert import convert_tree
from avssl.prep.fixture import FPS, RATE, face_frames, synthetic_voice, write_m4a
from avssl.prep.pack_shards import pack_shards
from avssl.prep.scan import MediaFile, probe
from avssl.synth.media import write_mp4

VOX2_DEV_UTTERANCES = 1_092_009
CROP_SECONDS = 2.0


def make_sources(folder: Path, count: int, seconds: float) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        speaker = f"id{index % 50:05d}"
        path = folder / speaker / f"s{index % 7}" / f"{index:05d}.m4a"
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(write_m4a(path, synthetic_voice(speaker, index % 5, seconds, rng), RATE))
    return paths


def make_videos(folder: Path, count: int, seconds: float) -> list[Path]:
    """Face tracks as VoxCeleb2's: 224x224, 25 fps, with an AAC track."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    paths = [folder / f"{index:05d}.mp4" for index in range(count)]
    for index, path in enumerate(paths):
        wave = synthetic_voice(f"id{index:05d}", 1, seconds, rng)
        write_mp4(path, face_frames(f"id{index:05d}", seconds), wave, RATE, FPS)
    return paths


def per_item_ms(function: Callable[[Any], object], paths: Sequence[Any]) -> float:
    """Median of three passes over ``paths`` (after one warm-up call), in ms per item, one process."""
    function(paths[0])
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        for path in paths:
            function(path)
        passes.append((time.perf_counter() - started) / len(paths) * 1000)
    return float(np.median(passes))


def crop(path: Path) -> np.ndarray:
    """What a data loader does with a converted file: seek to a random offset, read 2 s."""
    with soundfile.SoundFile(path) as handle:
        length = int(CROP_SECONDS * handle.samplerate)
        handle.seek(int(np.random.default_rng(len(str(path))).integers(0, max(1, handle.frames - length))))
        return handle.read(length, dtype="float32")


def shard_read_ms(folder: Path, wavs: list[Path]) -> float:
    utterances = [Utterance(p.stem + f"/{i}/x", str(p), None, 1.0, RATE) for i, p in enumerate(wavs)]
    manifest = write_manifest(folder / "manifest.tsv", utterances)
    pack_shards(manifest, folder / "shards", utterances_per_shard=100, workers=1)
    dataset = ShardDataset(folder / "shards" / "shards.tsv", buffer_size=100)
    started = time.perf_counter()
    count = sum(1 for _ in dataset)
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=7.8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--videos", type=int, default=20, help="mp4 face tracks for the probe timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = make_sources(tmp / "aac", args.utterances, args.seconds)
        print(f"{args.utterances} utterances of {args.seconds} s (AAC m4a, mono 16 kHz), {os.cpu_count()} CPU cores\n")

        print("| conversion | workers | utterances/s | per worker | VoxCeleb2 dev on 16 cores | on 64 cores |")
        print("|---|---:|---:|---:|---:|---:|")
        for audio_format in ("wav", "flac"):
            for workers in args.workers:
                out = tmp / f"{audio_format}{workers}"
                report = convert_tree(tmp / "aac", out, audio_format, workers=workers)
                rate = report["utterances_per_s"]
                hours = [VOX2_DEV_UTTERANCES / (rate / workers * cores) / 3600 for cores in (16, 64)]
                print(f"| m4a -> {audio_format} | {workers} | {rate:.1f} | {rate / workers:.1f} | "
                      f"{hours[0]:.2f} h | {hours[1]:.2f} h |")
        wavs = sorted((tmp / f"wav{args.workers[0]}").rglob("*.wav"))
        flacs = sorted((tmp / f"flac{args.workers[0]}").rglob("*.flac"))

        print("\n| read per utterance (one process) | ms | CPU hours per VoxCeleb2 dev epoch | bytes per second of audio |")
        print("|---|---:|---:|---:|")
        seconds_of_audio = args.utterances * args.seconds
        rows = [
            ("m4a, whole file decoded (PyAV, on the fly)", lambda p: load_audio(p, RATE), sources),
            ("wav, whole file (soundfile)", lambda p: load_audio(p, RATE), wavs),
            (f"wav, {CROP_SECONDS:.0f} s crop (seek + read)", crop, wavs),
            ("flac, whole file (soundfile)", lambda p: load_audio(p, RATE), flacs),
            (f"flac, {CROP_SECONDS:.0f} s crop (seek + read)", crop, flacs),
        ]
        for name, function, paths in rows:
            ms = per_item_ms(function, paths)
            size = sum(p.stat().st_size for p in paths) / seconds_of_audio
            print(f"| {name} | {ms:.3f} | {ms * VOX2_DEV_UTTERANCES / 3.6e6:.2f} | {size:,.0f} |")
        ms = shard_read_ms(tmp, wavs)
        print(f"| wav in tar shards, whole file (sequential stream + buffer shuffle) | {ms:.3f} | "
              f"{ms * VOX2_DEV_UTTERANCES / 3.6e6:.2f} | - |")

        print("\n| `avssl prepare` probe per file (one process) | ms | VoxCeleb2 dev on 16 cores |")
        print("|---|---:|---:|")
        videos = make_videos(tmp / "mp4", args.videos, args.seconds)
        for name, paths, kind in (("converted wav", wavs, "audio"), ("m4a", sources, "audio"), ("mp4", videos, "video")):
            media = [MediaFile(p.stem, str(p), kind) for p in paths]
            ms = per_item_ms(lambda m: probe(m, RATE), media)
            print(f"| {name} | {ms:.3f} | {ms * VOX2_DEV_UTTERANCES / 16 / 60_000:.1f} min |")


if __name__ == "__main__":
    main()
