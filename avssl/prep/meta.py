"""VoxCeleb speaker metadata (``vox1_meta.csv``, ``vox2_meta.csv``), read for diagnostics only.

Training never reads these files: the self-supervised stages must not see identities, and manifests
deliberately have no speaker column. They answer questions about the prepared data instead: do the
speakers in a manifest match the release (none missing, none extra), is the gender balance what the
release says, and does a training manifest hold a speaker the metadata marks as ``test`` (leakage).

The two files differ: vox1's is tab-separated with a nationality column, vox2's separates with " ,"
and pads every field with spaces (``id00012 ,n000012 ,m ,dev``). The parser accepts both separators,
a byte-order mark, CRLF line ends and trailing blanks, and reports each malformed line instead of
stopping, since nothing downstream depends on it.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avssl.data.manifest import read_manifest
from avssl.errors import DataError
from avssl.utils.atomic import atomic_write_json, atomic_write_text

SPEAKER_ID = re.compile(r"^id\d{5}$")
GENDERS = ("m", "f")
SETS = ("dev", "test")
EXAMPLES = 10


@dataclass(frozen=True)
class Speaker:
    """One metadata row; ``identity`` is the VGGFace1 name (vox1) or VGGFace2 id (vox2)."""

    speaker: str
    corpus: str
    identity: str
    gender: str
    nationality: str
    split: str


@dataclass
class MetaFile:
    """The speakers read from one file and the lines that could not be read, as ``file:line: why``."""

    speakers: list[Speaker]
    problems: list[str]


def read_vox1_meta(path: str | os.PathLike) -> MetaFile:
    """``VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set`` (tab-separated in the release)."""
    return _read(Path(path), "vox1", ("speaker", "identity", "gender", "nationality", "split"))


def read_vox2_meta(path: str | os.PathLike) -> MetaFile:
    """``VoxCeleb2 ID, VGGFace2 ID, Gender, Set`` (" ,"-separated, space-padded in the release)."""
    return _read(Path(path), "vox2", ("speaker", "identity", "gender", "split"))


def _read(path: Path, corpus: str, columns: tuple[str, ...]) -> MetaFile:
    if not path.is_file():
        raise DataError(f"speaker metadata {path} does not exist; it ships with the {corpus} download")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"speaker metadata {path} is not UTF-8 text ({error}); download it again") from None
    speakers: list[Speaker] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = split_fields(line)
        if not fields or fields[0].lower().startswith("voxceleb"):  # blank line or header
            continue
        row = dict(zip(columns, fields, strict=False))
        problem = _problem(fields, row, columns)
        if problem is None and row["speaker"] in seen:
            problem = f"speaker {row['speaker']} repeats line {seen[row['speaker']]}"
        if problem:
            problems.append(f"{path}:{lineno}: {problem}")
            continue
        seen[row["speaker"]] = lineno
        row["gender"], row["split"] = row["gender"].lower(), row["split"].lower()
        speakers.append(Speaker(corpus=corpus, nationality=row.get("nationality", ""), **{
            key: row[key] for key in ("speaker", "identity", "gender", "split")
        }))  # fmt: skip
    return MetaFile(speakers, problems)


def split_fields(line: str) -> list[str]:
    """Fields separated by tabs (then a comma may sit inside a field) or else by commas, each stripped;
    trailing empty fields dropped."""
    fields = [field.strip() for field in line.strip().split("\t" if "\t" in line else ",")]
    while fields and not fields[-1]:
        fields.pop()
    return fields


def _problem(fields: list[str], row: dict[str, str], columns: tuple[str, ...]) -> str | None:
    if len(fields) != len(columns):
        return f"{len(fields)} fields, expected {len(columns)} ({', '.join(columns)})"
    if not SPEAKER_ID.match(row["speaker"]):
        return f"speaker id {row['speaker']!r} is not idNNNNN"
    if row["gender"].lower() not in GENDERS:
        return f"gender {row['gender']!r} is not m or f"
    if row["split"].lower() not in SETS:
        return f"set {row['split']!r} is not dev or test"
    return None


def speaker_report(
    meta: list[MetaFile], manifests: list[str | os.PathLike], out_dir: str | os.PathLike
) -> dict[str, Any]:
    """Compare the metadata with the speakers of each manifest; write ``speakers.tsv`` and the report."""
    out = Path(out_dir)
    speakers = {speaker.speaker: speaker for file in meta for speaker in file.speakers}
    report: dict[str, Any] = {
        "step": "meta",
        "note": "diagnostics only: training never reads speaker metadata",
        "speakers": len(speakers),
        "by_corpus_and_set": dict(sorted(Counter(f"{s.corpus}/{s.split}" for s in speakers.values()).items())),
        "problems": [problem for file in meta for problem in file.problems],
        "manifests": {},
    }
    for manifest in manifests:
        report["manifests"][Path(manifest).stem] = _manifest_report(Path(manifest), speakers)
    lines = ["speaker\tcorpus\tidentity\tgender\tnationality\tset"]
    lines += [
        f"{s.speaker}\t{s.corpus}\t{s.identity}\t{s.gender}\t{s.nationality}\t{s.split}"
        for s in sorted(speakers.values(), key=lambda s: s.speaker)
    ]
    atomic_write_text(out / "speakers.tsv", "\n".join(lines) + "\n")
    atomic_write_json(out / "meta_report.json", report)
    return report


def _manifest_report(path: Path, speakers: dict[str, Speaker]) -> dict[str, Any]:
    """Speakers of one manifest against the metadata: unknown ones, the corpus/set they belong to,
    utterances per gender, and the training-leakage check (speakers the metadata calls ``test``)."""
    utterances: dict[str, int] = defaultdict(int)
    for utterance in read_manifest(path):
        utterances[utterance.key.split("/")[0]] += 1
    known = {speaker: speakers[speaker] for speaker in utterances if speaker in speakers}
    unknown = sorted(set(utterances) - set(known))
    sets = Counter(f"{s.corpus}/{s.split}" for s in known.values())
    corpora = {s.corpus for s in known.values()}
    listed_absent = sorted(
        s.speaker for s in speakers.values() if s.corpus in corpora and f"{s.corpus}/{s.split}" in sets
        and s.speaker not in utterances
    )  # fmt: skip
    gender = Counter()
    for speaker, count in utterances.items():
        gender[speakers[speaker].gender if speaker in speakers else "unknown"] += count
    return {
        "speakers": len(utterances),
        "utterances": sum(utterances.values()),
        "speakers_by_corpus_and_set": dict(sorted(sets.items())),
        "marked_test": sum(s.split == "test" for s in known.values()),  # > 0 in a training manifest: leakage
        "without_metadata": len(unknown),
        "without_metadata_examples": unknown[:EXAMPLES],
        "listed_but_absent": len(listed_absent),
        "listed_but_absent_examples": listed_absent[:EXAMPLES],
        "utterances_by_gender": dict(sorted(gender.items())),
    }
