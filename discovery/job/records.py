"""The generation record of a discovery job: one line of metrics.jsonl, what every loop callback
receives, and the checks the loop makes on the history (divergence, device changes).

Record keys (docs/CONTRACTS.md): generation; fitness_{mean,std,min,median,max} over the finite
members; num_nonfinite, nonfinite_pairs; best_so_far; mean_fitness (the meta-optimizer mean's
score); task_scores {task label: score}; tasks (those trained on this generation); sigma;
hyperparams; generation_time, wall_time [s]; env_steps, env_steps_per_s; devices; and
device_change on the first generation after a resume on another device count. Non-finite
numbers are null.
"""

from __future__ import annotations

import math

import numpy as np


def finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def generation_record(generation, metrics, seconds, wall, env_steps, steps_per_generation,
                      labels) -> dict:
    """One metrics.jsonl line from the meta-optimizer's metrics (host numpy); non-finite
    numbers become null. labels: the task labels, in the spec's order."""
    fitness = np.asarray(metrics["fitness"], np.float64)
    finite_fitness = fitness[np.isfinite(fitness)]
    stats = (lambda f: finite(f(finite_fitness)) if finite_fitness.size else None)
    task_scores = np.asarray(metrics["task_scores"], np.float64)
    used = metrics.get("task_indices", range(len(labels)))
    return {
        "generation": generation,
        "fitness_mean": stats(np.mean),
        "fitness_std": stats(np.std),
        "fitness_min": stats(np.min),
        "fitness_median": stats(np.median),
        "fitness_max": stats(np.max),
        "num_nonfinite": int(metrics["num_nonfinite"]),
        "nonfinite_pairs": int(metrics["nonfinite_pairs"]) if "nonfinite_pairs" in metrics else None,
        "best_so_far": finite(metrics["best_fitness"]),
        "mean_fitness": finite(metrics["mean_fitness"]),
        "task_scores": {
            label: finite(np.nanmean(np.where(np.isfinite(col), col, np.nan)))
            if np.isfinite(col).any() else None
            for label, col in zip(labels, task_scores.T)
        },
        "tasks": [labels[int(i)] for i in used],  # the tasks this generation trained on
        "sigma": finite(metrics["sigma"]) if "sigma" in metrics else None,
        "hyperparams": {k: finite(v) for k, v in metrics.get("hyperparams", {}).items()} or None,
        "generation_time": seconds,
        "wall_time": wall,
        "env_steps": env_steps,
        "env_steps_per_s": steps_per_generation / seconds,
    }


def diverged(history: list, limit: int) -> str | None:
    """The message that stops a job whose every member was non-finite in each of the last
    `limit` generations (0: never), else None."""
    streak = 0
    for record in reversed(history):
        if record["fitness_max"] is not None:
            break
        streak += 1
    if not limit or streak < limit:
        return None
    last = history[-1]["generation"]
    return (f"every member's fitness was non-finite in the last {streak} generations "
            f"({last - streak + 1}-{last}): the inner runs diverge. Likely causes: ppo.learning_rate "
            f"too large, the search step too large (meta_optimizer.sigma_init, or its learning_rate), "
            f"or rewards on a large scale (tasks[].reward_scale, ppo.normalize_rewards). Generation {last} "
            f"is saved; job.max_nonfinite_generations = 0 never stops")


def device_change(info: dict, devices: int, generation: int) -> dict | None:
    """{"from": N, "to": M, "generation": G + 1} when the checkpoint `info` of generation G was
    written on N devices and the job resumes on M != N, else None."""
    saved = info.get("devices")
    if saved is None or saved == devices:
        return None
    return {"from": saved, "to": devices, "generation": generation + 1}
