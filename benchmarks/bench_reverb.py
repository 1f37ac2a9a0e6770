"""Reverberating a batch of crops: torchaudio's fftconvolve against avssl's reverberate_head.

Both return the first T samples of each crop's linear convolution with its impulse response; fftconvolve
transforms at exactly T + R - 1 points, reverberate_head at the next 2-3-5-smooth length. The table shows
how much that length matters for the crop lengths of the demo (1 s, 2 s) and of the paper (2 s, 3 s),
with the demo corpus's impulse responses (18,010 samples) and a one-second one (16,000, typical of
RIRS_NOISES' simulated rooms). Random inputs: only the shapes matter.

Run: ``.venv/bin/python benchmarks/bench_reverb.py [--batch 32] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import scipy.fft
import torch
import torchaudio

from avssl.data.augment import reverberate_head

SAMPLE_RATE = 16000
CROP_SECONDS = (1.0, 2.0, 3.0)
RIR_SAMPLES = (18_010, 16_000)
REPEATS = 5


def _median_ms(work: Callable[[], torch.Tensor]) -> float:
    work()  # warm-up (plans, allocations)
    times = []
    for _ in range(REPEATS):
        tick = time.perf_counter()
        work()
        times.append(time.perf_counter() - tick)
    return 1000 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="crops per call")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    print(f"batch {args.batch}, {args.threads} torch thread(s), median of {REPEATS} calls")
    print("| crop | RIR samples | T + R - 1 | its largest prime factor | fftconvolve ms | reverberate_head ms | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for rir_samples in RIR_SAMPLES:
        rirs = torch.randn(args.batch, rir_samples, generator=generator)
        for seconds in CROP_SECONDS:
            waves = torch.randn(args.batch, int(seconds * SAMPLE_RATE), generator=generator)
            length = waves.shape[1] + rir_samples - 1
            direct = _median_ms(lambda w=waves, r=rirs: torchaudio.functional.fftconvolve(w, r)[:, : w.shape[1]])
            smooth = _median_ms(lambda w=waves, r=rirs: reverberate_head(w, r))
            print(f"| {seconds:g} s | {rir_samples:,} | {length:,} | {_largest_prime_factor(length):,} | "
                  f"{direct:.1f} | {smooth:.1f} | {direct / smooth:.1f}x |")
    print(f"(next 2-3-5-smooth length of 34,009: {scipy.fft.next_fast_len(34_009, real=True):,})")


def _largest_prime_factor(n: int) -> int:
    factor, largest = 2, 1
    while factor * factor <= n:
        while n % factor == 0:
            largest, n = factor, n // factor
        factor += 1
    return max(largest, n) if n > 1 else largest


if __name__ == "__main__":
    main()
