"""Data-pipeline throughput: samples/s (and per CPU core) with augmentation + fbank on the device or in workers.

Reads a prepared corpus (default: the demo corpus, generated and prepared on first use), iterates
the DINO data loader of a config without training, and prints one table row per setting:

    python benchmarks/bench_data_pipeline.py --data runs/demo/data --workers 0 1 2 --batches 20

"device" featurises in the main process on the training device (CUDA when present), "workers"
inside the loader workers.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from avssl.config import DinoTrainConfig, load_config
from avssl.data.augment import WaveAugment, load_augment_sources
from avssl.data.featurise import CropFeaturiser, FeaturiseInWorkers, keyed_generator
from avssl.data.manifest import read_manifest
from avssl.data.samplers import EpochShardSampler
from avssl.data.views import AudioMultiCropDataset
from avssl.features import Fbank

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "voxceleb" / "dino_ecapa512.yaml"


def measure(config: DinoTrainConfig, where: str, workers: int, batches: int, device: torch.device) -> float:
    """Samples per second delivered as features, after one warm-up batch."""
    utterances = read_manifest(config.data.train_manifest)
    dataset = AudioMultiCropDataset(utterances, config.crops, config.data.sample_rate, 0, config.data.cache_audio)
    sources = load_augment_sources(config.data.noise_list, config.data.rir_list, config.data.sample_rate)
    place = torch.device("cpu") if where == "workers" else device
    featuriser = CropFeaturiser(
        WaveAugment(sources.to(place), config.augment), Fbank(config.features, config.data.sample_rate).to(place), place
    )
    batch_size = config.optim.batch_size
    sampler = EpochShardSampler(len(dataset), batch_size * (batches + 1))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
        collate_fn=FeaturiseInWorkers(dataset, featuriser, 0) if where == "workers" else None,
    )
    started = None
    for step, batch in enumerate(loader):
        if where == "device":
            featuriser(batch["global"], keyed_generator(0, step))
            featuriser(batch["local"], keyed_generator(1, step))
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step == 0:
            started = time.perf_counter()
    return batches * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/demo/data", help="output folder of `avssl prepare`")
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    data = Path(args.data)
    config = load_config(DinoTrainConfig, args.config, [
        f"data.train_manifest={data / 'manifests' / 'dev.tsv'}", f"data.noise_list={data / 'augment' / 'noise.tsv'}",
        f"data.rir_list={data / 'augment' / 'rir.tsv'}", "run.output_dir=unused", "data.cache_audio=true",
        f"optim.batch_size={args.batch_size}", "run.init_checkpoint=unused",
    ])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    crops = config.crops
    print(f"crops: {crops.num_global} x {crops.global_seconds} s + {crops.num_local} x {crops.local_seconds} s, "
          f"batch {args.batch_size}, device {device}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}")
    print("| featurise in | loader workers | samples/s | samples/s per busy core |")
    print("|---|---:|---:|---:|")
    for where in ("device", "workers"):
        for workers in args.workers:
            rate = measure(config, where, workers, args.batches, device)
            # The main process is busy when it featurises (device) or when there are no workers.
            cores = workers + (1 if where == "device" or workers == 0 else 0)
            print(f"| {where} | {workers} | {rate:.1f} | {rate / cores:.1f} |", flush=True)


if __name__ == "__main__":
    main()
