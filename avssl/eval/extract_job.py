"""`avssl extract` as a job: a cached output file, shared out over processes, unreadable audio skipped.

Caching: the output file records a fingerprint of what produced it (the encoder file's sha256, the
manifest's sha256 and the extraction settings). A later run with the same fingerprint reuses the file;
any change recomputes it, and the log says which input changed. Embedding VoxCeleb1's 153k utterances
takes hours on a CPU, so re-running an evaluation must not redo it by accident, nor reuse stale vectors.

Several processes: the same call under ``accelerate launch --num_processes N`` plans the same batches
on every process (:mod:`avssl.eval.buckets`), each process embeds a disjoint share of them, and the main
process gathers the rows and writes the one output file. Results do not depend on N.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object

from avssl.data.manifest import Utterance, read_manifest
from avssl.errors import DataError
from avssl.eval.buckets import plan_batches, share_batches
from avssl.eval.extract import (
    DEFAULT_SETTINGS,
    ExtractionSettings,
    embed_batches,
    encoder_embedder,
    load_embedding_meta,
    load_embeddings,
    save_embeddings,
)
from avssl.train.encoder_file import load_encoder

log = logging.getLogger(__name__)

FORMAT = "avssl-embeddings/2"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExtractionSummary:
    """What an extraction produced: the file, its size, what was skipped and whether the cache served it."""

    path: Path
    n_embeddings: int
    dim: int
    skipped: dict[str, str]  # utterance key -> why its audio could not be read
    reused: bool
    seconds: float
    processes: int


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in chunks (encoder files are tens of MB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_inputs(encoder_path: str | Path, manifest_path: str | Path, settings: ExtractionSettings) -> dict:
    """The inputs that determine the embeddings; their JSON hash is the cache fingerprint."""
    for what, path in (("encoder file", encoder_path), ("manifest", manifest_path)):
        if not Path(path).is_file():
            raise DataError(f"{what} not found: {path}")
    return {
        "format": FORMAT,
        "encoder_sha256": file_sha256(encoder_path),
        "manifest_sha256": file_sha256(manifest_path),
        "settings": asdict(settings),
    }


def fingerprint_of(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode("utf-8")).hexdigest()


def _cache_verdict(out_path: Path, inputs: dict) -> str | None:
    """None when ``out_path`` holds embeddings of exactly these inputs, else why it must be (re)computed."""
    if not out_path.is_file():
        return "no cached embeddings"
    try:
        meta = load_embedding_meta(out_path)
    except DataError as err:
        return str(err)
    if meta.get("fingerprint") == fingerprint_of(inputs):
        return None
    cached = meta.get("inputs", {})
    changed = [name for name in inputs if cached.get(name) != inputs[name]] or ["fingerprint"]
    return f"cached embeddings in {out_path} were made from a different {', '.join(changed)}"


def extract_to_file(
    encoder_path: str | Path,
    manifest_path: str | Path,
    out_path: str | Path,
    settings: ExtractionSettings = DEFAULT_SETTINGS,
    force: bool = False,
    progress: bool = False,
) -> ExtractionSummary:
    """Embeddings of every readable utterance of the manifest in ``out_path``, reused when up to date.

    Call it on every process of a launch: each embeds its share, the main process writes the file, and
    all return the same summary once the file is there. ``force`` recomputes even a matching cache.
    """
    started = time.perf_counter()
    out_path = Path(out_path)
    state = PartialState(cpu=not torch.cuda.is_available())
    inputs = fingerprint_inputs(encoder_path, manifest_path, settings)
    verdict = "--force given" if force else _cache_verdict(out_path, inputs)
    state.wait_for_everyone()  # every process decides before the main one may overwrite the file
    if state.is_main_process:
        log.info("extracting embeddings: %s" if verdict else "reusing %s: encoder, manifest and settings unchanged",
                 verdict or out_path)
    if verdict is None:
        return _summary(out_path, reused=True, seconds=time.perf_counter() - started, processes=state.num_processes)

    encoder, fbank, sample_rate = load_encoder(encoder_path, state.device)
    settings.check(sample_rate)
    utterances = read_manifest(manifest_path)
    lengths = [round(u.duration * sample_rate) for u in utterances]
    batches = plan_batches(lengths, settings.bucket_tolerance, settings.max_samples(sample_rate))
    share = share_batches(batches, lengths, state.num_processes)[state.process_index]
    rows, failed = embed_batches(
        encoder_embedder(encoder, fbank), utterances, [batches[b] for b in share], sample_rate, settings,
        state.device, progress and state.is_main_process,
    )
    parts = gather_object([(rows, failed)]) if state.num_processes > 1 else [(rows, failed)]
    if not any(part_rows for part_rows, _ in parts):  # every process sees all parts: all stop together
        first = [reason for _, part_failed in parts for reason in part_failed.values()][:3]
        raise DataError(f"none of the {len(utterances)} audio files in {manifest_path} could be read: {first}")
    if state.is_main_process:
        _write(out_path, utterances, parts, inputs, state.num_processes)
    state.wait_for_everyone()
    return _summary(out_path, reused=False, seconds=time.perf_counter() - started, processes=state.num_processes)


Part = tuple[dict[int, np.ndarray], dict[int, str]]  # one process's rows and skipped utterances


def _write(out_path: Path, utterances: Sequence[Utterance], parts: Sequence[Part], inputs: dict,
           processes: int) -> None:
    """Merge the processes' rows in manifest order and write them with the fingerprint and skip list."""
    rows: dict[int, np.ndarray] = {}
    failed: dict[int, str] = {}
    for part_rows, part_failed in parts:
        rows.update(part_rows)
        failed.update(part_failed)
    kept = sorted(rows)
    skipped = {utterances[i].key: failed[i] for i in sorted(failed)}
    meta = {"fingerprint": fingerprint_of(inputs), "inputs": inputs, "skipped": skipped, "processes": processes}
    save_embeddings(out_path, [utterances[i].key for i in kept], np.stack([rows[i] for i in kept]), meta)


def _summary(out_path: Path, reused: bool, seconds: float, processes: int) -> ExtractionSummary:
    keys, embeddings = load_embeddings(out_path)
    meta = load_embedding_meta(out_path)
    return ExtractionSummary(
        path=out_path, n_embeddings=len(keys), dim=int(embeddings.shape[1]), skipped=meta.get("skipped", {}),
        reused=reused, seconds=seconds, processes=processes,
    )
