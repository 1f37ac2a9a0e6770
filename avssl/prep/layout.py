"""Arranging the extracted VoxCeleb corpora into the layout ``avssl prepare`` reads, with symbolic links.

``avssl prepare ROOT OUT`` is the one place that probes recordings and joins audio to video by key; it
expects ``ROOT/dev``, ``ROOT/test`` and ``ROOT/trials``. The usual VoxCeleb recipe trains on VoxCeleb2
dev and tests on VoxCeleb1, so ``ROOT`` is built from links, not copies (hundreds of GB):

    ROOT/dev/wav    -> the converted VoxCeleb2 dev audio (or ROOT/dev/aac -> vox2/dev/aac to decode m4a
                       on the fly, when no converted folder is given)
    ROOT/dev/mp4    -> vox2/dev/mp4 (face tracks; the face-extraction step reads them by the same keys)
    ROOT/test/wav   -> vox1/wav (all 1,251 speakers, since Vox1-E and -H draw from VoxCeleb1 dev)
    ROOT/trials/*   -> the official trial lists found among the given files and folders

A converted folder that lacks recordings of the source (a conversion slice not run yet) is refused,
since preparing it would silently train on part of the corpus.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from avssl.errors import DataError
from avssl.prep.decode import AUDIO_SUFFIXES
from avssl.prep.scan import walk_files
from avssl.prep.trials import OFFICIAL_TRIAL_LISTS
from avssl.utils.atomic import atomic_write_json

EXAMPLES = 5


def build_layout(
    root: str | os.PathLike,
    vox1: str | os.PathLike | None = None,
    vox2: str | os.PathLike | None = None,
    vox2_audio: str | os.PathLike | None = None,
    trials: list[str | os.PathLike] | None = None,
    allow_partial: bool = False,
) -> dict[str, Any]:
    """Create (or update) the links under ``root``; return and write ``root/layout.json``."""
    root = Path(root).resolve()
    links: dict[str, Path] = {}
    report: dict[str, Any] = {"step": "layout", "root": str(root)}
    if vox2 is not None:
        dev = _folder(Path(vox2).resolve() / "dev", "the extracted VoxCeleb2 folder (it holds dev/aac)")
        if vox2_audio is not None:
            converted = _folder(Path(vox2_audio).resolve(), "the output folder of `avssl voxceleb convert`")
            report["conversion"] = check_conversion(_folder(dev / "aac", "vox2/dev/aac"), converted, allow_partial)
            links["dev/wav"] = converted
        else:
            links["dev/aac"] = _folder(dev / "aac", "vox2/dev/aac")
        if (dev / "mp4").is_dir():
            links["dev/mp4"] = dev / "mp4"
    if vox1 is not None:
        links["test/wav"] = _folder(Path(vox1).resolve() / "wav", "the extracted VoxCeleb1 folder (it holds wav/)")
    for path in find_trial_lists(trials or []):
        links[f"trials/{path.name}"] = path
    if not links:
        raise DataError("nothing to link: give --vox1 and/or --vox2 (and --trials)")
    stale = [name for name in ("dev/wav", "dev/aac") if name not in links and (root / name).is_symlink()]
    for name in stale:  # switching between converted and on-the-fly audio must not leave both
        (root / name).unlink()
    for name, target in sorted(links.items()):
        _link(root / name, target)
    report["links"] = {name: str(target) for name, target in sorted(links.items())}
    report["removed_links"] = stale
    atomic_write_json(root / "layout.json", report)
    return report


def find_trial_lists(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given; from folders, only the official list names (a download folder holds other files)."""
    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found += [given / name for name in OFFICIAL_TRIAL_LISTS if (given / name).is_file()]
        elif given.is_file():
            found.append(given)
        else:
            raise DataError(f"trial list {given} does not exist")
    if paths and not found:
        raise DataError(
            f"no trial list in {', '.join(map(str, paths))}: expected {', '.join(OFFICIAL_TRIAL_LISTS)}"
        )
    return [path.resolve() for path in found]


def check_conversion(source: Path, converted: Path, allow_partial: bool) -> dict[str, Any]:
    """Every source recording must be converted or reported as skipped by a convert report."""
    sources = {_key(path, source) for path in walk_files(source) if path.suffix.lower() in AUDIO_SUFFIXES}
    done = {_key(path, converted) for path in walk_files(converted) if path.suffix.lower() in AUDIO_SUFFIXES}
    skipped: set[str] = set()
    for report in sorted(converted.parent.glob(f"{converted.name}.convert_report*.json")):
        for entry in json.loads(report.read_text())["skipped_files"]:
            skipped.add(_key(Path(entry["path"]), source))
    missing = sorted(sources - done - skipped)
    if missing and not allow_partial:
        raise DataError(
            f"{len(missing)} of {len(sources)} recordings in {source} are neither converted in {converted} nor "
            f"reported as skipped (e.g. {', '.join(missing[:EXAMPLES])}): run `avssl voxceleb convert` for "
            "every --shard slice first (or pass --allow-partial)"
        )
    return {"source": len(sources), "converted": len(done & sources), "skipped": len(skipped), "missing": len(missing)}


def _key(path: Path, base: Path) -> str:
    return path.relative_to(base).with_suffix("").as_posix()


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path} does not exist; expected {what}")
    return path


def _link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target``; replace an old link, never a real file or folder."""
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return
        link.unlink()
    elif link.exists():
        raise DataError(f"{link} exists and is not a link; remove it or choose another layout folder")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=target.is_dir())
