"""Voices: a speaker's vocal parameters and source-filter synthesis of random syllable sequences.

Identity lives in a handful of physical parameters (mean F0 and its range, vocal-tract length, personal
vowel formant offsets, upper formants, source tilt, jitter/shimmer, breathiness, nasality, a cavity
resonance and the piriform-fossa dip, speaking rate), as in real voices: two speakers differ by degree,
and neighbours in parameter space sound alike. Content is random
(a new syllable string per utterance), so a model can only tie utterances together through the voice
(or the session channel, which :mod:`avssl.synth.session` adds on top).

Synthesis is vectorised in the STFT domain: a jittered glottal pulse train and a white-noise source are
transformed once, multiplied by per-frame spectral envelopes (cascade of formant resonances for voiced
sounds and aspiration, band-shaped noise for frication and bursts) and transformed back. That keeps a
four-second utterance to a few milliseconds of CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOP = 160  # 10 ms control frames at 16 kHz
N_FFT = 3 * HOP  # 30 ms analysis frames; three hops per frame make overlap-add a reshape
_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann

# Canonical F1-F3 of English vowels (Peterson & Barney adult male means x 1.08, i.e. a speaker midway
# between the male and female averages); a speaker's vocal-tract factor scales them.
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (290, 2470, 3250),
    "I": (420, 2150, 2750),
    "E": (570, 1990, 2680),
    "ae": (710, 1860, 2600),
    "a": (790, 1180, 2640),
    "O": (615, 905, 2600),
    "U": (475, 1100, 2420),
    "u": (325, 940, 2420),
    "V": (690, 1285, 2580),
    "3": (530, 1460, 1825),
}
# Consonants: (kind, voiced, formant locus F1-F3 for transitions, noise centre Hz, noise width Hz,
# noise gain, duration range ms).
CONSONANTS: dict[str, tuple[str, bool, tuple[float, float, float], float, float, float, tuple[int, int]]] = {
    "s": ("fric", False, (300, 1800, 2700), 6000, 1800, 0.55, (90, 150)),
    "S": ("fric", False, (300, 2000, 2600), 3200, 1200, 0.55, (90, 150)),
    "f": ("fric", False, (300, 1000, 2400), 5000, 4000, 0.18, (80, 130)),
    "h": ("asp", False, (500, 1500, 2500), 0, 0, 0.35, (50, 90)),
    "z": ("fric", True, (300, 1800, 2700), 6000, 1800, 0.35, (60, 110)),
    "v": ("fric", True, (300, 1000, 2400), 5000, 4000, 0.12, (50, 90)),
    "p": ("stop", False, (250, 900, 2300), 900, 1500, 0.45, (60, 90)),
    "t": ("stop", False, (300, 1800, 2700), 4500, 2500, 0.6, (60, 90)),
    "k": ("stop", False, (300, 2100, 2500), 2200, 900, 0.6, (60, 90)),
    "b": ("stop", True, (250, 900, 2300), 900, 1500, 0.3, (50, 80)),
    "d": ("stop", True, (300, 1800, 2700), 4500, 2500, 0.4, (50, 80)),
    "g": ("stop", True, (300, 2100, 2500), 2200, 900, 0.4, (50, 80)),
    "m": ("nasal", True, (260, 1000, 2300), 0, 0, 0.0, (50, 90)),
    "n": ("nasal", True, (260, 1700, 2600), 0, 0, 0.0, (50, 90)),
    "l": ("approx", True, (360, 1300, 2700), 0, 0, 0.0, (40, 80)),
    "r": ("approx", True, (420, 1150, 1650), 0, 0, 0.0, (40, 80)),
    "w": ("approx", True, (320, 750, 2250), 0, 0, 0.0, (40, 70)),
    "j": ("approx", True, (290, 2250, 3000), 0, 0, 0.0, (40, 70)),
}
_ONSETS = list(CONSONANTS)
_CODAS = ["s", "t", "k", "n", "m", "l", "r", "d", "z", "f"]


@dataclass(frozen=True)
class VoiceParams:
    """Everything that makes a voice recognisable; drawn once per identity (see :func:`sample_voice`)."""

    sex: str  # "m" or "f"
    f0_hz: float  # mean fundamental frequency
    f0_range_st: float  # intonation excursion, semitones
    formant_scale: float  # vocal-tract length factor: all formants are multiplied by it
    f1_shift: float  # personal vowel-space offsets (accent), multiplicative
    f2_shift: float
    f3_shift: float
    f4_hz: float  # upper formants are strongly speaker-specific in real voices
    bandwidth_scale: float  # formant damping
    tilt_db_oct: float  # spectral slope of the glottal source
    jitter: float  # period-to-period F0 perturbation, fraction of a period
    shimmer: float  # pulse-to-pulse amplitude perturbation, fraction
    breathiness: float  # aspiration noise relative to voicing
    rate_sps: float  # syllables per second
    nasality: float  # damping of F2-F3 in every voiced sound
    sinus_hz: float  # a fixed extra resonance (nasal/sinus cavities)
    sinus_db: float
    fossa_hz: float  # a fixed anti-resonance (piriform fossa), a known speaker cue at 4-5 kHz
    fossa_db: float


def sample_voice(rng: np.random.Generator, sex: str) -> VoiceParams:
    """Draw a voice. Ranges are wide and continuous so that identities form a population with near
    neighbours (which the hard trial list and the clustering stages need), not a few separable classes."""
    male = sex == "m"
    return VoiceParams(
        sex=sex,
        f0_hz=float(
            np.exp(rng.uniform(np.log(85), np.log(155)) if male else rng.uniform(np.log(165), np.log(255)))
        ),
        f0_range_st=float(rng.uniform(1.0, 4.0)),
        formant_scale=float(np.clip(rng.normal(0.93 if male else 1.07, 0.07), 0.85, 1.15)),
        f1_shift=float(rng.normal(1.0, 0.07)),
        f2_shift=float(rng.normal(1.0, 0.07)),
        f3_shift=float(rng.normal(1.0, 0.05)),
        f4_hz=float(rng.uniform(3000, 4300)),
        bandwidth_scale=float(rng.uniform(0.5, 2.2)),
        tilt_db_oct=float(rng.uniform(-15.0, -1.0)),
        jitter=float(rng.uniform(0.002, 0.02)),
        shimmer=float(rng.uniform(0.02, 0.12)),
        breathiness=float(rng.uniform(0.02, 0.5)),
        rate_sps=float(rng.uniform(3.5, 6.5)),
        nasality=float(rng.uniform(0.0, 1.0)),
        sinus_hz=float(np.exp(rng.uniform(np.log(800), np.log(2800)))),
        sinus_db=float(rng.uniform(0.0, 12.0)),
        fossa_hz=float(rng.uniform(3800, 5500)),
        fossa_db=float(rng.uniform(0.0, 20.0)),
    )


@dataclass
class _Tracks:
    """Per-control-frame articulation: what the source-filter model needs at each 10 ms step."""

    formants: np.ndarray  # (T, 3) F1-F3 targets in Hz before speaker scaling
    voicing: np.ndarray  # (T,) glottal source amplitude
    aspiration: np.ndarray  # (T,) formant-filtered noise amplitude
    frication: np.ndarray  # (T,) band noise amplitude
    noise_centre: np.ndarray  # (T,) Hz
    noise_width: np.ndarray  # (T,) Hz
    damping: np.ndarray  # (T,) extra F2-F3 bandwidth factor (nasals)
    accent: np.ndarray  # (T,) F0 accent in semitones (stressed syllables)


def _articulation(voice: VoiceParams, n_frames: int, rng: np.random.Generator, sr: int) -> _Tracks:
    """Lay out a random syllable string (with word and phrase pauses) over ``n_frames`` control frames."""
    frame_ms = 1000.0 * HOP / sr
    tempo = 4.8 / voice.rate_sps  # duration multiplier
    segs: list[tuple[int, tuple[float, float, float], float, float, float, float, float, float, float]] = []
    # each segment: (frames, formants, voicing, aspiration, frication, centre, width, damping, accent)

    def add(
        ms: float, formants, voicing=0.0, asp=0.0, fric=0.0, centre=4000.0, width=2000.0, damp=1.0, acc=0.0
    ):
        segs.append(
            (max(1, int(round(ms / frame_ms))), formants, voicing, asp, fric, centre, width, damp, acc)
        )

    neutral = VOWELS["V"]
    add(rng.uniform(60, 250), neutral)
    syll_in_phrase = 0
    phrase_len = rng.integers(4, 11)
    while sum(seg[0] for seg in segs) < n_frames:
        vowel = VOWELS[list(VOWELS)[rng.integers(len(VOWELS))]]
        stress = rng.uniform(0.6, 1.0)
        accent = rng.uniform(0.3, 1.0) if stress > 0.85 else 0.0
        if rng.random() < 0.75:
            _consonant(add, CONSONANTS[_ONSETS[rng.integers(len(_ONSETS))]], tempo, rng, vowel)
        add(rng.uniform(70, 190) * tempo, vowel, voicing=stress, acc=accent)
        if rng.random() < 0.3:
            _consonant(add, CONSONANTS[_CODAS[rng.integers(len(_CODAS))]], tempo, rng, vowel)
        syll_in_phrase += 1
        if syll_in_phrase >= phrase_len:
            add(rng.uniform(150, 400), neutral)
            syll_in_phrase, phrase_len = 0, rng.integers(4, 11)
        elif rng.random() < 0.25:
            add(rng.uniform(20, 80), neutral)

    lengths = np.array([s[0] for s in segs])
    idx = np.repeat(np.arange(len(segs)), lengths)[:n_frames]  # the loop above overshoots n_frames
    cols = [np.array([s[k] for s in segs], dtype=np.float64) for k in range(2, 9)]
    formants = np.array([s[1] for s in segs], dtype=np.float64)[idx]
    tracks = _Tracks(formants, *(c[idx] for c in cols))
    # Formant transitions (~60 ms) and amplitude ramps (~30 ms): smoothing the piecewise-constant targets.
    tracks.formants = _smooth(tracks.formants, 7)
    for name in ("voicing", "aspiration", "frication", "damping", "accent"):
        setattr(tracks, name, _smooth(getattr(tracks, name), 3 if name != "accent" else 15))
    return tracks


def _consonant(add, spec, tempo: float, rng: np.random.Generator, vowel) -> None:
    """Append one consonant's segments: a stop is closure + burst (+ aspiration), the rest one segment."""
    kind, voiced, locus, centre, width, gain, (lo, hi) = spec
    ms = rng.uniform(lo, hi) * tempo
    if kind == "stop":
        add(ms * 0.7, locus, voicing=0.12 if voiced else 0.0, damp=4.0)
        add(15, locus, fric=gain, centre=centre, width=width)
        if not voiced:
            add(ms * 0.5, vowel, asp=0.3)
    elif kind == "fric":
        add(ms, locus, voicing=0.3 if voiced else 0.0, fric=gain, centre=centre, width=width)
    elif kind == "asp":
        add(ms, vowel, asp=gain)
    elif kind == "nasal":
        add(ms, locus, voicing=0.45, damp=3.0)
    else:
        add(ms, locus, voicing=0.65)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Hann-weighted moving average along axis 0, edge-padded so the length is unchanged."""
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    pad = width // 2
    xp = np.pad(x, [(pad, width - 1 - pad)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    if x.ndim == 1:
        return np.convolve(xp, kernel, mode="valid")
    return np.stack([np.convolve(xp[:, k], kernel, mode="valid") for k in range(x.shape[1])], axis=1)


def _f0_contour(voice: VoiceParams, tracks: _Tracks, rng: np.random.Generator) -> np.ndarray:
    """Per-frame F0: speaker mean, utterance offset, declination, pitch accents and slow wander."""
    n = tracks.voicing.size
    t = np.linspace(0.0, 1.0, n)
    slow = _smooth(rng.standard_normal(n), 41)
    slow /= slow.std() + 1e-9
    semitones = (
        rng.normal(0.0, 0.7)
        + voice.f0_range_st * (0.5 - t) * 0.6
        + voice.f0_range_st * 1.5 * tracks.accent
        + 0.4 * voice.f0_range_st * slow
    )
    return voice.f0_hz * 2.0 ** (semitones / 12.0)


def _pulse_train(
    f0_frames: np.ndarray, n_samples: int, voice: VoiceParams, rng: np.random.Generator, sr: int
) -> np.ndarray:
    """Glottal impulses with jitter and shimmer, placed at fractional sample positions."""
    f0 = np.interp(np.arange(n_samples), np.arange(f0_frames.size) * HOP, f0_frames)
    phase = np.cumsum(f0 / sr)
    times = np.searchsorted(phase, np.arange(1, int(phase[-1]) + 1)).astype(np.float64)
    period = sr / f0[np.minimum(times.astype(int), n_samples - 1)]
    times += rng.standard_normal(times.size) * voice.jitter * period
    amps = np.sqrt(period) * np.exp(rng.standard_normal(times.size) * voice.shimmer)
    times = np.clip(times, 0, n_samples - 2)
    lo = times.astype(int)
    frac = times - lo
    out = np.zeros(n_samples)
    np.add.at(out, lo, amps * (1 - frac))
    np.add.at(out, lo + 1, amps * frac)
    return out


def _resonances(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Magnitude of a cascade of second-order resonators (unit gain at DC): (T, F) from (T, K)."""
    f = freqs[None, :].astype(np.float32)
    power = np.ones((formants.shape[0], freqs.size), dtype=np.float32)
    for k in range(formants.shape[1]):
        fk = formants[:, k : k + 1].astype(np.float32)
        bk = bandwidths[:, k : k + 1].astype(np.float32)
        power *= (1 - (f / fk) ** 2) ** 2 + (f * (bk / fk**2)) ** 2
    return 1.0 / np.sqrt(power)


