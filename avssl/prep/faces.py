"""``avssl prepare-faces MANIFEST OUT_DIR``: extract every utterance's face frames into a store.

Runs once per corpus, before any visual training, so training reads small frame files instead of
decoding videos every epoch (see docs/concepts/faces.md for the measured difference). It is

* parallel: one process per core, each decoding with one thread;
* resumable and idempotent: an utterance whose frame file exists is not decoded again, and every file
  is written atomically, so an interrupted run simply continues; the same input gives the same bytes;
* shardable: ``--shard i/n`` takes slice i (0-based) of n for array jobs on a cluster, by a hash of
  the utterance key as every preparation step does (:class:`avssl.prep.parallel.WorkShard`); shards
  write disjoint files and their own reports;
* robust: a missing, corrupt or frameless video is skipped, counted and listed with its reason, and
  never stops the run.

Reports: ``OUT/reports/prepare_faces[.shard-i-of-n].json`` (counts, reasons with examples, speed) and
a ``.skipped.tsv`` beside it listing every skipped utterance.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from avssl.data.manifest import Utterance, read_manifest
from avssl.faces.frames import NO_VIDEO, FrameSampling, VideoError, default_detector, extract_frames
from avssl.faces.store import (
    DEFAULT_FORMAT,
    DEFAULT_QUALITY,
    frames_path,
    open_for_writing,
    store_settings,
    write_frames,
)
from avssl.prep.parallel import Progress, WorkShard, default_workers, parse_shard
from avssl.utils.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

EXAMPLES = 5  # examples per reason in the JSON report; the .skipped.tsv lists them all
_CHUNK = 8  # utterances per task sent to a worker: amortises inter-process traffic


@dataclass(frozen=True)
class _Job:
    """One utterance to extract (picklable for the worker pool)."""

    key: str
    video: str
    out: str
    sampling: FrameSampling
    fmt: str
    quality: int


@dataclass(frozen=True)
class _Result:
    """What a worker did with one job: frames written, or the reason it was skipped."""

    key: str
    frames: int = 0
    detected: int = 0
    fallback: int = 0
    reason: str = ""
    path: str = ""
    detail: str = ""


def _extract(job: _Job) -> _Result:
    """Decode, crop and store one utterance; a bad video becomes a skipped result, not an exception."""
    try:
        faces = extract_frames(job.video, job.sampling)
    except VideoError as err:
        return _Result(job.key, reason=err.reason, path=err.path, detail=err.detail)
    write_frames(Path(job.out), faces.frames, job.fmt, job.quality)
    return _Result(job.key, len(faces.frames), faces.detected, faces.fallback)


def _init_worker() -> None:
    """One thread per worker process: parallelism comes from the processes."""
    import cv2

    cv2.setNumThreads(1)


def _run(jobs: list[_Job], workers: int, progress: bool) -> list[_Result]:
    """Run the jobs, in spawned worker processes when ``workers`` > 1 (a fork would copy the caller's
    torch/OpenCV threads in an undefined state)."""
    with Progress(len(jobs), "faces", progress) as bar:
        if workers <= 1:
            results = []
            for job in jobs:
                results.append(_extract(job))
                bar.update()
            return results
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            results = []
            for result in pool.map(_extract, jobs, chunksize=_CHUNK):
                results.append(result)
                bar.update()
            return results


def prepare_faces(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    sampling: FrameSampling | None = None,
    fmt: str = DEFAULT_FORMAT,
    quality: int = DEFAULT_QUALITY,
    shard: WorkShard | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Extract the frames of this shard's utterances of ``manifest`` into the store ``out_dir``.

    Returns the report that is also written as JSON. ``shard``: this array job's slice (None: all);
    ``workers``: processes (None: every core this process may use).
    """
    started = time.perf_counter()
    sampling = sampling or FrameSampling()
    shard = shard or WorkShard()
    settings = store_settings(sampling, fmt, quality)
    utterances = [u for u in read_manifest(manifest) if shard.owns(u.key)]
    out = open_for_writing(out_dir, settings)
    skipped = [
        _Result(u.key, reason=NO_VIDEO, path=str(manifest), detail="the manifest names no video")
        for u in utterances
        if u.video is None
    ]
    jobs, done = _plan([u for u in utterances if u.video is not None], out, sampling, fmt, quality)
    workers = min(default_workers(workers), max(1, len(jobs)))
    detector = "off"
    if sampling.detect:
        detector = "haar" if default_detector() is not None else "unavailable"
        if detector == "unavailable":
            log.warning("--detect asked, but this OpenCV has no Haar cascades: every frame is a fallback")
    tick = time.perf_counter()
    results = _run(jobs, workers, progress)
    extract_s = time.perf_counter() - tick
    skipped += [r for r in results if r.reason]
    written = [r for r in results if not r.reason]
    name = f"prepare_faces{shard.suffix}"
    report: dict[str, Any] = {
        "manifest": str(Path(manifest).resolve()),
        "out_dir": str(out.resolve()),
        "shard": str(shard),
        "settings": settings,
        "detector": detector,
        "utterances": len(utterances),
        "extracted": len(written),
        "already_done": done,
        "skipped": len(skipped),
        "frames": sum(r.frames for r in written),
        "detected_frames": sum(r.detected for r in written),
        "fallback_frames": sum(r.fallback for r in written),
        "skipped_reasons": _summarise(skipped),
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 3),
        "videos_per_s": round(len(jobs) / extract_s, 2) if jobs else None,
        "videos_per_s_per_worker": round(len(jobs) / extract_s / workers, 2) if jobs else None,
    }
    reports = out / "reports"
    _write_skipped(reports / f"{name}.skipped.tsv", skipped)
    atomic_write_json(reports / f"{name}.json", report)
    _log_summary(report, reports / f"{name}.json")
    return report


