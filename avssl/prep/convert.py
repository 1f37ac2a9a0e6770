"""Converting VoxCeleb2's AAC (m4a) audio once into 16 kHz mono 16-bit wav (or flac).

Why convert rather than decode on the fly: on the development machine, decoding a 7.8 s m4a (the
VoxCeleb2 average) with PyAV costs about 3.1 ms of CPU, a 2 s crop from a wav 0.16 ms, a whole wav
0.37 ms (``benchmarks/bench_voxceleb_prep.py``, numbers in docs/benchmarks.md). Training reads every
utterance once per epoch, so decoding on the fly pays the conversion again every epoch (about 1 CPU
hour per VoxCeleb2 epoch), inside the data loader that must keep a GPU fed; converting once costs
about 10 ms per utterance. wav is the default because crops seek without decoding; flac saves about a
third of the disk (VoxCeleb2 dev is about 272 GB as wav) at 5x the cost of a wav crop (0.84 ms), still
4x cheaper than m4a.

The step is resumable and idempotent: each output appears atomically (a crash leaves at most a hidden
temporary file, removed by the next run), a re-run converts only what is missing, and ``--shard i/n``
splits the files between array jobs by a hash of the key. Every file found ends up converted, already
there, or skipped with a reason in the JSON report; files at another sample rate are resampled and
listed, never silently.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import soundfile

from avssl.errors import DataError
from avssl.prep.decode import AUDIO_SUFFIXES, Unusable, check_decoders, read_pcm, resample, to_mono, to_pcm16
from avssl.prep.parallel import WorkShard, default_workers, parallel_map
from avssl.prep.resume import remove_partials, scan_outputs
from avssl.prep.scan import walk_files
from avssl.utils.atomic import atomic_write, atomic_write_json

log = logging.getLogger(__name__)

FORMATS = {"wav": "WAV", "flac": "FLAC"}
UNEXPECTED_FILE = "unexpected_file"
DUPLICATE_KEY = "duplicate_key"


@dataclass(frozen=True)
class ConvertJob:
    """One source recording and the file it becomes; ``key`` is its path below the source folder."""

    key: str
    source: str
    target: str


@dataclass(frozen=True)
class ConvertResult:
    """What happened to one job: ``reason`` is empty when it was converted."""

    key: str
    source: str
    reason: str = ""
    detail: str = ""
    source_rate: int = 0


def convert_tree(
    source_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    audio_format: str = "wav",
    sample_rate: int = 16000,
    workers: int | None = None,
    shard: WorkShard | None = None,
    progress: bool = False,
    report_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Convert every audio file below ``source_dir`` into ``out_dir`` with the same relative paths.

    Returns the report, which is also written to ``report_path`` (default: beside the output folder,
    ``<out_dir>.convert_report[.shard-i-of-n].json``, so the audio folder holds nothing but audio).
    """
    started = time.perf_counter()
    shard = shard or WorkShard()
    source, out = Path(source_dir).resolve(), Path(out_dir).resolve()
    suffix = _check(source, out, audio_format)
    jobs, ignored = find_jobs(source, out, suffix)
    mine = [job for job in jobs if shard.owns(job.key)]
    existing, partial_files = scan_outputs(out)
    targets = {job.target for job in mine}
    removed = remove_partials(partial_files, lambda target: str(target) in targets)
    todo = [job for job in mine if job.target not in existing]
    workers = default_workers(workers)
    log.info(
        "convert %s -> %s (%s, slice %s): %d of %d file(s) are this slice's, %d already done, %d to do",
        source, out, audio_format, shard, len(mine), len(jobs), len(mine) - len(todo), len(todo),
    )  # fmt: skip
    convert = partial(convert_one, sample_rate=sample_rate, audio_format=audio_format)
    results = list(parallel_map(convert, todo, workers=workers, desc=f"convert {source.name}", progress=progress))
    seconds = time.perf_counter() - started
    report = _report(source, out, audio_format, sample_rate, shard, workers, jobs, mine, todo, results, ignored)
    report_path = Path(report_path) if report_path else report_file(out, shard)
    _carry_resampled(report, report_path, {job.source for job in todo})
    report["partial_removed"] = removed
    report["seconds"] = round(seconds, 3)
    report["utterances_per_s"] = round(len(todo) / seconds, 2) if todo else 0.0
    atomic_write_json(report_path, report)
    _log_summary(report)
    return report


def report_file(out: Path, shard: WorkShard) -> Path:
    """Where a slice's report goes by default; the layout step reads them all back."""
    return out.parent / f"{out.name}.convert_report{shard.suffix}.json"


