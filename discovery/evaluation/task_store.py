"""Each task's result of `discover eval`, stored as OUT/tasks/<task>.json as soon as the task
ends, with what it depends on (`task_key`); a rerun with the same --out reads the tasks already
done (`finished_task`) and refuses, naming the differences, when the settings changed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

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


def finished_task(path: Path, key: dict) -> dict | None:
    """{"result", "seconds"} of the task stored at `path` by an earlier run with the same `key`;
    None when there is none; ValueError naming the differences when its key differs."""
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
        saved_key = stored["key"]
        done = {"result": stored["result"], "seconds": stored["seconds"]}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path} is not a task result of discover eval ({error}); delete it or choose another --out"
        ) from None
    differences = spec_differences(saved_key, json.loads(json.dumps(key)), ignore=())
    if differences:
        raise ValueError(
            f"{path} holds this task evaluated with other settings, so --out "
            f"{path.parent.parent} cannot be continued: {'; '.join(differences)} "
            "(stored -> now). Use another --out, or delete that file to rerun the task."
        )
    return done
