"""A miniature VoxCeleb download with real encodings, for tests, the tutorial and the benchmark.

Preparation code that has only seen tidy wav files breaks on the real corpus: AAC in m4a, h264 face
tracks with an AAC track, tab- and " ,"-separated metadata, official trial-list names, zip archives
split into ``_partaa`` pieces, MUSAN and RIRS_NOISES folder layouts, and a few broken files. This module
writes all of that in a couple of seconds, with the same layout and encodings as the real corpus, and
records which files are broken and how, so tests can check each reason.

Two forms: :func:`build_voxceleb_fixture` writes the corpus as it looks after unzipping;
:func:`pack_downloads` packs such a tree into the archives (and md5 list) a user downloads.
"""

from __future__ import annotations

import hashlib
import shutil
import string
import tarfile
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile

from avssl.prep.archives import OFFICIAL_PART_COUNTS
from avssl.synth.media import write_mp4, write_wav

RATE = 16000
FPS = 25
FRAME_SIZE = 224

VOX1_DEV = ("id10001", "id10002", "id10003")
VOX1_TEST = ("id10270", "id10271", "id10272")  # the real test speakers are id10270..id10309
VOX2_DEV = ("id00012", "id00015", "id00016")
GENDER = {"id10001": "m", "id10002": "f", "id10003": "m", "id10270": "m", "id10271": "f", "id10272": "f"}
GENDER |= {"id00012": "m", "id00015": "f", "id00016": "m"}
NATIONALITY = {"id10001": "Ireland", "id10002": "USA", "id10003": "UK", "id10270": "USA", "id10271": "UK"}
NATIONALITY |= {"id10272": "USA"}
VOX2_META_ONLY = "id09999"  # listed in vox2_meta.csv, no audio: a diagnostic case
VOX2_NO_META = "id00016"  # has audio, absent from vox2_meta.csv: the other diagnostic case
SESSIONS = 2
UTTERANCES = 2

# Official trial-list file names: original and cleaned ("2") lists of Vox1-O, -E and -H.
TRIAL_FILES = (
    "veri_test.txt",
    "veri_test2.txt",
    "list_test_all.txt",
    "list_test_all2.txt",
    "list_test_hard.txt",
    "list_test_hard2.txt",
)
VOX1_META_HEADER = "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"
VOX2_META_HEADER = "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set "


@dataclass
class VoxFixture:
    """What was written: good keys per corpus, and each broken file with the reason a step should give."""

    root: Path
    vox1_keys: list[str] = field(default_factory=list)
    vox2_keys: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)  # path relative to root -> reason
    resampled: dict[str, int] = field(default_factory=dict)  # path relative to root -> its sample rate
    missing_trial_key: str = ""  # named by the original trial lists, absent from the tree

    @property
    def vox2_aac(self) -> Path:
        return self.root / "vox2" / "dev" / "aac"


