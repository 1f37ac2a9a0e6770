"""From downloaded VoxCeleb (and MUSAN, RIRS_NOISES) archives to folders: join, verify, extract safely.

Download hosts change and need credentials, so preparation starts from the files a user already has.
This step finds in one folder the split zips (``vox1_dev_wav_partaa`` ...), whole zips and tarballs,
checks them against an md5 list the user supplies (``md5sum`` format, either column order; no checksum
is built in because none is published in this project's reference), and extracts them:

    vox1_*  -> OUT/vox1/  (wav/...)
    vox2_*  -> OUT/vox2/  (dev/aac/..., dev/mp4/...; the test zips hold aac/ and mp4/)
    others  -> OUT/       (musan.tar.gz holds musan/, rirs_noises.zip holds RIRS_NOISES/)

Split parts are read in place as one file (:class:`~avssl.prep.joined.JoinedFile`), so no joined copy
is written. A member whose path would land outside its folder (``../x``, ``/etc/x``), or that is a
link or device, makes the whole archive refused before a byte of it is written (tarballs: before that
member, as they can only be read in order). Resuming: an extracted member is a complete file (written
atomically), a re-run skips members present with their recorded size, and an archive whose extraction
finished is recorded and skipped without opening it. Corpora already extracted need no part of this
step: pass their folders to the next steps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from avssl.errors import DataError
from avssl.prep.joined import JoinedFile
from avssl.prep.parallel import Progress, WorkShard, default_workers, parallel_map
from avssl.prep.resume import remove_partials, scan_outputs
from avssl.utils.atomic import atomic_write, atomic_write_json

log = logging.getLogger(__name__)

PART_NAME = re.compile(r"^(?P<base>.+)_part(?P<suffix>[a-z]{2})$")
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
# Part counts the project's reference states for the official release (to name what is missing).
OFFICIAL_PART_COUNTS = {"vox2_dev_mp4": 9}
STATE_DIR = ".archives"
MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
CHUNK = 8 << 20


@dataclass(frozen=True)
class Archive:
    """One archive: its joined name (``vox1_dev_wav.zip``), its pieces in order, and where it goes."""

    name: str
    parts: tuple[Path, ...]
    dest: Path

    @property
    def is_zip(self) -> bool:
        return self.name.endswith(".zip")


def prepare_archives(
    downloads: str | os.PathLike,
    out_dir: str | os.PathLike,
    md5_file: str | os.PathLike | None = None,
    workers: int | None = None,
    shard: WorkShard | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Verify and extract every archive in ``downloads`` into ``out_dir``; return and write the report.

    ``shard`` extracts only the members whose path hashes to this slice (each slice still verifies the
    md5 of every part, once: results are cached in ``out_dir/.archives``).
    """
    started = time.perf_counter()
    shard = shard or WorkShard()
    downloads, out = Path(downloads).resolve(), Path(out_dir).resolve()
    archives, others = find_archives(downloads, out)
    sums = read_md5_file(md5_file) if md5_file else {}
    state = out / STATE_DIR
    workers = default_workers(workers)
    report: dict[str, Any] = {
        "step": "archives",
        "downloads": str(downloads),
        "out_dir": str(out),
        "md5_file": str(md5_file) if md5_file else None,
        "shard": str(shard),
        "archives": {},
        "other_files": [path.name for path in others],
    }
    failed: list[str] = []
    for archive in archives:
        entry: dict[str, Any] = {"parts": [part.name for part in archive.parts], "dest": str(archive.dest)}
        entry["md5"] = verify_archive(archive, sums, state, workers, progress)
        marker = state / f"{archive.name}{shard.suffix}.done.json"
        if _done(marker, archive):
            entry["status"] = "already_done"
            log.info("%s: extracted by an earlier run (%s); skipped", archive.name, marker)
        else:
            entry |= extract_archive(archive, shard, workers, progress)
            entry["status"] = "extracted" if not entry["failed"] else "failed"
            if not entry["failed"]:
                atomic_write_json(marker, _fingerprint(archive))
            failed += [f"{archive.name}:{item['member']}" for item in entry["failed"]]
        report["archives"][archive.name] = entry
    report["unverified"] = sorted(
        name for entry in report["archives"].values() for name, status in entry["md5"].items() if status == "unverified"
    )
    report["seconds"] = round(time.perf_counter() - started, 3)
    report_path = atomic_write_json(out / f"archives_report{shard.suffix}.json", report)
    if report["unverified"]:
        log.warning("no md5 given for %s: their integrity is unchecked", ", ".join(report["unverified"]))
    if failed:
        raise DataError(
            f"{len(failed)} member(s) could not be extracted (e.g. {', '.join(failed[:3])}): their archive is "
            f"damaged; download it again and re-run (see {report_path})"
        )
    return report


