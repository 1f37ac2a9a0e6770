"""Config loading: defaults < file < overrides, and errors that name the key or the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from avssl.config import DinoTrainConfig, PseudoTrainConfig, load_config, save_config
from avssl.errors import ConfigError

GOOD = """
data:
  train_manifest: dev.tsv
optim:
  epochs: 3
run:
  output_dir: out
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_and_overrides_take_precedence(tmp_path: Path) -> None:
    config = load_config(DinoTrainConfig, write(tmp_path, GOOD), ["optim.epochs=7", "dino.out_dim=128"])
    assert isinstance(config, DinoTrainConfig)
    assert config.optim.epochs == 7  # override beats file
    assert config.dino.out_dim == 128
    assert config.optim.batch_size == 64  # schema default
    assert config.data.train_manifest == "dev.tsv"


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(DinoTrainConfig, write(tmp_path, GOOD), ["augment.snr_db.noise=[1,2]"])
    saved = save_config(config, tmp_path / "resolved.yaml")
    again = load_config(DinoTrainConfig, saved)
    assert again == config


@pytest.mark.parametrize(
    ("text", "overrides", "fragment"),
    [
        (GOOD + "  seeed: 1\n", [], "run.seeed"),  # unknown key in the file
        (GOOD.replace("epochs: 3", "epochs: three"), [], "optim.epochs"),  # wrong type in the file
        (GOOD, ["optim.lr=fast"], "optim.lr"),  # wrong type in an override
        (GOOD, ["optim.learning_rate=0.1"], "optim.learning_rate"),  # unknown override key
        (GOOD, ["optim.epochs"], "key=value"),  # malformed override
        (GOOD, ["optim.batch_size=0"], "optim.batch_size"),  # out of range
        (GOOD, ["encoder.name=transformer"], "encoder.name"),
        (GOOD, ["cluster_aware.enabled=true"], "run.init_checkpoint"),
        (GOOD, ["augment.snr_db.music=[15,5]"], "augment.snr_db.music"),
        (GOOD.replace("train_manifest: dev.tsv", "num_workers: 0"), [], "data.train_manifest"),  # required key unset
        (GOOD.replace("  train_manifest: dev.tsv\n", ""), [], "'data'"),  # an empty section
        ("- a\n- b\n", [], "mapping"),
        ("data: [unclosed\n", [], "not valid YAML"),
    ],
)
def test_bad_config_fails_naming_the_key(tmp_path: Path, text: str, overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(DinoTrainConfig, write(tmp_path, text), overrides)
    assert fragment in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(DinoTrainConfig, tmp_path / "nope.yaml")


def test_shipped_configs_load(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    shipped = sorted(root.rglob("*.yaml"))
    assert shipped, "no configs shipped"
    for path in shipped:
        if "init_encoder" in path.read_text():  # a stage-II config
            overrides = ["data.train_manifest=x.tsv", "run.output_dir=out", "init_encoder=dino.safetensors"]
            assert load_config(PseudoTrainConfig, path, overrides).rounds.epochs > 0
            continue
        overrides = ["data.train_manifest=x.tsv", "run.output_dir=out", "run.init_checkpoint=dino.pt"]
        config = load_config(DinoTrainConfig, path, overrides)
        assert config.optim.epochs > 0
