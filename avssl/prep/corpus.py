"""Prepare a VoxCeleb-layout corpus: manifests, validated trial lists, augmentation lists and a report.

This is the single entry point behind ``avssl prepare ROOT OUT``. It reads the corpus once, probing every
file, and writes plain tables that later stages read instead of walking the corpus again:

    OUT/manifests/<split>.tsv     utterances of dev/ and test/, audio joined to face video by key
    OUT/trials/<name>.txt         each ROOT/trials list, minus trials that name unusable recordings
    OUT/augment/{noise,rir}.tsv   augmentation recordings, when ROOT/augment exists
    OUT/skipped.tsv               every file left out, with its reason
    OUT/prepare_report.json       counts, reasons with examples, dropped trials and timing

Problems with single files are reported and skipped; problems that make the output meaningless (no
corpus, a malformed trial line, a trial list none of whose trials can be scored) raise DataError.
Outputs are sorted and written atomically, so a re-run on the same input rewrites identical files.

Probing (the slow half) and writing (the fast half) meet in a :class:`CorpusProbe`, so that the probing
can also run in slices on many machines and be merged (``--shard`` / ``--merge``, in
:mod:`avssl.prep.corpus_parts`) into exactly the files one run writes.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avssl.data.manifest import Utterance, write_manifest
from avssl.errors import DataError
from avssl.prep.parallel import WorkShard
from avssl.prep.scan import (
    MEDIA_DIRS,
    SOUNDFILE_SUFFIXES,
    UNEXPECTED_FILE,
    UNEXPECTED_PATH,
    Media,
    MediaFile,
    Skipped,
    SplitScan,
    in_shard,
    probe_files,
    scan_split,
    walk_files,
)
from avssl.prep.trials import check_trials, official_list, read_trial_lines
from avssl.utils.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

SPLITS = ("dev", "test")
VIDEO_WITHOUT_AUDIO = "video_without_audio"
EXAMPLES = 5  # examples per reason in the report; OUT/skipped.tsv lists them all
AUGMENT_DEPTH = {"noise": 2, "rir": 1}  # folders below augment/<name>/ a file needs (noise: its category)
LAYOUT = (
    "expected ROOT/dev and/or ROOT/test, each with wav/<speaker>/<session>/<utt>.wav (or aac/.../*.m4a) "
    "and optionally mp4/<speaker>/<session>/<utt>.mp4, plus optional ROOT/trials/*.txt and ROOT/augment/"
)


@dataclass
class AugmentScan:
    """The probed recordings of one augmentation list (noise or rir) and the files left out of it."""

    found: list[Media] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class CorpusProbe:
    """Everything probing found, per split and augmentation list, with the seconds each took.

    It is the boundary between the slow half of preparation (opening every file) and the fast half
    (joining, validating trials, writing): a whole run passes it straight on, sliced runs save it in
    parts and ``--merge`` rebuilds it from them (:mod:`avssl.prep.corpus_parts`).
    """

    splits: dict[str, SplitScan] = field(default_factory=dict)
    augment: dict[str, AugmentScan] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)


def prepare_corpus(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    workers: int | None = None,
    progress: bool = False,
    expected_sample_rate: int = 16000,
) -> dict[str, Any]:
    """Prepare ``root`` into ``out_dir`` and return the report that is also written as JSON.

    ``workers`` is the number of probing processes (None: all cores; 1: in-process). Audio at another
    sample rate than ``expected_sample_rate`` is skipped and reported.
    """
    started = time.perf_counter()
    root, out = Path(root).resolve(), Path(out_dir).resolve()
    splits = find_splits(root, out)
    probed = probe_corpus(root, splits, augment_lists(root), expected_sample_rate, workers, progress)
    return write_prepared(root, out, probed, expected_sample_rate, started)


def probe_corpus(
    root: Path,
    splits: list[str],
    augment: list[str],
    expected_sample_rate: int,
    workers: int | None,
    progress: bool,
    shard: WorkShard | None = None,
) -> CorpusProbe:
    """Probe the media of ``splits`` and the ``augment`` lists of ``root`` (only ``shard``'s slice, if given)."""
    shard = shard or WorkShard()
    probed = CorpusProbe()
    for split in splits:
        tick = time.perf_counter()
        probed.splits[split] = scan_split(root / split, expected_sample_rate, workers, progress, shard)
        probed.timing[split] = round(time.perf_counter() - tick, 3)
    if augment:
        tick = time.perf_counter()
        for name in augment:
            files, skipped = in_shard(
                shard, *_find_augment_audio(root / "augment" / name, AUGMENT_DEPTH[name])
            )
            scan = AugmentScan(skipped=skipped)
            for result in probe_files(files, expected_sample_rate, workers, progress, desc=name):
                (scan.skipped if isinstance(result, Skipped) else scan.found).append(result)
            probed.augment[name] = scan
        probed.timing["augment"] = round(time.perf_counter() - tick, 3)
    return probed


def write_prepared(
    root: Path,
    out: Path,
    probed: CorpusProbe,
    expected_sample_rate: int,
    started: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Join, validate and write every output of ``probed``; return the report (``extra`` keys added).

    Everything here depends only on ``probed`` and the trial lists, never on how probing was split, so
    a merge of slices writes the same bytes as a whole run.
    """
    report: dict[str, Any] = {
        "root": str(root),
        "out_dir": str(out),
        "expected_sample_rate": expected_sample_rate,
        "splits": {},
        "trials": {},
        "augment": {},
    }
    timing = dict(probed.timing)
    skipped_rows: list[tuple[str, Skipped]] = []
    for split, scan in probed.splits.items():
        utterances, orphans = join_media(scan)
        write_manifest(out / "manifests" / f"{split}.tsv", utterances)
        skipped = sorted(scan.skipped + orphans, key=lambda skip: (skip.path, skip.reason))
        report["splits"][split] = _split_report(scan, utterances, skipped)
        skipped_rows += [(split, skip) for skip in skipped]

    tick = time.perf_counter()
    report["trials"] = _copy_trials(root / "trials", out / "trials", root / "test", probed.splits.get("test"))
    timing["trials"] = round(time.perf_counter() - tick, 3)

    for name, scan in probed.augment.items():
        report["augment"][name], skipped = _write_augment(out / "augment" / f"{name}.tsv", name, scan)
        skipped_rows += [("augment", skip) for skip in skipped]

    _write_skipped(out / "skipped.tsv", skipped_rows)
    report["problems"] = len(skipped_rows) + sum(entry["dropped"] for entry in report["trials"].values())
    timing["total"] = round(time.perf_counter() - started, 3)
    report["timing_s"] = timing
    report |= extra or {}
    atomic_write_json(out / "prepare_report.json", report)
    _log_summary(report)
    return report


def find_splits(root: Path, out: Path) -> list[str]:
    """The split folders present; refuse a layout that would produce nothing or overwrite the corpus."""
    if not root.is_dir():
        raise DataError(f"corpus root {root} does not exist or is not a folder; {LAYOUT}")
    if out == root:
        raise DataError(
            f"output folder {out} is the corpus root; choose another folder so ROOT/trials is kept"
        )
    splits = [split for split in SPLITS if (root / split).is_dir()]
    if not splits:
        raise DataError(f"corpus root {root} has no dev/ or test/ split folder; {LAYOUT}")
    for split in splits:
        if not any((root / split / folder).is_dir() for folder in MEDIA_DIRS):
            raise DataError(f"split folder {root / split} has no wav/, aac/ or mp4/ folder; {LAYOUT}")
    return splits


def augment_lists(root: Path) -> list[str]:
    """The augmentation lists ``root`` provides: ``noise`` and/or ``rir``, by their folders under augment/."""
    return [name for name in AUGMENT_DEPTH if (root / "augment" / name).is_dir()]


def join_media(scan: SplitScan) -> tuple[list[Utterance], list[Skipped]]:
    """One utterance per readable audio file, with its video when one shares the key.

    Video without audio cannot become an utterance (the audio branch is always trained), so it is
    returned as skipped rather than dropped without a word.
    """
    utterances = [
        Utterance(
            key=key,
            audio=audio.path,
            video=scan.video[key].path if key in scan.video else None,
            duration=audio.duration,
            sample_rate=audio.sample_rate,
        )
        for key, audio in sorted(scan.audio.items())
    ]
    orphans = [
        Skipped(video.path, VIDEO_WITHOUT_AUDIO, f"no readable audio with key {key}", key, "video")
        for key, video in sorted(scan.video.items())
        if key not in scan.audio
    ]
    return utterances, orphans


def _split_report(scan: SplitScan, utterances: list[Utterance], skipped: list[Skipped]) -> dict[str, Any]:
    joined = sum(utt.video is not None for utt in utterances)
    return {
        "audio": len(scan.audio),
        "video": len(scan.video),
        "utterances": len(utterances),
        "joined": joined,
        "audio_only": len(utterances) - joined,
        "hours": round(sum(utt.duration for utt in utterances) / 3600, 4),
        "skipped": _summarise(skipped),
    }


def _summarise(skipped: list[Skipped]) -> dict[str, Any]:
    """Counts per reason with the first few paths, so a report stays small on a million-file corpus."""
    summary: dict[str, Any] = {}
    for skip in skipped:
        entry = summary.setdefault(skip.reason, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < EXAMPLES:
            entry["examples"].append({"path": skip.path, "detail": skip.detail})
    return dict(sorted(summary.items()))


def _copy_trials(trial_dir: Path, out_dir: Path, test_dir: Path, test: SplitScan | None) -> dict[str, Any]:
    """Validate each trial list against the test split and write the trials that can be scored.

    A trial naming a recording that was skipped (corrupt, wrong rate) or never present is dropped and
    counted; a list left with no trial at all means the wrong corpus or list, which is an error.
    """
    if not trial_dir.is_dir():
        return {}
    present: set[str] = set()
    unusable: set[str] = set()
    if test is not None:
        present = set(test.audio)
        unusable = {skip.key for skip in test.skipped if skip.kind == "audio"} - present
    report: dict[str, Any] = {}
    for path in sorted(trial_dir.glob("*.txt")):
        trials = read_trial_lines(path)
        check = check_trials(trials, present, unusable)
        if not check.kept:
            missing, skipped = sorted(check.missing_keys), sorted(check.skipped_keys)
            raise DataError(
                f"{path}: none of its {len(trials)} trials can be scored: {len(missing)} keys have no "
                f"audio in {test_dir} (e.g. {', '.join(missing[:EXAMPLES]) or '-'}) and {len(skipped)} name "
                f"skipped recordings (e.g. {', '.join(skipped[:EXAMPLES]) or '-'}); check that the list "
                "belongs to this corpus and see OUT/skipped.tsv"
            )
        atomic_write_text(out_dir / path.name, "".join(trial.text() + "\n" for trial in check.kept))
        report[path.stem] = {
            "source": str(path),
            "lines": len(trials),
            "kept": len(check.kept),
            "dropped": len(trials) - len(check.kept),
            "dropped_missing": check.dropped_missing,
            "dropped_skipped": check.dropped_skipped,
            "missing_keys": len(check.missing_keys),
            "missing_examples": sorted(check.missing_keys)[:EXAMPLES],
            "skipped_keys": len(check.skipped_keys),
            "skipped_examples": sorted(check.skipped_keys)[:EXAMPLES],
        }
        official = official_list(path)
        if official is not None:
            report[path.stem] |= {"official_name": official[0], "official_trials": official[1]}
            if len(trials) != official[1]:
                log.warning(
                    "trials %s: %d lines, the official %s list has %d: a truncated download or another list",
                    path.name, len(trials), official[0], official[1],
                )  # fmt: skip
    return report


def _write_augment(path: Path, name: str, scan: AugmentScan) -> tuple[dict[str, Any], list[Skipped]]:
    """Write one list sorted by path (noise with its category, the first sub-folder); return its report."""
    skipped = sorted(scan.skipped, key=lambda skip: (skip.path, skip.reason))
    found = sorted(scan.found, key=lambda media: media.path)
    with_category = name == "noise"
    lines = ["path\tduration\tsample_rate" + ("\tcategory" if with_category else "")]
    for media in found:
        category = f"\t{_category(media)}" if with_category else ""
        lines.append(f"{media.path}\t{media.duration!r}\t{media.sample_rate}{category}")
    atomic_write_text(path, "\n".join(lines) + "\n")
    report: dict[str, Any] = {"files": len(found), "skipped": _summarise(skipped)}
    if with_category:
        report["categories"] = dict(sorted(Counter(map(_category, found)).items()))
    return report, skipped


def _category(media: Media) -> str:
    """The noise category is the first folder below noise/ (MUSAN: noise, music, speech)."""
    return media.key.split("/")[0]


def _find_augment_audio(folder: Path, min_depth: int) -> tuple[list[MediaFile], list[Skipped]]:
    """Audio files at least ``min_depth`` folders deep (noise needs its category folder)."""
    files, skipped = [], []
    for path in walk_files(folder):
        relative = path.relative_to(folder).with_suffix("")
        if path.suffix.lower() not in SOUNDFILE_SUFFIXES:
            skipped.append(Skipped(str(path), UNEXPECTED_FILE, f"{folder.name}/ holds only .wav/.flac"))
        elif len(relative.parts) < min_depth:
            skipped.append(
                Skipped(str(path), UNEXPECTED_PATH, f"expected {folder.name}/<category>/<file>.wav")
            )
        else:
            files.append(MediaFile(key=relative.as_posix(), path=str(path), kind="audio"))
    return files, skipped


def _write_skipped(path: Path, rows: list[tuple[str, Skipped]]) -> None:
    """All skipped files as TSV (where, path, reason, detail); details are flattened to one line."""
    lines = ["where\tpath\treason\tdetail"]
    for where, skip in rows:
        lines.append("\t".join([where, skip.path, skip.reason, re.sub(r"\s+", " ", skip.detail).strip()]))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _log_summary(report: dict[str, Any]) -> None:
    """A few lines for the terminal: what was prepared and, per reason, how much was left out."""
    for split, entry in report["splits"].items():
        log.info(
            "%s: %d utterances (%d with video), %.2f h",
            split,
            entry["utterances"],
            entry["joined"],
            entry["hours"],
        )
        if not entry["utterances"]:
            log.warning("%s: no usable utterance; its manifest is empty (see the reasons below)", split)
        _log_skipped(split, entry["skipped"])
    for name, entry in report["trials"].items():
        log.info("trials %s: kept %d of %d", name, entry["kept"], entry["lines"])
        if entry["dropped"]:
            log.warning(
                "trials %s: dropped %d trial(s), %d naming missing recordings (e.g. %s), %d naming skipped",
                name,
                entry["dropped"],
                entry["dropped_missing"],
                ", ".join(entry["missing_examples"][:2]) or "-",
                entry["dropped_skipped"],
            )
    for name, entry in report["augment"].items():
        log.info("augment %s: %d files", name, entry["files"])
        _log_skipped(f"augment {name}", entry["skipped"])
    out = Path(report["out_dir"])
    log.info(
        "prepared %s: %d problem(s); details in %s and %s",
        out,
        report["problems"],
        out / "prepare_report.json",
        out / "skipped.tsv",
    )


def _log_skipped(where: str, skipped: dict[str, Any]) -> None:
    for reason, entry in skipped.items():
        first = entry["examples"][0]
        log.warning(
            "%s: skipped %d file(s) as %s, e.g. %s (%s)",
            where,
            entry["count"],
            reason,
            first["path"],
            first["detail"],
        )
