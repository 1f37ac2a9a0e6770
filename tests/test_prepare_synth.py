"""Preparation of the embedded synthetic corpus: it must come out complete, with nothing skipped."""

from __future__ import annotations

from pathlib import Path

from avssl.data.manifest import read_manifest
from avssl.prep.corpus import prepare_corpus


def test_prepare_tiny_synthetic_corpus(tiny_corpus: Path, tmp_path: Path) -> None:
    report = prepare_corpus(tiny_corpus, tmp_path / "out", workers=1)

    for split in ("dev", "test"):
        utterances = read_manifest(tmp_path / "out/manifests" / f"{split}.tsv")
        assert utterances, split
        assert all(utt.video is not None for utt in utterances), split
        assert report["splits"][split]["skipped"] == {}, split
    assert sorted(report["trials"]) == ["synth-H", "synth-O"]
    for name, entry in report["trials"].items():
        assert entry["lines"] > 0 and entry["kept"] == entry["lines"], name
        source = (tiny_corpus / "trials" / f"{name}.txt").read_text().split()
        assert (tmp_path / "out/trials" / f"{name}.txt").read_text().split() == source
    assert report["problems"] == 0