def _check(source: Path, out: Path, audio_format: str) -> str:
    """Refuse, before any work, what would fail later or damage the source."""
    if audio_format not in FORMATS:
        raise DataError(f"unknown audio format {audio_format!r}; choose one of {sorted(FORMATS)}")
    check_decoders()
    if not source.is_dir():
        raise DataError(f"source folder {source} does not exist; point it at the extracted vox2 dev/aac folder")
    if out == source or source in out.parents:
        raise DataError(f"output folder {out} lies inside the source {source}; choose a folder outside it")
    return f".{audio_format}"


def find_jobs(source: Path, out: Path, suffix: str) -> tuple[list[ConvertJob], list[ConvertResult]]:
    """Every audio file below ``source`` as a job, sorted by key; other files are reported, not converted."""
    jobs: list[ConvertJob] = []
    ignored: list[ConvertResult] = []
    seen: dict[str, str] = {}
    for path in walk_files(source):
        relative = path.relative_to(source)
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            ignored.append(ConvertResult(relative.as_posix(), str(path), UNEXPECTED_FILE, "not an audio file"))
            continue
        key = relative.with_suffix("").as_posix()
        if key in seen:
            detail = f"same key as {seen[key]}, which is converted"
            ignored.append(ConvertResult(key, str(path), DUPLICATE_KEY, detail))
            continue
        seen[key] = str(path)
        jobs.append(ConvertJob(key, str(path), str(out / f"{key}{suffix}")))
    return jobs, ignored


def convert_one(job: ConvertJob, sample_rate: int, audio_format: str) -> ConvertResult:
    """Decode, downmix, resample when needed and write one file atomically; never raises for bad input."""
    try:
        pcm = read_pcm(job.source)
    except Unusable as problem:
        return ConvertResult(job.key, job.source, problem.reason, problem.detail)
    wave = resample(to_mono(pcm.wave), pcm.sample_rate, sample_rate)
    samples = to_pcm16(wave)
    atomic_write(
        job.target,
        lambda handle: soundfile.write(handle, samples, sample_rate, format=FORMATS[audio_format], subtype="PCM_16"),
    )
    return ConvertResult(job.key, job.source, source_rate=pcm.sample_rate)


def _report(
    source: Path,
    out: Path,
    audio_format: str,
    sample_rate: int,
    shard: WorkShard,
    workers: int,
    jobs: list[ConvertJob],
    mine: list[ConvertJob],
    todo: list[ConvertJob],
    results: list[ConvertResult],
    ignored: list[ConvertResult],
) -> dict[str, Any]:
    """Counts, then every skipped and every resampled file by path: the user must be able to act on each."""
    skipped = [result for result in results if result.reason]
    resampled = [result for result in results if not result.reason and result.source_rate != sample_rate]
    ignored_mine = [result for result in ignored if shard.owns(result.key)]
    return {
        "step": "convert",
        "source": str(source),
        "out_dir": str(out),
        "format": audio_format,
        "sample_rate": sample_rate,
        "shard": str(shard),
        "workers": workers,
        "found": len(jobs),
        "in_shard": len(mine),
        "already_done": len(mine) - len(todo),
        "converted": len(results) - len(skipped),
        "resampled": len(resampled),  # with earlier runs' (see _carry_resampled)
        "skipped": len(skipped),
        "skipped_by_reason": dict(sorted(Counter(result.reason for result in skipped).items())),
        "skipped_files": [_entry(result) for result in skipped],
        "resampled_files": [{"path": r.source, "from_rate": r.source_rate} for r in resampled],
        "ignored_files": [_entry(result) for result in ignored_mine],
    }


def _carry_resampled(report: dict[str, Any], previous_path: Path, redone: set[str]) -> None:
    """Keep the resampled files of earlier runs in the list: a re-run finds them done, but the user
    must still be able to see that they were resampled."""
    if not previous_path.is_file():
        return
    previous = json.loads(previous_path.read_text()).get("resampled_files", [])
    carried = [entry for entry in previous if entry["path"] not in redone]
    report["resampled_files"] = sorted(carried + report["resampled_files"], key=lambda entry: entry["path"])
    report["resampled"] = len(report["resampled_files"])


def _entry(result: ConvertResult) -> dict[str, str]:
    return {"path": result.source, "reason": result.reason, "detail": result.detail}


def _log_summary(report: dict[str, Any]) -> None:
    log.info(
        "convert slice %s: %d converted (%d resampled), %d already done, %d skipped %s in %.1f s",
        report["shard"], report["converted"], report["resampled"], report["already_done"], report["skipped"],
        report["skipped_by_reason"] or "", report["seconds"],
    )  # fmt: skip
    for entry in report["skipped_files"][:5]:
        log.warning("skipped %s: %s (%s)", entry["path"], entry["reason"], entry["detail"])
    if report["partial_removed"]:
        log.info("removed %d partial file(s) left by an interrupted run", report["partial_removed"])