def _plan(
    utterances: list[Utterance], out: Path, sampling: FrameSampling, fmt: str, quality: int
) -> tuple[list[_Job], int]:
    """Jobs for the utterances whose frame file does not exist yet, and how many already do."""
    jobs = []
    for utt in utterances:
        path = frames_path(out, utt.key, fmt)
        if not path.exists():
            jobs.append(_Job(utt.key, str(utt.video), str(path), sampling, fmt, quality))
    return jobs, len(utterances) - len(jobs)


def _summarise(skipped: list[_Result]) -> dict[str, Any]:
    """Counts per reason with the first few examples, so the report stays small on a million videos."""
    summary: dict[str, Any] = {}
    for reason, n in sorted(Counter(r.reason for r in skipped).items()):
        examples = [{"key": r.key, "path": r.path, "detail": r.detail} for r in skipped if r.reason == reason]
        summary[reason] = {"count": n, "examples": examples[:EXAMPLES]}
    return summary


def _write_skipped(path: Path, skipped: list[_Result]) -> None:
    lines = ["key\tpath\treason\tdetail"]
    for r in sorted(skipped, key=lambda r: r.key):
        lines.append("\t".join([r.key, r.path, r.reason, re.sub(r"\s+", " ", r.detail).strip()]))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _log_summary(report: dict[str, Any], path: Path) -> None:
    log.info(
        "faces %s: %d extracted, %d already done, %d skipped, %d frames (%s videos/s)",
        report["shard"],
        report["extracted"],
        report["already_done"],
        report["skipped"],
        report["frames"],
        report["videos_per_s"],
    )
    for reason, entry in report["skipped_reasons"].items():
        first = entry["examples"][0]
        log.warning(
            "faces: skipped %d as %s, e.g. %s (%s)", entry["count"], reason, first["path"], first["detail"]
        )
    log.info("report: %s", path)


def main(args: argparse.Namespace) -> None:
    """The command behind ``avssl prepare-faces`` (its options are declared in :mod:`avssl.cli`)."""
    sampling = FrameSampling(rate=args.rate, size=args.size, crop=args.crop, detect=args.detect)
    report = prepare_faces(
        args.manifest,
        args.out_dir,
        sampling,
        fmt=args.format,
        quality=args.quality,
        shard=parse_shard(args.shard),
        workers=args.workers,
        progress=True,
    )
    print(
        f"faces {report['shard']} -> {args.out_dir}: {report['extracted']} extracted, {report['already_done']} "
        f"already done, {report['skipped']} skipped (details in {Path(args.out_dir) / 'reports'})"
    )
