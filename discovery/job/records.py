"""The generation record of a discovery job: one line of metrics.jsonl, what every loop callback
receives, and the checks the loop makes on the history (divergence, device changes).

Record keys (docs/CONTRACTS.md): generation; fitness_{mean,std,min,median,max} over the finite
members (a member with diverged lifetimes at its penalised fitness); num_nonfinite,
nonfinite_pairs; diverged, diverged_members, lifetimes (the population's lifetimes that
diverged, the members with at least one, and the lifetimes scored; null for the estimators that
do not count them: all but ES; records written before these keys existed lack them);
best_so_far; mean_fitness (the meta-optimizer mean's score); task_scores {task label: score};
tasks (those trained on this generation); sigma; hyperparams; generation_time, wall_time [s];
env_steps, env_steps_per_s; devices; and device_change on the first generation after a resume
on another device count. Only when the estimator measures them: fitness_reliability (the
population's split-half rank correlation; ES with job.seeds_per_member >= 2) and
baseline_scores {task label: the paired baseline's raw score} (meta_objective.normalize =
"paired"). Non-finite numbers are null.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from inner_algos.registry import config_section


def finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def generation_record(generation, metrics, seconds, wall, env_steps, steps_per_generation, labels) -> dict:
    """One metrics.jsonl line from the meta-optimizer's metrics (host numpy); non-finite
    numbers become null. labels: the task labels, in the spec's order."""
    fitness = np.asarray(metrics["fitness"], np.float64)
    finite_fitness = fitness[np.isfinite(fitness)]
    stats = lambda f: finite(f(finite_fitness)) if finite_fitness.size else None
    used = metrics.get("task_indices", range(len(labels)))
    record = {
        "generation": generation,
        "fitness_mean": stats(np.mean),
        "fitness_std": stats(np.std),
        "fitness_min": stats(np.min),
        "fitness_median": stats(np.median),
        "fitness_max": stats(np.max),
        "num_nonfinite": int(metrics["num_nonfinite"]),
        "nonfinite_pairs": int(metrics["nonfinite_pairs"]) if "nonfinite_pairs" in metrics else None,
        **divergence_counts(metrics.get("diverged")),
        "best_so_far": finite(metrics["best_fitness"]),
        "mean_fitness": finite(metrics["mean_fitness"]),
        "task_scores": _per_label(np.asarray(metrics["task_scores"], np.float64).T, labels),
        "tasks": [labels[int(i)] for i in used],  # the tasks this generation trained on
        "sigma": finite(metrics["sigma"]) if "sigma" in metrics else None,
        "hyperparams": {k: finite(v) for k, v in metrics.get("hyperparams", {}).items()} or None,
        "generation_time": seconds,
        "wall_time": wall,
        "env_steps": env_steps,
        "env_steps_per_s": steps_per_generation / seconds,
    }
    if "fitness_reliability" in metrics:
        record["fitness_reliability"] = finite(metrics["fitness_reliability"])
    if "baseline_scores" in metrics:
        record["baseline_scores"] = _per_label(np.asarray(metrics["baseline_scores"], np.float64), labels)
    return record


def divergence_counts(diverged) -> dict:
    """{"diverged": lifetimes that diverged, "diverged_members": members with at least one,
    "lifetimes": lifetimes scored} of the population's diverged flags `[P, K, S]` (member, task,
    seed); all None when the estimator gives none."""
    if diverged is None:
        return dict.fromkeys(("diverged", "diverged_members", "lifetimes"))
    flags = np.asarray(diverged, bool).reshape(len(diverged), -1)
    return {
        "diverged": int(flags.sum()),
        "diverged_members": int(flags.any(axis=1).sum()),
        "lifetimes": int(flags.size),
    }


def _per_label(scores, labels) -> dict:
    """{label: finite mean of scores[t]} of per-task scores `[T, ...]`; null where none is finite."""
    return {
        label: finite(np.nanmean(np.where(np.isfinite(col), col, np.nan))) if np.isfinite(col).any() else None
        for label, col in zip(labels, scores)
    }


RELIABILITY_FLOOR = 0.2  # a fitness ranking this unreliable is mostly seed noise
RELIABILITY_PATIENCE = 5  # generations in a row below the floor before the job warns


def reliability_keys(section: str) -> tuple[str, ...]:
    """The spec keys that make the fitness ranking more reliable, for an inner algorithm whose
    config is the spec section `section` (e.g. "ppo", "lpg")."""
    return (
        "job.seeds_per_member",
        "meta_optimizer.sigma_init",
        f"{section}.num_updates",
        "job.tasks_per_generation",
    )


def unreliable(
    history: list,
    section: str,
    floor: float = RELIABILITY_FLOOR,
    patience: int = RELIABILITY_PATIENCE,
) -> str | None:
    """The warning for a job whose fitness_reliability was below `floor` in each of the last
    `patience` generations (a null or absent value ends the streak), else None. section: the
    inner algorithm's spec section, whose keys the advice names."""
    streak = []
    for record in reversed(history):
        value = record.get("fitness_reliability")
        if value is None or value >= floor:
            break
        streak.append(value)
    if len(streak) < patience:
        return None
    last = history[-1]["generation"]
    keys = reliability_keys(section)
    return (
        f"the fitness ranking is mostly seed noise: its split-half reliability stayed below "
        f"{floor:g} for {len(streak)} generations ({last - len(streak) + 1}-{last}; mean "
        f"{np.mean(streak):.2f}), so ES follows luck more than the rule. Raise it with more "
        f"seeds per member ({keys[0]}), larger perturbations "
        f"({keys[1]}), a longer lifetime ({keys[2]}) or more tasks per "
        f"generation ({keys[3]})"
    )


def diverged(history: list, limit: int, inner_config: Any) -> str | None:
    """The message that stops a job whose every member was non-finite in each of the last
    `limit` generations (0: never), else None. inner_config: the inner algorithm's config, whose
    keys the advice names (its learning rate, and its reward normalisation when it has one)."""
    streak = 0
    for record in reversed(history):
        if record["fitness_max"] is not None:
            break
        streak += 1
    if not limit or streak < limit:
        return None
    last = history[-1]["generation"]
    section = config_section(inner_config)
    scale = "tasks[].reward_scale" + (
        f", {section}.normalize_rewards" if hasattr(inner_config, "normalize_rewards") else ""
    )
    return (
        f"every member's fitness was non-finite in the last {streak} generations "
        f"({last - streak + 1}-{last}): the inner runs diverge. Likely causes: {section}.learning_rate "
        f"too large, the search step too large (meta_optimizer.sigma_init, or its learning_rate), "
        f"or rewards on a large scale ({scale}). Generation {last} "
        f"is saved; job.max_nonfinite_generations = 0 never stops"
    )


def device_change(info: dict, devices: int, generation: int) -> dict | None:
    """{"from": N, "to": M, "generation": G + 1} when the checkpoint `info` of generation G was
    written on N devices and the job resumes on M != N, else None."""
    saved = info.get("devices")
    if saved is None or saved == devices:
        return None
    return {"from": saved, "to": devices, "generation": generation + 1}
