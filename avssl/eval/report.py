"""The files of an `avssl eval` run: results.md / results.json, score files, DET curves, histograms.

Everything a reader needs to check a number is in the output folder: per-trial scores (to recompute
any metric with other tools), the settings that produced each system (which files gave the mean, the
cohort and the fusion weight), and the figures.
"""

from __future__ import annotations

from pathlib import Path

from avssl.eval.evaluate import Evaluation, format_table, write_scores
from avssl.eval.report_plots import plot_det, plot_score_histograms
from avssl.utils.atomic import atomic_write_json, atomic_write_text

SYSTEM_TITLES = {
    "raw": "cosine (raw)",
    "asnorm": "cosine + AS-norm",
    "face": "face cosine",
    "fused": "audio + face fused",
}


def by_system(evaluation: Evaluation) -> dict[str, dict[str, dict]]:
    """Metrics regrouped as system -> list -> metrics, the shape of the markdown table."""
    systems: dict[str, dict[str, dict]] = {}
    for name, per_system in evaluation.metrics.items():
        for system, metrics in per_system.items():
            systems.setdefault(system, {})[name] = metrics
    return systems


def write_report(out_dir: str | Path, evaluation: Evaluation) -> list[Path]:
    """Write every output file under ``out_dir``; return their paths (results.md first)."""
    out = Path(out_dir)
    written: list[Path] = []
    figures: dict[str, list[Path]] = {}
    for name, systems in evaluation.scores.items():
        trials = evaluation.trials[name]
        for system, scores in systems.items():
            written.append(write_scores(out / "scores" / f"{name}.{system}.txt", trials, scores))
        curves = {SYSTEM_TITLES[s]: (scores, trials.labels) for s, scores in systems.items()}
        figures[name] = [plot_det(curves, out / "plots" / f"{name}.det.png", f"DET: {name}")]
        figures[name] += [
            plot_score_histograms(scores, trials.labels, out / "plots" / f"{name}.{system}.hist.png",
                                  f"{name}: {SYSTEM_TITLES[system]}")
            for system, scores in systems.items()
        ]
    report = {"lists": evaluation.metrics, "settings": evaluation.settings}
    written.append(atomic_write_json(out / "results.json", report))
    markdown = atomic_write_text(out / "results.md", _markdown(evaluation, figures, out))
    return [markdown, *written, *(png for pngs in figures.values() for png in pngs)]


def _markdown(evaluation: Evaluation, figures: dict[str, list[Path]], out: Path) -> str:
    settings = evaluation.settings
    embeddings = settings["embeddings"]
    lines = [
        "# Speaker verification results",
        "",
        f"Embeddings: `{embeddings['file']}` ({embeddings['utterances']} utterances, "
        f"{embeddings['skipped_at_extraction']} skipped at extraction as unreadable).",
        f"Mean subtraction: {_code(settings['mean_subtraction']) or 'none'}.",
    ]
    asnorm = settings["asnorm"]
    if asnorm:
        lines.append(
            f"AS-norm: cohort of {asnorm['cohort_size']} k-means cluster means (K = {asnorm['clusters']}, "
            f"seed {asnorm['seed']}) of {asnorm['cohort_utterances']} utterances in "
            f"`{asnorm['cohort_file']}`, top {asnorm['top_n']}."
        )
    fusion = settings["fusion"]
    if fusion:
        z = fusion["znorm"]
        lines.append(
            f"Fusion: `{fusion['face_embeddings']}`, face weight {fusion['weight']:.2f} "
            f"({fusion['weight_source']}); z-norm from {z['audio']['source']} (audio) and "
            f"{z['face']['source']} (face)."
        )
    lines += ["", format_table(
        {SYSTEM_TITLES[s]: per_list for s, per_list in by_system(evaluation).items()}, list(evaluation.metrics)
    ), "", "EER in %; minDCF normalised, c_miss = c_fa = 1. Scores per trial are in `scores/`.", ""]
    for name, pngs in figures.items():
        lines += [f"## {name}", ""]
        lines += [f"![{png.stem}]({png.relative_to(out).as_posix()})" for png in pngs]
        lines.append("")
    return "\n".join(lines)


def _code(value: str | None) -> str:
    return f"`{value}`" if value else ""
