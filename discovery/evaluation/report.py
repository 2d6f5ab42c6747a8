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
        f"{label} ({status(result['in_training_set'])}): mean over the seeds not diverged, 95% CI",
        np.asarray(result["env_steps"]),
        curves,
        "episode return of the\ndeterministic policy",
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
    """summary.png (normalised IQMs per task and pooled, the diverged seeds written above the
    bars) and paired.png (paired differences), in units of the reference rule
    `results["reference"]`."""
    tasks, reference = results["tasks"], results["reference"]
    scores = {
        f"{plots.wrap_label(name)}\n({status(r['in_training_set'])})": {
            label: {**e["normalized"]["iqm"], "note": _diverged_label([e])}
            for label, e in r["rules"].items()
            if "normalized" in e
        }
        for name, r in tasks.items()
    }
    normalized = [r for r in tasks.values() if r["normalized"]]
    scores["all tasks\n(pooled)"] = {
        label: {**s["iqm"], "note": _diverged_label([r["rules"][label] for r in normalized])}
        for label, s in results["pooled_normalized"].items()
    }
    if any(scores.values()):
        plots.scores_figure(
            out / "summary.png",
            {k: v for k, v in scores.items() if v},
            f"normalised final return, IQM over the\nseeds not diverged (0 = random, 1 = {reference})",
            f"Transfer of {evaluated}: normalised final return (IQM, 95% CI; red: seeds diverged)",
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


def _diverged_label(entries: list[dict]) -> str | None:
    """'diverged 37/40' of a rule's per-task entries (summed over them), None when none diverged."""
    diverged = sum(e["diverged"] for e in entries)
    seeds = sum(len(e["final_returns"]) for e in entries)
    return f"diverged {diverged}/{seeds}" if diverged else None