def build_voxceleb_fixture(root: str | Path, bad: bool = False, seed: int = 0, seconds: float = 1.0) -> VoxFixture:
    """Write the unzipped miniature corpus under ``root`` (deterministic for a given ``seed``).

    ``root/vox1/wav`` (16 kHz wav), ``root/vox2/dev/{aac,mp4}`` (AAC m4a; h264 or mpeg4 224x224 25 fps
    face tracks with AAC audio), ``root/{vox1,vox2}_meta.csv``, the six official trial lists,
    ``root/musan`` and ``root/RIRS_NOISES``. ``bad`` adds one file for each way a download goes wrong.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    fixture = VoxFixture(root=root)
    for speaker in VOX1_DEV + VOX1_TEST:
        for session in _sessions(rng):
            for utt in range(1, UTTERANCES + 1):
                key = f"{speaker}/{session}/{utt:05d}"
                write_wav(_parent(root / "vox1/wav" / f"{key}.wav"), synthetic_voice(speaker, utt, seconds, rng), RATE)
                fixture.vox1_keys.append(key)
    for speaker in VOX2_DEV:
        for session in _sessions(rng):
            for utt in range(1, UTTERANCES + 1):
                key = f"{speaker}/{session}/{utt:05d}"
                wave = synthetic_voice(speaker, utt, seconds, rng)
                write_m4a(_parent(fixture.vox2_aac / f"{key}.m4a"), wave, RATE)
                write_mp4(_parent(root / "vox2/dev/mp4" / f"{key}.mp4"), face_frames(speaker, seconds), wave, RATE, FPS)
                fixture.vox2_keys.append(key)
    fixture.vox1_keys.sort()
    fixture.vox2_keys.sort()
    _write_meta(root)
    fixture.missing_trial_key = _write_trials(root, fixture.vox1_keys, rng)
    _write_musan(root, rng)
    _write_rirs(root, rng)
    if bad:
        _write_bad_files(fixture, rng, seconds)
    return fixture


def write_m4a(path: Path, wave: np.ndarray, rate: int, faststart: bool = True) -> Path:
    """Mono AAC in an MP4 container, as VoxCeleb2's ``aac/`` release.

    ``faststart`` puts the index (moov) first, so a file cut short still opens and its truncation shows
    as missing audio; without it a cut file has no index at all and cannot be opened.
    """
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        stream.bit_rate = 48_000
        stream.options = {"aac_coder": "fast"}
        stream.codec_context.thread_count = 1
        frame = av.AudioFrame.from_ndarray(_pcm16(wave)[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def pack_downloads(tree: str | Path, downloads: str | Path, parts: int = 2) -> dict[str, str]:
    """Pack an unzipped fixture tree into the files a VoxCeleb user downloads; return name -> md5.

    Writes ``vox1_dev_wav_parta*`` (a zip split into ``parts`` pieces), ``vox1_test_wav.zip``,
    ``vox2_dev_aac_parta*``, ``vox2_dev_mp4_parta*`` (as many pieces as the official release), ``musan.tar.gz``, ``rirs_noises.zip``, the meta files
    and trial lists as they are, and ``md5sums.txt`` in ``md5sum`` format.
    """
    tree, downloads = Path(tree), Path(downloads)
    downloads.mkdir(parents=True, exist_ok=True)
    vox1 = tree / "vox1"
    vox1_files = sorted(path for path in (vox1 / "wav").rglob("*") if path.is_file())
    test = [path for path in vox1_files if path.relative_to(vox1 / "wav").parts[0] >= VOX1_TEST[0]]
    dev = [path for path in vox1_files if path not in test]
    _zip(downloads / "vox1_dev_wav.zip", vox1, dev)
    _zip(downloads / "vox1_test_wav.zip", vox1, test)
    vox2 = tree / "vox2"
    _zip(downloads / "vox2_dev_aac.zip", vox2, sorted(p for p in (vox2 / "dev/aac").rglob("*") if p.is_file()))
    _zip(downloads / "vox2_dev_mp4.zip", vox2, sorted(p for p in (vox2 / "dev/mp4").rglob("*") if p.is_file()))
    for name in ("vox1_dev_wav", "vox2_dev_aac", "vox2_dev_mp4"):
        _split(downloads / f"{name}.zip", OFFICIAL_PART_COUNTS.get(name, parts))
    with tarfile.open(downloads / "musan.tar.gz", "w:gz") as archive:
        archive.add(tree / "musan", arcname="musan")
    _zip(downloads / "rirs_noises.zip", tree, sorted(p for p in (tree / "RIRS_NOISES").rglob("*") if p.is_file()))
    for name in ("vox1_meta.csv", "vox2_meta.csv", *TRIAL_FILES):
        shutil.copyfile(tree / name, downloads / name)
    sums = {
        path.name: hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(downloads.iterdir())
        if path.name.endswith((".zip", ".tar.gz")) or "_part" in path.name
    }
    (downloads / "md5sums.txt").write_text("".join(f"{md5}  {name}\n" for name, md5 in sums.items()))
    return sums


# --- audio and video content --------------------------------------------------------------------------


def _sessions(rng: np.random.Generator) -> list[str]:
    """YouTube-like 11-character video ids, as VoxCeleb uses for its session folders."""
    alphabet = np.array(list(string.ascii_letters + string.digits + "_-"))
    return sorted("".join(rng.choice(alphabet, 11)) for _ in range(SESSIONS))


def synthetic_voice(speaker: str, utt: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced, syllable-modulated harmonic tone: audibly non-silent, speaker-dependent pitch."""
    f0 = 90 + (int(speaker[2:]) % 13) * 10 + utt
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.15 * harmonics * envelope + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def face_frames(speaker: str, seconds: float) -> np.ndarray:
    """A face-track stand-in: a speaker-coloured oval drifting slightly in a 224x224 frame."""
    count = max(1, round(seconds * FPS))
    yy, xx = np.mgrid[:FRAME_SIZE, :FRAME_SIZE]
    colour = np.array([60 + int(speaker[2:]) % 7 * 25, 140, 200 - int(speaker[2:]) % 5 * 20], np.uint8)
    frames = np.full((count, FRAME_SIZE, FRAME_SIZE, 3), 40, np.uint8)
    for index in range(count):
        centre = FRAME_SIZE / 2 + 4 * np.sin(index / 5)
        oval = ((xx - centre) / 60) ** 2 + ((yy - FRAME_SIZE / 2) / 80) ** 2 <= 1
        frames[index][oval] = colour
    return frames


