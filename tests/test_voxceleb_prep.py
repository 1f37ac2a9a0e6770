"""VoxCeleb preparation at scale, on the miniature download of avssl.prep.fixture (real AAC, h264/mpeg4,
split zips, MUSAN and RIRS_NOISES layouts, broken files)."""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import av
import pytest
import soundfile

from avssl.cli import main
from avssl.data.augment import load_augment_sources
from avssl.data.manifest import read_manifest
from avssl.errors import ConfigError, DataError
from avssl.prep.archives import prepare_archives, read_md5_file
from avssl.prep.augment_corpora import prepare_augment_corpora
from avssl.prep.convert import convert_tree
from avssl.prep.corpus import prepare_corpus
from avssl.prep.fixture import TRIAL_FILES, VOX2_NO_META, VoxFixture, build_voxceleb_fixture, pack_downloads
from avssl.prep.layout import build_layout
from avssl.prep.meta import read_vox1_meta, read_vox2_meta, speaker_report
from avssl.prep.parallel import WorkShard, parse_shard
from avssl.prep.trials import check_trials, read_trial_lines

BAD_M4A = {"corrupt": 1, "silent": 1, "truncated": 1, "zero_length": 1}


@pytest.fixture(scope="module")
def vox(tmp_path_factory: pytest.TempPathFactory) -> VoxFixture:
    """The unzipped miniature corpus with every kind of broken file (read-only for the tests)."""
    return build_voxceleb_fixture(tmp_path_factory.mktemp("vox") / "tree", bad=True)


