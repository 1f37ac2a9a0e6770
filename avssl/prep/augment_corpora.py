"""MUSAN and RIRS_NOISES as short 16 kHz mono files, listed in the ``noise.tsv`` / ``rir.tsv`` that
:mod:`avssl.data.augment` reads.

Why chunk: MUSAN's music and speech files run for minutes; a training crop needs a few seconds of
noise, and reading (or decoding) a whole long file for each is what makes augmentation slow in other
toolkits. Cutting every file once into fixed pieces (6 s by default; a tail shorter than
``min_seconds`` is dropped, so is a whole file that short) turns each draw into one small read. Room
impulse responses are short already; each becomes one mono 16 kHz file. Multi-channel RIRs keep their
first channel (their channels are different microphones; averaging them blurs the response).

Inputs follow the releases: ``musan/<category>/<source>/*.wav`` (categories music, noise, speech);
``RIRS_NOISES/simulated_rirs/**/*.wav`` and ``RIRS_NOISES/real_rirs_isotropic_noises/*.wav``, where
files with ``noise`` in their name are isotropic noise recordings, not responses, and are left out (and
counted). Each source file's pieces are listed in a small index written after them, so a re-run skips
finished sources; ``--shard i/n`` splits the sources between array jobs. The final lists are written
once every source is done.

:func:`avssl.data.augment.load_augment_sources` loads every listed clip into memory: all of MUSAN is
about 109 h (25 GB as float32). ``max_per_category`` lists a seeded random subset of pieces per
category (all pieces stay on disk), which keeps that loader usable until it reads pieces on demand.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from avssl.errors import DataError
from avssl.prep.decode import SOUNDFILE_SUFFIXES, Unusable, read_pcm, resample, to_mono, to_pcm16
from avssl.prep.parallel import WorkShard, default_workers, parallel_map
from avssl.prep.resume import remove_partials, scan_outputs
from avssl.prep.scan import walk_files
from avssl.utils.atomic import atomic_write, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

TOO_SHORT = "too_short"
NOISE_HEADER = "path\tduration\tsample_rate\tcategory"
RIR_HEADER = "path\tduration\tsample_rate"


@dataclass(frozen=True)
class PieceJob:
    """One source file; its pieces go to ``out`` (a folder for noise, a file stem for a RIR)."""

    key: str
    source: str
    out: str
    category: str  # MUSAN category; "" for a room impulse response

    @property
    def index(self) -> Path:
        """Written last: its presence means every piece of this source is on disk."""
        return Path(f"{self.out}.pieces.tsv")


@dataclass(frozen=True)
class PieceResult:
    key: str
    source: str
    rows: tuple[str, ...] = ()
    reason: str = ""
    detail: str = ""
    source_rate: int = 0


def prepare_augment_corpora(
    out_dir: str | os.PathLike,
    musan: str | os.PathLike | None = None,
    rirs: str | os.PathLike | None = None,
    chunk_seconds: float = 6.0,
    min_seconds: float = 1.0,
    sample_rate: int = 16000,
    max_per_category: int | None = None,
    workers: int | None = None,
    shard: WorkShard | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Cut MUSAN into pieces and normalise RIRs under ``out_dir``; write the lists when all are done."""
    started = time.perf_counter()
    shard = shard or WorkShard()
    out = Path(out_dir).resolve()
    if musan is None and rirs is None:
        raise DataError("give --musan and/or --rirs (the extracted musan/ and RIRS_NOISES/ folders)")
    jobs: list[PieceJob] = []
    report: dict[str, Any] = {"step": "augment", "out_dir": str(out), "shard": str(shard)}
    if musan is not None:
        musan_jobs = find_musan(Path(musan).resolve(), out / "musan")
        jobs += musan_jobs
        report["musan"] = {"source": str(Path(musan).resolve()), "files": len(musan_jobs)}
    if rirs is not None:
        rir_jobs, isotropic = find_rirs(Path(rirs).resolve(), out / "rirs")
        jobs += rir_jobs
        report["rirs"] = {"source": str(Path(rirs).resolve()), "files": len(rir_jobs), "isotropic_noises_left_out": isotropic}
    mine = [job for job in jobs if shard.owns(job.key)]
    todo = [job for job in mine if not job.index.is_file()]
    report["partial_removed"] = _remove_partials(out, {job.out for job in todo})
    work = partial(cut_one, chunk_seconds=chunk_seconds, min_seconds=min_seconds, sample_rate=sample_rate)
    workers = default_workers(workers)
    results = list(parallel_map(work, todo, workers=workers, desc="augment corpora", progress=progress))
    skipped = [result for result in results if result.reason]
    report |= {
        "in_shard": len(mine),
        "already_done": len(mine) - len(todo),
        "processed": len(results) - len(skipped),
        "resampled": sum(1 for r in results if not r.reason and r.source_rate != sample_rate),
        "skipped": len(skipped),
        "skipped_by_reason": dict(sorted(Counter(result.reason for result in skipped).items())),
        "skipped_files": [{"path": r.source, "reason": r.reason, "detail": r.detail} for r in skipped],
    }
    report["lists"] = _write_lists(out, jobs, skipped, max_per_category)
    report["seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_json(out / f"augment_report{shard.suffix}.json", report)
    log.info(
        "augment slice %s: %d processed, %d already done, %d skipped %s; lists: %s",
        shard, report["processed"], report["already_done"], len(skipped), report["skipped_by_reason"] or "",
        report["lists"].get("status"),
    )  # fmt: skip
    return report


def find_musan(musan: Path, out: Path) -> list[PieceJob]:
    """wav files at least two folders deep (category/source/file.wav); README, ANNOTATIONS are not audio."""
    if not musan.is_dir():
        raise DataError(f"MUSAN folder {musan} does not exist; expected musan/<music|noise|speech>/<source>/*.wav")
    jobs = []
    for path in walk_files(musan):
        relative = path.relative_to(musan).with_suffix("")
        if path.suffix.lower() in SOUNDFILE_SUFFIXES and len(relative.parts) >= 2:
            key = f"musan/{relative.as_posix()}"
            jobs.append(PieceJob(key, str(path), str(out / relative), relative.parts[0]))
    if not jobs:
        raise DataError(f"no wav file in {musan}; expected musan/<music|noise|speech>/<source>/*.wav")
    return jobs


def find_rirs(rirs: Path, out: Path) -> tuple[list[PieceJob], int]:
    """Simulated and real room impulse responses; isotropic noise recordings are counted, not used."""
    simulated, real = rirs / "simulated_rirs", rirs / "real_rirs_isotropic_noises"
    if not simulated.is_dir() and not real.is_dir():
        raise DataError(f"{rirs} has neither simulated_rirs/ nor real_rirs_isotropic_noises/; is it RIRS_NOISES?")
    jobs, isotropic = [], 0
    for folder in (simulated, real):
        for path in walk_files(folder):
            if path.suffix.lower() not in SOUNDFILE_SUFFIXES:
                continue
            if folder == real and "noise" in path.name.lower():
                isotropic += 1
                continue
            relative = path.relative_to(rirs).with_suffix("")
            jobs.append(PieceJob(f"rirs/{relative.as_posix()}", str(path), str(out / relative), ""))
    return jobs, isotropic


def cut_one(job: PieceJob, chunk_seconds: float, min_seconds: float, sample_rate: int) -> PieceResult:
    """Decode one source, write its pieces atomically, then its index; bad input becomes a reason."""
    try:
        pcm = read_pcm(job.source)
    except Unusable as problem:
        return PieceResult(job.key, job.source, reason=problem.reason, detail=problem.detail)
    wave = resample(to_mono(pcm.wave, first_channel=not job.category), pcm.sample_rate, sample_rate)
    if job.category and wave.size < min_seconds * sample_rate:
        detail = f"{wave.size / sample_rate:.2f} s, shorter than {min_seconds} s"
        return PieceResult(job.key, job.source, reason=TOO_SHORT, detail=detail)
    if job.category:
        size = round(chunk_seconds * sample_rate)
        pieces = [wave[start : start + size] for start in range(0, wave.size, size)]
        pieces = [piece for piece in pieces if piece.size >= min_seconds * sample_rate]
        paths = [Path(job.out) / f"{index:04d}.wav" for index in range(len(pieces))]
    else:
        pieces, paths = [wave], [Path(f"{job.out}.wav")]
    rows = []
    for piece, path in zip(pieces, paths, strict=True):
        samples = to_pcm16(piece)
        atomic_write(path, lambda handle, samples=samples: soundfile.write(handle, samples, sample_rate, format="WAV"))
        row = f"{path}\t{samples.size / sample_rate!r}\t{sample_rate}"
        rows.append(row + (f"\t{job.category}" if job.category else ""))
    atomic_write_text(job.index, "".join(row + "\n" for row in rows))
    return PieceResult(job.key, job.source, tuple(rows), source_rate=pcm.sample_rate)


def _remove_partials(out: Path, outs: set[str]) -> int:
    """Temporary files of the sources about to be redone: pieces inside ``<out>/``, the RIR
    ``<out>.wav`` and the index ``<out>.pieces.tsv``."""

    def owned(target: Path) -> bool:
        base = str(target).removesuffix(".pieces.tsv").removesuffix(".wav")
        return base in outs or str(target.parent) in outs

    return remove_partials(scan_outputs(out)[1], owned)


def _write_lists(
    out: Path, jobs: list[PieceJob], skipped: list[PieceResult], max_per_category: int | None
) -> dict[str, Any]:
    """noise.tsv and rir.tsv from every source's index, once no source is pending in any slice.

    Sources skipped in this run have no index and are not pending (their reasons are in the report).
    """
    failed = {result.key for result in skipped}
    pending = [job for job in jobs if job.key not in failed and not job.index.is_file()]
    if pending:
        return {"status": f"not written: {len(pending)} source(s) of other --shard slices are not done yet"}
    noise_rows = [row for job in jobs if job.category and job.index.is_file() for row in _read_index(job)]
    rir_rows = [row for job in jobs if not job.category and job.index.is_file() for row in _read_index(job)]
    listed = {"status": "written"}
    if noise_rows:
        chosen = _subset(noise_rows, max_per_category)
        atomic_write_text(out / "noise.tsv", "\n".join([NOISE_HEADER, *chosen]) + "\n")
        listed["noise_pieces"] = len(chosen)
        listed["noise_pieces_on_disk"] = len(noise_rows)
        listed["noise_categories"] = dict(sorted(Counter(row.rsplit("\t", 1)[1] for row in chosen).items()))
        listed["noise_hours"] = round(sum(float(row.split("\t")[1]) for row in chosen) / 3600, 4)
    if rir_rows:
        atomic_write_text(out / "rir.tsv", "\n".join([RIR_HEADER, *rir_rows]) + "\n")
        listed["rirs"] = len(rir_rows)
    return listed


def _read_index(job: PieceJob) -> list[str]:
    return job.index.read_text(encoding="utf-8").splitlines()


def _subset(rows: list[str], max_per_category: int | None) -> list[str]:
    """At most ``max_per_category`` rows per category, drawn with a fixed seed, in sorted order."""
    if max_per_category is None:
        return sorted(rows)
    by_category: dict[str, list[str]] = {}
    for row in sorted(rows):
        by_category.setdefault(row.rsplit("\t", 1)[1], []).append(row)
    rng = np.random.default_rng(0)
    chosen = []
    for _, members in sorted(by_category.items()):
        if len(members) > max_per_category:
            members = [members[i] for i in sorted(rng.choice(len(members), max_per_category, replace=False))]
        chosen += members
    return sorted(chosen)