def _pcm16(wave: np.ndarray) -> np.ndarray:
    return (np.clip(wave, -1, 1) * 32767).astype(np.int16)


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --- metadata and trial lists -------------------------------------------------------------------------


def _write_meta(root: Path) -> None:
    """vox1_meta.csv is tab-separated; vox2_meta.csv separates with " ," and pads with spaces."""
    vox1 = [VOX1_META_HEADER]
    for index, speaker in enumerate(VOX1_DEV + VOX1_TEST):
        split = "test" if speaker in VOX1_TEST else "dev"
        vox1.append(f"{speaker}\tFixture_Speaker_{index}\t{GENDER[speaker]}\t{NATIONALITY[speaker]}\t{split}")
    (root / "vox1_meta.csv").write_text("\n".join(vox1) + "\n")
    vox2 = [VOX2_META_HEADER]
    for speaker in [s for s in VOX2_DEV if s != VOX2_NO_META] + [VOX2_META_ONLY]:
        split = "test" if speaker == VOX2_META_ONLY else "dev"
        gender = GENDER.get(speaker, "f")
        vox2.append(f"{speaker} ,n{int(speaker[2:]):06d} ,{gender} ,{split} ")
    (root / "vox2_meta.csv").write_text("\n".join(vox2) + "\n")


def _write_trials(root: Path, keys: list[str], rng: np.random.Generator) -> str:
    """Vox1-O over test speakers, -E over all, -H over same-gender pairs; each cleaned list ("2") is its
    original without the trials that name a recording missing from the release, as in the real lists."""
    test_keys = [key for key in keys if key.split("/")[0] in VOX1_TEST]
    missing = f"{VOX1_TEST[-1]}/zzMissingSes/00009"

    def pairs(pool: list[str], same_gender_only: bool, count: int) -> list[str]:
        lines = []
        for first_index, first in enumerate(pool):
            for second in pool[first_index + 1 :]:
                a, b = first.split("/")[0], second.split("/")[0]
                if same_gender_only and GENDER[a] != GENDER[b]:
                    continue
                lines.append(f"{int(a == b)} {first}.wav {second}.wav")
        picked = sorted(rng.choice(len(lines), size=min(count, len(lines)), replace=False))
        return [lines[index] for index in picked]

    lists = {
        "veri_test": pairs(test_keys, False, 30),
        "list_test_all": pairs(keys, False, 60),
        "list_test_hard": pairs(keys, True, 40),
    }
    for name, cleaned in lists.items():
        original = [*cleaned[:5], f"1 {test_keys[0]}.wav {missing}.wav", *cleaned[5:]]
        (root / f"{name}.txt").write_text("\n".join(original) + "\n")
        (root / f"{name}2.txt").write_text("\n".join(cleaned) + "\n")
    return missing


# --- augmentation corpora -----------------------------------------------------------------------------


def _write_musan(root: Path, rng: np.random.Generator) -> None:
    """MUSAN's layout: musan/<category>/<source>/<category>-<source>-NNNN.wav plus text files."""
    files = {
        "music/fma/music-fma-0000.wav": 13.0,
        "music/fma/music-fma-0001.wav": 7.0,
        "noise/free-sound/noise-free-sound-0000.wav": 4.0,
        "noise/sound-bible/noise-sound-bible-0000.wav": 2.5,
        "speech/librivox/speech-librivox-0000.wav": 8.0,
    }
    for relative, seconds in files.items():
        wave = 0.1 * rng.standard_normal(int(seconds * RATE))
        soundfile.write(_parent(root / "musan" / relative), wave.astype(np.float32), RATE, subtype="PCM_16")
    for folder in ("music/fma", "noise/free-sound", "noise/sound-bible", "speech/librivox"):
        (root / "musan" / folder / "ANNOTATIONS").write_text("file-id\tmetadata\n")
    (root / "musan/README").write_text("MUSAN miniature\n")


def _write_rirs(root: Path, rng: np.random.Generator) -> None:
    """RIRS_NOISES: simulated room responses (mono) and real ones with isotropic noises (multi-channel)."""
    for relative in (
        "simulated_rirs/smallroom/Room001/Room001-00001.wav",
        "simulated_rirs/smallroom/Room001/Room001-00002.wav",
        "simulated_rirs/mediumroom/Room001/Room001-00001.wav",
    ):
        soundfile.write(_parent(root / "RIRS_NOISES" / relative), _rir(rng, 0.3), RATE, subtype="PCM_16")
    real = root / "RIRS_NOISES/real_rirs_isotropic_noises"
    stereo_rir = np.stack([_rir(rng, 0.5), _rir(rng, 0.5)], axis=1)
    soundfile.write(_parent(real / "RVB2014_type1_rir_largeroom1_near_angla.wav"), stereo_rir, RATE, subtype="PCM_16")
    noise = (0.05 * rng.standard_normal((2 * RATE, 2))).astype(np.float32)
    soundfile.write(real / "RVB2014_type1_noise_largeroom1_1.wav", noise, RATE, subtype="PCM_16")


