"""The recipe data_prep/voxceleb/run.sh, run with bash end to end on the miniature download of `avssl voxceleb fixture`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avssl.cli import main
from avssl.data.manifest import read_manifest
from avssl.prep.fixture import TRIAL_FILES

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "data_prep/voxceleb/run.sh"


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vox")
    assert main(["voxceleb", "fixture", str(out), "--bad"]) == 0
    return out / "downloads"


def run_recipe(data: Path, downloads: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """The recipe with this environment's `avssl` first on PATH, one process per stage's pool."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    command = ["bash", str(RECIPE), "--data", str(data), "--downloads", str(downloads), "--nj", "1", *options]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def stages(data: Path, downloads: Path, *options: str) -> str:
    result = run_recipe(data, downloads, *options)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_recipe_from_archives_to_shards_with_a_sliced_probe(downloads: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = stages(data, downloads, "--md5", str(downloads / "md5sums.txt"), "--stop_stage", "3")
    assert "6 archive(s) (0 done earlier)" in out and "converted 13 (1 resampled)" in out
    for index in (0, 1):  # stage 4 as a two-task array job
        assert "part written" in stages(data, downloads, "--stage", "4", "--stop_stage", "4", "--shard", f"{index}/2")
    out = stages(data, downloads, "--stage", "5", "--utts_per_shard", "4")
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("stage ")] == [
        f"stage {n}" for n in range(5, 9)
    ]

    prepared = data / "prepared"
    dev, test = (read_manifest(prepared / "manifests" / f"{split}.tsv") for split in ("dev", "test"))
    assert len(dev) == 13 and sum(utt.video is not None for utt in dev) == 11 and len(test) == 24
    report = json.loads((prepared / "prepare_report.json").read_text())
    assert len(report["merged_parts"]) == 2
    kept = {name: len((prepared / "trials" / name).read_text().splitlines()) for name in TRIAL_FILES}
    assert kept == {"veri_test.txt": 30, "veri_test2.txt": 30, "list_test_all.txt": 60, "list_test_all2.txt": 60,
                    "list_test_hard.txt": 40, "list_test_hard2.txt": 40}  # fmt: skip
    assert all(report["trials"][name.removesuffix(".txt")]["kept"] == count for name, count in kept.items())

    faces = json.loads((data / "faces/reports/prepare_faces.json").read_text())
    assert (faces["utterances"], faces["extracted"], faces["skipped"]) == (13, 11, 2)
    assert len(list((data / "faces/frames").rglob("*.jpg"))) == 11
    for name in ("noise.tsv", "rir.tsv"):
        assert len((data / "augment" / name).read_text().splitlines()) > 1, name
    index = (data / "shards/shards.tsv").read_text().splitlines()[1:]
    assert len(index) == 4 and sum(int(line.split("\t")[1]) for line in index) == 13

    manifests = (prepared / "manifests/dev.tsv").read_bytes()
    out = stages(data, downloads, "--stage", "5", "--utts_per_shard", "4")  # every stage is idempotent: a re-run changes nothing
    assert "4 shard(s) written" not in out and "0 shard(s) written, 4 already there" in out
    assert (prepared / "manifests/dev.tsv").read_bytes() == manifests


def test_recipe_refuses_bad_options_before_running(downloads: Path, tmp_path: Path) -> None:
    result = run_recipe(tmp_path / "data", downloads, "--shard", "0/2")
    assert result.returncode == 1 and "stage 3 runs once, not per slice" in result.stderr
    assert not (tmp_path / "data").exists()
    result = run_recipe(tmp_path / "data", downloads, "--stage")
    assert result.returncode == 1 and "--stage needs a value" in result.stderr
    help_text = run_recipe(tmp_path / "data", downloads, "--help").stdout
    assert "stage 8  avssl shards" in help_text and "set -euo" not in help_text