@pytest.fixture(scope="module")
def downloads(vox: VoxFixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("downloads")
    pack_downloads(vox.root, folder)
    return folder


@pytest.fixture(scope="module")
def converted(vox: VoxFixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "vox2_dev_wav"
    convert_tree(vox.vox2_aac, out, workers=1)
    return out


def files_below(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# --- fixture ----------------------------------------------------------------------------------------------


def test_fixture_has_real_encodings_and_official_formats(vox: VoxFixture) -> None:
    key = vox.vox2_keys[-1]
    with av.open(str(vox.vox2_aac / f"{key}.m4a")) as container:
        audio = container.streams.audio[0]
        assert (audio.codec_context.name, audio.codec_context.sample_rate, audio.codec_context.channels) == ("aac", 16000, 1)
    with av.open(str(vox.root / "vox2/dev/mp4" / f"{key}.mp4")) as container:
        video = container.streams.video[0]
        assert video.codec_context.name in ("h264", "mpeg4") and (video.width, video.height) == (224, 224)
        assert video.average_rate == 25 and container.streams.audio[0].codec_context.name == "aac"
    info = soundfile.info(vox.root / "vox1/wav" / f"{vox.vox1_keys[0]}.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert (vox.root / "vox1_meta.csv").read_text().startswith("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n")
    assert (vox.root / "vox2_meta.csv").read_text().splitlines()[1] == "id00012 ,n000012 ,m ,dev "
    for name in TRIAL_FILES:
        first = (vox.root / name).read_text().splitlines()[0].split()
        assert first[0] in "01" and first[1].startswith("id1") and first[1].endswith(".wav")
    assert sorted(set(vox.bad.values())) == ["corrupt", "no_audio_stream", "silent", "truncated", "zero_length"]


# --- conversion -------------------------------------------------------------------------------------------


def test_convert_reports_each_bad_file_and_resamples(vox: VoxFixture, converted: Path) -> None:
    report = json.loads(converted.with_name("vox2_dev_wav.convert_report.json").read_text())
    assert (report["found"], report["converted"], report["skipped"], report["resampled"]) == (17, 13, 4, 1)
    assert report["skipped_by_reason"] == BAD_M4A
    skipped = {Path(entry["path"]).relative_to(vox.root).as_posix(): entry["reason"] for entry in report["skipped_files"]}
    assert skipped == {path: reason for path, reason in vox.bad.items() if path.endswith(".m4a")}
    assert "decoding stopped" in next(e["detail"] for e in report["skipped_files"] if e["reason"] == "truncated")
    [resampled] = report["resampled_files"]
    assert resampled["from_rate"] == 8000 and resampled["path"].endswith("00094.m4a")
    written = sorted(path.relative_to(converted).with_suffix("").as_posix() for path in converted.rglob("*.wav"))
    assert written == sorted([*vox.vox2_keys, Path(resampled["path"]).relative_to(vox.vox2_aac).with_suffix("").as_posix()])
    for path in converted.rglob("*.wav"):
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    slow = soundfile.info(converted / Path(resampled["path"]).relative_to(vox.vox2_aac).with_suffix(".wav"))
    assert slow.duration == pytest.approx(1.0, abs=0.1)  # 1 s at 8 kHz is still 1 s at 16 kHz


def test_convert_rerun_after_crash_redoes_only_what_is_missing(vox: VoxFixture, tmp_path: Path) -> None:
    out = tmp_path / "wav"
    convert_tree(vox.vox2_aac, out, workers=2)
    first = files_below(out)
    lost = sorted(out.rglob("*.wav"))[:2]
    for path in lost:
        path.unlink()
    debris = lost[0].parent / f".{lost[0].name}.k3x9_2ab.tmp"  # what atomic_write leaves when killed
    debris.write_bytes(b"RIFF partial")
    report = convert_tree(vox.vox2_aac, out, workers=1)
    assert (report["converted"], report["already_done"], report["partial_removed"]) == (2, 11, 1)
    assert report["resampled"] == 1  # found by the first run, still listed
    assert report["skipped_by_reason"] == BAD_M4A  # broken sources are re-examined, not forgotten
    assert not debris.exists() and files_below(out) == first  # same bytes: the step is idempotent
    again = convert_tree(vox.vox2_aac, out, workers=1)
    assert (again["converted"], again["already_done"]) == (0, 13)


def test_convert_slices_split_the_work_without_overlap(vox: VoxFixture, tmp_path: Path) -> None:
    out = tmp_path / "wav"
    reports = [convert_tree(vox.vox2_aac, out, workers=1, shard=WorkShard(i, 2)) for i in range(2)]
    assert sum(r["in_shard"] for r in reports) == 17 and sum(r["converted"] for r in reports) == 13
    assert all(r["in_shard"] for r in reports)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "wav.convert_report.shard-0-of-2.json", "wav.convert_report.shard-1-of-2.json",
    ]  # fmt: skip
    assert len(list(out.rglob("*.wav"))) == 13


def test_convert_video_and_wav_sources_to_flac(vox: VoxFixture, tmp_path: Path) -> None:
    """mp4 face tracks give their AAC track (or say they have none); a wav at 8 kHz is resampled."""
    video = convert_tree(vox.root / "vox2/dev/mp4", tmp_path / "from_mp4", "flac", workers=1)
    assert video["skipped_by_reason"] == {"corrupt": 1, "no_audio_stream": 1} and video["converted"] == 10
    assert soundfile.info(next((tmp_path / "from_mp4").rglob("*.flac"))).format == "FLAC"
    wav = convert_tree(vox.root / "vox1/wav", tmp_path / "from_wav", workers=1)
    assert (wav["converted"], wav["resampled"], wav["skipped"]) == (25, 1, 0)


def test_convert_refuses_what_would_fail_or_harm(vox: VoxFixture, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist; point it at the extracted vox2 dev/aac"):
        convert_tree(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(DataError, match="lies inside the source"):
        convert_tree(vox.vox2_aac, vox.vox2_aac / "wav")
    with pytest.raises(DataError, match="unknown audio format 'mp3'"):
        convert_tree(vox.vox2_aac, tmp_path / "out", "mp3")


def test_parse_shard() -> None:
    assert parse_shard("3/4") == WorkShard(3, 4) and str(parse_shard(" 0 / 1 ")) == "0/1"
    for text in ("4/4", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(text)


# --- archives ---------------------------------------------------------------------------------------------


def test_archives_verify_extract_and_resume(vox: VoxFixture, downloads: Path, tmp_path: Path) -> None:
    out = tmp_path / "extracted"
    report = prepare_archives(downloads, out, downloads / "md5sums.txt", workers=2)
    assert sorted(report["archives"]) == [
        "musan.tar.gz", "rirs_noises.zip", "vox1_dev_wav.zip", "vox1_test_wav.zip", "vox2_dev_aac.zip", "vox2_dev_mp4.zip",
    ]  # fmt: skip
    assert report["unverified"] == [] and len(report["archives"]["vox2_dev_mp4.zip"]["parts"]) == 9
    for folder in ("vox1", "vox2", "musan", "RIRS_NOISES"):
        assert files_below(out / folder) == files_below(vox.root / folder), folder
    again = prepare_archives(downloads, out, downloads / "md5sums.txt", workers=1)
    assert {entry["status"] for entry in again["archives"].values()} == {"already_done"}

    # A crash during vox2_dev_aac.zip: no completion record, two members missing, one temporary file.
    (out / ".archives/vox2_dev_aac.zip.done.json").unlink()
    lost = sorted((out / "vox2/dev/aac").rglob("*.m4a"))[:2]
    for path in lost:
        path.unlink()
    (lost[0].parent / f".{lost[0].name}.abc_123.tmp").write_bytes(b"partial")
    resumed = prepare_archives(downloads, out, downloads / "md5sums.txt", workers=1)["archives"]["vox2_dev_aac.zip"]
    assert (resumed["extracted"], resumed["already_present"], resumed["partial_removed"]) == (2, 15, 1)
    assert files_below(out / "vox2") == files_below(vox.root / "vox2")


def test_archives_md5_mismatch_and_missing_parts(downloads: Path, tmp_path: Path) -> None:
    bad_sums = tmp_path / "bad.md5"
    lines = (downloads / "md5sums.txt").read_text().splitlines()
    bad_sums.write_text("".join(
        ("0" * 32 + "  vox1_test_wav.zip" if line.endswith(" vox1_test_wav.zip") else line) + "\n" for line in lines
    ))  # fmt: skip
    with pytest.raises(DataError, match=r"vox1_test_wav\.zip: md5 .* says 0{32} .* download it again"):
        prepare_archives(downloads, tmp_path / "out", bad_sums, workers=1)

    partial = tmp_path / "partial"
    shutil.copytree(downloads, partial)
    (partial / "vox2_dev_mp4_partac").unlink()
    with pytest.raises(DataError, match="vox2_dev_mp4_partac is missing: download it"):
        prepare_archives(partial, tmp_path / "out", workers=1)
    (partial / "vox2_dev_mp4_partai").rename(partial / "vox2_dev_mp4_partac")
    for name in ("vox2_dev_mp4_partad", "vox2_dev_mp4_partae", "vox2_dev_mp4_partaf", "vox2_dev_mp4_partag",
                 "vox2_dev_mp4_partah"):  # fmt: skip
        (partial / name).unlink()
    with pytest.raises(DataError, match="official release has 9 .*partad onwards are missing"):
        prepare_archives(partial, tmp_path / "out", workers=1)

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    shutil.copy(downloads / "vox1_dev_wav_partaa", truncated)  # the last part (with the zip directory) is absent
    with pytest.raises(DataError, match=r"vox1_dev_wav\.zip \(from vox1_dev_wav_partaa\) is not a readable zip"):
        prepare_archives(truncated, tmp_path / "out", workers=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="skip this step and pass their folders"):
        prepare_archives(tmp_path / "empty", tmp_path / "out")


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "wav/../../evil.txt", "C:/evil.txt"])
def test_archives_refuse_members_escaping_the_folder(tmp_path: Path, member: str) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with zipfile.ZipFile(downloads / "vox1_test_wav.zip", "w") as archive:
        archive.writestr("wav/id10270/abc/00001.wav", b"fine")
        archive.writestr(zipfile.ZipInfo(member), b"evil")
    out = tmp_path / "deep" / "out"
    with pytest.raises(DataError, match=r"vox1_test_wav\.zip: member .* outside the target folder; refusing"):
        prepare_archives(downloads, out, workers=1)
    assert not list(tmp_path.rglob("evil.txt")) and not (out / "vox1/wav").exists()  # nothing written at all


def test_archives_refuse_links_in_tarballs(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with tarfile.open(downloads / "musan.tar.gz", "w:gz") as archive:
        link = tarfile.TarInfo("musan/noise/link.wav")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(DataError, match=r"musan\.tar\.gz: member 'musan/noise/link\.wav' is a link or device"):
        prepare_archives(downloads, tmp_path / "out", workers=1)
    assert not (tmp_path / "out/musan/noise/link.wav").exists()


def test_read_md5_file_accepts_both_column_orders(tmp_path: Path) -> None:
    path = tmp_path / "sums.txt"
    path.write_text(f"# comment\n{'a' * 32}  vox1_dev_wav_partaa\n\nvox2_dev_aac_partaa {'B' * 32}\n{'c' * 32} *x.zip\n")
    assert read_md5_file(path) == {"vox1_dev_wav_partaa": "a" * 32, "vox2_dev_aac_partaa": "b" * 32, "x.zip": "c" * 32}
    path.write_text("vox1_dev_wav_partaa\n")
    with pytest.raises(DataError, match=r"sums\.txt:1: expected '<md5> <file name>'"):
        read_md5_file(path)


# --- layout, manifests, trials, metadata ------------------------------------------------------------------


def test_layout_and_prepare_join_audio_video_and_count_trials(vox: VoxFixture, converted: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    layout = build_layout(root, vox.root / "vox1", vox.root / "vox2", converted, [vox.root])
    assert sorted(layout["links"]) == sorted(["dev/mp4", "dev/wav", "test/wav", *(f"trials/{n}" for n in TRIAL_FILES)])
    assert layout["conversion"] == {"source": 17, "converted": 13, "skipped": 4, "missing": 0}
    report = prepare_corpus(root, tmp_path / "prepared", workers=1)

    dev = {utt.key: utt for utt in read_manifest(tmp_path / "prepared/manifests/dev.tsv")}
    assert len(dev) == 13 and all(utt.audio.endswith(".wav") for utt in dev.values())
    broken = {Path(p).relative_to("vox2/dev/mp4").with_suffix("").as_posix() for p, r in vox.bad.items()
              if p.endswith(".mp4") and r == "corrupt"}  # fmt: skip
    resampled = {Path(p).relative_to("vox2/dev/aac").with_suffix("").as_posix() for p in vox.resampled if "aac" in p}
    assert {key for key, utt in dev.items() if utt.video is None} == broken | resampled  # no face track for these
    assert report["splits"]["dev"]["joined"] == 11
    assert report["splits"]["test"]["skipped"]["unexpected_sample_rate"]["count"] == 1

    trials = report["trials"]
    assert {name: (entry["official_name"], entry["missing_keys"]) for name, entry in trials.items()} == {
        "veri_test": ("Vox1-O", 1), "veri_test2": ("Vox1-O (cleaned)", 0),
        "list_test_all": ("Vox1-E", 1), "list_test_all2": ("Vox1-E (cleaned)", 0),
        "list_test_hard": ("Vox1-H", 1), "list_test_hard2": ("Vox1-H (cleaned)", 0),
    }  # fmt: skip
    assert trials["veri_test"]["official_trials"] == 37_720 and trials["veri_test"]["missing_examples"] == [vox.missing_trial_key]
    assert (tmp_path / "prepared/trials/veri_test.txt").read_text() == (vox.root / "veri_test2.txt").read_text()


def test_layout_refuses_an_unfinished_conversion(vox: VoxFixture, converted: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial_wav"
    shutil.copytree(converted, partial)
    shutil.copy(converted.with_name("vox2_dev_wav.convert_report.json"), tmp_path / "partial_wav.convert_report.json")
    next(partial.rglob("*.wav")).unlink()
    with pytest.raises(DataError, match=r"1 of 17 recordings .* run `avssl voxceleb convert` for every --shard"):
        build_layout(tmp_path / "root", vox2=vox.root / "vox2", vox2_audio=partial)
    assert build_layout(tmp_path / "root", vox2=vox.root / "vox2", vox2_audio=partial, allow_partial=True)["conversion"]["missing"] == 1
    on_the_fly = build_layout(tmp_path / "root", vox2=vox.root / "vox2")  # no converted folder: decode m4a
    assert sorted(on_the_fly["links"]) == ["dev/aac", "dev/mp4"] and on_the_fly["removed_links"] == ["dev/wav"]
    assert not (tmp_path / "root/dev/wav").exists()


def test_check_trials_counts_missing_and_skipped(vox: VoxFixture) -> None:
    trials = read_trial_lines(vox.root / "list_test_all.txt")
    present = set(vox.vox1_keys) - {vox.vox1_keys[0]}
    check = check_trials(trials, present, unusable={vox.vox1_keys[0]})
    named_first = sum(vox.vox1_keys[0] in (t.enrol_key, t.test_key) for t in trials)
    assert check.missing_keys == {vox.missing_trial_key} and check.dropped_missing == 1
    assert check.dropped_skipped == named_first and len(check.kept) == len(trials) - 1 - named_first


def test_meta_parsers_tolerate_format_quirks_and_report_bad_lines(vox: VoxFixture, tmp_path: Path) -> None:
    vox1 = read_vox1_meta(vox.root / "vox1_meta.csv")
    assert len(vox1.speakers) == 6 and vox1.problems == []
    assert vox1.speakers[0].nationality == "Ireland" and vox1.speakers[-1].split == "test"
    quirky = tmp_path / "vox2_meta.csv"
    quirky.write_bytes(
        "\ufeffVoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \r\nid00012 ,n000012 ,M ,Dev \r\n\r\n"
        "id00013 ,n000013 ,x ,dev\r\nid00012 ,n000012 ,m ,dev\r\nid00014 ,n000014 ,f\r\n".encode()
    )
    vox2 = read_vox2_meta(quirky)
    assert [(s.speaker, s.gender, s.split) for s in vox2.speakers] == [("id00012", "m", "dev")]
    assert [problem.split(": ", 1)[0].rsplit(":", 1)[1] for problem in vox2.problems] == ["4", "5", "6"]
    assert "gender 'x'" in vox2.problems[0] and "repeats line 2" in vox2.problems[1] and "3 fields" in vox2.problems[2]


def test_speaker_report_compares_metadata_with_manifests(vox: VoxFixture, converted: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    build_layout(root, vox.root / "vox1", vox.root / "vox2", converted)
    prepare_corpus(root, tmp_path / "prepared", workers=1)
    meta = [read_vox1_meta(vox.root / "vox1_meta.csv"), read_vox2_meta(vox.root / "vox2_meta.csv")]
    manifests = [tmp_path / "prepared/manifests/dev.tsv", tmp_path / "prepared/manifests/test.tsv"]
    report = speaker_report(meta, manifests, tmp_path / "speakers")
    assert report["by_corpus_and_set"] == {"vox1/dev": 3, "vox1/test": 3, "vox2/dev": 2, "vox2/test": 1}
    dev, test = report["manifests"]["dev"], report["manifests"]["test"]
    assert dev["without_metadata_examples"] == [VOX2_NO_META] and dev["marked_test"] == 0
    assert test["speakers_by_corpus_and_set"] == {"vox1/dev": 3, "vox1/test": 3} and test["without_metadata"] == 0
    assert (tmp_path / "speakers/speakers.tsv").read_text().splitlines()[1] == "id00012\tvox2\tn000012\tm\t\tdev"


# --- MUSAN and RIRs ---------------------------------------------------------------------------------------


def test_augment_corpora_pieces_lists_and_resume(vox: VoxFixture, tmp_path: Path) -> None:
    out = tmp_path / "augment"
    report = prepare_augment_corpora(out, vox.root / "musan", vox.root / "RIRS_NOISES", workers=1)
    assert report["skipped_by_reason"] == {"corrupt": 1} and report["resampled"] == 1
    assert report["rirs"]["isotropic_noises_left_out"] == 1
    assert report["lists"]["noise_categories"] == {"music": 5, "noise": 2, "speech": 3} and report["lists"]["rirs"] == 4
    noise = (out / "noise.tsv").read_text().splitlines()
    assert noise[0] == "path\tduration\tsample_rate\tcategory"
    assert sorted(float(row.split("\t")[1]) for row in noise[1:] if "music-fma-0000" in row) == [1.0, 6.0, 6.0]
    rir = soundfile.info(next((out / "rirs/real_rirs_isotropic_noises").glob("*.wav")))
    assert (rir.channels, rir.samplerate) == (1, 16000)  # first channel of the stereo response
    sources = load_augment_sources(str(out / "noise.tsv"), str(out / "rir.tsv"), 16000)  # what training reads
    assert sorted(sources.noises) == ["music", "noise", "speech"] and sources.rirs.shape[0] == 4

    lists = {name: (out / name).read_bytes() for name in ("noise.tsv", "rir.tsv")}
    shutil.rmtree(out / "musan/music/fma/music-fma-0000")
    (out / "musan/music/fma/music-fma-0000.pieces.tsv").unlink()
    again = prepare_augment_corpora(out, vox.root / "musan", vox.root / "RIRS_NOISES", workers=1)
    assert (again["processed"], again["already_done"]) == (1, 9)
    assert {name: (out / name).read_bytes() for name in lists} == lists
    capped = prepare_augment_corpora(out, vox.root / "musan", max_per_category=2, workers=1)
    assert capped["lists"]["noise_categories"] == {"music": 2, "noise": 2, "speech": 2}


# --- command line -----------------------------------------------------------------------------------------


def test_cli_runs_steps_and_reports_errors_in_one_line(vox: VoxFixture, tmp_path: Path, capsys) -> None:
    assert main(["voxceleb", "convert", str(vox.root / "vox1/wav"), str(tmp_path / "wav"), "--workers", "1",
                 "--shard", "1/3"]) == 0  # fmt: skip
    assert "report:" in capsys.readouterr().out
    assert (tmp_path / "wav.convert_report.shard-1-of-3.json").is_file()
    assert main(["voxceleb", "convert", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "error: source folder" in capsys.readouterr().err
    assert main(["shards", str(tmp_path / "none.tsv"), str(tmp_path / "shards"), "--shard", "2/2"]) == 2
    assert "--shard '2/2'" in capsys.readouterr().err
