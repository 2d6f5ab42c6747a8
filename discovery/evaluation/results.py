"""The results of `discover eval`: statistics per task and pooled (`discovery.evaluation.stats`),
results.json / manifest.json writing, the table printed per task."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from discovery.evaluation import stats
from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig

NORMALIZER = "ppo_clip"


def task_results(curves: dict[str, np.ndarray], updates, per_update, in_training: bool | None,
                 config: PPOConfig, task: Task, random_return: float) -> dict:
    """Statistics of one task's curves `{label: [N, P+1]}` as a JSON-ready dict; scores are
    normalised between `random_return` (0) and PPO-clip's mean final return (1). Seeds whose
    curve holds NaN diverged: counted (`diverged`), left out of the statistics."""
    finals = {label: curve[np.all(np.isfinite(curve), axis=1), -1] for label, curve in curves.items()}
    initial = float(np.mean([c[:, 0] for c in curves.values()]))
    reference = (float(np.mean(finals[NORMALIZER])) if NORMALIZER in curves and finals[NORMALIZER].size
                 else math.nan)
    scale = reference - random_return
    normalizable = bool(scale > 1e-8)  # PPO-clip must beat the random agent (nan: False)
    per_rule = {}
    for label, curve in curves.items():
        final = finals[label]
        entry = {"final_returns": curve[:, -1].tolist(), "curves": curve.tolist(),
                 "diverged": int(curve.shape[0] - final.size),
                 "final": stats.summarize(final) if final.size else None}
        if normalizable and final.size:
            normalized = (final - random_return) / scale
            entry.update(normalized_scores=normalized.tolist(), normalized=stats.summarize(normalized))
        per_rule[label] = entry
    return {
        "in_training_set": in_training,
        "held_out": None if in_training is None else not in_training,
        "task": dataclasses.asdict(task),
        "ppo": dataclasses.asdict(config),
        "env_steps_per_update": per_update,
        "updates": [int(u) for u in updates],
        "env_steps": [int(u) * per_update for u in updates],
        "initial_return": initial,
        "random_return": random_return,
        "ppo_clip_final_return": reference,
        "rules": per_rule,
        "normalized": bool(normalizable),
    }


def pooled(tasks: dict[str, dict]) -> dict[str, dict]:
    """PPO-clip-normalised scores pooled over tasks and seeds: {label: summarize_pooled(...)},
    CIs by the stratified bootstrap (seeds resampled within each task)."""
    scores: dict[str, list] = {}
    for result in tasks.values():
        for label, entry in result["rules"].items():
            if "normalized_scores" in entry:  # the seeds that did not diverge
                scores.setdefault(label, []).append(np.asarray(entry["normalized_scores"]))
    return {label: stats.summarize_pooled(v) for label, v in scores.items()}


def json_ready(value):
    """Non-finite floats become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(json_ready(data), indent=1, default=str, allow_nan=False))


def status(in_training: bool | None) -> str:
    return {None: "training set unknown", True: "training task", False: "held-out"}[in_training]


def print_task(result: dict, seconds: float) -> None:
    print(f"  {'rule':<28} {'mean [95% CI]':>26} {'IQM':>9} {'norm. IQM':>10} {'diverged':>9}"
          f"   ({seconds:.0f} s)")
    for label, e in result["rules"].items():
        seeds = f"{e['diverged']}/{len(e['final_returns'])}"
        if e["final"] is None:
            print(f"  {label:<28} {'diverged on every seed: no score':>57} {seeds:>9}")
            continue
        mean = e["final"]["mean"]
        norm = e.get("normalized", {}).get("iqm", {}).get("value", math.nan)
        print(f"  {label:<28} {mean['value']:>9.1f} [{mean['ci'][0]:>7.1f}, {mean['ci'][1]:>7.1f}]"
              f" {e['final']['iqm']['value']:>9.1f} {norm:>10.2f} {seeds:>9}")
