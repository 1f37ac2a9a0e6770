"""Corpus preparation on miniature VoxCeleb-layout trees built inside each test's tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from avssl.data.manifest import Utterance, read_manifest, write_manifest
from avssl.errors import DataError
from avssl.prep.corpus import prepare_corpus

RATE = 16000


def write_wav(path: Path, seconds: float = 0.5, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wave = 0.1 * np.sin(np.arange(int(seconds * rate)) * 0.05)
    soundfile.write(path, wave.astype(np.float32), rate, subtype="PCM_16")
    return path


def write_mp4(path: Path, seconds: float = 0.4, fps: int = 25, size: int = 32, audio: bool = True) -> Path:
    """A tiny face-track stand-in: mpeg4 video at 25 fps with (by default) an AAC track, as VoxCeleb2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = add_aac(container) if audio else None  # every stream must exist before the first packet
        for index in range(int(seconds * fps)):
            image = np.full((size, size, 3), 10 * index, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            write_aac(container, sound, seconds)
    return path


def write_m4a(path: Path, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        write_aac(container, add_aac(container), seconds)
    return path


def add_aac(container: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = container.add_stream("aac", rate=RATE)
    stream.layout = "mono"
    return stream


def write_aac(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    wave = (0.1 * np.sin(np.arange(int(seconds * RATE)) * 0.05)).astype(np.float32)[None]
    frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
    frame.sample_rate = RATE
    container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


DEV = ["id00001/sessA/00001", "id00001/sessA/00002", "id00002/sessB/00001"]
DEV_VIDEO = ["id00001/sessA/00001", "id00002/sessB/00001"]
TEST = ["id00003/s1/00001", "id00003/s1/00002", "id00004/s2/00001", "id00004/s2/00002"]
TRIALS = [
    "1 id00003/s1/00001.wav id00003/s1/00002.wav",
    "0 id00003/s1/00001.wav id00004/s2/00001.wav",
    "1 id00004/s2/00001.wav id00004/s2/00002.wav",
    "0 id00003/s1/00002.wav id00004/s2/00002.wav",
]


def make_tree(root: Path) -> Path:
    """A clean corpus: dev with partial video, test fully joined, one trial list and augmentation audio."""
    for key in DEV:
        write_wav(root / "dev/wav" / f"{key}.wav")
    for key in DEV_VIDEO:
        write_mp4(root / "dev/mp4" / f"{key}.mp4")
    for key in TEST:
        write_wav(root / "test/wav" / f"{key}.wav", seconds=0.25)
        write_mp4(root / "test/mp4" / f"{key}.mp4")
    write_bytes(root / "trials/test-O.txt", ("\n".join(TRIALS) + "\n").encode())
    write_wav(root / "augment/noise/music/m1.wav", seconds=0.3)
    write_wav(root / "augment/noise/noise/n1.wav", seconds=0.3)
    write_wav(root / "augment/rir/room/r1.wav", seconds=0.1)
    return root


@pytest.fixture
def good_tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "corpus")


@pytest.fixture
def bad_tree(good_tree: Path) -> Path:
    """The clean corpus plus one of each problem a real download shows."""
    rng = np.random.default_rng(0)
    write_bytes(good_tree / "dev/wav/id00009/sessX/00001.wav", rng.bytes(3000))  # corrupt
    write_bytes(good_tree / "dev/wav/id00009/sessX/00002.wav", b"")  # 0 bytes
    write_wav(good_tree / "dev/wav/id00009/sessX/00003.wav", seconds=0)  # header, no samples
    write_wav(good_tree / "dev/wav/id00006/sessY/00001.wav", rate=8000)  # wrong rate
    write_wav(good_tree / "dev/wav/id00001/00003.wav")  # no session folder
    write_bytes(good_tree / "dev/mp4/id00001/sessA/00002.mp4", rng.bytes(3000))  # corrupt video
    write_mp4(good_tree / "dev/mp4/id00005/sessZ/00001.mp4")  # video without audio
    write_bytes(good_tree / "test/wav/id00004/s2/00003.wav", rng.bytes(3000))
    extra = ["1 id00004/s2/00003.wav id00004/s2/00001.wav", "0 id00003/s1/00001.wav id09999/gone/00001.wav"]
    write_bytes(good_tree / "trials/test-O.txt", ("\n".join(TRIALS + extra) + "\n").encode())
    return good_tree


def reasons(report: dict, split: str) -> dict[str, list[str]]:
    """reason -> example paths relative to the split folder."""
    root = Path(report["root"]) / split
    return {
        reason: [str(Path(example["path"]).relative_to(root)) for example in entry["examples"]]
        for reason, entry in report["splits"][split]["skipped"].items()
    }


# --- manifest -------------------------------------------------------------------------------------------


def test_manifest_round_trip(tmp_path: Path) -> None:
    utterances = [
        Utterance("id2/s/00001", "/data/b.wav", None, 3.0000000000000004, 16000),
        Utterance("id1/s/00001", "/data/a.wav", "/data/a.mp4", 8.12, 16000),
    ]
    path = write_manifest(tmp_path / "m.tsv", utterances)
    assert path.read_text().splitlines()[0] == "key\taudio\tvideo\tduration\tsample_rate"
    assert read_manifest(path) == sorted(utterances, key=lambda utt: utt.key)


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (["key\taudio\tduration"], r"m\.tsv:1: expected the header"),
        (["a\tb\t\t1.0\t16000", "c\td\t\tlong\t16000"], r"m\.tsv:3: duration 'long' is not a number"),
        (["a\tb\t\t1.0\t16000", "a\td\t\t2.0\t16000"], r"m\.tsv:3: duplicate key 'a' \(first on line 2\)"),
        (["a\tb\t1.0\t16000"], r"m\.tsv:2: expected 5 tab-separated fields, found 4"),
        (["a\tb\t\t1.0\tfast"], r"m\.tsv:2: sample_rate 'fast' is not an integer"),
    ],
)
def test_manifest_read_errors_name_file_and_line(tmp_path: Path, lines: list[str], match: str) -> None:
    path = tmp_path / "m.tsv"
    header = [] if lines[0].startswith("key") else ["key\taudio\tvideo\tduration\tsample_rate"]
    path.write_text("\n".join(header + lines) + "\n")
    with pytest.raises(DataError, match=match) as error:
        read_manifest(path)
    assert "avssl prepare" in str(error.value)


def test_missing_manifest_says_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.tsv does not exist; run `avssl prepare"):
        read_manifest(tmp_path / "nope.tsv")


# --- prepare -------------------------------------------------------------------------------------------


def test_prepare_good_tree(good_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = prepare_corpus(good_tree, out, workers=1)

    dev = read_manifest(out / "manifests/dev.tsv")
    assert [utt.key for utt in dev] == DEV
    assert {utt.key for utt in dev if utt.video} == set(DEV_VIDEO)
    assert dev[0].audio == str(good_tree.resolve() / "dev/wav" / f"{DEV[0]}.wav")
    assert dev[0].video == str(good_tree.resolve() / "dev/mp4" / f"{DEV[0]}.mp4")
    assert dev[0].duration == pytest.approx(0.5) and dev[0].sample_rate == RATE
    test = read_manifest(out / "manifests/test.tsv")
    assert [utt.key for utt in test] == TEST and all(utt.video for utt in test)

    assert report["splits"]["dev"] | {"skipped": {}, "hours": 0} == {
        "audio": 3, "video": 2, "utterances": 3, "joined": 2, "audio_only": 1, "hours": 0, "skipped": {},
    }  # fmt: skip
    assert report["splits"]["test"]["joined"] == 4 and report["problems"] == 0
    assert (out / "trials/test-O.txt").read_text().splitlines() == TRIALS
    assert report["trials"]["test-O"] | {"source": ""} == {
        "source": "", "lines": 4, "kept": 4, "dropped": 0, "dropped_missing": 0, "dropped_skipped": 0,
        "missing_keys": 0, "missing_examples": [], "skipped_keys": 0, "skipped_examples": [],
    }  # fmt: skip

    noise = (out / "augment/noise.tsv").read_text().splitlines()
    assert noise[0] == "path\tduration\tsample_rate\tcategory"
    assert [line.split("\t")[3] for line in noise[1:]] == ["music", "noise"]
    rir = (out / "augment/rir.tsv").read_text().splitlines()
    assert rir[0] == "path\tduration\tsample_rate" and rir[1].split("\t")[1:] == ["0.1", "16000"]
    assert report["augment"]["noise"]["categories"] == {"music": 1, "noise": 1}
    assert json.loads((out / "prepare_report.json").read_text()) == report


def test_prepare_reports_and_skips_bad_files(bad_tree: Path, tmp_path: Path, caplog) -> None:
    out = tmp_path / "out"
    caplog.set_level("WARNING")
    report = prepare_corpus(bad_tree, out, workers=1)

    assert reasons(report, "dev") == {
        "empty_file": ["wav/id00009/sessX/00002.wav"],
        "unexpected_path": ["wav/id00001/00003.wav"],
        "unexpected_sample_rate": ["wav/id00006/sessY/00001.wav"],
        "unreadable": ["mp4/id00001/sessA/00002.mp4", "wav/id00009/sessX/00001.wav"],
        "video_without_audio": ["mp4/id00005/sessZ/00001.mp4"],
        "zero_length": ["wav/id00009/sessX/00003.wav"],
    }
    rate = report["splits"]["dev"]["skipped"]["unexpected_sample_rate"]["examples"][0]["detail"]
    assert "8000 Hz, expected 16000 Hz" in rate
    # The good part of the corpus is untouched; the utterance with a corrupt video keeps its audio.
    dev = {utt.key: utt for utt in read_manifest(out / "manifests/dev.tsv")}
    assert sorted(dev) == DEV and dev["id00001/sessA/00002"].video is None

    assert reasons(report, "test") == {"unreadable": ["wav/id00004/s2/00003.wav"]}
    trials = report["trials"]["test-O"]
    assert (trials["lines"], trials["kept"], trials["dropped"]) == (6, 4, 2)
    assert (trials["dropped_missing"], trials["dropped_skipped"]) == (1, 1)
    assert trials["missing_examples"] == ["id09999/gone/00001"]
    assert trials["skipped_examples"] == ["id00004/s2/00003"]
    assert (out / "trials/test-O.txt").read_text().splitlines() == TRIALS

    skipped = (out / "skipped.tsv").read_text().splitlines()
    assert len(skipped) == 1 + 7 + 1 and report["problems"] == 7 + 1 + 2
    assert "video_without_audio" in caplog.text and "dropped 2 trial(s)" in caplog.text


def test_prepare_is_idempotent_and_independent_of_workers(bad_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = prepare_corpus(bad_tree, out, workers=1)
    files = {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    second = prepare_corpus(bad_tree, out, workers=2)
    assert {
        path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()
    }.keys() == files.keys()
    for path, data in files.items():
        if path.name != "prepare_report.json":
            assert path.read_bytes() == data, path
    first.pop("timing_s"), second.pop("timing_s")
    assert first == second


def test_two_audio_files_with_one_key_keep_the_first(good_tree: Path, tmp_path: Path) -> None:
    write_wav(good_tree / "dev/wav/id00002/sessB/00001.flac")
    report = prepare_corpus(good_tree, tmp_path / "out", workers=1)
    assert reasons(report, "dev") == {"duplicate_key": ["wav/id00002/sessB/00001.wav"]}
    dev = read_manifest(tmp_path / "out/manifests/dev.tsv")
    assert [utt.key for utt in dev] == DEV and dev[-1].audio.endswith("00001.flac")


def test_prepare_reads_voxceleb2_m4a_audio(tmp_path: Path) -> None:
    root = tmp_path / "vox2"
    for key in TEST:
        write_m4a(root / "test/aac" / f"{key}.m4a")
        write_mp4(root / "test/mp4" / f"{key}.mp4")
    write_bytes(root / "trials/test-O.txt", "\n".join(TRIALS).encode())
    report = prepare_corpus(root, tmp_path / "out", workers=1)
    test = read_manifest(tmp_path / "out/manifests/test.tsv")
    assert [utt.key for utt in test] == TEST and all(utt.video and utt.sample_rate == RATE for utt in test)
    assert test[0].audio.endswith(".m4a") and 0.5 <= test[0].duration < 0.6  # AAC adds encoder delay
    assert report["trials"]["test-O"]["kept"] == 4


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("2 id00003/s1/00001.wav id00003/s1/00002.wav", r"test-O\.txt:3: label '2' is not 0 or 1"),
        ("1 id00003/s1/00001.wav", r"test-O\.txt:3: 2 fields"),
        ("1 00001.wav id00003/s1/00002.wav", r"test-O\.txt:3: path '00001.wav'"),
    ],
)
def test_malformed_trial_line_is_an_error(good_tree: Path, tmp_path: Path, line: str, match: str) -> None:
    write_bytes(good_tree / "trials/test-O.txt", "\n".join([*TRIALS[:2], line]).encode())
    with pytest.raises(DataError, match=match):
        prepare_corpus(good_tree, tmp_path / "out", workers=1)


def test_trial_list_with_no_known_key_is_an_error(good_tree: Path, tmp_path: Path) -> None:
    write_bytes(good_tree / "trials/other.txt", b"1 id1/a/1.wav id1/a/2.wav\n0 id1/a/1.wav id2/b/1.wav\n")
    with pytest.raises(DataError, match=r"other\.txt: none of its 2 trials can be scored: 3 keys"):
        prepare_corpus(good_tree, tmp_path / "out", workers=1)


def test_missing_root_or_splits_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist.*expected ROOT/dev"):
        prepare_corpus(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"has no dev/ or test/ split folder"):
        prepare_corpus(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "empty/dev/flac").mkdir(parents=True)
    with pytest.raises(DataError, match=r"dev has no wav/, aac/ or mp4/ folder"):
        prepare_corpus(tmp_path / "empty", tmp_path / "out")