def _timbre(voice: VoiceParams, freqs: np.ndarray) -> np.ndarray:
    """The speaker's fixed, content-independent colouring: a cavity resonance and the fossa dip."""
    f = np.maximum(freqs, 1.0)
    db = voice.sinus_db * np.exp(-0.5 * (np.log2(f / voice.sinus_hz) / 0.2) ** 2)
    db -= voice.fossa_db * np.exp(-0.5 * (np.log2(f / voice.fossa_hz) / 0.1) ** 2)
    return 10 ** (db / 20)


def _stft(x: np.ndarray) -> np.ndarray:
    """Frames centred on multiples of HOP (frame t covers [t*HOP - N_FFT/2, t*HOP + N_FFT/2)): (T, F)."""
    n_frames = x.size // HOP + 1
    padded = np.pad(x, (N_FFT // 2, n_frames * HOP + N_FFT // 2 - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    return np.fft.rfft(frames * _WINDOW, axis=1)


def _istft(spec: np.ndarray, n_samples: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft` (exact for an unmodified spectrum, edges included)."""
    frames = np.fft.irfft(spec, n=N_FFT, axis=1) * _WINDOW
    n_frames = frames.shape[0]
    parts = frames.reshape(n_frames, 3, HOP)
    weights = (_WINDOW**2).reshape(3, HOP)
    out = np.zeros((n_frames + 2, HOP))
    norm = np.zeros((n_frames + 2, HOP))
    for k in range(3):
        out[k : k + n_frames] += parts[:, k]
        norm[k : k + n_frames] += weights[k]
    out = out.reshape(-1) / np.maximum(norm.reshape(-1), 1e-3)
    return out[N_FFT // 2 : N_FFT // 2 + n_samples]


def synthesize_speech(
    voice: VoiceParams, n_samples: int, rng: np.random.Generator, sr: int = 16000
) -> np.ndarray:
    """A random-content utterance in ``voice``: float64, ``n_samples`` long, speech RMS about 0.1.

    Clean, dry and full-band: the session's room, channel and noise are applied later, so the same
    speech path serves the corpus, the babble noises and the tests.
    """
    n_ctrl = n_samples // HOP + 1
    tracks = _articulation(voice, n_ctrl, rng, sr)
    f0 = _f0_contour(voice, tracks, rng)
    spec_v = _stft(_pulse_train(f0, n_samples, voice, rng, sr))
    spec_n = _stft(rng.standard_normal(n_samples))
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)

    upper = np.array([voice.f4_hz, 4500.0]) * voice.formant_scale
    scale = voice.formant_scale * np.array([voice.f1_shift, voice.f2_shift, voice.f3_shift])
    formants = np.concatenate([tracks.formants * scale, np.broadcast_to(upper, (n_ctrl, 2))], axis=1)
    bandwidths = voice.bandwidth_scale * np.tile([70.0, 100.0, 140.0, 250.0, 320.0], (n_ctrl, 1))
    bandwidths[:, 1:3] *= (tracks.damping * (1.0 + 0.8 * voice.nasality))[:, None]
    bandwidths += 0.08 * formants  # wider resonances higher up, as in real tracts
    tract = _resonances(freqs, formants, bandwidths)

    tilt = np.minimum(1.0, (np.maximum(freqs, 1.0) / 150.0) ** (voice.tilt_db_oct / 6.02))
    tract *= _timbre(voice, freqs).astype(np.float32)
    asp_tilt = np.minimum(1.0, (np.maximum(freqs, 1.0) / 500.0) ** -0.5)
    aspiration = tracks.aspiration + voice.breathiness * tracks.voicing
    width = np.maximum(tracks.noise_width, 1.0)
    band = np.exp(-0.5 * ((freqs[None, :] - tracks.noise_centre[:, None]) / width[:, None]) ** 2)

    env_v = tracks.voicing[:, None] * tilt * tract
    env_n = 0.05 * aspiration[:, None] * asp_tilt * tract + 0.4 * tracks.frication[:, None] * band
    out = _istft(spec_v * env_v + spec_n * env_n, n_samples)
    active = np.abs(out) > 1e-3 * (np.abs(out).max() + 1e-12)
    rms = np.sqrt(np.mean(out[active] ** 2)) if active.any() else 1.0
    return out * (0.1 / rms)
