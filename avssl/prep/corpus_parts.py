"""``avssl prepare ROOT OUT --shard i/n`` and ``--merge``: probe a corpus in slices, then write it once.

Opening every recording is what costs in ``avssl prepare`` (about 1.3 ms per VoxCeleb2 face track, 2.2 M
files); joining, validating trial lists and writing take seconds. So a slice probes only the files whose
utterance key it owns (the hash rule of :class:`avssl.prep.parallel.WorkShard` that every preparation
step uses) and saves what it found in ``OUT/parts/prepare.shard-i-of-n.jsonl``; ``--merge`` reads the
``n`` parts back into one :class:`avssl.prep.corpus.CorpusProbe` and hands it to the same writer a whole
run uses. Nothing is probed twice, and the manifests, trial lists and augmentation lists are byte for
byte those of one unsliced run (the report differs only in timing and ``merged_parts``).

A part is JSON lines: a header (the slice, corpus root, sample rate, splits and augmentation lists it
probed, its timing), then one record per probed or skipped file. JSON keeps float durations exact and
decoder messages with tabs or newlines intact, which a TSV would not.

Resumable and idempotent: a part is written atomically, so it exists complete or not at all; a slice
whose part exists for the same corpus and settings is done and is not probed again (delete the part to
probe again), and a re-run clears the temporary file a killed run of that slice left. A merge only reads
the parts, so it can be repeated (after fixing a trial list, say) at no cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from avssl.errors import DataError
from avssl.prep.corpus import (
    AugmentScan,
    CorpusProbe,
    augment_lists,
    find_splits,
    prepare_corpus,
    probe_corpus,
    write_prepared,
)
from avssl.prep.parallel import WorkShard, parse_shard
from avssl.prep.resume import remove_partials, scan_outputs
from avssl.prep.scan import Media, Skipped, SplitScan
from avssl.utils.atomic import atomic_write

log = logging.getLogger(__name__)

PARTS_DIR = "parts"
PART_FORMAT = "avssl-prepare-part/1"
PART_NAME = re.compile(r"^prepare\.shard-(?P<index>\d+)-of-(?P<count>\d+)\.jsonl$")
AUGMENT = "augment/"  # record prefix of an augmentation list ("augment/noise"); splits are "dev", "test"
EXAMPLES = 5


def part_path(out: Path, shard: WorkShard) -> Path:
    """Where slice ``shard`` saves what it probed (named even for 0/1, so a merge always finds it)."""
    return out / PARTS_DIR / f"prepare.shard-{shard.index}-of-{shard.count}.jsonl"


def probe_slice(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    shard: WorkShard,
    workers: int | None = None,
    progress: bool = False,
    expected_sample_rate: int = 16000,
) -> dict[str, Any]:
    """Probe slice ``shard`` of ``root`` into its part under ``out_dir``; return the part's header.

    The header's ``status`` is ``probed``, or ``already_done`` when a part for the same corpus and
    settings was there (it is then left as it is).
    """
    root, out = Path(root).resolve(), Path(out_dir).resolve()
    path = part_path(out, shard)
    header: dict[str, Any] = {
        "format": PART_FORMAT,
        "shard": str(shard),
        "root": str(root),
        "expected_sample_rate": expected_sample_rate,
        "splits": find_splits(root, out),
        "augment": augment_lists(root),
    }
    if path.is_file():
        existing = _read_header(path)
        if _settings(existing) == _settings(header):
            return existing | {"status": "already_done"}
        log.warning(
            "%s was probed with other settings or another corpus; probing slice %s again", path, shard
        )
    _, partial = scan_outputs(path.parent)
    if remove_partials(partial, lambda target: target == path):
        log.info("removed the temporary file of an interrupted run of slice %s", shard)
    probed = probe_corpus(
        root, header["splits"], header["augment"], expected_sample_rate, workers, progress, shard
    )
    records = _records(probed)
    header |= {
        "timing_s": probed.timing,
        "records": len(records),
        "skipped": sum("skipped" in record for record in records),
    }
    atomic_write(path, lambda handle: _write_lines(handle, [header, *records]))
    return header | {"status": "probed"}


def merge_parts(
    root: str | os.PathLike, out_dir: str | os.PathLike, expected_sample_rate: int = 16000
) -> dict[str, Any]:
    """Combine the parts of every slice in ``out_dir`` and write the outputs of a whole run.

    Refuses, naming the file and what to do, parts that are missing, that come from two slicings, or that
    were probed from another corpus, sample rate, or set of splits and augmentation folders than ``root``
    has now.
    """
    started = time.perf_counter()
    root, out = Path(root).resolve(), Path(out_dir).resolve()
    expected = {
        "root": str(root),
        "expected_sample_rate": expected_sample_rate,
        "splits": find_splits(root, out),
        "augment": augment_lists(root),
    }
    paths = find_parts(out, root)
    probed = CorpusProbe()
    for path in paths:
        header = _read_part(path, probed, expected)
        for name, seconds in header["timing_s"].items():  # seconds summed over slices, as one run took them
            probed.timing[name] = round(probed.timing.get(name, 0.0) + seconds, 3)
    for scan in probed.splits.values():
        scan.skipped.sort(key=lambda skip: (skip.path, skip.reason))
    return write_prepared(
        root, out, probed, expected_sample_rate, started, {"merged_parts": [str(path) for path in paths]}
    )


def find_parts(out: Path, root: Path) -> list[Path]:
    """The parts of one complete slicing, in slice order; missing or mixed slicings raise DataError."""
    folder = out / PARTS_DIR
    found: dict[int, dict[int, Path]] = {}
    for path in sorted(folder.glob("prepare.shard-*.jsonl")) if folder.is_dir() else []:
        match = PART_NAME.match(path.name)
        if match:
            found.setdefault(int(match["count"]), {})[int(match["index"])] = path
    if not found:
        raise DataError(
            f"no part in {folder}: run `avssl prepare {root} {out} --shard i/n` for every slice i of n "
            "first (or run without --shard and --merge to prepare in one job)"
        )
    if len(found) > 1:
        counts = ", ".join(f"{count} ({len(parts)} found)" for count, parts in sorted(found.items()))
        raise DataError(
            f"{folder} holds parts of several slicings, into {counts} slices: delete the parts of the "
            "slicing you abandoned, then merge again"
        )
    count, parts = next(iter(found.items()))
    missing = [index for index in range(count) if index not in parts]
    if missing:
        names = [part_path(out, WorkShard(index, count)).name for index in missing]
        raise DataError(
            f"{len(missing)} of {count} parts missing in {folder}: {', '.join(names[:EXAMPLES])}"
            f"{' and more' if len(names) > EXAMPLES else ''}; run `avssl prepare {root} {out} --shard "
            f"{missing[0]}/{count}` (and so for every missing slice), then merge again"
        )
    return [parts[index] for index in range(count)]


def _records(probed: CorpusProbe) -> list[dict[str, Any]]:
    """One record per file probed or skipped, tagged with its split or augmentation list."""
    records: list[dict[str, Any]] = []
    for split, scan in probed.splits.items():
        records += [
            {"where": split, "media": asdict(media)} for media in (*scan.audio.values(), *scan.video.values())
        ]
        records += [{"where": split, "skipped": asdict(skip)} for skip in scan.skipped]
    for name, found in probed.augment.items():
        records += [{"where": AUGMENT + name, "media": asdict(media)} for media in found.found]
        records += [{"where": AUGMENT + name, "skipped": asdict(skip)} for skip in found.skipped]
    return records


def _read_part(path: Path, probed: CorpusProbe, expected: dict[str, Any]) -> dict[str, Any]:
    """Add the records of one part to ``probed``; return its header. Its settings must be ``expected``."""
    header: dict[str, Any] = {}
    records = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                item = _decode(path, lineno, line)
                if lineno == 1:
                    header = _check_header(path, item)
                    if _settings(header) != expected:
                        raise DataError(
                            f"{path} was probed with {_settings(header)}, but the merge finds {expected}: "
                            f"{_redo(path)}"
                        )
                    for split in header["splits"]:
                        probed.splits.setdefault(split, SplitScan())
                    for name in header["augment"]:
                        probed.augment.setdefault(name, AugmentScan())
                else:
                    _add_record(path, lineno, item, probed)
                    records += 1
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"part {path} cannot be read ({error}); {_redo(path)}") from None
    if not header:
        raise DataError(f"part {path} is empty; {_redo(path)}")
    if records != header["records"]:
        raise DataError(
            f"{path} holds {records} record(s), its header announces {header['records']}: {_redo(path)}"
        )
    return header


def _read_header(path: Path) -> dict[str, Any]:
    """The first line of a part, checked (a slice re-run reads only this)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return _check_header(path, _decode(path, 1, handle.readline()))
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"part {path} cannot be read ({error}); {_redo(path)}") from None


