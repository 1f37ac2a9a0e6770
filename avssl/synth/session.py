"""Sessions: the recording conditions shared by every utterance of one video, in sound and in image.

A session's channel (EQ, band limits, background noise colour and level, room, gain) and its look
(lighting, colour cast, background, clothing, framing, blur, sensor noise) are drawn once and applied to
all its utterances. Because utterances of one session share them so strongly, a model that groups
"things that sound/look alike" will group sessions rather than people unless it is taught otherwise:
this is the confound cluster-aware DINO addresses. Audio and video quality are drawn independently, so
sometimes the voice and sometimes the face is the better cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve


@dataclass(frozen=True)
class ChannelParams:
    """Audio path of one session: room -> + background noise -> EQ and band limits -> gain."""

    low_shelf_hz: float
    low_shelf_db: float
    high_shelf_hz: float
    high_shelf_db: float
    peak1_hz: float
    peak1_db: float
    peak1_oct: float  # bell width in octaves
    peak2_hz: float
    peak2_db: float
    peak2_oct: float
    highpass_hz: float  # 0 = none
    lowpass_hz: float  # 0 = none (full band)
    noise_slope: float  # background noise power ~ f**slope (0 white, -1 pink, -2 brown)
    noise_peak_hz: float  # centre of a tonal/fan band in the noise
    hum_hz: float  # mains hum fundamental, 0 = none
    snr_db: float
    rt60_s: float  # 0 = dry (no room)
    drr_db: float  # direct-to-reverberant ratio of the room
    level_db: float  # speech RMS in dBFS
    seed: int  # for the session's own room impulse response


@dataclass(frozen=True)
class LookParams:
    """Visual conditions of one session: light, camera and framing."""

    light_angle: float  # radians, direction of the brightness gradient
    light_slope: float  # brightness change across the frame, fraction
    brightness: float  # overall exposure (dim sessions < 0.8)
    cast_r: float  # colour cast gains per channel
    cast_g: float
    cast_b: float
    bg_r: int
    bg_g: int
    bg_b: int
    bg_texture: int  # 0 flat, 1 stripes, 2 blobs, 3 window-like rectangles, 4 noise
    shirt_r: int
    shirt_g: int
    shirt_b: int
    face_scale: float  # face size relative to a nominal face track crop
    offset_x: float  # face centre offset, fraction of the frame
    offset_y: float
    rotation_deg: float
    motion: float  # head motion amplitude
    blur: float  # Gaussian blur sigma in pixels at 112x112
    noise_std: float  # sensor noise, 0-255 scale
    seed: int  # for the background texture


@dataclass(frozen=True)
class SessionParams:
    """Everything one session's utterances share; sound and image drawn independently of each other."""

    channel: ChannelParams
    look: LookParams


def sample_session(rng: np.random.Generator) -> SessionParams:
    """Draw one session's audio channel and visual look (independently: separate quality for each)."""
    return SessionParams(channel=_sample_channel(rng), look=_sample_look(rng))


def _sample_channel(rng: np.random.Generator) -> ChannelParams:
    reverberant = rng.random() < 0.35
    return ChannelParams(
        low_shelf_hz=float(np.exp(rng.uniform(np.log(150), np.log(700)))),
        low_shelf_db=float(rng.uniform(-6, 6)),
        high_shelf_hz=float(np.exp(rng.uniform(np.log(1500), np.log(5000)))),
        high_shelf_db=float(rng.uniform(-8, 5)),
        peak1_hz=float(np.exp(rng.uniform(np.log(250), np.log(1500)))),
        peak1_db=float(rng.uniform(-6, 6)),
        peak1_oct=float(rng.uniform(0.4, 1.5)),
        peak2_hz=float(np.exp(rng.uniform(np.log(1500), np.log(6000)))),
        peak2_db=float(rng.uniform(-6, 6)),
        peak2_oct=float(rng.uniform(0.4, 1.5)),
        highpass_hz=float(rng.uniform(60, 200)) if rng.random() < 0.3 else 0.0,
        lowpass_hz=float(rng.uniform(4000, 7000)) if rng.random() < 0.15 else 0.0,
        noise_slope=float(rng.uniform(-1.5, 0.0)),
        noise_peak_hz=float(np.exp(rng.uniform(np.log(100), np.log(3000)))),
        hum_hz=float(rng.choice([50.0, 60.0])) if rng.random() < 0.25 else 0.0,
        snr_db=float(rng.uniform(10, 40)),
        rt60_s=float(rng.uniform(0.2, 0.8)) if reverberant else 0.0,
        drr_db=float(rng.uniform(-3, 10)),
        level_db=float(rng.uniform(-34, -18)),
        seed=int(rng.integers(2**31)),
    )


def _sample_look(rng: np.random.Generator) -> LookParams:
    bg = rng.integers(20, 236, size=3)
    shirt = rng.integers(10, 246, size=3)
    return LookParams(
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_slope=float(rng.uniform(0.0, 0.5)),
        brightness=float(rng.uniform(0.65, 1.1)),
        cast_r=float(rng.uniform(0.88, 1.12)),
        cast_g=float(rng.uniform(0.9, 1.1)),
        cast_b=float(rng.uniform(0.88, 1.12)),
        bg_r=int(bg[0]),
        bg_g=int(bg[1]),
        bg_b=int(bg[2]),
        bg_texture=int(rng.integers(5)),
        shirt_r=int(shirt[0]),
        shirt_g=int(shirt[1]),
        shirt_b=int(shirt[2]),
        face_scale=float(rng.uniform(0.95, 1.15)),
        offset_x=float(rng.uniform(-0.08, 0.08)),
        offset_y=float(rng.uniform(-0.06, 0.06)),
        rotation_deg=float(rng.uniform(-10, 10)),
        motion=float(rng.uniform(0.3, 1.5)),
        blur=float(rng.choice([0.0, rng.uniform(0.3, 1.0), rng.uniform(1.0, 2.5)], p=[0.4, 0.35, 0.25])),
        noise_std=float(rng.choice([rng.uniform(0, 4), rng.uniform(4, 16)], p=[0.65, 0.35])),
        seed=int(rng.integers(2**31)),
    )