# --- finding and verifying ----------------------------------------------------------------------------


def find_archives(downloads: Path, out: Path) -> tuple[list[Archive], list[Path]]:
    """Group split parts, pick up whole archives; other files (trial lists, meta) are returned apart."""
    if not downloads.is_dir():
        raise DataError(f"download folder {downloads} does not exist")
    files = sorted(path for path in downloads.iterdir() if path.is_file())
    groups: dict[str, list[Path]] = {}
    whole: dict[str, Path] = {}
    others: list[Path] = []
    for path in files:
        match = PART_NAME.match(path.name)
        if match:
            groups.setdefault(match.group("base"), []).append(path)
        elif path.name.endswith(ARCHIVE_SUFFIXES):
            whole[path.name] = path
        else:
            others.append(path)
    archives = []
    for base, parts in sorted(groups.items()):
        name = f"{base}.zip"
        if name in whole:  # the user joined the parts already: read the joined file
            log.info("%s is present; its parts %s are not read", name, ", ".join(p.name for p in parts))
            continue
        _check_sequence(base, parts)
        archives.append(Archive(name, tuple(parts), _destination(out, base)))
    for name, path in sorted(whole.items()):
        archives.append(Archive(name, (path,), _destination(out, name)))
    if not archives:
        raise DataError(
            f"no archive (*_partaa, *.zip, *.tar.gz) in {downloads}; if your corpora are extracted already, "
            "skip this step and pass their folders to `avssl voxceleb layout` and `avssl voxceleb augment`"
        )
    return sorted(archives, key=lambda archive: archive.name), others


def _check_sequence(base: str, parts: list[Path]) -> None:
    """Parts are aa, ab, ac, ...: a gap means a piece was not downloaded."""
    suffixes = [PART_NAME.match(part.name).group("suffix") for part in parts]  # type: ignore[union-attr]
    expected = [_suffix(index) for index in range(len(parts))]
    if suffixes != expected:
        missing = sorted(set(expected) - set(suffixes)) or [_suffix(len(parts))]
        raise DataError(
            f"{base}: found parts {', '.join(suffixes)}; {base}_part{missing[0]} is missing: download it"
        )
    official = OFFICIAL_PART_COUNTS.get(base)
    if official is not None and len(parts) < official:
        raise DataError(
            f"{base}: found {len(parts)} parts, the official release has {official} "
            f"({base}_part{_suffix(len(parts))} onwards are missing): download them"
        )


