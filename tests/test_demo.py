"""The whole demo at tiny size: every stage runs and the table has every system and list."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from avssl.cli import main
from avssl.demo import Job, run_jobs


def test_quick_demo_end_to_end(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out-dir", str(out), "--workers", "1", "run.progress=false"]) == 0
    report = json.loads((out / "results.json").read_text())
    systems = set(report["results"])
    assert {"MFCC mean+std (no learning)", "untrained encoder", "DINO (2 epochs)", "DINO (2 + 1 epochs)",
            "CA-DINO (2 + 1 epochs)"} <= systems
    for title in ("no gate", "fixed gate (LGL)", "DLG", "DLG-LC"):
        assert {f"pseudo-labels, {title}, round {r}" for r in (1, 2)} <= systems
    assert "TRUE labels (supervised upper bound, reference only), round 1" in systems
    stages = [(row["stage"], row["round"]) for row in report["clusterings"]]
    assert ("CA-DINO", "epoch0000") in stages and ("stage II dlglc", 2) in stages
    assert all(0.0 <= row["nmi"] <= 1.0 for row in report["clusterings"])
    assert [(row["variant"], row["round"]) for row in report["gates"]][:2] == [("nogate", 1), ("nogate", 2)]
    assert all(row["gated_epochs"] == 0 for row in report["gates"] if row["variant"] == "nogate")
    for system in report["results"].values():
        assert set(system) == {"synth-O", "synth-H"}
        for metrics in system.values():
            assert 0.0 <= metrics["eer"] <= 1.0 and metrics["n_target"] > 0 and metrics["n_nontarget"] > 0
    gains = {row["question"]: row for row in report["gains"]}
    assert len(gains) == 10 and "DLG-LC vs no gate" in gains
    stage_one = gains["cluster-aware DINO vs plain DINO, same budget"]["eer"]["synth-O"]
    assert stage_one["change"] == pytest.approx(stage_one["after"] - stage_one["before"], abs=0.011)
    assert (out / "results.md").read_text().count("|") > 20
    assert (out / "dino" / "encoder.pt").is_file() and (out / "dino_training.png").is_file()
    printed = capsys.readouterr().out
    assert "CA-DINO (2 + 1 epochs)" in printed and "synth-O EER%" in printed and "NMI" in printed
    assert "what each stage bought" in printed


def test_cli_reports_bad_input_without_traceback(tmp_path: Path, capsys) -> None:
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("optim:\n  epochz: 1\n")
    assert main(["train", str(config)]) == 2
    assert "optim.epochz" in capsys.readouterr().err


def test_trainings_run_side_by_side_in_dependency_order_and_failures_surface() -> None:
    work = {"a": Job(math.sqrt, 16.0), "b": Job(math.sqrt, 9.0, after=("a",)), "c": Job(math.sqrt, 4.0, after=("a",))}
    timings: dict[str, float] = {}
    assert run_jobs(work, 2, timings) == {"a": 4.0, "b": 3.0, "c": 2.0}
    assert set(timings) == {"a", "b", "c"}
    assert run_jobs(work, 1, {}) == {"a": 4.0, "b": 3.0, "c": 2.0}
    with pytest.raises(ValueError, match="listed before"):
        run_jobs({"b": Job(math.sqrt, 9.0, after=("a",)), "a": Job(math.sqrt, 1.0)}, 1, {})
    with pytest.raises(ValueError, match="not in the work list"):
        run_jobs({"b": Job(math.sqrt, 9.0, after=("missing",))}, 2, {})
    with pytest.raises(ValueError, match="math domain error"):  # a failing training is raised, not swallowed
        run_jobs({"bad": Job(math.sqrt, -1.0), "fine": Job(math.sqrt, 1.0)}, 2, {})
