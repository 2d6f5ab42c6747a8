"""Each task's result of `discover eval`, stored as OUT/tasks/<task>.json as soon as the task
ends, with what it depends on (`task_key`); a rerun with the same --out reads the tasks already
done (`finished_task`) and refuses, naming the differences, when the settings changed. Another
evaluation's baselines can be read from its task files instead of trained again
(`reused_baselines`, `--reuse-baselines`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from discovery.evaluation.results import json_ready
from discovery.job.files import spec_differences
from inner_algos.registry import config_section

TASKS_DIR = "tasks"  # OUT/tasks/<task>.json


def task_key(rules: dict, reference: str | None, seeds: int, seed: int, points: int, config, task) -> dict:
    """What a task's result depends on (rule contents, the reference rule its scores are
    normalised by, seeds, inner config, task), JSON-ready, as stored in OUT/tasks/<task>.json and
    compared on a rerun."""
    return json_ready(
        {
            "rules": {label: r["sha256"] for label, r in rules.items()},
            "reference": reference,
            "seeds": seeds,
            "seed": seed,
            "points": points,
            config_section(config): dataclasses.asdict(config),
            "task": dataclasses.asdict(task),
        }
    )


def _stored(path: Path, fix: str) -> tuple[dict, dict]:
    """(key, {"result", "seconds"}) of the task file at `path`; ValueError ending in `fix` when it
    is not one."""
    try:
        stored = json.loads(path.read_text())
        return stored["key"], {"result": stored["result"], "seconds": stored["seconds"]}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a task result of discover eval ({error}); {fix}") from None


def finished_task(path: Path, key: dict) -> dict | None:
    """{"result", "seconds"} of the task stored at `path` by an earlier run with the same `key`;
    None when there is none; ValueError naming the differences when its key differs."""
    if not path.exists():
        return None
    saved_key, done = _stored(path, "delete it or choose another --out")
    differences = spec_differences(saved_key, json.loads(json.dumps(key)), ignore=())
    if differences:
        raise ValueError(
            f"{path} holds this task evaluated with other settings, so --out "
            f"{path.parent.parent} cannot be continued: {'; '.join(differences)} "
            "(stored -> now). Use another --out, or delete that file to rerun the task."
        )
    return done


def reused_baselines(path: Path, key: dict, labels: list[str]) -> dict:
    """The learning curves `{label: [N, P+1]}` of the baseline rules `labels`, read from the task
    file `path` of another evaluation that ran them with the same seeds, settings and task (its
    evaluated rule may differ: every rule sees the same seed keys, so a baseline's curves do not
    depend on the rule it was compared with). {} when there is no file at `path`; ValueError
    naming the differences when that evaluation's settings or baselines differ."""
    if not path.exists():
        return {}
    saved_key, done = _stored(path, "check --reuse-baselines")

    def baselines_only(task_key: dict) -> dict:
        return {**task_key, "rules": {k: v for k, v in task_key.get("rules", {}).items() if k in labels}}

    differences = spec_differences(
        baselines_only(saved_key), baselines_only(json.loads(json.dumps(key))), ignore=()
    )
    if differences:
        raise ValueError(
            f"--reuse-baselines: {path} ran its baselines with other settings, so they cannot stand "
            f"in for this evaluation's: {'; '.join(differences)} (stored -> now). Reuse an evaluation "
            "made with the same --seeds, --seed, --points, --baselines, --set and task budgets, or drop "
            "--reuse-baselines."
        )
    # a diverged measurement is stored as null (strict JSON); numpy reads None as NaN in a float array
    return {label: np.array(done["result"]["rules"][label]["curves"], np.float32) for label in labels}
