"""`discover eval --loggers tensorboard,wandb`: an evaluation's results in the trackers a job
logs to (`discovery.job.loggers`), beside results.json and the PNGs in --out.

Each task gets its table (per rule: final return mean [95% CI], IQM, normalised IQM (units of
the reference baseline), diverged seeds), its learning curves (mean over the seeds that did not
diverge, against env steps) and its curve figure; the run gets the pooled normalised IQM per
rule, the summary figure and manifest.json as its config. TensorBoard writes to OUT/tb, wandb
(offline unless --wandb-mode online) under OUT/wandb.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from discovery.evaluation.plots import curves_file
from discovery.job.loggers import TRACKERS, Trackers, open_trackers
from discovery.spec import WANDB_MODES, WandbSettings, check_loggers

TABLE_COLUMNS = ["rule", "final mean", "95% CI", "IQM", "normalised IQM", "diverged seeds"]


def parse_loggers(text: str) -> list[str]:
    """'tensorboard,wandb' -> the trackers, checked (known, installed) before any work; ''
    -> none. A ValueError names --loggers and the extra to install."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    check_loggers(names, "--loggers", allowed=TRACKERS)
    return names


def add_arguments(parser) -> None:
    """The tracker options of `discover eval`."""
    group = parser.add_argument_group("trackers (docs/tracking.md)")
    group.add_argument(
        "--loggers",
        default="",
        metavar="NAMES",
        help="also log the results to these trackers: tensorboard (OUT/tb), wandb "
        "(OUT/wandb), comma-separated (needs pip install -e '.[tracking]')",
    )
    defaults = WandbSettings()
    for field in ("project", "entity", "group"):
        group.add_argument(
            f"--wandb-{field}",
            default=getattr(defaults, field),
            help=f"wandb {field} (default {getattr(defaults, field)!r})",
        )
    group.add_argument(
        "--wandb-mode",
        default=defaults.mode,
        choices=WANDB_MODES,
        help=f"offline: sync later with `wandb sync` (default {defaults.mode})",
    )


def wandb_settings(args) -> WandbSettings:
    return WandbSettings(args.wandb_project, args.wandb_entity, args.wandb_group, args.wandb_mode)


def log_evaluation(names: list[str], out: Path, results: dict, manifest: dict, wandb: WandbSettings) -> None:
    """Logs `results` (results.json's content) with the PNGs in `out` to the trackers `names`;
    a tracker that fails is warned about and skipped (results.json and the PNGs stay)."""
    if not names:
        return
    trackers = open_trackers(names, out, wandb, f"eval {results['evaluated']}", manifest, "eval")
    try:
        _log(trackers, out, results)
    finally:
        trackers.close()


def _log(trackers: Trackers, out: Path, results: dict) -> None:
    for task, result in results["tasks"].items():
        rows = [_row(label, entry) for label, entry in result["rules"].items()]
        trackers.call("table", f"{task}/table", TABLE_COLUMNS, rows, 0)
        trackers.call(
            "curves",
            f"{task}/return",
            result["env_steps"],
            {label: _mean_curve(entry["curves"]) for label, entry in result["rules"].items()},
            "env steps",
        )
        png = curves_file(out, task)
        if png.is_file():
            trackers.call("image", f"{task}/curves", png, 0)
    pooled = {
        f"pooled_normalized_iqm/{label}": s["iqm"]["value"]
        for label, s in results["pooled_normalized"].items()
    }
    if pooled:
        trackers.call("scalars", 0, pooled)
    if (out / "summary.png").is_file():
        trackers.call("image", "summary", out / "summary.png", 0)


def _row(label: str, entry: dict) -> list:
    """One rule's row of a task table (TABLE_COLUMNS)."""
    seeds = f"{entry['diverged']}/{len(entry['final_returns'])}"
    if entry["final"] is None:
        return [label, None, None, None, None, seeds]
    mean, iqm = entry["final"]["mean"], entry["final"]["iqm"]["value"]
    normalized = entry.get("normalized", {}).get("iqm", {}).get("value")
    return [
        label,
        round(mean["value"], 3),
        f"[{mean['ci'][0]:.3g}, {mean['ci'][1]:.3g}]",
        round(iqm, 3),
        None if normalized is None else round(normalized, 3),
        seeds,
    ]


def _mean_curve(curves: list) -> list[float]:
    """The mean over seeds `[N, P+1]` of the seeds whose curve is finite (nan: none is)."""
    array = np.asarray(curves, dtype=float).reshape(len(curves), -1)
    finite = array[np.all(np.isfinite(array), axis=1)]
    if not finite.size:
        return [math.nan] * array.shape[1]
    return [float(v) for v in finite.mean(axis=0)]
