"""Find and probe the media files of one corpus split.

A split folder holds audio under ``wav/`` (wav or flac) or ``aac/`` (m4a) and face-track video under
``mp4/``, each as ``<speaker>/<session>/<utt>.<ext>``. Every file is opened once here, so that corrupt,
empty or mis-sampled recordings are found now and reported by path and reason, rather than killing a
training run days later. Nothing is dropped silently: every file found either becomes a ``Media`` entry
or a ``Skipped`` entry with a reason, and one bad file never stops the scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import av
import soundfile
from tqdm import tqdm

from avssl.prep.parallel import WorkShard

# Media folders of a split and the file suffixes each may hold.
MEDIA_DIRS: dict[str, tuple[str, tuple[str, ...]]] = {
    "wav": ("audio", (".wav", ".flac")),
    "aac": ("audio", (".m4a",)),
    "mp4": ("video", (".mp4",)),
}
SOUNDFILE_SUFFIXES = (".wav", ".flac")
KEY_DEPTH = 3  # speaker / session / utterance

# Reasons a file is skipped; they are the keys of the report's "skipped" tables.
EMPTY_FILE = "empty_file"
UNREADABLE = "unreadable"
NO_AUDIO_STREAM = "no_audio_stream"
NO_VIDEO_STREAM = "no_video_stream"
ZERO_LENGTH = "zero_length"
UNEXPECTED_SAMPLE_RATE = "unexpected_sample_rate"
UNEXPECTED_PATH = "unexpected_path"
UNEXPECTED_FILE = "unexpected_file"
DUPLICATE_KEY = "duplicate_key"


@dataclass(frozen=True)
class MediaFile:
    """A file found on disk that still has to be probed; ``kind`` is "audio" or "video"."""

    key: str
    path: str
    kind: str


@dataclass(frozen=True)
class Media:
    """A probed, readable file. ``sample_rate`` is 0 for video; ``frames`` is 0 for audio."""

    key: str
    path: str
    kind: str
    duration: float
    sample_rate: int = 0
    frames: int = 0


@dataclass(frozen=True)
class Skipped:
    """A file left out, with a reason from the constants above and a detail for the user.

    ``key`` and ``kind`` are empty when the path could not give a key; they let the caller tell a trial
    that names a corrupt recording from one that names a recording never shipped.
    """

    path: str
    reason: str
    detail: str
    key: str = ""
    kind: str = ""


@dataclass
class SplitScan:
    """Readable audio and video of one split, by key, and every file that was left out."""

    audio: dict[str, Media] = field(default_factory=dict)
    video: dict[str, Media] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


def scan_split(
    split_dir: str | os.PathLike,
    expected_sample_rate: int = 16000,
    workers: int | None = None,
    progress: bool = False,
    shard: WorkShard | None = None,
) -> SplitScan:
    """Find and probe every media file of a split; the result is sorted and independent of ``workers``.

    With a ``shard``, only the files of its slice are probed (see :func:`in_shard`): the result is then the
    whole split's scan restricted to that slice, so the scans of all slices combine by plain union.
    """
    files, skipped = in_shard(shard or WorkShard(), *find_split_media(split_dir))
    scan = SplitScan(skipped=skipped)
    desc = f"probe {Path(split_dir).name}"
    for result in probe_files(files, expected_sample_rate, workers=workers, progress=progress, desc=desc):
        if isinstance(result, Skipped):
            scan.skipped.append(result)
            continue
        table = scan.audio if result.kind == "audio" else scan.video
        if result.key in table:
            kept = table[result.key].path
            detail = f"same key as {kept}, which is kept"
            scan.skipped.append(Skipped(result.path, DUPLICATE_KEY, detail, result.key, result.kind))
        else:
            table[result.key] = result
    scan.skipped.sort(key=lambda skip: (skip.path, skip.reason))
    return scan


def find_split_media(split_dir: str | os.PathLike) -> tuple[list[MediaFile], list[Skipped]]:
    """List the media files of a split in sorted order; files that cannot carry a key are reported."""
    split_dir = Path(split_dir).resolve()
    files: list[MediaFile] = []
    skipped: list[Skipped] = []
    for folder, (kind, suffixes) in MEDIA_DIRS.items():
        media_dir = split_dir / folder
        for path in walk_files(media_dir):
            if path.suffix.lower() not in suffixes:
                skipped.append(
                    Skipped(str(path), UNEXPECTED_FILE, f"{folder}/ holds only {'/'.join(suffixes)}")
                )
                continue
            parts = path.relative_to(media_dir).with_suffix("").parts
            if len(parts) != KEY_DEPTH or any(not part or _has_space(part) for part in parts):
                detail = f"expected {folder}/<speaker>/<session>/<utt>{path.suffix}, without spaces"
                skipped.append(Skipped(str(path), UNEXPECTED_PATH, detail))
                continue
            files.append(MediaFile(key="/".join(parts), path=str(path), kind=kind))
    return files, skipped


def in_shard(
    shard: WorkShard, files: list[MediaFile], skipped: list[Skipped]
) -> tuple[list[MediaFile], list[Skipped]]:
    """The files and listing skips that belong to ``shard``.

    Files go by utterance key, so the audio, the video and any duplicate of one key land in one slice,
    which can then join them and keep the first duplicate exactly as a whole run does. A file skipped
    while listing has no key and goes by its path.
    """
    owned = [file for file in files if shard.owns(file.key)]
    return owned, [skip for skip in skipped if shard.owns(skip.key or skip.path)]


def _has_space(text: str) -> bool:
    """Keys are written into whitespace-separated trial lists and TSVs, so they must not contain spaces."""
    return any(char.isspace() for char in text)


def walk_files(folder: Path) -> list[Path]:
    """All regular files below ``folder`` (following symlinked folders, as corpora are often linked in)."""
    if not folder.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in sorted(filenames))
    return sorted(found)


def probe_files(
    files: Iterable[MediaFile],
    expected_sample_rate: int,
    workers: int | None = None,
    progress: bool = False,
    desc: str = "probe",
) -> Iterator[Media | Skipped]:
    """Probe files in order, over ``workers`` processes (default: all cores; 0 or 1 probes in-process)."""
    files = list(files)
    workers = (os.cpu_count() or 1) if workers is None else workers
    probe_one = partial(probe, expected_sample_rate=expected_sample_rate)
    with tqdm(total=len(files), desc=desc, unit="file", disable=not progress) as bar:
        if workers <= 1 or len(files) < 2:
            for result in map(probe_one, files):
                bar.update()
                yield result
            return
        chunksize = max(1, min(64, len(files) // (workers * 8)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(probe_one, files, chunksize=chunksize):
                bar.update()
                yield result


def probe(media: MediaFile, expected_sample_rate: int) -> Media | Skipped:
    """Open one file and measure it; any failure becomes a Skipped entry, never an exception."""
    try:
        if os.path.getsize(media.path) == 0:
            return _skip(media, EMPTY_FILE, "the file has 0 bytes")
        if media.kind == "video":
            return _probe_video(media)
        if Path(media.path).suffix.lower() in SOUNDFILE_SUFFIXES:
            result = _probe_soundfile(media)
        else:
            result = _probe_av_audio(media)
    except Exception as error:  # a decoder may raise anything; one bad file must not end the run
        return _skip(media, UNREADABLE, f"{type(error).__name__}: {error}".strip())
    if isinstance(result, Media) and result.sample_rate != expected_sample_rate:
        detail = f"{result.sample_rate} Hz, expected {expected_sample_rate} Hz; resample it"
        return _skip(media, UNEXPECTED_SAMPLE_RATE, detail)
    return result


def _skip(media: MediaFile, reason: str, detail: str) -> Skipped:
    return Skipped(media.path, reason, detail, media.key, media.kind)


def _probe_soundfile(media: MediaFile) -> Media | Skipped:
    """wav/flac: the header gives frames and rate; libsndfile clamps frames to the data actually present."""
    info = soundfile.info(media.path)
    if info.frames <= 0:
        return _skip(media, ZERO_LENGTH, "the file holds no audio samples")
    return Media(media.key, media.path, "audio", info.frames / info.samplerate, int(info.samplerate))


def _probe_av_audio(media: MediaFile) -> Media | Skipped:
    """m4a: read the rate and duration from the container, and decode one frame to prove it decodes."""
    with av.open(media.path) as container:
        if not container.streams.audio:
            return _skip(media, NO_AUDIO_STREAM, "the container has no audio stream")
        stream = container.streams.audio[0]
        sample_rate = int(stream.codec_context.sample_rate or 0)
        duration = _stream_seconds(container, stream)
        decoded = 0
        for frame in container.decode(stream):
            decoded += frame.samples
            if duration > 0:
                break  # the container knows the duration; one frame is enough to prove it decodes
        if decoded == 0 or sample_rate <= 0:
            return _skip(media, ZERO_LENGTH, "no audio frame could be decoded")
        if duration <= 0:
            duration = decoded / sample_rate
    return Media(media.key, media.path, "audio", duration, sample_rate)


def _probe_video(media: MediaFile) -> Media | Skipped:
    """mp4: require a video stream and a first decodable frame; count frames from the container."""
    with av.open(media.path) as container:
        if not container.streams.video:
            return _skip(media, NO_VIDEO_STREAM, "the container has no video stream")
        stream = container.streams.video[0]
        duration = _stream_seconds(container, stream)
        rate = float(stream.average_rate or 0)
        frames = int(stream.frames or 0)
        if next(iter(container.decode(stream)), None) is None:
            return _skip(media, ZERO_LENGTH, "no video frame could be decoded")
    if frames <= 0:
        frames = _count_packets(media.path)
    if duration <= 0 and rate > 0:
        duration = frames / rate
    return Media(media.key, media.path, "video", duration, frames=frames)


def _stream_seconds(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    """Duration in seconds from stream or container metadata, or 0.0 when neither states it."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _count_packets(path: str) -> int:
    """Frame count for containers whose header omits it: one video packet is one frame in mp4."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
