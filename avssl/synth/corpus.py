"""The embedded audio-visual corpus: plan identities and sessions, render them in parallel, write trials.

The layout follows VoxCeleb2 (``dev/{wav,mp4}/idXXXXX/<youtube-id>/NNNNN.*``) and VoxCeleb1's trial
format, so every later stage runs on it exactly as on the real data. All randomness derives from the
seed through :class:`numpy.random.SeedSequence` keyed by what is being drawn (an identity, a session,
an utterance, an augmentation file), so outputs do not depend on the number of worker processes.
``corpus.json`` is written last: its presence marks a complete corpus.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from avssl.errors import ConfigError, DataError
from avssl.synth.augment_corpus import KINDS, write_augment_file
from avssl.synth.face import FaceParams, background, light_map, mouth_openness, render_video, sample_face
from avssl.synth.media import VIDEO_CODEC, write_mp4, write_wav
from avssl.synth.session import SessionParams, apply_channel, sample_session, session_rir
from avssl.synth.voice import VoiceParams, sample_voice, synthesize_speech
from avssl.utils.atomic import atomic_write_json, atomic_write_text

NAME = "avssl-synth"
# 2: sessions' looks vary less (colour cast, exposure, light gradient) and faces fill more of the frame,
# as in VoxCeleb2's face tracks; under version 1's looks even a face encoder trained on the TRUE
# identities verified faces at about 40 % EER (docs/concepts/faces.md). The audio is unchanged.
VERSION = 2
SAMPLE_RATE = 16000
FPS = 25
SUMMARY = "corpus.json"
_IN_PROGRESS = ".synth-in-progress.json"
_SPLIT_CODE = {"train": 0, "test": 1, "extra": 2}
_FIRST_ID = {"train": 1, "test": 10001, "extra": 20001}
_SPLIT_DIR = {"train": "dev", "test": "test"}
# What is being drawn: the first key of every SeedSequence after the seed, so streams never collide.
_IDENTITY, _SESSION, _UTTERANCE, _NAMES, _TRIALS, _AUGMENT = range(6)
_NAME_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))


@dataclass(frozen=True)
class SizePreset:
    """Every number that sets a corpus size, in one place."""

    train_identities: int
    train_sessions: int  # per identity
    train_utterances: int  # per session
    test_identities: int
    test_sessions: int
    test_utterances: int
    duration_s: tuple[float, float]  # utterance length range
    frame_size: int  # square video frames
    trials: int  # per trial list, at most (half target, half non-target)
    extra_identities: int  # babble talkers, in neither train nor test
    noise_files: int
    music_files: int
    babble_files: int
    rir_files: int
    augment_seconds: float  # length of each noise/music/babble file


SIZES: dict[str, SizePreset] = {
    # The test suite's corpus: a few seconds to generate.
    "tiny": SizePreset(
        train_identities=6,
        train_sessions=2,
        train_utterances=2,
        test_identities=4,
        test_sessions=2,
        test_utterances=2,
        duration_s=(1.5, 2.5),
        frame_size=64,
        trials=40,
        extra_identities=6,
        noise_files=3,
        music_files=2,
        babble_files=2,
        rir_files=3,
        augment_seconds=3.0,
    ),
    # The demo recipes' corpus: under a minute on two cores. 4 x 4 test utterances per identity give
    # 1500 distinct cross-session target pairs, enough for 3000-trial lists.
    "demo": SizePreset(
        train_identities=48,
        train_sessions=4,
        train_utterances=4,
        test_identities=20,
        test_sessions=4,
        test_utterances=4,
        duration_s=(2.5, 4.5),
        frame_size=128,
        trials=3000,
        extra_identities=16,
        noise_files=30,
        music_files=10,
        babble_files=10,
        rir_files=20,
        augment_seconds=6.0,
    ),
    # Benchmarks: a few hundred speakers.
    "large": SizePreset(
        train_identities=400,
        train_sessions=6,
        train_utterances=6,
        test_identities=80,
        test_sessions=4,
        test_utterances=4,
        duration_s=(2.5, 6.0),
        frame_size=128,
        trials=20000,
        extra_identities=40,
        noise_files=200,
        music_files=60,
        babble_files=60,
        rir_files=100,
        augment_seconds=8.0,
    ),
}


@dataclass(frozen=True)
class Identity:
    """A person: a voice and a face, drawn together from one RNG (see :func:`make_identity`)."""

    name: str  # idXXXXX
    split: str  # train, test or extra
    index: int  # within the split
    voice: VoiceParams
    face: FaceParams


@dataclass(frozen=True)
class SessionJob:
    """One session to render: all its utterances, wav and mp4 (picklable for the worker pool)."""

    out_dir: str
    seed: int
    identity: Identity
    index: int  # session index within the identity
    name: str  # 11-character pseudo YouTube id
    params: SessionParams
    utterances: int
    duration_s: tuple[float, float]
    frame_size: int


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def make_identity(seed: int, split: str, index: int) -> Identity:
    """Identity ``index`` of ``split``: the same for every corpus size with this seed. Sexes alternate so
    that every split is balanced and the hard trial list always finds same-sex neighbours."""
    rng = _rng(seed, _IDENTITY, _SPLIT_CODE[split], index)
    sex = "m" if index % 2 == 0 else "f"
    return Identity(
        f"id{_FIRST_ID[split] + index:05d}", split, index, sample_voice(rng, sex), sample_face(rng, sex)
    )


def _plan(out_dir: Path, preset: SizePreset, seed: int) -> tuple[list[Identity], list[SessionJob]]:
    """All identities (train, test, extra) and the session jobs of train and test."""
    names_rng = _rng(seed, _NAMES)
    used: set[str] = set()
    identities: list[Identity] = []
    jobs: list[SessionJob] = []
    for split, n_ids, n_sess, n_utt in (
        ("train", preset.train_identities, preset.train_sessions, preset.train_utterances),
        ("test", preset.test_identities, preset.test_sessions, preset.test_utterances),
        ("extra", preset.extra_identities, 0, 0),
    ):
        for i in range(n_ids):
            ident = make_identity(seed, split, i)
            identities.append(ident)
            for s in range(n_sess):
                name = "".join(names_rng.choice(_NAME_ALPHABET, 11))
                while name in used:  # astronomically rare, but names must be unique
                    name = "".join(names_rng.choice(_NAME_ALPHABET, 11))
                used.add(name)
                params = sample_session(_rng(seed, _SESSION, _SPLIT_CODE[split], i, s))
                jobs.append(
                    SessionJob(
                        str(out_dir),
                        seed,
                        ident,
                        s,
                        name,
                        params,
                        n_utt,
                        preset.duration_s,
                        preset.frame_size,
                    )
                )
    return identities, jobs


def utterance_paths(job: SessionJob, utterance: int) -> tuple[Path, Path]:
    """(wav, mp4) paths of one utterance of a session."""
    root = Path(job.out_dir) / _SPLIT_DIR[job.identity.split]
    rel = Path(job.identity.name) / job.name / f"{utterance + 1:05d}"
    return (root / "wav" / rel).with_suffix(".wav"), (root / "mp4" / rel).with_suffix(".mp4")


def render_session(job: SessionJob) -> float:
    """Synthesise and write every utterance of one session; returns the seconds of audio written.

    The session's background, light and room are computed once and shared by its utterances; each
    utterance draws its content, noise, blinks and head motion from its own RNG."""
    look, channel = job.params.look, job.params.channel
    size = job.frame_size
    backdrop = background(look, size)
    light = light_map(look, size)
    rir = session_rir(channel, SAMPLE_RATE)
    seconds = 0.0
    for u in range(job.utterances):
        rng = _rng(job.seed, _UTTERANCE, _SPLIT_CODE[job.identity.split], job.identity.index, job.index, u)
        n_frames = int(round(rng.uniform(*job.duration_s) * FPS))
        n_samples = n_frames * SAMPLE_RATE // FPS
        speech = synthesize_speech(job.identity.voice, n_samples, rng, SAMPLE_RATE)
        audio = apply_channel(speech, channel, rir, rng, SAMPLE_RATE)
        frames = render_video(
            job.identity.face,
            look,
            mouth_openness(speech, n_frames, SAMPLE_RATE, FPS),
            rng,
            size,
            backdrop,
            light,
            FPS,
        )
        wav, mp4 = utterance_paths(job, u)
        wav.parent.mkdir(parents=True, exist_ok=True)
        mp4.parent.mkdir(parents=True, exist_ok=True)
        write_wav(wav, audio, SAMPLE_RATE)
        write_mp4(mp4, frames, audio, SAMPLE_RATE, FPS)
        seconds += n_samples / SAMPLE_RATE
    return seconds


@dataclass(frozen=True)
class AugmentJob:
    """One augmentation file to write (picklable for the worker pool)."""

    out_dir: str
    seed: int
    kind: str  # noise, music, speech (babble) or rir
    index: int
    seconds: float
    babble_voices: tuple[VoiceParams, ...]  # the extra identities babble draws its talkers from


def _augment_jobs(out_dir: Path, preset: SizePreset, seed: int, extra: list[Identity]) -> list[AugmentJob]:
    voices = tuple(ident.voice for ident in extra)
    counts = {
        "noise": preset.noise_files,
        "music": preset.music_files,
        "speech": preset.babble_files,
        "rir": preset.rir_files,
    }
    return [
        AugmentJob(str(out_dir), seed, kind, i, preset.augment_seconds, voices if kind == "speech" else ())
        for kind, count in counts.items()
        for i in range(count)
    ]


def render_augment(job: AugmentJob) -> float:
    """Write one augmentation file (see :mod:`avssl.synth.augment_corpus`); returns 0 seconds of speech."""
    rng = _rng(job.seed, _AUGMENT, KINDS.index(job.kind), job.index)
    write_augment_file(
        Path(job.out_dir), job.kind, job.index, rng, job.seconds, list(job.babble_voices), SAMPLE_RATE
    )
    return 0.0


def _param_vector(ident: Identity) -> tuple[np.ndarray, np.ndarray]:
    """Numeric voice and face parameters (sex excluded: hard trials already match it)."""
    voice = [float(v) for k, v in asdict(ident.voice).items() if k != "sex"]
    voice[0] = float(np.log(voice[0]))  # pitch distance is perceptually logarithmic
    face = [float(v) for v in asdict(ident.face).values()]
    return np.array(voice), np.array(face)


def _nearest_same_sex(test: list[Identity], k: int) -> dict[int, list[int]]:
    """For each test identity, its ``k`` nearest same-sex identities in z-scored voice+face space."""
    voice, face = (np.stack(block) for block in zip(*(_param_vector(ident) for ident in test), strict=True))
    blocks = [(b - b.mean(0)) / (b.std(0) + 1e-9) / np.sqrt(b.shape[1]) for b in (voice, face)]
    x = np.concatenate(blocks, axis=1)
    dist = np.linalg.norm(x[:, None] - x[None], axis=2)
    out = {}
    for i, ident in enumerate(test):
        same = [j for j in np.argsort(dist[i]) if j != i and test[j].voice.sex == ident.voice.sex]
        out[i] = same[:k]
    return out


def make_trials(test_jobs: list[SessionJob], n_trials: int, seed: int) -> dict[str, list[str]]:
    """synth-O (random non-targets) and synth-H (non-targets between nearest same-sex identities), each
    balanced; target pairs always cross sessions, so the channel alone cannot solve them."""
    utts: dict[int, list[tuple[str, str]]] = {}  # identity index -> [(session, relative wav path)]
    identities: dict[int, Identity] = {}
    for job in test_jobs:
        identities[job.identity.index] = job.identity
        for u in range(job.utterances):
            utts.setdefault(job.identity.index, []).append(
                (job.name, f"{job.identity.name}/{job.name}/{u + 1:05d}.wav")
            )
    ids = sorted(utts)
    targets = [
        (a[1], b[1]) for i in ids for x, a in enumerate(utts[i]) for b in utts[i][x + 1 :] if a[0] != b[0]
    ]
    test = [identities[i] for i in ids]
    neighbours = _nearest_same_sex(test, k=3)
    hard_pairs = sorted({tuple(sorted((ids[i], ids[j]))) for i, near in neighbours.items() for j in near})
    hard_capacity = sum(len(utts[i]) * len(utts[j]) for i, j in hard_pairs)
    n_half = min(n_trials // 2, len(targets), hard_capacity)
    lists = {}
    for code, name in enumerate(("synth-O", "synth-H")):
        rng = _rng(seed, _TRIALS, code)
        chosen = [targets[t] for t in rng.choice(len(targets), n_half, replace=False)]
        lines = [("1", *pair) for pair in chosen]
        seen: set[tuple[str, str]] = set()
        while len(seen) < n_half:
            if name == "synth-O":
                i, j = rng.choice(ids, 2, replace=False)
            else:
                i, j = hard_pairs[rng.integers(len(hard_pairs))]
            pair = (utts[i][rng.integers(len(utts[i]))][1], utts[j][rng.integers(len(utts[j]))][1])
            if pair not in seen and pair[::-1] not in seen:
                seen.add(pair)
                lines.append(("0", *pair))
        order = rng.permutation(len(lines))
        lists[name] = [
            f"{lab} {a} {b}" if rng.random() < 0.5 else f"{lab} {b} {a}"
            for lab, a, b in (lines[k] for k in order)
        ]
    return lists


def _csv_text(header: list[str], rows: list[list]) -> str:
    """CSV with floats at 6 significant digits (ground truth for reading, not for bit-exact reuse)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[f"{v:.6g}" if isinstance(v, float) else v for v in row] for row in rows])
    return buf.getvalue()


