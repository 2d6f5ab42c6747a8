"""What `discover eval` prints and draws: per task its learning curves and tables as the task
ends (`report_task`), at the end summary.png and paired.png (`summary_figures`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from discovery.evaluation import plots
from discovery.evaluation.results import print_paired, print_task, status


def report_task(out: Path, label: str, result: dict, seconds: float) -> None:
    """A task's learning-curve figure and its printed tables (and, when the task has a reference
    rule but no normalised scores, why)."""
    curves = {rule: np.array(e["curves"], dtype=float) for rule, e in result["rules"].items()}
    plots.learning_curves_figure(
        plots.curves_file(out, label),
        f"{label} ({status(result['in_training_set'])}): {len(next(iter(curves.values())))} seeds, "
        "95% bootstrap CI",
        np.asarray(result["env_steps"]),
        curves,
        "return of the deterministic policy",
    )
    print_task(result, seconds)
    if result["paired"]:  # none without baselines
        print_paired(result["paired"])
    if result["reference"] is not None and not result["normalized"]:
        print(
            f"  no normalised scores on {label}: needs the reference baseline {result['reference']} "
            "with a final return above the random agent's (raise --budget)"
        )


def summary_figures(out: Path, evaluated: str, results: dict) -> None:
    """summary.png (normalised IQMs per task and pooled) and paired.png (paired differences), in
    units of the reference rule `results["reference"]`."""
    tasks, reference = results["tasks"], results["reference"]
    scores = {
        f"{name}\n({status(r['in_training_set'])})": {
            label: e["normalized"]["iqm"] for label, e in r["rules"].items() if "normalized" in e
        }
        for name, r in tasks.items()
    }
    scores["all tasks (pooled)"] = {label: s["iqm"] for label, s in results["pooled_normalized"].items()}
    if any(scores.values()):
        plots.scores_figure(
            out / "summary.png",
            {k: v for k, v in scores.items() if v},
            f"final return, {reference}-normalised (IQM, 95% CI)",
            f"Transfer of {evaluated}: 0 = random actions, 1 = {reference}",
        )
    rows = {name: [e for e in r["paired"] if "normalized_difference" in e] for name, r in tasks.items()}
    rows["all tasks (pooled)"] = [e for e in results["pooled_paired"] if "normalized_difference" in e]
    if any(rows.values()):
        plots.paired_figure(
            out / "paired.png",
            {k: v for k, v in rows.items() if v},
            f"Paired comparison of {evaluated} (rule - baseline, seed by seed; 95% CI)",
            reference,
        )