def _rir(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """An exponentially decaying noise burst after a short pre-delay: enough like a room response."""
    length = int(seconds * RATE)
    decay = np.exp(-np.arange(length) / (0.05 * RATE))
    rir = 0.5 * rng.standard_normal(length) * decay
    rir[:80] = 0.0
    rir[80] = 0.9
    return rir.astype(np.float32)


# --- broken files -------------------------------------------------------------------------------------


def _write_bad_files(fixture: VoxFixture, rng: np.random.Generator, seconds: float) -> None:
    """One file for each way a download goes wrong, next to good files of real speakers and sessions."""
    root = fixture.root
    sessions = {key.split("/")[0]: key.split("/")[1] for key in fixture.vox2_keys}
    aac = fixture.vox2_aac

    def vox2(speaker: str, utt: int, suffix: str, folder: Path = aac) -> Path:
        return _parent(folder / speaker / sessions[speaker] / f"{utt:05d}{suffix}")

    full = write_m4a(vox2("id00015", 91, ".m4a"), synthetic_voice("id00015", 91, 3 * seconds, rng), RATE)
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])
    fixture.bad[str(full.relative_to(root))] = "truncated"
    empty = vox2("id00015", 92, ".m4a")
    empty.write_bytes(b"")
    fixture.bad[str(empty.relative_to(root))] = "zero_length"
    silent = write_m4a(vox2("id00016", 93, ".m4a"), np.zeros(int(seconds * RATE), np.float32), RATE)
    fixture.bad[str(silent.relative_to(root))] = "silent"
    corrupt = vox2("id00012", 95, ".m4a")
    corrupt.write_bytes(rng.bytes(4000))
    fixture.bad[str(corrupt.relative_to(root))] = "corrupt"
    slow = write_m4a(vox2("id00016", 94, ".m4a"), synthetic_voice("id00016", 94, seconds, rng)[::2], RATE // 2)
    fixture.resampled[str(slow.relative_to(root))] = RATE // 2

    mp4 = root / "vox2/dev/mp4"
    broken_video = vox2("id00012", 1, ".mp4", mp4)
    broken_video.write_bytes(rng.bytes(6000))  # replaces a good face track; its m4a stays good
    fixture.bad[str(broken_video.relative_to(root))] = "corrupt"
    silent_video = vox2("id00015", 1, ".mp4", mp4)
    write_mp4(silent_video, face_frames("id00015", seconds), None, RATE, FPS)
    fixture.bad[str(silent_video.relative_to(root))] = "no_audio_stream"

    musan = root / "musan"
    broken_noise = musan / "noise/free-sound/noise-free-sound-0001.wav"
    broken_noise.write_bytes(b"RIFF" + rng.bytes(3000))
    fixture.bad[str(broken_noise.relative_to(root))] = "corrupt"
    narrow_speech = musan / "speech/librivox/speech-librivox-0001.wav"
    soundfile.write(narrow_speech, (0.1 * rng.standard_normal(3 * RATE // 2)).astype(np.float32), RATE // 2)
    fixture.resampled[str(narrow_speech.relative_to(root))] = RATE // 2

    speaker, session = fixture.vox1_keys[0].split("/")[:2]
    narrow = root / "vox1/wav" / speaker / session / "00099.wav"
    write_wav(narrow, synthetic_voice(speaker, 99, seconds, rng)[::2], RATE // 2)
    fixture.resampled[str(narrow.relative_to(root))] = RATE // 2


# --- archives -----------------------------------------------------------------------------------------


def _zip(path: Path, base: Path, files: list[Path]) -> None:
    """Members stored uncompressed, as VoxCeleb's (audio and video are compressed already)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in files:
            archive.write(file, file.relative_to(base).as_posix())


def _split(path: Path, parts: int) -> None:
    """Cut ``path`` into ``<stem>_partaa``, ``_partab``, ... like ``split -b``; remove the whole."""
    data = path.read_bytes()
    size = -(-len(data) // parts)
    for index in range(parts):
        suffix = string.ascii_lowercase[index // 26] + string.ascii_lowercase[index % 26]
        (path.parent / f"{path.stem}_part{suffix}").write_bytes(data[index * size : (index + 1) * size])
    path.unlink()
