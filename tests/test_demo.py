"""The whole demo at tiny size: every stage runs and the table has every system and list."""

from __future__ import annotations

import json
from pathlib import Path

from avssl.cli import main


def test_quick_demo_end_to_end(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out-dir", str(out), "--workers", "1", "run.progress=false"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert set(report["results"]) == {"MFCC mean+std (no learning)", "untrained encoder", "DINO (teacher)"}
    for system in report["results"].values():
        assert set(system) == {"synth-O", "synth-H"}
        for metrics in system.values():
            assert 0.0 <= metrics["eer"] <= 1.0 and metrics["n_target"] > 0 and metrics["n_nontarget"] > 0
    assert (out / "results.md").read_text().count("|") > 20
    assert (out / "dino" / "encoder.pt").is_file()
    printed = capsys.readouterr().out
    assert "DINO (teacher)" in printed and "synth-O EER%" in printed


def test_cli_reports_bad_input_without_traceback(tmp_path: Path, capsys) -> None:
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("optim:\n  epochz: 1\n")
    assert main(["train", str(config)]) == 2
    assert "optim.epochz" in capsys.readouterr().err
