"""`avssl prepare --shard i/n` and `--merge`: slices probe disjoint files, the merge writes a whole run's bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avssl.cli import main
from avssl.errors import DataError
from avssl.prep.corpus import prepare_corpus
from avssl.prep.corpus_parts import merge_parts, part_path, probe_slice
from avssl.prep.parallel import WorkShard
from tests.test_prepare import make_tree, write_bytes, write_m4a, write_mp4, write_wav

OUTPUTS = ("manifests/dev.tsv", "manifests/test.tsv", "trials/test-O.txt", "augment/noise.tsv", "augment/rir.tsv",
           "skipped.tsv")  # fmt: skip


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The clean tree of test_prepare with a problem of each kind, duplicate keys included."""
    root = make_tree(tmp_path / "corpus")
    rng = np.random.default_rng(1)
    write_bytes(root / "dev/wav/id00009/sessX/00001.wav", rng.bytes(3000))  # corrupt
    write_wav(root / "dev/wav/id00006/sessY/00001.wav", rate=8000)  # wrong rate
    write_wav(root / "dev/wav/id00001/00003.wav")  # no session folder: skipped before probing, no key
    write_wav(root / "dev/wav/id00001/sessA/00001.flac")  # same key as the .wav: a duplicate
    write_m4a(root / "dev/aac/id00002/sessB/00001.m4a")  # same key in aac/: a duplicate too
    write_mp4(root / "dev/mp4/id00005/sessZ/00001.mp4")  # video without audio
    write_bytes(root / "test/wav/id00004/s2/00003.wav", rng.bytes(3000))
    write_bytes(root / "augment/noise/music/broken.wav", b"")
    return root


def test_two_slices_and_merge_write_the_bytes_of_one_run(corpus: Path, tmp_path: Path, capsys) -> None:
    whole = prepare_corpus(corpus, tmp_path / "whole", workers=1)
    sliced = tmp_path / "sliced"
    for index in (0, 1):
        assert main(["prepare", str(corpus), str(sliced), "--shard", f"{index}/2", "--workers", "1"]) == 0
        assert f"slice {index}/2:" in capsys.readouterr().out
    assert not (sliced / "manifests").exists()  # a slice writes only its part
    assert main(["prepare", str(corpus), str(sliced), "--merge"]) == 0
    assert "merged 2 part(s)" in capsys.readouterr().out

    for name in OUTPUTS:
        assert (sliced / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    merged = json.loads((sliced / "prepare_report.json").read_text())
    assert merged.pop("merged_parts") == [str(part_path(sliced.resolve(), WorkShard(i, 2))) for i in (0, 1)]
    for report in (merged, whole):
        del report["timing_s"], report["out_dir"]
    assert merged == whole
    assert whole["splits"]["dev"]["skipped"]["duplicate_key"]["count"] == 2

    headers = [json.loads(part_path(sliced, WorkShard(i, 2)).read_text().splitlines()[0]) for i in (0, 1)]
    assert all(header["records"] > 0 for header in headers)  # both slices had work: the split is real
    orphans = whole["splits"]["dev"]["skipped"]["video_without_audio"]["count"]  # found when joining, after probing
    assert sum(header["skipped"] for header in headers) == whole["problems"] - orphans


def test_slices_resume_and_the_merge_repeats(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    part = part_path(out, WorkShard(0, 2))
    debris = part.with_name(f".{part.name}.x7k2_9qa.tmp")  # what a killed writer leaves
    write_bytes(debris, b"{")
    assert probe_slice(corpus, out, WorkShard(0, 2), workers=1)["status"] == "probed"
    assert not debris.exists() and part.is_file()
    records = part.read_text().split("\n", 1)[1]  # after the header, which holds the timing
    assert probe_slice(corpus, out, WorkShard(0, 2), workers=1)["status"] == "already_done"
    assert probe_slice(corpus, out, WorkShard(0, 2), workers=1, expected_sample_rate=8000)["status"] == "probed"
    assert part.read_text().split("\n", 1)[1] != records  # other settings: probed again, not reused
    probe_slice(corpus, out, WorkShard(0, 2), workers=1)
    assert part.read_text().split("\n", 1)[1] == records  # the same input gives the same records
    probe_slice(corpus, out, WorkShard(1, 2), workers=1)

    merge_parts(corpus, out)
    first = {name: (out / name).read_bytes() for name in OUTPUTS}
    merge_parts(corpus, out)
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == first


@pytest.mark.parametrize("value", ["3/2", "0/0", "2/2", "1", "a/b", "-1/2"])
def test_bad_shard_values_name_the_option(corpus: Path, tmp_path: Path, value: str, capsys) -> None:
    assert main(["prepare", str(corpus), str(tmp_path / "out"), f"--shard={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"avssl prepare: error: --shard {value!r}: ") and ("i/n" in err or "0 <= i < n" in err)
    assert not (tmp_path / "out").exists()


def test_shard_and_merge_exclude_each_other(corpus: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", str(corpus), str(tmp_path / "out"), "--shard", "0/2", "--merge"])
    assert exit_info.value.code == 2
    assert "argument --merge: not allowed with argument --shard" in capsys.readouterr().err


def test_merge_names_what_is_missing_or_inconsistent(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"no part in .*parts: run `avssl prepare .* --shard i/n`"):
        merge_parts(corpus, out)
    probe_slice(corpus, out, WorkShard(0, 3), workers=1)
    with pytest.raises(DataError, match=r"2 of 3 parts missing .*: prepare\.shard-1-of-3\.jsonl, "
                                        r"prepare\.shard-2-of-3\.jsonl; run `avssl prepare .* --shard 1/3`"):  # fmt: skip
        merge_parts(corpus, out)
    probe_slice(corpus, out, WorkShard(0, 1), workers=1)
    with pytest.raises(DataError, match=r"several slicings, into 1 \(1 found\), 3 \(1 found\) slices"):
        merge_parts(corpus, out)

    part_path(out, WorkShard(0, 3)).unlink()
    other = make_tree(tmp_path / "other")
    with pytest.raises(DataError, match=r"shard-0-of-1\.jsonl was probed with .*corpus.*, but the merge finds"):
        merge_parts(other, out)  # the part belongs to another corpus

    part = part_path(out, WorkShard(0, 1))
    part.write_text("\n".join(part.read_text().splitlines()[:-1]) + "\n")  # a record lost in a copy
    with pytest.raises(DataError, match=r"shard-0-of-1\.jsonl holds \d+ record\(s\), its header announces \d+: "
                                        r"delete it and re-run its slice \(`avssl prepare ROOT OUT --shard 0/1`\)"):  # fmt: skip
        merge_parts(corpus, out)
    part.write_text("not json\n")
    with pytest.raises(DataError, match=r"shard-0-of-1\.jsonl:1: not a JSON record"):
        merge_parts(corpus, out)
    with pytest.raises(DataError, match=r"shard-0-of-1\.jsonl:1: not a JSON record"):
        probe_slice(corpus, out, WorkShard(0, 1), workers=1)  # a damaged part is not silently overwritten