def _write_meta(out: Path, identities: list[Identity], jobs: list[SessionJob]) -> None:
    """Ground truth for diagnostics (never a training input): identity and session parameters."""
    voice_keys = [f.name for f in fields(VoiceParams) if f.name != "sex"]
    face_keys = [f.name for f in fields(FaceParams)]
    rows = [
        [
            i.name,
            i.split,
            i.voice.sex,
            *(getattr(i.voice, k) for k in voice_keys),
            *(getattr(i.face, k) for k in face_keys),
        ]
        for i in identities
    ]
    header = ["id", "split", "sex", *(f"voice_{k}" for k in voice_keys), *(f"face_{k}" for k in face_keys)]
    atomic_write_text(out / "meta" / "identities.csv", _csv_text(header, rows))
    first = jobs[0].params
    ch_keys = list(asdict(first.channel))
    look_keys = list(asdict(first.look))
    rows = [
        [
            j.name,
            j.identity.name,
            j.identity.split,
            j.utterances,
            *(getattr(j.params.channel, k) for k in ch_keys),
            *(getattr(j.params.look, k) for k in look_keys),
        ]
        for j in jobs
    ]
    header = [
        "session",
        "id",
        "split",
        "utterances",
        *(f"channel_{k}" for k in ch_keys),
        *(f"look_{k}" for k in look_keys),
    ]
    atomic_write_text(out / "meta" / "sessions.csv", _csv_text(header, rows))