def channel_response_db(channel: ChannelParams, freqs: np.ndarray) -> np.ndarray:
    """The session's EQ and band limits as a zero-phase gain curve in dB at ``freqs`` (Hz)."""
    f = np.maximum(freqs, 1.0)
    db = channel.low_shelf_db / (1 + (f / channel.low_shelf_hz) ** 2)
    db += channel.high_shelf_db * (f / channel.high_shelf_hz) ** 2 / (1 + (f / channel.high_shelf_hz) ** 2)
    for hz, gain, octaves in (
        (channel.peak1_hz, channel.peak1_db, channel.peak1_oct),
        (channel.peak2_hz, channel.peak2_db, channel.peak2_oct),
    ):
        db += gain * np.exp(-0.5 * (np.log2(f / hz) / (octaves / 2)) ** 2)
    if channel.highpass_hz:
        db += 10 * np.log10(1 / (1 + (channel.highpass_hz / f) ** 4))
    if channel.lowpass_hz:
        db += 10 * np.log10(1 / (1 + (f / channel.lowpass_hz) ** 8))
    return db


def coloured_noise(
    n: int, slope: float, rng: np.random.Generator, peak_hz: float = 0.0, hum_hz: float = 0.0, sr: int = 16000
) -> np.ndarray:
    """Stationary noise with power ~ f**slope, an optional resonant band and mains hum; unit RMS."""
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    f = np.maximum(freqs, 20.0)
    amp = f ** (slope / 2)
    if peak_hz:
        amp = amp * (1 + 3 * np.exp(-0.5 * (np.log2(f / peak_hz) / 0.25) ** 2))
    spec = (rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)) * amp
    noise = np.fft.irfft(spec, n=n)
    noise /= noise.std() + 1e-12
    if hum_hz:
        t = np.arange(n) / sr
        phases = rng.uniform(0, 2 * np.pi, 4)
        hum = sum(np.sin(2 * np.pi * hum_hz * (k + 1) * t + phases[k]) / (k + 1) for k in range(4))
        noise = noise + 1.5 * hum / (hum.std() + 1e-12)
        noise /= noise.std()
    return noise


def room_impulse_response(
    rng: np.random.Generator, rt60_s: float, drr_db: float = 3.0, sr: int = 16000
) -> np.ndarray:
    """A room: direct path, a few early reflections (5-50 ms) and an exponentially decaying, slightly
    low-passed noise tail whose energy falls by 60 dB in ``rt60_s``. Peak-normalised to 1."""
    n = int(sr * rt60_s * 1.2) + 1
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60_s)
    tail = np.convolve(tail, [0.5, 0.35, 0.15], mode="same")  # walls absorb highs
    tail[: int(0.005 * sr)] = 0.0
    rir = np.zeros(n)
    rir[0] = 1.0
    delays = rng.uniform(0.005, 0.05, 6)
    gains = rng.uniform(0.2, 0.7, 6) * rng.choice([-1, 1], 6)
    for delay, gain in zip(delays, gains, strict=True):
        rir[int(delay * sr)] += gain * np.exp(-6.91 * delay / rt60_s)
    tail *= np.sqrt(1.0 / (np.sum(tail**2) * 10 ** (drr_db / 10)))  # the direct path has unit energy
    rir += tail
    return rir / np.abs(rir).max()


def session_rir(channel: ChannelParams, sr: int = 16000) -> np.ndarray | None:
    """The session's own room (the same for all its utterances), or None for a dry session."""
    if not channel.rt60_s:
        return None
    return room_impulse_response(np.random.default_rng(channel.seed), channel.rt60_s, channel.drr_db, sr)


def apply_channel(
    speech: np.ndarray,
    channel: ChannelParams,
    rir: np.ndarray | None,
    rng: np.random.Generator,
    sr: int = 16000,
) -> np.ndarray:
    """Record clean ``speech`` through the session: room, background noise at the session SNR (fresh
    noise samples, the session's colour), EQ and band limits, level. Returns float in [-1, 1]."""
    n = speech.size
    x = fftconvolve(speech, rir)[:n] if rir is not None else speech
    active = np.abs(speech) > 0.01 * np.abs(speech).max()
    speech_rms = np.sqrt(np.mean(x[active] ** 2)) if active.any() else 1.0
    noise = coloured_noise(n, channel.noise_slope, rng, channel.noise_peak_hz, channel.hum_hz, sr)
    x = x + noise * speech_rms * 10 ** (-channel.snr_db / 20)
    spec = np.fft.rfft(x)
    spec *= 10 ** (channel_response_db(channel, np.fft.rfftfreq(n, 1.0 / sr)) / 20)
    y = np.fft.irfft(spec, n=n)
    y *= 10 ** (channel.level_db / 20) / (np.sqrt(np.mean(y[active] ** 2)) + 1e-12)
    peak = np.abs(y).max()
    return y / peak * 0.99 if peak > 0.99 else y