def _suffix(index: int) -> str:
    return chr(ord("a") + index // 26) + chr(ord("a") + index % 26)


def _destination(out: Path, name: str) -> Path:
    """VoxCeleb zips have no top folder (they hold wav/, dev/, aac/), so each corpus gets one."""
    for corpus in ("vox1", "vox2"):
        if name.startswith(f"{corpus}_"):
            return out / corpus
    return out


def read_md5_file(path: str | os.PathLike) -> dict[str, str]:
    """``md5sum`` output (``<md5>  <name>``, ``*name`` for binary mode) or ``<name> <md5>`` lines."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"md5 list {path} does not exist")
    sums: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        fields = line.split()
        if not fields or line.lstrip().startswith("#"):
            continue
        hashes = [field for field in fields if MD5.match(field)]
        names = [field.lstrip("*") for field in fields if not MD5.match(field)]
        if len(hashes) != 1 or len(names) != 1:
            raise DataError(f"{path}:{lineno}: expected '<md5> <file name>', found {line.strip()!r}")
        sums[Path(names[0]).name] = hashes[0].lower()
    return sums


def verify_archive(archive: Archive, sums: dict[str, str], state: Path, workers: int, progress: bool) -> dict[str, str]:
    """Check every part (and the joined archive) that has an md5; results are cached by size and mtime."""
    targets: list[tuple[str, tuple[Path, ...]]] = [(p.name, (p,)) for p in archive.parts if p.name in sums]
    if len(archive.parts) > 1 and archive.name in sums:
        targets.append((archive.name, archive.parts))
    status = {part.name: "unverified" for part in archive.parts}
    jobs = [(name, parts, state / "md5" / f"{name}.json") for name, parts in targets]
    digests = parallel_map(_cached_md5, jobs, workers, f"md5 {archive.name}", progress)
    for (name, parts, _), digest in zip(jobs, digests, strict=True):
        if digest != sums[name]:
            size = sum(part.stat().st_size for part in parts)
            raise DataError(
                f"{name}: md5 {digest}, but the md5 list says {sums[name]} ({size:,} bytes here): the file is "
                "damaged or incomplete; download it again"
            )
        status[name] = "ok"
    if status.get(archive.name) == "ok" and len(archive.parts) > 1:  # the joined md5 covers every part
        status |= {part.name: f"ok (via {archive.name})" for part in archive.parts if status[part.name] != "ok"}
    return status


def _cached_md5(job: tuple[str, tuple[Path, ...], Path]) -> str:
    """md5 of the concatenated ``parts``; reuse a cached value while sizes and mtimes are unchanged."""
    _, parts, cache = job
    fingerprint = [[part.name, part.stat().st_size, part.stat().st_mtime_ns] for part in parts]
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("parts") == fingerprint:
            return cached["md5"]
    digest = hashlib.md5()
    for part in parts:
        with open(part, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    atomic_write_json(cache, {"parts": fingerprint, "md5": digest.hexdigest()})
    return digest.hexdigest()


# --- extracting ---------------------------------------------------------------------------------------


def extract_archive(archive: Archive, shard: WorkShard, workers: int, progress: bool) -> dict[str, Any]:
    """Extract this slice's members that are not present yet; return counts and failures."""
    existing, partial = scan_outputs(archive.dest)
    dest = archive.dest.resolve()
    removed = remove_partials(partial, lambda target: shard.owns(target.relative_to(dest).as_posix()))
    if archive.is_zip:
        counts = _extract_zip(archive, dest, existing, shard, workers, progress)
    else:
        counts = _extract_tar(archive, dest, existing, shard, progress)
    counts["partial_removed"] = removed
    log.info(
        "%s: %d member(s), %d this slice's: %d extracted, %d already present, %d failed",
        archive.name, counts["members"], counts["in_shard"], counts["extracted"], counts["already_present"],
        len(counts["failed"]),
    )  # fmt: skip
    return counts


def _extract_zip(
    archive: Archive, dest: Path, existing: set[str], shard: WorkShard, workers: int, progress: bool
) -> dict[str, Any]:
    """Check every member's path first, then extract with threads sharing one parsed central directory
    (zlib and file I/O release the GIL, and a million-entry directory parsed once per process would
    cost its memory once per process)."""
    with _open_zip(archive) as zipped:
        infos = zipped.infolist()
        for info in infos:
            _check_member(archive, info.filename, _zip_member_type(info))
        files = [info for info in infos if not info.is_dir()]
        mine = [info for info in files if shard.owns(info.filename)]
        todo = [info for info in mine if not _present(dest / info.filename, info.file_size, existing)]
        failed = []

        def extract(info: zipfile.ZipInfo) -> dict[str, str] | None:
            try:
                with zipped.open(info) as source:
                    _write_member(dest / info.filename, source)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                return {"member": info.filename, "error": f"{type(error).__name__}: {error}"}
            return None

        with Progress(len(todo), f"extract {archive.name}", progress) as bar:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for problem in pool.map(extract, todo):
                    bar.update()
                    if problem:
                        failed.append(problem)
    return _counts(len(files), len(mine), len(todo), failed)


@contextmanager
def _open_zip(archive: Archive) -> Iterator[zipfile.ZipFile]:
    """The archive as a ZipFile over its parts, or an error that says which piece is likely missing."""
    joined = JoinedFile(list(archive.parts))
    try:
        zipped = zipfile.ZipFile(joined)
    except zipfile.BadZipFile as error:
        joined.close()
        names = ", ".join(part.name for part in archive.parts)
        raise DataError(
            f"{archive.name} (from {names}) is not a readable zip ({error}): a part is missing, truncated or "
            "damaged; compare the parts with the md5 list (--md5) and download the bad one again"
        ) from None
    with joined, zipped:
        yield zipped


def _zip_member_type(info: zipfile.ZipInfo) -> str:
    """'file', 'dir' or 'other' from the Unix mode bits zip stores in the high bytes (links, devices)."""
    mode = (info.external_attr >> 16) & 0o170000
    if info.is_dir():
        return "dir"
    return "file" if mode in (0, 0o100000) else "other"


def _extract_tar(
    archive: Archive, dest: Path, existing: set[str], shard: WorkShard, progress: bool
) -> dict[str, Any]:
    """Tarballs are read in order (gzip cannot seek), each member checked before it is written."""
    members = mine = 0
    done = []
    failed: list[dict[str, str]] = []
    with JoinedFile(list(archive.parts)) as joined, Progress(None, f"extract {archive.name}", progress) as bar:
        try:
            with tarfile.open(fileobj=joined, mode="r:*") as tarball:
                for member in tarball:
                    kind = "file" if member.isfile() else "dir" if member.isdir() else "other"
                    _check_member(archive, member.name, kind)
                    if kind == "dir":
                        continue
                    members += 1
                    if not shard.owns(member.name):
                        continue
                    mine += 1
                    target = dest / member.name
                    if _present(target, member.size, existing):
                        continue
                    source = tarball.extractfile(member)
                    assert source is not None  # a regular file always has content
                    _write_member(target, source)
                    done.append(member.name)
                    bar.update()
        except (tarfile.TarError, EOFError, OSError) as error:
            failed.append({"member": f"after {done[-1] if done else 'the start'}", "error": str(error)})
    return _counts(members, mine, len(done) + len(failed), failed)


def _check_member(archive: Archive, name: str, kind: str) -> None:
    """Refuse absolute paths, ``..``, drive letters and anything but files and folders."""
    path = PurePosixPath(name.replace("\\", "/"))
    if kind == "other":
        problem = "is a link or device, not a regular file"
    elif path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        problem = "would be written outside the target folder"
    else:
        return
    raise DataError(
        f"{archive.name}: member {name!r} {problem}; refusing to extract this archive (it is not an official "
        "release file, or it was tampered with)"
    )


def _present(target: Path, size: int, existing: set[str]) -> bool:
    return str(target) in existing and target.stat().st_size == size


def _write_member(target: Path, source: IO[bytes]) -> None:
    atomic_write(target, lambda handle: shutil.copyfileobj(source, handle, CHUNK))


def _counts(members: int, mine: int, attempted: int, failed: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "members": members,
        "in_shard": mine,
        "extracted": attempted - len(failed),
        "already_present": mine - attempted,
        "failed": failed,
    }


def _fingerprint(archive: Archive) -> dict[str, Any]:
    return {"parts": [[part.name, part.stat().st_size, part.stat().st_mtime_ns] for part in archive.parts]}


def _done(marker: Path, archive: Archive) -> bool:
    """Finished before, from the same files (a re-downloaded part has another size or mtime)."""
    if not marker.is_file():
        return False
    return json.loads(marker.read_text()) == json.loads(json.dumps(_fingerprint(archive)))