def _read_marker(path: Path) -> dict | None:
    """The size and seed an interrupted run was generating, if ``path`` says so."""
    try:
        started = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return started if isinstance(started, dict) and {"size", "seed"} <= set(started) else None


def _check_target(out: Path, size: str, seed: int) -> dict | None:
    """The existing summary if ``out`` already holds this exact corpus; raise if it holds anything else."""
    summary_path = out / SUMMARY
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{summary_path} is unreadable ({exc}); delete {out} and generate again") from exc
        if (
            summary.get("name") == NAME
            and summary.get("version") == VERSION
            and (summary.get("size"), summary.get("seed")) == (size, seed)
        ):
            return summary
        raise DataError(
            f"{out} already holds a corpus of size {summary.get('size')!r}, seed {summary.get('seed')!r}, "
            f"generator version {summary.get('version')!r}; asked for size {size!r}, seed {seed}, version "
            f"{VERSION}: choose another folder or delete this one"
        )
    if out.exists() and any(out.iterdir()):
        started = _read_marker(out / _IN_PROGRESS)
        if started != {"size": size, "seed": seed}:
            what = (
                f"an unfinished corpus of size {started['size']!r}, seed {started['seed']}"
                if started
                else "other files"
            )
            raise DataError(
                f"{out} is not empty (it holds {what}); choose an empty folder for size {size!r}, "
                f"seed {seed}, or delete it"
            )
    return None


