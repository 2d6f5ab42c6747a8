"""The reference scores a normalised meta-objective divides by, taken once at job start: the
baseline rule's per-task scores (`normalize = "baseline"` or `"paired"`) and the random agent's
(`"paired"`), from the spec, from the checkpoint being resumed, or measured. Only the job's
primary process prints what it measures."""

from __future__ import annotations

import jax
import numpy as np

from discovery.job import console as job_console
from discovery.meta_opt.problem import measure_baselines, measure_random_scores
from discovery.spec import JobSpec, SpecError
from inner_algos.registry import config_section
from meta_objectives import check_paired_scale


def baselines(spec: JobSpec, saved_info: dict | None, key, primary: bool) -> np.ndarray | None:
    """Per-task baseline scores: None (no normalisation), from the spec, the checkpoint
    (`saved_info`), or measured with `key`."""
    objective = spec.meta_objective
    if objective.normalize == "none":
        return None
    if objective.baselines:
        return np.asarray(objective.baselines, np.float32)
    if saved_info is not None and saved_info.get("baselines") is not None:
        return np.asarray(saved_info["baselines"], np.float32)
    if primary:
        job_console.announce_baselines(objective, len(spec.tasks))
    return measure_baselines(spec.tasks, spec.inner_config, objective, key, spec.inner)


def random_scores(spec: JobSpec, baselines, saved_info: dict | None, key, primary: bool) -> np.ndarray | None:
    """The random agent's per-task scores for normalize = "paired" (None otherwise): from
    the checkpoint (`saved_info`) or measured with a key folded from `key`; the job stops
    here when the baseline does not clearly beat them (`check_paired_scale`)."""
    objective = spec.meta_objective
    if objective.normalize != "paired":
        return None
    if saved_info is not None and saved_info.get("random_scores") is not None:
        return np.asarray(saved_info["random_scores"], np.float32)
    episodes = objective.baseline_seeds * spec.inner_config.eval_envs
    if primary:
        job_console.announce_random_scores(episodes, len(spec.tasks))
    k_random = jax.random.fold_in(key, len(spec.tasks))
    scores = measure_random_scores(spec.tasks, spec.inner_config, objective, k_random)
    try:
        check_paired_scale(
            baselines, scores, [t.label for t in spec.tasks], config_section(spec.inner_config)
        )
    except ValueError as err:
        raise SpecError(str(err)) from err
    return scores
