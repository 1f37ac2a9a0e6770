"""Augmentation material in the layout of MUSAN and the RIRS_NOISES simulated rooms.

``augment/noise/{noise,music,speech}/*.wav`` and ``augment/rir/*.wav`` let the DINO recipe's noise,
music, babble and reverberation augmentation run unchanged on the embedded corpus. Babble is built
from voices of *extra* identities that are neither training nor test speakers, so augmentation never
leaks a test voice into training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avssl.synth.media import write_wav
from avssl.synth.session import coloured_noise, room_impulse_response
from avssl.synth.voice import VoiceParams, synthesize_speech

KINDS = ("noise", "music", "speech", "rir")


def augment_path(out_dir: Path, kind: str, index: int) -> Path:
    """Where file ``index`` of ``kind`` lives (MUSAN-style names)."""
    if kind == "rir":
        return out_dir / "augment" / "rir" / f"rir-{index + 1:04d}.wav"
    return out_dir / "augment" / "noise" / kind / f"{kind}-{index + 1:04d}.wav"


def make_noise(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Stationary or slowly modulated coloured noise: hiss, rumble, fans, hum, rain-like crackle."""
    kind = rng.integers(4)
    slope = rng.uniform(-2.5, 1.0)
    peak = float(np.exp(rng.uniform(np.log(80), np.log(4000)))) if rng.random() < 0.5 else 0.0
    hum = float(rng.choice([50.0, 60.0])) if kind == 1 else 0.0
    x = coloured_noise(n, slope, rng, peak, hum, sr)
    if kind == 2:  # slow amplitude modulation (traffic, wind)
        t = np.arange(n) / sr
        x *= 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t + rng.uniform(0, 2 * np.pi))
    elif kind == 3:  # crackle: sparse clicks over the noise
        clicks = (rng.random(n) < rng.uniform(5, 60) / sr) * rng.standard_normal(n) * 8
        x += np.convolve(clicks, np.exp(-np.arange(40) / 6.0), mode="same")
    return 0.1 * x / (x.std() + 1e-12)


def make_music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A synthetic piece: a chord progression of harmonic tones with plucked envelopes, plus an
    optional noise-burst drum track at a steady tempo."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    beat = 60.0 / rng.uniform(70, 160)
    root = rng.uniform(45, 60)  # MIDI note of the key
    harmonics = rng.uniform(0.2, 0.9)
    decay = rng.uniform(1.0, 6.0)
    chords = ([0, 4, 7], [5, 9, 12], [7, 11, 14], [-3, 0, 4], [2, 5, 9])
    step = int(2 * beat * sr)
    for start in range(0, n, step):
        seg = slice(start, min(n, start + step))
        tt = t[seg] - t[start]
        chord = chords[rng.integers(len(chords))]
        for note in (*chord, chord[0] - 12):
            f = 440.0 * 2 ** ((root + note - 69) / 12)
            tone = sum(
                harmonics**k * np.sin(2 * np.pi * f * (k + 1) * tt) for k in range(6) if f * (k + 1) < sr / 2
            )
            out[seg] += tone * np.exp(-decay * tt)
    if rng.random() < 0.6:
        hit = rng.standard_normal(int(0.08 * sr)) * np.exp(-np.arange(int(0.08 * sr)) / (0.015 * sr))
        for start in np.arange(0, n - hit.size, int(beat * sr)):
            out[start : start + hit.size] += 2.0 * hit
    return 0.1 * out / (out.std() + 1e-12)


def make_babble(voices: list[VoiceParams], rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Several people talking at once: independent utterances of ``voices`` at random relative levels."""
    out = np.zeros(n)
    for voice in voices:
        out += synthesize_speech(voice, n, rng, sr) * 10 ** (rng.uniform(-6, 0) / 20)
    return 0.1 * out / (out.std() + 1e-12)


def make_rir(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A simulated room with RT60 between 0.2 and 1.0 s."""
    return room_impulse_response(rng, float(rng.uniform(0.2, 1.0)), float(rng.uniform(-5, 8)), sr)


def write_augment_file(
    out_dir: Path,
    kind: str,
    index: int,
    rng: np.random.Generator,
    seconds: float,
    babble_voices: list[VoiceParams],
    sr: int,
) -> Path:
    """Make and write one augmentation file; ``babble_voices`` is the pool babble draws 3-6 talkers from."""
    n = int(seconds * sr)
    if kind == "noise":
        audio = make_noise(rng, n, sr)
    elif kind == "music":
        audio = make_music(rng, n, sr)
    elif kind == "speech":
        picks = rng.choice(
            len(babble_voices), size=min(len(babble_voices), int(rng.integers(3, 7))), replace=False
        )
        audio = make_babble([babble_voices[i] for i in picks], rng, n, sr)
    else:
        audio = make_rir(rng, sr)
    path = augment_path(out_dir, kind, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, audio, sr)
    return path
