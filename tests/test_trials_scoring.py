"""Trial-list parsing and cosine scoring against a direct numpy computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avssl.errors import DataError
from avssl.eval.scoring import cosine_scores
from avssl.eval.trials import TrialList, read_trials, utterance_key

TRIALS = """1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav
0 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav

1 ./id10300/ize_eiCFEg0/00003.m4a id10300/abc/00001.mp4
"""


def _write(tmp_path: Path, text: str, name: str = "veri_test2.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_utterance_key() -> None:
    assert utterance_key("id10270/x6uYqmx31kE/00001.wav") == "id10270/x6uYqmx31kE/00001"
    assert utterance_key("./a/b/c.FLAC") == "a/b/c"
    assert utterance_key("a/b/c.mp4") == "a/b/c"
    assert utterance_key("a/b.d/c") == "a/b.d/c"
    assert utterance_key("a/b/c.txt") == "a/b/c.txt"


def test_read_trials(tmp_path: Path) -> None:
    trials = read_trials(_write(tmp_path, TRIALS))
    assert trials.name == "veri_test2"
    assert len(trials) == 3
    assert trials.labels.dtype == np.int8
    assert trials.labels.tolist() == [1, 0, 1]
    assert trials.enrol == [
        "id10270/x6uYqmx31kE/00001",
        "id10270/x6uYqmx31kE/00001",
        "id10300/ize_eiCFEg0/00003",
    ]
    assert trials.test == ["id10270/8jEAjG6SegY/00008", "id10300/ize_eiCFEg0/00003", "id10300/abc/00001"]
    assert trials.keys() == [
        "id10270/8jEAjG6SegY/00008",
        "id10270/x6uYqmx31kE/00001",
        "id10300/abc/00001",
        "id10300/ize_eiCFEg0/00003",
    ]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [("1 a.wav", "expected 3 fields"), ("2 a.wav b.wav", "label must be"), ("1 a b c", "got 4")],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = _write(tmp_path, TRIALS + bad_line + "\n")
    with pytest.raises(DataError, match=message) as caught:
        read_trials(path)
    assert f"{path}:5:" in str(caught.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_trials(tmp_path / "absent.txt")
    with pytest.raises(DataError, match="no trials"):
        read_trials(_write(tmp_path, "\n  \n"))


def _toy_setup(seed: int = 0) -> tuple[TrialList, list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = [f"spk{i // 4}/utt{i}" for i in range(20)]
    pairs = rng.integers(0, len(keys), size=(50, 2))
    trials = TrialList(
        name="toy",
        labels=(pairs[:, 0] // 4 == pairs[:, 1] // 4).astype(np.int8),
        enrol=[keys[i] for i in pairs[:, 0]],
        test=[keys[i] for i in pairs[:, 1]],
    )
    embeddings = rng.normal(size=(len(keys), 16)).astype(np.float32) + 3.0
    mean = rng.normal(size=16) + 3.0
    return trials, keys, embeddings, mean


@pytest.mark.parametrize("subtract_mean", [False, True])
def test_cosine_scores_match_numpy(subtract_mean: bool) -> None:
    trials, keys, embeddings, mean = _toy_setup()
    scores = cosine_scores(trials, keys, embeddings, mean if subtract_mean else None)
    table = embeddings.astype(np.float64) - (mean if subtract_mean else 0.0)
    row = {key: i for i, key in enumerate(keys)}
    expected = []
    for enrol, test in zip(trials.enrol, trials.test, strict=True):
        a, b = table[row[enrol]], table[row[test]]
        expected.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_key_order_does_not_matter() -> None:
    trials, keys, embeddings, mean = _toy_setup()
    permutation = np.random.default_rng(1).permutation(len(keys))
    shuffled = cosine_scores(trials, [keys[i] for i in permutation], embeddings[permutation], mean)
    np.testing.assert_allclose(shuffled, cosine_scores(trials, keys, embeddings, mean), atol=1e-6)


def test_missing_embeddings_are_listed() -> None:
    trials, keys, embeddings, _ = _toy_setup()
    needed = trials.keys()
    kept = [i for i, key in enumerate(keys) if key not in needed[:3]]
    with pytest.raises(DataError, match="'toy' needs 3 utterances") as caught:
        cosine_scores(trials, [keys[i] for i in kept], embeddings[kept], None)
    for key in needed[:3]:
        assert key in str(caught.value)


def test_bad_embedding_tables() -> None:
    trials, keys, embeddings, mean = _toy_setup()
    with pytest.raises(DataError, match="duplicate"):
        cosine_scores(trials, keys[:-1] + keys[:1], embeddings, None)
    with pytest.raises(DataError, match="matrix"):
        cosine_scores(trials, keys, embeddings[:-1], None)
    with pytest.raises(DataError, match="dims"):
        cosine_scores(trials, keys, embeddings, mean[:-1])
    broken = embeddings.copy()
    broken[keys.index(trials.enrol[0]), 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        cosine_scores(trials, keys, broken, None)
