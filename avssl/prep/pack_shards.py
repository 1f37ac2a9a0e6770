"""Packing a manifest's audio into the tar shards that :class:`avssl.data.shards.ShardDataset` reads.

The utterances are shuffled once (seeded) before being cut into shards, so every shard mixes many
speakers: shuffling shard order and a buffer at training time then gives well-mixed batches, which
shards of consecutive keys (one or two speakers each) would not. The files' bytes are copied as they
are (wav or flac; m4a manifests are refused: convert them first, decoding AAC every epoch is what the
shards are meant to avoid).

Resumable and idempotent like every preparation step: the plan (manifest checksum, seed, shard size)
is recorded in ``OUT/plan.json`` and a different plan is refused rather than mixed in; each shard is
written atomically with fixed member metadata (same input, same bytes), existing shards are kept, and
``--shard i/n`` packs shards i, i + n, ... The index ``shards.tsv`` is written by the run that finds
every shard present.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from avssl.data.manifest import Utterance, read_manifest
from avssl.data.shards import AUDIO_MEMBER_SUFFIXES, INDEX_HEADER, INDEX_NAME
from avssl.errors import DataError
from avssl.prep.parallel import WorkShard, default_workers, parallel_map
from avssl.prep.resume import remove_partials, scan_outputs
from avssl.utils.atomic import atomic_write, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


def pack_shards(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    utterances_per_shard: int = 1000,
    seed: int = 0,
    workers: int | None = None,
    shard: WorkShard | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write this slice's missing shards of ``manifest`` into ``out_dir``; return and write the report."""
    started = time.perf_counter()
    shard = shard or WorkShard()
    manifest, out = Path(manifest).resolve(), Path(out_dir).resolve()
    if utterances_per_shard < 1:
        raise DataError(f"utterances per shard must be at least 1, not {utterances_per_shard}")
    utterances = read_manifest(manifest)
    _check_audio(manifest, utterances)
    groups = plan_shards(utterances, utterances_per_shard, seed)
    _record_plan(out, manifest, len(utterances), utterances_per_shard, seed, len(groups))
    names = [shard_name(number) for number in range(len(groups))]
    mine = [number for number in range(len(groups)) if shard.owns_number(number)]
    mine_paths = {str(out / names[number]) for number in mine}
    existing, partial_files = scan_outputs(out)
    removed = remove_partials(partial_files, lambda target: str(target) in mine_paths)
    todo = [number for number in mine if str(out / names[number]) not in existing]
    jobs = [(str(out / names[number]), [(u.key, u.audio) for u in groups[number]]) for number in todo]
    workers = default_workers(workers)
    written = sum(parallel_map(write_shard, jobs, workers=workers, desc="pack shards", progress=progress))
    complete = all((out / name).is_file() for name in names)
    if complete:
        rows = [f"{name}\t{len(group)}" for name, group in zip(names, groups, strict=True)]
        atomic_write_text(out / INDEX_NAME, "\n".join([INDEX_HEADER, *rows]) + "\n")
    seconds = time.perf_counter() - started
    report = {
        "step": "shards",
        "manifest": str(manifest),
        "out_dir": str(out),
        "shard": str(shard),
        "utterances": len(utterances),
        "shards": len(groups),
        "in_shard": len(mine),
        "already_done": len(mine) - len(todo),
        "written": len(todo),
        "bytes_written": written,
        "partial_removed": removed,
        "index": str(out / INDEX_NAME) if complete else "not written: other --shard slices are not done yet",
        "seconds": round(seconds, 3),
    }
    atomic_write_json(out / f"pack_report{shard.suffix}.json", report)
    log.info(
        "shards slice %s: %d written (%.1f MB), %d already done, of %d; index: %s",
        shard, len(todo), written / 1e6, report["already_done"], len(groups), report["index"],
    )  # fmt: skip
    return report


def plan_shards(utterances: list[Utterance], size: int, seed: int) -> list[list[Utterance]]:
    """A seeded shuffle of the (key-sorted) manifest cut into groups of ``size``; the same for every slice."""
    ordered = sorted(utterances, key=lambda utterance: utterance.key)
    order = np.random.default_rng(seed).permutation(len(ordered))
    shuffled = [ordered[index] for index in order]
    return [shuffled[start : start + size] for start in range(0, len(shuffled), size)]


def shard_name(number: int) -> str:
    return f"shard-{number:06d}.tar"


def write_shard(job: tuple[str, list[tuple[str, str]]]) -> int:
    """Write one shard atomically; members carry fixed metadata so the bytes depend only on the input."""
    path, members = job

    def write(handle: IO[bytes]) -> None:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as archive:
            for key, audio in members:
                info = tarfile.TarInfo(f"{key}{Path(audio).suffix.lower()}")
                info.size, info.mode, info.mtime = os.path.getsize(audio), 0o644, 0
                with open(audio, "rb") as source:
                    archive.addfile(info, source)

    atomic_write(path, write)
    return os.path.getsize(path)


def _check_audio(manifest: Path, utterances: list[Utterance]) -> None:
    wrong = [u.audio for u in utterances if Path(u.audio).suffix.lower() not in AUDIO_MEMBER_SUFFIXES]
    if wrong:
        raise DataError(
            f"{manifest}: {len(wrong)} utterance(s) are not wav/flac (e.g. {wrong[0]}); convert them first "
            "(`avssl voxceleb convert`) and prepare the converted folder, so shards hold decoded PCM"
        )
    if not utterances:
        raise DataError(f"{manifest} holds no utterance; nothing to pack")


def _record_plan(out: Path, manifest: Path, count: int, size: int, seed: int, shards: int) -> None:
    """Refuse to add shards of another plan to a folder: the mix would duplicate or lose utterances."""
    plan = {
        "manifest": str(manifest),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "utterances": count,
        "utterances_per_shard": size,
        "seed": seed,
        "shards": shards,
    }
    path = out / "plan.json"
    if path.is_file():
        recorded = json.loads(path.read_text())
        if {k: v for k, v in recorded.items() if k != "manifest"} != {k: v for k, v in plan.items() if k != "manifest"}:
            raise DataError(
                f"{out} holds shards of another plan ({path}: {recorded['utterances']} utterances, "
                f"{recorded['utterances_per_shard']} per shard, seed {recorded['seed']}); the manifest or the "
                "options changed: write to an empty folder or delete this one"
            )
        return
    atomic_write_json(path, plan)
