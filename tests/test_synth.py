"""The embedded corpus: layout, formats, trials, audio-video sync, determinism and bad input."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import fields
from pathlib import Path

import decord
import numpy as np
import pytest
import soundfile as sf

from avssl.errors import ConfigError, DataError
from avssl.synth import SIZES, generate_corpus
from avssl.synth.face import FaceParams, mouth_centre, mouth_openness
from avssl.synth.session import LookParams

TINY = SIZES["tiny"]
UTT = re.compile(r"^(id\d{5})/([A-Za-z0-9_-]{11})/(\d{5})\.(wav|mp4)$")
TRIAL = re.compile(r"^[01] id1\d{4}/[A-Za-z0-9_-]{11}/\d{5}\.wav id1\d{4}/[A-Za-z0-9_-]{11}/\d{5}\.wav$")


def _media(root: Path, split: str, kind: str) -> list[str]:
    base = root / split / kind
    return sorted(p.relative_to(base).as_posix() for p in base.rglob(f"*.{kind}"))


def _trials(root: Path, name: str) -> list[tuple[int, str, str]]:
    lines = (root / "trials" / f"{name}.txt").read_text().splitlines()
    assert all(TRIAL.match(line) for line in lines), lines[:3]
    return [(int(label), a, b) for label, a, b in (line.split() for line in lines)]


def _identities(root: Path) -> dict[str, dict[str, str]]:
    with open(root / "meta" / "identities.csv", newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def test_summary_and_layout(tiny_corpus: Path) -> None:
    summary = json.loads((tiny_corpus / "corpus.json").read_text())
    assert summary["name"] == "avssl-synth" and summary["size"] == "tiny" and summary["seed"] == 0
    assert (summary["sample_rate"], summary["fps"]) == (16000, 25)
    assert summary["frame_size"] == [TINY.frame_size, TINY.frame_size]
    assert summary["seconds"] > 0
    counts = summary["counts"]
    for split, folder, n_ids, n_sess, n_utt in (
        ("train", "dev", TINY.train_identities, TINY.train_sessions, TINY.train_utterances),
        ("test", "test", TINY.test_identities, TINY.test_sessions, TINY.test_utterances),
    ):
        wavs, mp4s = _media(tiny_corpus, folder, "wav"), _media(tiny_corpus, folder, "mp4")
        assert [w[:-4] for w in wavs] == [m[:-4] for m in mp4s]
        parts = [UTT.match(w).groups() for w in wavs]
        ids = {p[0] for p in parts}
        first = 1 if split == "train" else 10001
        assert ids == {f"id{first + i:05d}" for i in range(n_ids)}
        assert all(len({p[1] for p in parts if p[0] == i}) == n_sess for i in ids)
        assert {p[2] for p in parts} == {f"{u + 1:05d}" for u in range(n_utt)}
        assert counts["utterances"][split] == len(wavs) == n_ids * n_sess * n_utt
        assert counts["sessions"][split] == n_ids * n_sess
    sessions = [p.name for p in (tiny_corpus / "dev" / "wav").glob("*/*")]
    sessions += [p.name for p in (tiny_corpus / "test" / "wav").glob("*/*")]
    assert len(sessions) == len(set(sessions))  # session ids are unique corpus-wide
    for kind, n in (("noise", TINY.noise_files), ("music", TINY.music_files), ("speech", TINY.babble_files)):
        assert len(list((tiny_corpus / "augment" / "noise" / kind).glob("*.wav"))) == n
    assert len(list((tiny_corpus / "augment" / "rir").glob("*.wav"))) == TINY.rir_files
    identities = _identities(tiny_corpus)
    assert {row["split"] for row in identities.values()} == {"train", "test", "extra"}
    with open(tiny_corpus / "meta" / "sessions.csv", newline="") as handle:
        assert sorted(row["session"] for row in csv.DictReader(handle)) == sorted(sessions)


def test_audio_format_and_durations(tiny_corpus: Path) -> None:
    lo, hi = TINY.duration_s
    for folder in ("dev", "test"):
        for rel in _media(tiny_corpus, folder, "wav"):
            info = sf.info(str(tiny_corpus / folder / "wav" / rel))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert lo - 0.02 <= info.duration <= hi + 0.02
    for path in (tiny_corpus / "augment").rglob("*.wav"):
        audio, sr = sf.read(str(path))
        assert sr == 16000 and audio.ndim == 1 and np.abs(audio).max() > 0.01
    rir, _ = sf.read(str(next((tiny_corpus / "augment" / "rir").glob("*.wav"))))
    assert np.argmax(np.abs(rir)) < 160  # direct path first, then the decaying tail


def test_trial_lists(tiny_corpus: Path) -> None:
    identities = _identities(tiny_corpus)
    train_ids = {row["id"] for row in identities.values() if row["split"] == "train"}
    test_ids = {row["id"] for row in identities.values() if row["split"] == "test"}
    assert not train_ids & test_ids
    existing = set(_media(tiny_corpus, "test", "wav"))
    summary = json.loads((tiny_corpus / "corpus.json").read_text())
    for name in ("synth-O", "synth-H"):
        trials = _trials(tiny_corpus, name)
        assert len(trials) == summary["counts"]["trials"][name] >= 30
        labels = [t[0] for t in trials]
        assert labels.count(1) == labels.count(0)
        assert len({frozenset((a, b)) for _, a, b in trials}) == len(trials)  # no repeated pair
        for label, a, b in trials:
            assert a in existing and b in existing and a != b
            (id_a, sess_a, _), (id_b, sess_b, _) = a.split("/"), b.split("/")
            assert {id_a, id_b} <= test_ids
            assert (id_a == id_b) == (label == 1)
            if label == 1:
                assert sess_a != sess_b  # targets cross sessions: the channel alone cannot solve them
            elif name == "synth-H":
                assert identities[id_a]["sex"] == identities[id_b]["sex"]


def test_video_matches_audio(tiny_corpus: Path) -> None:
    size = json.loads((tiny_corpus / "corpus.json").read_text())["frame_size"]
    for rel in _media(tiny_corpus, "test", "mp4")[:3]:
        wav, sr = sf.read(str(tiny_corpus / "test" / "wav" / rel.replace(".mp4", ".wav")))
        mp4 = str(tiny_corpus / "test" / "mp4" / rel)
        video = decord.VideoReader(mp4)
        assert len(video) == round(25 * wav.size / sr)
        assert list(video[0].shape) == [*size, 3]
        track = decord.AudioReader(mp4, sample_rate=16000, mono=True)[:].asnumpy().reshape(-1)
        assert abs(track.size - wav.size) <= 1024
        n = min(track.size, wav.size)
        assert np.corrcoef(track[:n], wav[:n])[0, 1] > 0.95  # the same audio, not shifted


def _from_row(cls, row: dict[str, str], prefix: str):
    """Rebuild a parameter dataclass from its columns in meta/*.csv."""
    cast = {"float": float, "int": int, "bool": lambda v: v == "True", "str": str}
    return cls(**{f.name: cast[f.type](row[prefix + f.name]) for f in fields(cls)})


def test_mouth_follows_speech(tiny_corpus: Path) -> None:
    """In every decoded test video, the change of the mouth region from its closed look tracks the
    voiced energy of the wav; against the time-reversed energy it does not."""
    size = TINY.frame_size
    faces = {i: _from_row(FaceParams, row, "face_") for i, row in _identities(tiny_corpus).items()}
    with open(tiny_corpus / "meta" / "sessions.csv", newline="") as handle:
        looks = {row["session"]: _from_row(LookParams, row, "look_") for row in csv.DictReader(handle)}
    synced, reversed_ = [], []
    for rel in _media(tiny_corpus, "test", "mp4"):
        ident, session, _ = rel.split("/")
        frames = decord.VideoReader(str(tiny_corpus / "test" / "mp4" / rel))[:].asnumpy().astype(float)
        wav, _ = sf.read(str(tiny_corpus / "test" / "wav" / rel.replace(".mp4", ".wav")))
        openness = mouth_openness(wav, len(frames))
        mx, my = mouth_centre(faces[ident], looks[session], size)
        half = max(3, int(0.06 * size))
        box = frames[:, int(my) - half : int(my) + half, int(mx) - half : int(mx) + half]
        closed = np.median(box[openness <= np.quantile(openness, 0.2)], axis=0)
        change = np.abs(box - closed).mean(axis=(1, 2, 3))
        synced.append(np.corrcoef(change, openness)[0, 1])
        reversed_.append(np.corrcoef(change, openness[::-1])[0, 1])
    assert np.median(synced) > 0.7 and min(synced) > 0.4
    assert np.median(reversed_) < 0.4


def test_mouth_openness_tracks_energy() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    envelope = (np.sin(2 * np.pi * 1.5 * t) > 0).astype(float)
    speech = envelope * np.sin(2 * np.pi * 200 * t) + 1e-4 * rng.standard_normal(t.size)
    openness = mouth_openness(speech, 50)
    frame_env = envelope.reshape(50, 640).mean(1)
    assert np.corrcoef(openness, frame_env)[0, 1] > 0.9
    assert openness.min() >= 0 and openness.max() <= 1


def test_same_seed_same_corpus_other_seed_differs(tiny_corpus: Path, tmp_path: Path) -> None:
    again = generate_corpus(
        tmp_path / "again", size="tiny", seed=0, workers=2
    )  # also: workers change nothing
    assert again["counts"] == json.loads((tiny_corpus / "corpus.json").read_text())["counts"]
    files = [f"dev/wav/{r}" for r in _media(tiny_corpus, "dev", "wav")]
    files += [f"test/wav/{r}" for r in _media(tiny_corpus, "test", "wav")]
    files += ["trials/synth-O.txt", "trials/synth-H.txt", "augment/noise/speech/speech-0001.wav"]
    for rel in files:
        assert (tmp_path / "again" / rel).read_bytes() == (tiny_corpus / rel).read_bytes(), rel

    other = tmp_path / "other"
    generate_corpus(other, size="tiny", seed=1, workers=1)
    assert (other / "trials" / "synth-O.txt").read_bytes() != (
        tiny_corpus / "trials" / "synth-O.txt"
    ).read_bytes()
    first = _media(other, "dev", "wav")[0]
    assert (
        sf.read(str(other / "dev" / "wav" / first))[0].tolist()
        != sf.read(str(tiny_corpus / "dev" / "wav" / _media(tiny_corpus, "dev", "wav")[0]))[0].tolist()
    )

    with pytest.raises(DataError, match="seed"):  # a different seed into a folder holding a corpus
        generate_corpus(other, size="tiny", seed=0)
    with pytest.raises(DataError, match="size"):
        generate_corpus(other, size="demo", seed=1)


def test_rerun_is_idempotent(tiny_corpus: Path) -> None:
    marker = tiny_corpus / "corpus.json"
    before = marker.stat().st_mtime_ns, (tiny_corpus / "trials" / "synth-O.txt").stat().st_mtime_ns
    summary = generate_corpus(tiny_corpus, size="tiny", seed=0, workers=1)
    assert summary == json.loads(marker.read_text())
    assert (marker.stat().st_mtime_ns, (tiny_corpus / "trials" / "synth-O.txt").stat().st_mtime_ns) == before


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'huge'.*tiny, demo, large"):
        generate_corpus(tmp_path / "x", size="huge")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        generate_corpus(tmp_path / "busy", size="tiny")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "corpus.json").write_text("{")
    with pytest.raises(DataError, match="unreadable"):
        generate_corpus(tmp_path / "broken", size="tiny")
