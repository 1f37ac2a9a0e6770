"""The face data path: frame sampling, the frame store and `prepare-faces`, augmentation, the face
encoder and the multi-crop face views. Videos are the tiny corpus's or written here with PyAV."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from avssl.cli import main as cli_main
from avssl.data.manifest import Utterance, read_manifest, write_manifest
from avssl.errors import ConfigError, DataError
from avssl.faces.augment import FaceAugment, FaceAugmentConfig
from avssl.faces.frames import (
    FrameSampling,
    VideoError,
    extract_frames,
    face_box,
    frame_count,
    frame_times,
)
from avssl.faces.sources import DecodedFaces
from avssl.faces.store import FaceStore, open_for_writing, store_settings, write_frames
from avssl.faces.views import FaceCropConfig, FaceMultiCropDataset
from avssl.models.face_resnet import build_face_encoder
from avssl.prep.faces import prepare_faces
from avssl.prep.parallel import WorkShard

STEP = 5  # grey level per frame index in the counting video


def write_video(path: Path, frames: np.ndarray, fps: int = 25, audio: bool = False) -> Path:
    """An mp4 (MPEG-4 part 2, available in every PyAV build) of uint8 RGB ``frames``, AAC audio optional."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.bit_rate = 2_000_000
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.layout = "mono"
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        if audio:
            samples = int(16000 * len(frames) / fps)
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.int16), format="s16", layout="mono")
            chunk.sample_rate, chunk.time_base, chunk.pts = 16000, Fraction(1, 16000), 0
            container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def counting_frames(n: int, height: int = 64, width: int = 96) -> np.ndarray:
    """Frame k is grey level STEP * k inside the centred square and black in the side margins."""
    frames = np.zeros((n, height, width, 3), np.uint8)
    left = (width - height) // 2
    for k in range(n):
        frames[k, :, left : left + height] = STEP * k + 10
    return frames