def _decode(path: Path, lineno: int, line: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{lineno}: not a JSON record ({error}); {_redo(path)}") from None
    if not isinstance(item, dict):
        raise DataError(f"{path}:{lineno}: not a JSON object; {_redo(path)}")
    return item


def _check_header(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    keys = {"shard", "root", "expected_sample_rate", "splits", "augment", "timing_s", "records"}
    if header.get("format") != PART_FORMAT or not keys <= header.keys():
        raise DataError(
            f"{path} is not a part written by this version of `avssl prepare --shard`; {_redo(path)}"
        )
    if header["shard"] != _named_shard(path):
        raise DataError(f"{path} holds slice {header['shard']}, not the one its name says; {_redo(path)}")
    return header


def _add_record(path: Path, lineno: int, item: dict[str, Any], probed: CorpusProbe) -> None:
    """Put one record where a whole run's probing would have put it."""
    where = item.get("where", "")
    try:
        if where.startswith(AUGMENT):
            scan = probed.augment[where.removeprefix(AUGMENT)]
            if "media" in item:
                scan.found.append(Media(**item["media"]))
            else:
                scan.skipped.append(Skipped(**item["skipped"]))
        elif "media" in item:
            media, split = Media(**item["media"]), probed.splits[where]
            (split.audio if media.kind == "audio" else split.video)[media.key] = media
        else:
            probed.splits[where].skipped.append(Skipped(**item["skipped"]))
    except (KeyError, TypeError) as error:
        raise DataError(
            f"{path}:{lineno}: malformed record ({type(error).__name__}: {error}); {_redo(path)}"
        ) from None


def _redo(path: Path) -> str:
    """What to do about a damaged part: delete it and probe its slice again."""
    return f"delete it and re-run its slice (`avssl prepare ROOT OUT --shard {_named_shard(path)}`)"


def _named_shard(path: Path) -> str:
    """The slice ``i/n`` a part's file name stands for."""
    match = PART_NAME.match(path.name)
    assert match is not None, f"{path} is not named as a part"  # parts are only ever found by this pattern
    return f"{int(match['index'])}/{int(match['count'])}"


def _settings(header: dict[str, Any]) -> dict[str, Any]:
    """What a part's content depends on; a part probed with other settings cannot be reused or merged."""
    return {key: header[key] for key in ("root", "expected_sample_rate", "splits", "augment")}


def _write_lines(handle: IO[bytes], items: list[dict[str, Any]]) -> None:
    for item in items:
        handle.write(json.dumps(item, separators=(",", ":")).encode("utf-8") + b"\n")


def main(args: argparse.Namespace) -> None:
    """The command behind ``avssl prepare`` (its options are declared in :mod:`avssl.cli`)."""
    if args.merge:
        report = merge_parts(args.root, args.out_dir)
        print(
            f"merged {len(report['merged_parts'])} part(s): prepared {args.root} -> {args.out_dir}; problems "
            f"reported: {report['problems']} (details in {Path(args.out_dir) / 'prepare_report.json'})"
        )
    elif args.shard is not None:
        shard = parse_shard(args.shard)
        header = probe_slice(args.root, args.out_dir, shard, workers=args.workers, progress=True)
        done = (
            "already done, kept (delete it to probe again)"
            if header["status"] == "already_done"
            else "written"
        )
        print(
            f"slice {shard}: {header['records']} file(s), {header['skipped']} skipped; part {done}: "
            f"{part_path(Path(args.out_dir), shard)}; when every slice is done: "
            f"avssl prepare {args.root} {args.out_dir} --merge"
        )
    else:
        report = prepare_corpus(args.root, args.out_dir, workers=args.workers, progress=True)
        print(
            f"prepared {args.root} -> {args.out_dir}; problems reported: {report['problems']} "
            f"(details in {Path(args.out_dir) / 'prepare_report.json'})"
        )