def generate_corpus(
    out_dir: str | Path, size: str = "demo", seed: int = 0, workers: int | None = None, progress: bool = False
) -> dict:
    """Generate the corpus of ``size`` into ``out_dir`` and return its summary (also in corpus.json).

    Idempotent: a folder that already holds the same size and seed is returned as is; an interrupted
    run of the same size and seed is completed by regenerating; anything else in the folder is an error.
    ``workers`` > 1 (default: one per core) renders in spawned processes, so a script calling this
    needs the usual ``if __name__ == "__main__":`` guard.
    """
    if size not in SIZES:
        raise ConfigError(f"unknown corpus size {size!r}; valid sizes: {', '.join(SIZES)}")
    preset = SIZES[size]
    out = Path(out_dir)
    existing = _check_target(out, size, seed)
    if existing is not None:
        return existing
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / _IN_PROGRESS, {"size": size, "seed": seed})

    identities, jobs = _plan(out, preset, seed)
    extra = [i for i in identities if i.split == "extra"]
    tasks = [(render_session, job) for job in jobs]
    tasks += [(render_augment, job) for job in _augment_jobs(out, preset, seed, extra)]
    seconds = _run(tasks, workers, progress)
    audio_s = {split: 0.0 for split in _SPLIT_DIR}
    for (fn, job), secs in zip(tasks, seconds, strict=True):
        if fn is render_session:
            audio_s[job.identity.split] += secs

    test_jobs = [j for j in jobs if j.identity.split == "test"]
    trials = make_trials(test_jobs, preset.trials, seed)
    for name, lines in trials.items():
        atomic_write_text(out / "trials" / f"{name}.txt", "\n".join(lines) + "\n")
    _write_meta(out, identities, jobs)

    by_split = {split: [j for j in jobs if j.identity.split == split] for split in _SPLIT_DIR}
    summary = {
        "name": NAME,
        "version": VERSION,
        "size": size,
        "seed": seed,
        "sample_rate": SAMPLE_RATE,
        "fps": FPS,
        "frame_size": [preset.frame_size, preset.frame_size],
        "video_codec": VIDEO_CODEC,
        "counts": {
            "identities": {s: sum(i.split == s for i in identities) for s in _SPLIT_CODE},
            "sessions": {s: len(split_jobs) for s, split_jobs in by_split.items()},
            "utterances": {s: sum(j.utterances for j in split_jobs) for s, split_jobs in by_split.items()},
            "hours": {s: round(audio_s[s] / 3600, 4) for s in _SPLIT_DIR},
            "trials": {name: len(lines) for name, lines in trials.items()},
            "augment": {
                "noise": preset.noise_files,
                "music": preset.music_files,
                "speech": preset.babble_files,
                "rir": preset.rir_files,
            },
        },
        "seconds": round(time.perf_counter() - start, 2),
    }
    atomic_write_json(out / SUMMARY, summary)
    (out / _IN_PROGRESS).unlink()
    return summary


def _init_worker() -> None:
    """One thread per worker process: parallelism comes from the processes."""
    cv2.setNumThreads(1)


def _run(tasks: list[tuple], workers: int | None, progress: bool) -> list[float]:
    """Run ``(function, job)`` tasks, in worker processes when ``workers`` > 1; results in task order.

    Workers are spawned, not forked: the caller may hold threads (torch, OpenCV) that a fork would copy
    in an undefined state."""
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    results: list[float] = [0.0] * len(tasks)
    with tqdm(total=len(tasks), desc="synth", unit="job", disable=not progress) as bar:
        if workers <= 1:
            for k, (fn, job) in enumerate(tasks):
                results[k] = fn(job)
                bar.update()
            return results
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = {pool.submit(fn, job): k for k, (fn, job) in enumerate(tasks)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    return results