@pytest.fixture(scope="module")
def counting_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.0 s at 25 frames/s, no audio track (a face track needs none)."""
    return write_video(tmp_path_factory.mktemp("video") / "count.mp4", counting_frames(50))


def decoded_index(frames: np.ndarray) -> list[int]:
    return [round((float(np.median(frame)) - 10) / STEP) for frame in frames]


# --- frame sampling -----------------------------------------------------------------------------------


def test_frame_count_and_times_follow_the_rate() -> None:
    assert frame_count(2.0, 2.5) == 5
    assert frame_count(3.3, 2.5) == 8  # the trailing partial interval is not sampled
    assert frame_count(0.1, 2.5) == 1  # a short clip still gives one frame
    np.testing.assert_allclose(frame_times(5, 2.5), [0.2, 0.6, 1.0, 1.4, 1.8])


@pytest.mark.parametrize(
    ("rate", "expected"), [(2.5, [5, 15, 25, 35, 45]), (1.0, [12, 37]), (5.0, list(range(2, 50, 5)))]
)
def test_sampled_frames_are_the_ones_on_screen_at_the_interval_centres(
    counting_video: Path, rate: float, expected: list[int]
) -> None:
    faces = extract_frames(counting_video, FrameSampling(rate=rate))
    assert faces.frames.shape == (len(expected), 112, 112, 3) and faces.frames.dtype == np.uint8
    np.testing.assert_allclose(faces.times, (np.arange(len(expected)) + 0.5) / rate)
    assert decoded_index(faces.frames) == expected
    assert (faces.detected, faces.fallback) == (0, 0)


def test_centre_crop_keeps_the_middle_square_and_resizes(counting_video: Path) -> None:
    whole = extract_frames(counting_video, FrameSampling(size=48))
    assert whole.frames.shape == (5, 48, 48, 3)
    level = STEP * 5 + 10
    assert abs(float(whole.frames[0, 4:-4, 4:-4].mean()) - level) < 3  # no black margin inside
    half = extract_frames(counting_video, FrameSampling(size=32, crop=0.5))
    assert half.frames.shape == (5, 32, 32, 3)
    assert abs(float(half.frames[0].mean()) - level) < 3


def test_haar_refinement_falls_back_to_the_centre_crop_and_counts(counting_video: Path) -> None:
    faces = extract_frames(counting_video, FrameSampling(detect=True))  # grey squares hold no face
    assert (faces.detected, faces.fallback) == (0, 5)
    np.testing.assert_array_equal(faces.frames, extract_frames(counting_video).frames)


def test_detected_box_is_enlarged_squared_and_kept_inside_the_frame() -> None:
    assert face_box(100, 200, (80, 30, 40, 40), margin=1.5) == (70, 20, 60)
    assert face_box(100, 200, (170, 70, 30, 30), margin=1.5) == (155, 55, 45)  # shifted in from the corner
    assert face_box(100, 200, (0, 0, 90, 90), margin=1.5) == (0, 0, 100)  # capped by the frame height


def test_sampling_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="'rate'"):
        FrameSampling(rate=0)
    with pytest.raises(ConfigError, match="'crop'"):
        FrameSampling(crop=1.5)


# --- bad videos and the store -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    frameless = folder / "frameless.mp4"  # a video stream header and no frame at all
    with av.open(str(frameless), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    return {
        "garbage": garbage,
        "frameless": frameless,
        "silent": write_video(folder / "silent.mp4", counting_frames(20)),
        "with_audio": write_video(folder / "with_audio.mp4", counting_frames(20), audio=True),
        "missing": folder / "missing.mp4",
    }


def test_bad_videos_raise_video_errors_with_reasons(bad_videos: dict[str, Path]) -> None:
    reasons = {}
    for name in ("garbage", "frameless", "missing"):
        with pytest.raises(VideoError) as caught:
            extract_frames(bad_videos[name])
        assert str(bad_videos[name]) in str(caught.value)
        reasons[name] = caught.value.reason
    assert reasons == {"garbage": "unreadable", "frameless": "no_video_stream", "missing": "missing_file"}
    assert extract_frames(bad_videos["silent"]).frames.shape == (2, 112, 112, 3)  # no audio is fine


def test_prepare_faces_reports_bad_videos_and_keeps_going(
    bad_videos: dict[str, Path], tmp_path: Path
) -> None:
    utterances = [
        Utterance(f"id00001/s/{name}", "unused.wav", str(path), 1.0, 16000)
        for name, path in bad_videos.items()
    ]
    utterances.append(Utterance("id00001/s/audio_only", "unused.wav", None, 1.0, 16000))
    manifest = write_manifest(tmp_path / "m.tsv", utterances)
    report = prepare_faces(manifest, tmp_path / "store", workers=2)  # the process pool path
    assert (report["extracted"], report["skipped"], report["workers"]) == (2, 4, 2)
    counts = {reason: entry["count"] for reason, entry in report["skipped_reasons"].items()}
    assert counts == {"missing_file": 1, "no_video": 1, "no_video_stream": 1, "unreadable": 1}
    assert report["skipped_reasons"]["unreadable"]["examples"][0]["path"] == str(bad_videos["garbage"])
    listed = (tmp_path / "store/reports/prepare_faces.skipped.tsv").read_text().splitlines()
    assert len(listed) == 5 and listed[0] == "key\tpath\treason\tdetail"
    assert json.loads((tmp_path / "store/reports/prepare_faces.json").read_text())["skipped"] == 4


@pytest.mark.parametrize("fmt", ["npy", "jpg"])
def test_store_round_trip_and_resume(tiny_prepared: Path, tmp_path: Path, fmt: str) -> None:
    manifest = tiny_prepared / "manifests" / "dev.tsv"
    utterances = read_manifest(manifest)
    out = tmp_path / "store"
    first = prepare_faces(manifest, out, fmt=fmt, workers=1)
    assert (first["extracted"], first["skipped"], first["already_done"]) == (len(utterances), 0, 0)
    store = FaceStore(out)
    utt = utterances[3]
    stored, decoded = store.frames(utt), DecodedFaces().frames(utt)
    assert stored.shape == decoded.shape and stored.dtype == np.uint8
    if fmt == "npy":
        np.testing.assert_array_equal(stored, decoded)
    else:
        assert np.abs(stored.astype(int) - decoded).mean() < 3  # JPEG at quality 90
    np.testing.assert_allclose(store.times(len(stored)), frame_times(len(stored), 2.5))

    victim = store.path(utt.key)
    before = victim.read_bytes()
    victim.unlink()
    again = prepare_faces(manifest, out, fmt=fmt, workers=1)
    assert (again["extracted"], again["already_done"]) == (1, len(utterances) - 1)
    assert victim.read_bytes() == before  # the same input gives the same bytes
    with pytest.raises(DataError, match="other settings"):
        prepare_faces(manifest, out, FrameSampling(rate=1.0), fmt=fmt, workers=1)


def test_shards_split_the_manifest(tiny_prepared: Path, tmp_path: Path) -> None:
    manifest = tiny_prepared / "manifests" / "test.tsv"
    total = len(read_manifest(manifest))
    reports = [
        prepare_faces(manifest, tmp_path, fmt="npy", shard=WorkShard(i, 3), workers=1) for i in range(3)
    ]
    assert sum(r["extracted"] for r in reports) == total and min(r["extracted"] for r in reports) > 0
    assert len(list((tmp_path / "frames").rglob("*.npy"))) == total
    assert (tmp_path / "reports/prepare_faces.shard-2-of-3.json").is_file()


def test_cli_prepare_faces(tiny_prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = str(tiny_prepared / "manifests" / "test.tsv")
    assert (
        cli_main(
            ["prepare-faces", manifest, str(tmp_path), "--format", "npy", "--shard", "0/4", "--workers", "1"]
        )
        == 0
    )
    assert "extracted" in capsys.readouterr().out
    assert cli_main(["prepare-faces", manifest, str(tmp_path), "--shard", "4/4"]) == 2
    assert "--shard" in capsys.readouterr().err


# --- augmentation and encoder ---------------------------------------------------------------------------


def test_augmentation_is_deterministic_per_generator_and_per_sample() -> None:
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 3, 112, 112), dtype=np.uint8))
    augment = FaceAugment(FaceAugmentConfig(size=64, blur_p=1.0))
    first = augment(images, torch.Generator().manual_seed(7))
    assert first.shape == (4, 3, 64, 64) and first.dtype == torch.uint8
    assert torch.equal(first, augment(images, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, augment(images, torch.Generator().manual_seed(8)))
    same = augment(images[:1].repeat(2, 1, 1, 1), torch.Generator().manual_seed(7))
    assert not torch.equal(same[0], same[1])  # each image of a batch draws its own parameters
    assert augment(images[0], torch.Generator().manual_seed(7)).shape == (3, 64, 64)
    with pytest.raises(ConfigError, match="scale_min"):
        FaceAugmentConfig(scale_min=0.0)


def test_face_encoder_shape_and_parameter_count() -> None:
    encoder = build_face_encoder("face_resnet18")
    count = sum(p.numel() for p in encoder.parameters())
    print(f"face_resnet18 (512-d): {count:,} parameters")
    assert count == 11_436_224
    encoder.eval()
    with torch.no_grad():
        assert encoder(torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8)).shape == (2, 512)
        assert encoder(torch.rand(2, 3, 64, 64)).shape == (2, 512)  # local crops
    assert build_face_encoder(embedding_dim=128)(torch.rand(2, 3, 112, 112)).shape == (2, 128)
    with pytest.raises(ConfigError, match="face_resnet18"):
        build_face_encoder("face_resnet50")


# --- multi-crop views -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Utterance]]:
    """A real npy store of 6 utterances x 8 flat frames; frame t of utterance u has grey level 30u + 3t,
    so any crop of it (without colour augmentation) says where it came from."""
    root = tmp_path_factory.mktemp("labelled")
    open_for_writing(root, store_settings(FrameSampling(), "npy", 90))
    utterances = []
    for u in range(6):
        frames = np.empty((8, 112, 112, 3), np.uint8)
        for t in range(8):
            frames[t] = 30 * u + 3 * t
        utt = Utterance(f"id{u:05d}/s/00001", "unused.wav", f"unused{u}.mp4", 3.2, 16000)
        write_frames(FaceStore(root).path(utt.key), frames, "npy", 90)
        utterances.append(utt)
    utterances.append(Utterance("id00099/s/00001", "unused.wav", None, 3.2, 16000))  # no video
    return root, utterances


def _plain_crops() -> FaceCropConfig:
    """Crops without colour, blur or greyscale changes, so pixel values identify the source frame."""
    plain = {"jitter_p": 0.0, "blur_p": 0.0, "grey_p": 0.0}
    return FaceCropConfig(
        global_view=FaceAugmentConfig(size=112, scale_min=0.5, **plain),
        local_view=FaceAugmentConfig(size=64, scale_min=0.2, scale_max=0.5, **plain),
    )


def _source_of(crops: torch.Tensor) -> list[tuple[int, int]]:
    """(utterance, frame) of each flat crop."""
    return [divmod(int(crop[0, 0, 0]), 30) for crop in crops]


def test_views_shapes_frames_and_determinism(labelled_store: tuple[Path, list[Utterance]]) -> None:
    root, utterances = labelled_store
    dataset = FaceMultiCropDataset(utterances, FaceStore(root), _plain_crops(), seed=3)
    assert (len(dataset), dataset.excluded) == (6, 1) and dataset.excluded_keys == ["id00099/s/00001"]
    item = dataset[2]
    assert item["global"].shape == (2, 3, 112, 112) and item["local"].shape == (4, 3, 64, 64)
    assert item["global"].dtype == torch.uint8 and item["partner"] == 2
    sources = _source_of(item["global"]) + _source_of(item["local"])
    assert {u for u, _ in sources} == {2}
    assert len({(u, t // 3) for u, t in sources}) == 6  # six different frames of the utterance
    again = FaceMultiCropDataset(utterances, FaceStore(root), _plain_crops(), seed=3)[2]
    assert torch.equal(item["global"], again["global"]) and torch.equal(item["local"], again["local"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[2]["global"], item["global"])
    default = FaceMultiCropDataset(utterances, FaceStore(root), seed=3)[0]
    assert default["global"].shape == (2, 3, 112, 112) and default["local"].shape == (4, 3, 64, 64)


def test_cluster_partner_crops_come_from_another_member(labelled_store: tuple[Path, list[Utterance]]) -> None:
    root, utterances = labelled_store
    dataset = FaceMultiCropDataset(utterances, FaceStore(root), _plain_crops(), seed=0)
    labels = np.array([0, 0, 1, 1, 1, 2])
    dataset.set_clusters(labels, global_from_partner=1, local_from_partner=2)
    for index in range(len(dataset)):
        item = dataset[index]
        partner = item["partner"]
        if index == 5:  # alone in its cluster: every crop from itself
            assert partner == 5
            continue
        assert partner != index and labels[partner] == labels[index]
        globals_, locals_ = _source_of(item["global"]), _source_of(item["local"])
        assert [u for u, _ in globals_] == [index, partner]
        assert [u for u, _ in locals_] == [index, index, partner, partner]
    dataset.set_clusters(None)
    assert dataset[0]["partner"] == 0
    with pytest.raises(ValueError, match="cluster labels"):
        dataset.set_clusters(np.zeros(7))
